"""Operator fleet use cases on the fakes: list, rotate a device key, set the audited flag."""

from __future__ import annotations

import pytest

from chalicelib.domain.errors import NotFound, Unauthorized, Unavailable
from chalicelib.domain.records import hash_device_key


def test_fleet_lists_every_device_by_tier_order_then_id_with_live_leases_and_last_seen(w):
    k = w.rent("M2", 600, 200_000)
    key = w.operator.issue_device_key(k.device_id)
    w.clock.advance(5)
    w.telemetry.record(k.contract_id, key, lambda now, *_: [[now, 1, 2, 3, 4]])
    fleet = w.operator.fleet()
    assert [(d.tier, d.device_id) for d in fleet] == [
        ("M2", "dev-m2-a"),
        ("M2", "dev-m2-b"),
        ("ORIN", "dev-orin-a"),
        ("M3_ULTRA", "dev-m3-a"),
        ("THOR", "dev-thor-a"),
    ]
    by_id = {d.device_id: d for d in fleet}
    assert by_id[k.device_id].leases == 1 and by_id[k.device_id].last_seen_ms == w.clock()
    assert all(d.last_seen_ms is None for d in fleet if d.device_id != k.device_id)
    w.db.calls.clear()
    w.operator.fleet()
    assert w.db.calls == ["devices.all"]


def test_rotating_a_key_returns_it_once_stores_only_its_hash_and_the_old_key_stops_working(w):
    k = w.rent("ORIN", 600, 800_000)
    old = w.operator.rotate_device_key(k.device_id).device_key
    w.telemetry.record(k.contract_id, old, lambda now, *_: [[now, 1, 2, 3, 4]])
    issued = w.operator.rotate_device_key(k.device_id)
    assert issued.device_id == k.device_id and issued.device_key.startswith(f"dk_{k.device_id}_")
    assert issued.device_key != old
    assert w.p.devices.get(k.device_id).key_hash == hash_device_key(issued.device_key)
    assert issued.device_key not in repr(w.db.tables) and old not in repr(w.db.tables)
    w.clock.advance(1)
    with pytest.raises(Unauthorized):
        w.telemetry.record(k.contract_id, old, lambda now, *_: [[now, 1, 2, 3, 4]])
    w.telemetry.record(k.contract_id, issued.device_key, lambda now, *_: [[now, 1, 2, 3, 4]])


def test_unknown_devices_are_not_found_and_nothing_is_written(w):
    before = w.db.snapshot()
    with pytest.raises(NotFound) as exc:
        w.operator.rotate_device_key("dev-nope")
    assert exc.value.reason == "device_id"
    with pytest.raises(NotFound):
        w.operator.set_audited("dev-nope", False)
    assert w.db.snapshot() == before


def test_set_audited_flips_only_the_flag(w):
    k = w.rent("M2", 600, 200_000)
    d = w.operator.set_audited(k.device_id, False)
    assert d.audited is False and d.leases == 1
    assert w.p.devices.get(k.device_id).audited is False
    assert [x.audited for x in w.catalog.devices_of("M2")].count(False) == 1
    assert w.operator.set_audited(k.device_id, True).audited is True


def test_fleet_writes_in_an_outage_are_unavailable(w):
    w.db.down = True
    for fn, args in (
        (w.operator.fleet, ()),
        (w.operator.rotate_device_key, ("dev-m2-a",)),
        (w.operator.set_audited, ("dev-m2-a", False)),
    ):
        with pytest.raises(Unavailable):
            fn(*args)
