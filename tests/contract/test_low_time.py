"""contract.low_time's storage: the sweep's candidates (`ContractStore.expiring`, the
active-by-expiry index) and the ONE transaction that marks a contract told and puts the event
(`Transactions.mark_low_time`), on the fake and on DynamoDB Local through the same cases."""

from __future__ import annotations

import pytest

from chalicelib.domain import webhooks as W
from tests.contract.test_outbox import pending, world  # noqa: F401  (the fixture)
from tests.contract.test_storage import HOUR_S, NOW, _in_shard, conflict, end, extend, extended, new_contract, rent

H = HOUR_S * 1000


def test_expiring_reads_active_contracts_of_the_shard_in_the_window_earliest_first(store):
    made = _in_shard(store, 1, [(3000, "active"), (1000, "active"), (2000, "ended"), (0, "active"), (5000, "active")])
    _in_shard(store, 2, [(0, "active")])
    got = [c.contract_id for c in store.contracts.expiring(1, NOW + H, NOW + H + 3000, 10)]
    # (after, until]: the one expiring exactly at `after` is left out, the one at `until` is in
    assert got == [made[k].contract_id for k in ("active@1000", "active@3000")]
    assert [c.contract_id for c in store.contracts.expiring(1, NOW, NOW + 2 * H, 2)] == [
        made["active@0"].contract_id,
        made["active@1000"].contract_id,
    ]
    assert store.contracts.expiring(1, NOW, NOW + H - 1, 10) == []
    assert store.contracts.expiring(3, NOW, NOW + 2 * H, 10) == []
    c = store.contracts.expiring(1, NOW + H + 4000, NOW + H + 5000, 10)
    assert c == [made["active@5000"]]


def test_mark_low_time_sets_the_marker_keeps_the_version_and_puts_the_event(world):  # noqa: F811
    store, outbox = world
    c = rent(store, new_contract())
    now = c.expires_at_ms - 60_000
    event = W.low_time_event(c, now)
    store.tx.mark_low_time(c, event)
    after = store.contracts.get(c.contract_id)
    assert after is not None and after.low_time_for_ms == c.expires_at_ms and after.version == c.version
    assert not W.low_time_due(after, now)
    assert event in pending(outbox) and outbox.get(event.event_id) == event
    assert event.data["remaining_ms"] == 60_000 and event.data["contract_id"] == c.contract_id


def test_two_sweeps_marking_one_expiry_write_one_event(world):  # noqa: F811
    store, outbox = world
    c = rent(store, new_contract())
    now = c.expires_at_ms - 60_000
    store.tx.mark_low_time(c, W.low_time_event(c, now))
    before = store.snapshot()
    # the second sweep read the contract before the first wrote: same version, no marker
    assert conflict(store.tx.mark_low_time, c, W.low_time_event(c, now + 1000)) == {"contract", "outbox"}
    assert store.snapshot() == before
    assert [e.event_type for e in pending(outbox)].count("contract.low_time") == 1


def test_mark_low_time_loses_to_a_settle_or_an_extension_and_writes_nothing(world):  # noqa: F811
    store, outbox = world
    store.devices.upsert({"device_id": "dev-1", "name": "d", "tier": "M2", "uri": "u", "address": "a",
                          "region": "r", "ram": "16GB"}, 2)  # fmt: skip
    c = rent(store, new_contract())
    settled = end(store, c, NOW + 60_000)
    before = store.snapshot()
    assert conflict(store.tx.mark_low_time, c, W.low_time_event(c, NOW + 60_000)) == {"contract"}
    assert store.snapshot() == before
    assert settled.status != "ACTIVE"

    c2 = rent(store, new_contract())
    longer = extended(c2, now_ms=NOW + 1000)
    extend(store, c2, longer, now_ms=NOW + 1000)
    before = store.snapshot()
    assert "contract" in conflict(store.tx.mark_low_time, c2, W.low_time_event(c2, NOW + 2000))
    assert store.snapshot() == before
    # the extension is a new expiry: it can be told once again
    store.tx.mark_low_time(longer, W.low_time_event(longer, NOW + 2000))
    got = store.contracts.get(longer.contract_id)
    assert got is not None and got.low_time_for_ms == longer.expires_at_ms


@pytest.mark.parametrize("marked", [False, True])
def test_the_marker_round_trips_through_a_later_write(world, marked):  # noqa: F811
    store, _ = world
    c = rent(store, new_contract())
    if marked:
        store.tx.mark_low_time(c, W.low_time_event(c, NOW + 1000))
        c = store.contracts.get(c.contract_id)
    ended = end(store, c, NOW + 60_000)
    assert store.contracts.get(c.contract_id) == ended
    assert ended.low_time_for_ms == (c.expires_at_ms if marked else None)
