"""Contract tests: every case runs against the in-memory fakes AND the real adapters.

`store` is parametrized over "fake" (tests/support/fakes.py) and "dynamo" (the
PynamoDB adapters on in-process moto, tables made from infra/resources.yaml by
local.provision). A case may only use the ports and `store.snapshot()` (every
item of every table) — nothing backend-specific — so a fake that drifts from
its adapter fails here.

Run only the fake half with `-m "not moto"`; only the adapters with `-m moto`.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from tests.support.fakes import FakeDatabase
from tests.support.moto import provisioned_aws
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


@pytest.fixture(scope="module")
def moto_tables():
    """In-process moto with the tables of infra/resources.yaml, for one module."""
    with provisioned_aws(PREFIX, REGION) as provisioned:
        import boto3

        yield provisioned, boto3.client("dynamodb", region_name=REGION), boto3.client("sqs", region_name=REGION)


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


def _dynamo_store(moto_tables) -> Store:
    from chalicelib.adapters import models
    from chalicelib.adapters.claims import ClaimsRepo
    from chalicelib.adapters.contracts import ContractsRepo
    from chalicelib.adapters.devices import DevicesRepo
    from chalicelib.adapters.ledger import LedgerRepo
    from chalicelib.adapters.metrics import MetricsRepo
    from chalicelib.adapters.refunds import BooksRepo, RefundsRepo
    from chalicelib.adapters.transactions import Transactions

    provisioned, ddb, _ = moto_tables
    tables = sorted(provisioned.tables.values())
    for table in tables:  # every case starts from empty tables
        keys = _key_names(ddb, table)
        for item in _scan(ddb, table):
            ddb.delete_item(TableName=table, Key={k: item[k] for k in keys})
    models.bind(PREFIX, REGION, None)

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


@pytest.fixture(params=["fake", pytest.param("dynamo", marks=pytest.mark.moto)])
def store(request) -> Store:
    if request.param == "fake":
        return _fake_store()
    return _dynamo_store(request.getfixturevalue("moto_tables"))
