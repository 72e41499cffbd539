"""DynamoDB Local, the local stack's database: what we rely on it for, and each way it differs
from AWS that the code or the tests rely on (docs/adr/0010-dynamodb-local.md).

One server per session (tests/fixtures/dynamodb.py); each test makes its own tables.
"""

from __future__ import annotations

import re
import subprocess
import sys
import threading
import time
import uuid

import pytest

from dev.provision import client_kwargs, create_tables, expected_resources, provision

pytestmark = pytest.mark.dynamodb_local
REGION = "us-east-1"
DUMMY = {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test", "AWS_DEFAULT_REGION": REGION}


@pytest.fixture
def ddb(dynamodb_local, monkeypatch):
    import boto3

    for k, v in DUMMY.items():
        monkeypatch.setenv(k, v)
    return boto3.client("dynamodb", **client_kwargs(dynamodb_local.endpoint, REGION))


def _table(ddb, gsi: bool = False) -> str:
    name = f"t-{uuid.uuid4().hex[:10]}"
    kw: dict = {
        "TableName": name,
        "AttributeDefinitions": [{"AttributeName": "pk", "AttributeType": "S"}],
        "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}],
        "BillingMode": "PAY_PER_REQUEST",
    }
    if gsi:
        kw["AttributeDefinitions"].append({"AttributeName": "g", "AttributeType": "S"})
        kw["GlobalSecondaryIndexes"] = [
            {
                "IndexName": "by-g",
                "KeySchema": [{"AttributeName": "g", "KeyType": "HASH"}],
                "Projection": {"ProjectionType": "ALL"},
            }
        ]
    ddb.create_table(**kw)
    return name


def test_listens_on_loopback_only(dynamodb_local):
    """The launcher binds Jetty's connector to 127.0.0.1 (the jar alone listens on every interface)."""
    out = subprocess.run(["ss", "-Hltn", f"sport = :{dynamodb_local.port}"], capture_output=True, text=True).stdout
    addresses = {line.split()[3].rsplit(":", 1)[0] for line in out.splitlines() if line.strip()}
    assert addresses and addresses <= {"127.0.0.1", "[::ffff:127.0.0.1]"}, out


def test_provision_makes_the_template_tables_with_indexes_and_ttl(ddb):
    prefix = f"si64-p{uuid.uuid4().hex[:6]}"
    tables = expected_resources(prefix)["tables"]
    create_tables(ddb, tables)
    from dev.provision import _check_tables

    _check_tables(ddb, tables)  # turns TTL on where the template asks
    for props in tables.values():
        desc = ddb.describe_table(TableName=props["TableName"])["Table"]
        want = {g["IndexName"] for g in props.get("GlobalSecondaryIndexes", [])}
        assert {g["IndexName"] for g in desc.get("GlobalSecondaryIndexes", [])} == want
        ttl = ddb.describe_time_to_live(TableName=props["TableName"])["TimeToLiveDescription"]
        if props.get("TimeToLiveSpecification"):
            assert ttl["TimeToLiveStatus"] == "ENABLED" and ttl["AttributeName"] == "ttl"
        else:
            assert ttl["TimeToLiveStatus"] == "DISABLED"
    create_tables(ddb, tables)  # idempotent


def test_reports_consumed_capacity_of_table_and_indexes(ddb):
    """What `make bench` measures write units with: AWS's own accounting, GSIs included."""
    name = _table(ddb, gsi=True)
    put = ddb.put_item(
        TableName=name,
        Item={"pk": {"S": "a"}, "g": {"S": "x"}, "v": {"S": "y" * 1500}},
        ReturnConsumedCapacity="INDEXES",
    )["ConsumedCapacity"]
    assert put["TableName"] == name
    assert put["Table"]["CapacityUnits"] == 2.0  # ~1.5 KB: 2 write units
    assert put["GlobalSecondaryIndexes"]["by-g"]["CapacityUnits"] == 2.0
    assert put["CapacityUnits"] == 4.0


# ---------------------------------------------------------------- differences from AWS


def test_difference_transaction_capacity_is_one_item_per_table(ddb):
    """AWS bills every item of a TransactWriteItems (2 units per KB each: 3 small puts = 6);
    DynamoDB Local reports one item's units per table (2). `make bench` multiplies by the
    items per table (dev/bench/calls.py `capacity`); a plain or batch write is reported
    per item, as AWS does."""
    name = _table(ddb)
    tx = ddb.transact_write_items(
        TransactItems=[{"Put": {"TableName": name, "Item": {"pk": {"S": k}}}} for k in "abc"],
        ReturnConsumedCapacity="INDEXES",
    )["ConsumedCapacity"]
    assert [(c["TableName"], c["CapacityUnits"]) for c in tx] == [(name, 2.0)]
    batch = ddb.batch_write_item(
        RequestItems={name: [{"PutRequest": {"Item": {"pk": {"S": k}}}} for k in "def"]},
        ReturnConsumedCapacity="INDEXES",
    )["ConsumedCapacity"]
    assert [(c["TableName"], c["CapacityUnits"]) for c in batch] == [(name, 3.0)]


def test_difference_ttl_expired_items_are_read_until_deleted_in_seconds(ddb):
    """Like AWS, an expired item is still there to read until a background pass deletes it, so
    no read takes presence for liveness (the claims adapter compares `expires_at_ms` with the
    clock). Unlike AWS, whose deletion comes days later, DynamoDB Local deletes within
    seconds: no test may count on an expired item staying."""
    name = _table(ddb)
    ddb.update_time_to_live(TableName=name, TimeToLiveSpecification={"AttributeName": "ttl", "Enabled": True})
    ddb.put_item(TableName=name, Item={"pk": {"S": "old"}, "ttl": {"N": str(int(time.time()) - 3600)}})
    assert "Item" in ddb.get_item(TableName=name, Key={"pk": {"S": "old"}}, ConsistentRead=True)
    for _ in range(300):  # bounded wait for the deletion pass (not a speed assertion)
        if "Item" not in ddb.get_item(TableName=name, Key={"pk": {"S": "old"}}, ConsistentRead=True):
            break
        time.sleep(0.2)
    assert "Item" not in ddb.get_item(TableName=name, Key={"pk": {"S": "old"}}, ConsistentRead=True)


def test_difference_one_item_twice_in_a_transaction(ddb):
    """AWS refuses a transaction naming one item twice (ValidationException) before looking at
    conditions; DynamoDB Local applies the first write and fails the second's condition, which
    would read as a lost race. The adapter refuses it itself, before sending (contract case
    test_transaction_touching_one_item_twice_is_refused_whole)."""
    from botocore.exceptions import ClientError

    name = _table(ddb)
    put = {"TableName": name, "Item": {"pk": {"S": "a"}}, "ConditionExpression": "attribute_not_exists(pk)"}
    with pytest.raises(ClientError) as exc:
        ddb.transact_write_items(TransactItems=[{"Put": put}, {"Put": put}])
    assert exc.value.response["Error"]["Code"] == "TransactionCanceledException"
    assert [r["Code"] for r in exc.value.response["CancellationReasons"]] == ["None", "ConditionalCheckFailed"]
    assert "Item" not in ddb.get_item(TableName=name, Key={"pk": {"S": "a"}}, ConsistentRead=True)


def test_difference_concurrent_transactions_never_conflict(ddb):
    """AWS cancels a transaction that meets another in flight on the same item
    (TransactionConflict; the adapter's `contended`); DynamoDB Local runs them one after
    another, so every outcome is a success or a failed condition. The contention path is
    exercised by the fakes' injected conflicts (tests/faults), never by this engine."""
    from botocore.exceptions import ClientError

    name = _table(ddb)
    ddb.put_item(TableName=name, Item={"pk": {"S": "n"}, "v": {"N": "0"}})
    codes: list[str] = []
    lock = threading.Lock()

    def bump(k: int) -> None:
        for i in range(15):
            try:
                ddb.transact_write_items(
                    TransactItems=[
                        {
                            "Update": {
                                "TableName": name,
                                "Key": {"pk": {"S": "n"}},
                                "UpdateExpression": "SET v = v + :one",
                                "ExpressionAttributeValues": {":one": {"N": "1"}},
                            }
                        },
                        {"Put": {"TableName": name, "Item": {"pk": {"S": f"w{k}-{i}"}}}},
                    ]
                )
                got = "ok"
            except ClientError as exc:
                reasons = exc.response.get("CancellationReasons") or [{}]
                got = ",".join(r.get("Code", "?") for r in reasons) or exc.response["Error"]["Code"]
            with lock:
                codes.append(got)

    threads = [threading.Thread(target=bump, args=(k,)) for k in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert set(codes) == {"ok"}, sorted(set(codes))
    item = ddb.get_item(TableName=name, Key={"pk": {"S": "n"}}, ConsistentRead=True)["Item"]
    assert int(item["v"]["N"]) == 90


# ---------------------------------------------------------------- the emulator in front of it


def test_emulator_forwards_dynamodb_and_keeps_sqs_on_moto(dynamodb_local, monkeypatch, tmp_path):
    """One AWS endpoint for stock clients: DynamoDB requests go to DynamoDB Local, SQS to moto."""
    import os

    import boto3

    from tests.fixtures.aws import stop_process

    for k, v in DUMMY.items():
        monkeypatch.setenv(k, v)
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    env.pop("AWS_ENDPOINT_URL", None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "dev.aws_emulator", "--port", "0", "--dynamodb-endpoint", dynamodb_local.endpoint],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env=env,
        start_new_session=True,
    )
    try:
        line = proc.stdout.readline().decode()
        endpoint = re.search(r"ready (http://\S+)", line).group(1)
        prefix = f"si64-f{uuid.uuid4().hex[:6]}"
        res = provision(prefix, endpoint, REGION, dynamodb_endpoint_url=dynamodb_local.endpoint)
        direct = boto3.client("dynamodb", **client_kwargs(dynamodb_local.endpoint, REGION))
        via = boto3.client("dynamodb", **client_kwargs(endpoint, REGION))
        table = res.tables["ClaimsTable"]
        assert table in direct.list_tables()["TableNames"]
        via.put_item(TableName=table, Item={"pk": {"S": "through-the-emulator"}})
        assert "Item" in direct.get_item(TableName=table, Key={"pk": {"S": "through-the-emulator"}})
        sqs = boto3.client("sqs", **client_kwargs(endpoint, REGION))
        assert res.queue_url in sqs.list_queues()["QueueUrls"]
    finally:
        stop_process(proc)
