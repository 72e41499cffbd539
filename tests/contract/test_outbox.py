"""The webhook outbox: events written INSIDE the money transactions, on the fake and on
DynamoDB Local (claims table, sparse `outbox` index), through the same cases."""

from __future__ import annotations

import pytest

from chalicelib.domain import contracts as dc
from chalicelib.domain.errors import Conflict
from chalicelib.domain.webhooks import OUTBOX_SHARDS, ended_event, event_id, opened_event
from tests.contract.conftest import DUMMY_AWS, _dynamo_store, _fake_store
from tests.contract.test_storage import NOW, conflict, end, new_contract, rent, spec


@pytest.fixture(params=["fake", pytest.param("dynamo", marks=pytest.mark.dynamodb_local)])
def world(request):
    """(store, outbox) on one database, with device dev-1 (capacity 1)."""
    if request.param == "fake":
        from tests.support.fakes import FakeDatabase

        store = _fake_store()
        db: FakeDatabase = store.tx.db
        outbox = db.ports()["outbox"]
    else:
        for k, v in DUMMY_AWS.items():
            request.getfixturevalue("monkeypatch").setenv(k, v)
        store = _dynamo_store(request.getfixturevalue("ddb_tables"))
        from chalicelib.adapters.outbox import OutboxRepo

        outbox = OutboxRepo()
    store.devices.upsert(spec("dev-1"), 1)
    return store, outbox


def pending(outbox) -> list:
    return [e for shard in range(OUTBOX_SHARDS) for e in outbox.pending(shard, 100)]


def test_open_rental_writes_contract_created_in_the_same_transaction(world):
    store, outbox = world
    c = rent(store, new_contract())
    assert pending(outbox) == [opened_event(c)]
    e = outbox.get(event_id("contract.created", c.contract_id, c.version))
    assert e is not None and e.event_type == "contract.created" and e.wallet == c.wallet
    assert e.data["contract_id"] == c.contract_id and e.data["prepaid_lamports"] == c.received_lamports


def test_a_failed_money_transaction_writes_no_event(world):
    store, outbox = world
    rent(store, new_contract())
    before = store.snapshot()
    assert "device" in conflict(rent, store, new_contract())  # the device is full
    assert store.snapshot() == before
    assert len(pending(outbox)) == 1


def test_end_rental_writes_settled_or_expired_and_dispatch_takes_it_out_of_the_index(world):
    store, outbox = world
    c = rent(store, new_contract())
    settled = end(store, c, NOW + 60_000)
    assert settled.status == dc.SETTLED
    events = {e.event_type: e for e in pending(outbox)}
    assert set(events) == {"contract.created", "contract.settled"}
    assert events["contract.settled"] == ended_event(settled)
    assert events["contract.settled"].data["used_lamports"] == settled.used_lamports

    assert outbox.mark_dispatched(events["contract.created"].event_id, NOW) is True
    assert outbox.mark_dispatched(events["contract.created"].event_id, NOW) is False  # once
    assert [e.event_type for e in pending(outbox)] == ["contract.settled"]
    assert outbox.get(events["contract.created"].event_id) == events["contract.created"]  # kept, not pending

    c2 = rent(store, new_contract())
    expired = end(store, c2, c2.expires_at_ms + 1)
    assert expired.status == dc.EXPIRED
    assert ended_event(expired) in pending(outbox)


def test_a_refund_entering_failed_or_confirmed_writes_its_event_with_that_transaction(world):
    from dataclasses import replace

    from chalicelib.domain import refunds as R
    from chalicelib.domain.webhooks import refund_event

    store, outbox = world
    c = rent(store, new_contract())
    ended = end(store, c, NOW + 60_000)
    queued = R.refund_of(ended)
    assert queued is not None and queued.status == R.QUEUED
    failed = replace(queued, status=R.FAILED, reason="recipient refused", version=queued.version + 1)
    store.refunds.advance(queued, failed, [], NOW + 61_000)
    event = refund_event(queued, failed, NOW + 61_000)
    assert event is not None and event.event_type == "refund.failed" and event in pending(outbox)
    assert event.data["lamports"] == queued.lamports and event.wallet == c.wallet

    before = store.snapshot()
    with pytest.raises(Conflict):  # a stale advance: nothing written, no event
        store.refunds.advance(queued, failed, [], NOW + 62_000)
    assert store.snapshot() == before
    requeued = replace(failed, status=R.QUEUED, reason=None, version=failed.version + 1)
    store.refunds.advance(failed, requeued, [], NOW + 63_000)  # no event for QUEUED
    assert len(pending(outbox)) == 3


def test_add_puts_an_event_no_transaction_carries_once(world):
    from chalicelib.domain.webhooks import refused_event

    store, outbox = world
    e = refused_event("5" * 88, "payer-wallet", 777_777, 42, 1_764_000_000, NOW)
    assert outbox.add(e) is True
    assert pending(outbox) == [e] and outbox.get(e.event_id) == e
    before = store.snapshot()
    again = refused_event("5" * 88, "payer-wallet", 777_777, 42, 1_764_000_000, NOW + 3_600_000)
    assert again.event_id == e.event_id  # the id is the share's: a later run finds it there
    assert outbox.add(again) is False
    assert store.snapshot() == before
    other = refused_event("5" * 88, "co-signer", 1, 42, 1_764_000_000, NOW)  # another payer's share
    assert other.event_id != e.event_id and outbox.add(other) is True
