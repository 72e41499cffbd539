"""DeviceStore operations of the admin device routes (audited flag, key hash, last seen),
run against the fake and the DynamoDB adapter alike."""

from __future__ import annotations

import pytest

from chalicelib.domain.errors import Conflict
from tests.contract.test_storage import NOW, new_contract, rent, spec


@pytest.fixture
def two(store):
    store.devices.upsert(spec("dev-1"), 2)
    store.devices.upsert(spec("dev-2", tier="ORIN"), 1)
    return store


def test_set_audited_changes_only_the_flag_and_returns_the_device(two):
    two.devices.set_key_hash("dev-1", "h1")
    before = two.devices.get("dev-1")
    assert before.audited is True
    after = two.devices.set_audited("dev-1", False)
    assert after == two.devices.get("dev-1")
    assert after.audited is False
    assert (after.key_hash, after.capacity, after.leases, after.name, after.uptime) == (
        before.key_hash,
        before.capacity,
        before.leases,
        before.name,
        before.uptime,
    )
    assert two.devices.set_audited("dev-1", True).audited is True
    assert two.devices.get("dev-2").audited is True


def test_set_audited_keeps_live_leases(two):
    rent(two, new_contract("dev-1"))
    assert two.devices.set_audited("dev-1", False).leases == 1
    assert two.devices.get("dev-1").leases == 1


def test_set_audited_of_an_unknown_device_is_a_device_conflict_and_writes_nothing(two):
    before = two.snapshot()
    with pytest.raises(Conflict) as exc:
        two.devices.set_audited("dev-nope", False)
    assert exc.value.failed == {"device"}
    assert two.snapshot() == before


def test_all_lists_last_seen_once_a_device_reported(two):
    two.devices.set_key_hash("dev-1", "h1")
    assert {d.device_id: d.last_seen_ms for d in two.devices.all()} == {"dev-1": None, "dev-2": None}
    assert two.metrics.stamp_device("dev-1", "h1", NOW + 10, 60_000) is True
    seen = {d.device_id: d.last_seen_ms for d in two.devices.all()}
    assert seen == {"dev-1": NOW + 10, "dev-2": None}


def test_a_new_key_hash_replaces_the_old_one_for_the_last_seen_stamp(two):
    two.devices.set_key_hash("dev-1", "old")
    two.devices.set_key_hash("dev-1", "new")
    assert two.metrics.stamp_device("dev-1", "old", NOW + 10, 60_000) is False
    assert two.devices.get("dev-1").last_seen_ms is None
    assert two.metrics.stamp_device("dev-1", "new", NOW + 10, 60_000) is True


PK1, PK2 = "4Nd1mYQQGZ7rM6J9xJ2xY3nNf4Z4VZg8bUb6Qm3fPDgE", "9WzDXwBbmkg8ZTbNMqUxvQRAyrZzDsGYdLVL9zYtAWWM"


def test_set_pubkey_sets_the_key_and_keeps_the_one_it_replaces(two):
    d = two.devices.set_pubkey("dev-1", PK1, None)
    assert (d.pubkey, d.previous_pubkeys) == (PK1, ())
    assert two.devices.get("dev-1") == d
    d = two.devices.set_pubkey("dev-1", PK2, PK1)
    assert (d.pubkey, d.previous_pubkeys) == (PK2, (PK1,))
    assert two.devices.get("dev-1") == d
    assert two.devices.get("dev-2").pubkey is None


def test_set_pubkey_refuses_a_leased_device_an_unknown_one_and_a_stale_before(two):
    two.devices.set_pubkey("dev-2", PK1, None)
    rent(two, new_contract("dev-1"))
    before = two.snapshot()
    for device_id, held in (("dev-1", None), ("dev-nope", None), ("dev-2", None), ("dev-2", PK2)):
        with pytest.raises(Conflict) as exc:
            two.devices.set_pubkey(device_id, PK2, held)
        assert exc.value.failed == {"device"}
    assert two.snapshot() == before
