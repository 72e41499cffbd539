"""The webhook delivery log (ports.DeliveryLog) on the fake and on DynamoDB Local (claims table,
`dlv#{webhook_id}`), through the same cases."""

from __future__ import annotations

import pytest

from chalicelib.domain import webhooks as W
from tests.contract.conftest import DUMMY_AWS, _dynamo_store, _fake_store


@pytest.fixture(params=["fake", pytest.param("dynamo", marks=pytest.mark.dynamodb_local)])
def log(request):
    """(store, delivery log) on one database."""
    if request.param == "fake":
        store = _fake_store()
        return store, store.tx.db.ports()["delivery_log"]
    for k, v in DUMMY_AWS.items():
        request.getfixturevalue("monkeypatch").setenv(k, v)
    store = _dynamo_store(request.getfixturevalue("ddb_tables"))
    from chalicelib.adapters.delivery_log import DeliveryLogRepo

    return store, DeliveryLogRepo()


def entry(n: int, status: str = W.PENDING, attempts: int = 0, **kw) -> W.Delivery:
    return W.Delivery(f"evt_{n}", "contract.created", status, attempts, 1_000 + n, 2_000 + n, **kw)


def test_an_empty_log_then_each_record_newest_first(log):
    _, dl = log
    assert dl.of("WH-a") == []
    dl.record("WH-a", entry(1))
    dl.record("WH-a", entry(2))
    dl.record("WH-b", entry(3))
    assert [d.event_id for d in dl.of("WH-a")] == ["evt_2", "evt_1"]
    assert dl.of("WH-b") == [entry(3)]


def test_an_outcome_replaces_its_event_and_pending_never_hides_it(log):
    _, dl = log
    dl.record("WH-a", entry(1))
    failing = entry(1, W.FAILING, 1, next_try_ms=9_000, last_status=500, last_error="HTTP 500")
    dl.record("WH-a", failing)
    assert dl.of("WH-a") == [failing]  # exactly what was recorded, every field
    dl.record("WH-a", entry(1))  # the dispatcher sent it again (at least once)
    assert dl.of("WH-a") == [failing]
    done = entry(1, W.DELIVERED, 2, last_status=200)
    dl.record("WH-a", done)
    assert dl.of("WH-a") == [done]


def test_the_log_keeps_the_newest_only(log):
    _, dl = log
    for n in range(W.DELIVERY_LOG_KEEP + 5):
        dl.record("WH-a", entry(n))
    got = dl.of("WH-a")
    assert len(got) == W.DELIVERY_LOG_KEEP
    assert got[0].event_id == f"evt_{W.DELIVERY_LOG_KEEP + 4}" and got[-1].event_id == "evt_5"
