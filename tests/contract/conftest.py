"""Contract tests: every case runs against the in-memory fakes AND the real adapters.

`store` is parametrized over "fake" (tests/support/fakes.py) and "dynamo" (the
PynamoDB adapters on DynamoDB Local -- AWS's own engine, one server per session
from tests/fixtures/dynamodb.py -- tables made from infra/resources.yaml through the
DynamoDB API by dev.provision). A case may only use the ports and `store.snapshot()`
(every item of every table) -- nothing backend-specific -- so a fake that drifts from
its adapter fails here. The SQS ports run on in-process moto (`moto_sqs`).

Run only the fake half with `-m "not dynamodb_local and not moto"`; only DynamoDB with
`-m dynamodb_local`.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from tests.support.fakes import FakeDatabase
from tests.support.moto import in_process_aws
from tests.support.network import SocketBlocker

SHARDS = 4
PREFIX = "si64-contract"
REGION = "us-east-1"


@dataclass
class Store:
    name: str
    contracts: object
    devices: object
    claims: object
    ledger: object
    metrics: object
    tx: object
    snapshot: object  # () -> comparable picture of every table
    refunds: object = None  # ports.RefundStore
    book: object = None  # ports.BookStore
    quotes: object = None  # ports.QuoteStore


DUMMY_AWS = {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test", "AWS_DEFAULT_REGION": REGION}


@pytest.fixture(scope="module")
def moto_sqs():
    """In-process moto for one module: an SQS client (the queue adapters are tested here)."""
    with in_process_aws(REGION):
        import boto3

        yield boto3.client("sqs", region_name=REGION)


@pytest.fixture(scope="session")
def ddb_tables(dynamodb_local):
    """The tables of infra/resources.yaml on the session's DynamoDB Local: (table names, client)."""
    import boto3

    from dev.provision import client_kwargs, create_tables, expected_resources

    with pytest.MonkeyPatch.context() as mp:
        for k, v in DUMMY_AWS.items():
            mp.setenv(k, v)
        ddb = boto3.client("dynamodb", **client_kwargs(dynamodb_local.endpoint, REGION))
        tables = expected_resources(PREFIX)["tables"]
        create_tables(ddb, tables)
        yield sorted(t["TableName"] for t in tables.values()), ddb, dynamodb_local.endpoint


def _key_names(ddb, table: str) -> list[str]:
    return [k["AttributeName"] for k in ddb.describe_table(TableName=table)["Table"]["KeySchema"]]


def _scan(ddb, table: str) -> list[dict]:
    items, kwargs = [], {"TableName": table, "ConsistentRead": True}
    while True:
        page = ddb.scan(**kwargs)
        items += page["Items"]
        if "LastEvaluatedKey" not in page:
            return items
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def _dynamo_store(ddb_tables) -> Store:
    from chalicelib.adapters import models
    from chalicelib.adapters.claims import ClaimsRepo
    from chalicelib.adapters.contracts import ContractsRepo
    from chalicelib.adapters.devices import DevicesRepo
    from chalicelib.adapters.ledger import LedgerRepo
    from chalicelib.adapters.metrics import MetricsRepo
    from chalicelib.adapters.quotes import QuotesRepo
    from chalicelib.adapters.refunds import BooksRepo, RefundsRepo
    from chalicelib.adapters.transactions import Transactions

    tables, ddb, endpoint = ddb_tables
    for table in tables:  # every case starts from empty tables
        keys = _key_names(ddb, table)
        for item in _scan(ddb, table):
            ddb.delete_item(TableName=table, Key={k: item[k] for k in keys})
    models.bind(PREFIX, REGION, endpoint)

    def snapshot():
        return {t: sorted((_scan(ddb, t)), key=repr) for t in tables}

    return Store(
        "dynamo",
        ContractsRepo(SHARDS),
        DevicesRepo(),
        ClaimsRepo(),
        LedgerRepo(),
        MetricsRepo(),
        Transactions(SHARDS),
        snapshot,
        RefundsRepo(SHARDS),
        BooksRepo(SHARDS),
        QuotesRepo(SHARDS),
    )


def _fake_store() -> Store:
    db = FakeDatabase(shards=SHARDS)
    p = db.ports()
    return Store(
        "fake",
        p["contracts"],
        p["devices"],
        p["claims"],
        p["ledger"],
        p["metrics"],
        p["tx"],
        db.snapshot,
        p["refunds"],
        p["book"],
        p["quotes"],
    )


@pytest.fixture(autouse=True)
def fakes_need_no_network(request):
    """The fake half of every suite runs with sockets blocked, as service tests will."""
    params = getattr(getattr(request.node, "callspec", None), "params", {})
    if "fake" not in params.values():
        yield None
        return
    blocker = SocketBlocker()
    with blocker.active():
        yield blocker
    if blocker.attempts:
        pytest.fail(f"a fake tried to reach the network: {blocker.attempts}", pytrace=False)


@pytest.fixture(params=["fake", pytest.param("dynamo", marks=pytest.mark.dynamodb_local)])
def store(request) -> Store:
    if request.param == "fake":
        return _fake_store()
    for k, v in DUMMY_AWS.items():  # the adapters' botocore session reads these
        request.getfixturevalue("monkeypatch").setenv(k, v)
    return _dynamo_store(request.getfixturevalue("ddb_tables"))
