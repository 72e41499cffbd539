"""Provisioning infra/resources.yaml on the locked emulator."""

import json
import uuid

import pytest

from dev.provision import ProvisionError, expected_resources, provision

TABLES = ("contracts", "devices", "ledger", "claims", "metrics")


def test_session_emulator_is_provisioned(aws_emulator):
    ddb = aws_emulator.client("dynamodb")
    names = set(ddb.list_tables()["TableNames"])
    assert {f"si64-test-{t}" for t in TABLES} <= names
    assert aws_emulator.queue_url.endswith("/si64-test-refunds")
    assert aws_emulator.dlq_url.endswith("/si64-test-refunds-dlq")
    assert aws_emulator.env["AWS_ENDPOINT_URL"] == aws_emulator.endpoint


def test_provision_is_idempotent_and_complete(aws_emulator):
    prefix = f"si64-p{uuid.uuid4().hex[:6]}"
    first = provision(prefix, aws_emulator.endpoint, "us-east-1")
    second = provision(prefix, aws_emulator.endpoint, "us-east-1")
    assert first.created is True and second.created is False
    assert (first.queue_url, first.dlq_url) == (second.queue_url, second.dlq_url)
    assert first.queue_url.endswith(f"/{prefix}-refunds")

    ddb = aws_emulator.client("dynamodb")
    tables = [n for n in ddb.list_tables()["TableNames"] if n.startswith(prefix + "-")]
    assert sorted(tables) == sorted(f"{prefix}-{t}" for t in TABLES)  # nothing created twice

    def gsis(table):
        desc = ddb.describe_table(TableName=f"{prefix}-{table}")["Table"]
        return {
            g["IndexName"]: [k["AttributeName"] for k in g["KeySchema"]] for g in desc.get("GlobalSecondaryIndexes", [])
        }

    assert gsis("contracts") == {
        "active-by-expiry": ["active_shard", "expires_at_ms"],
        "by-wallet": ["wallet", "created_at_ms"],
        "refunds-pending": ["refund_shard", "refund_due_ms"],
        "refunds-by-status": ["refund_status", "ended_at_ms"],
    }
    assert gsis("claims") == {
        "refunds-by-status": ["refund_status", "created_at_ms"],
        "outbox": ["outbox_shard", "created_at_ms"],
        "open-quotes": ["quote_shard", "expires_at_ms"],
    }
    assert gsis("devices") == {"by-tier": ["tier", "device_id"]}
    assert gsis("ledger") == {"by-account": ["account", "account_seq"]}

    for table in ("claims", "metrics"):
        ttl = ddb.describe_time_to_live(TableName=f"{prefix}-{table}")["TimeToLiveDescription"]
        assert ttl == {"TimeToLiveStatus": "ENABLED", "AttributeName": "ttl"}
    for table in ("contracts", "devices", "ledger"):
        desc = ddb.describe_table(TableName=f"{prefix}-{table}")["Table"]
        assert desc["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"

    sqs = aws_emulator.client("sqs")
    attrs = sqs.get_queue_attributes(QueueUrl=first.queue_url, AttributeNames=["All"])["Attributes"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=first.dlq_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    assert json.loads(attrs["RedrivePolicy"]) == {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": 5}
    assert attrs["VisibilityTimeout"] == "180"


def test_ttl_is_repaired_when_missing(aws_emulator):
    """A rerun re-applies TTL (moto ignores TimeToLiveSpecification in CloudFormation)."""
    prefix = f"si64-p{uuid.uuid4().hex[:6]}"
    provision(prefix, aws_emulator.endpoint, "us-east-1")
    ddb = aws_emulator.client("dynamodb")
    ddb.update_time_to_live(
        TableName=f"{prefix}-claims", TimeToLiveSpecification={"AttributeName": "ttl", "Enabled": False}
    )
    provision(prefix, aws_emulator.endpoint, "us-east-1")
    ttl = ddb.describe_time_to_live(TableName=f"{prefix}-claims")["TimeToLiveDescription"]
    assert ttl["TimeToLiveStatus"] == "ENABLED"


def test_missing_gsi_is_an_error(aws_emulator):
    prefix = f"si64-p{uuid.uuid4().hex[:6]}"
    provision(prefix, aws_emulator.endpoint, "us-east-1")
    ddb = aws_emulator.client("dynamodb")
    ddb.update_table(TableName=f"{prefix}-devices", GlobalSecondaryIndexUpdates=[{"Delete": {"IndexName": "by-tier"}}])
    with pytest.raises(ProvisionError, match="by-tier"):
        provision(prefix, aws_emulator.endpoint, "us-east-1")


def test_expected_resources_resolve_names():
    res = expected_resources("si64-x")
    assert {p["TableName"] for p in res["tables"].values()} == {f"si64-x-{t}" for t in TABLES}
    assert {p["QueueName"] for p in res["queues"].values()} == {
        "si64-x-refunds",
        "si64-x-refunds-dlq",
        "si64-x-webhooks",
        "si64-x-webhooks-dlq",
    }


def test_seed_is_idempotent(aws_emulator, tmp_path):
    import hashlib

    from dev.seed import seed

    prefix = f"si64-p{uuid.uuid4().hex[:6]}"
    provision(prefix, aws_emulator.endpoint, "us-east-1")
    first = seed(prefix, aws_emulator.endpoint, 4, tmp_path, "us-east-1")
    assert len(first["device_keys"]) == 12
    assert (tmp_path / "admin_key").read_text().strip() == first["admin_key"]
    ddb = aws_emulator.client("dynamodb")
    table = f"{prefix}-devices"
    item = ddb.get_item(TableName=table, Key={"device_id": {"S": "device-thor-002"}})["Item"]
    key = first["device_keys"]["device-thor-002"]
    assert key.startswith("dk_device-thor-002_")
    assert item["key_hash"]["S"] == hashlib.sha256(key.encode()).hexdigest()
    assert key not in json.dumps(item)
    assert item["name"]["S"] == "THOR-HPC-02" and item["region"]["S"] == "Midwest" and item["ram"]["S"] == "144GB"
    assert item["capacity"]["N"] == "4" and item["leases"]["N"] == "0"
    assert item["uptime"]["S"] == "100.0%" and item["audited"]["BOOL"] is True
    assert "last_seen_ms" not in item

    ddb.update_item(
        TableName=table,
        Key={"device_id": {"S": "device-thor-002"}},
        UpdateExpression="SET leases = :two",
        ExpressionAttributeValues={":two": {"N": "2"}},
    )
    second = seed(prefix, aws_emulator.endpoint, 6, tmp_path, "us-east-1")
    assert second == {"admin_key": first["admin_key"], "device_keys": first["device_keys"]}
    item = ddb.get_item(TableName=table, Key={"device_id": {"S": "device-thor-002"}})["Item"]
    assert item["leases"]["N"] == "2" and item["capacity"]["N"] == "6"
    count = ddb.scan(TableName=table, Select="COUNT")["Count"]
    assert count == 12
    tiers = {}
    for it in ddb.scan(TableName=table)["Items"]:
        tiers[it["tier"]["S"]] = tiers.get(it["tier"]["S"], 0) + 1
    assert tiers == {"M2": 3, "ORIN": 4, "M3_ULTRA": 2, "THOR": 3}
