"""GET /api/fleet's use case on the fakes: per tier devices, slots and free slots from one read
of the devices table, kept at most 5 s, and no contract read."""

from __future__ import annotations

from chalicelib.api import views
from chalicelib.domain import money


def by_tier(w) -> dict:
    return {t["tier"]: t for t in views.fleet_response(w.c.fleet.view(), w.clock())["tiers"]}


def test_fleet_counts_devices_slots_and_free_slots_per_tier_in_pricing_order(w):
    w.rent("M2", 600, 200_000)
    w.rent("M2", 600, 200_000)
    w.rent("THOR", 600, 6_000_000)
    out = views.fleet_response(w.c.fleet.view(), w.clock())
    assert [t["tier"] for t in out["tiers"]] == list(money.TIERS)
    tiers = {t["tier"]: t for t in out["tiers"]}
    assert (tiers["M2"]["devices"], tiers["M2"]["slots"], tiers["M2"]["slots_free"]) == (2, 4, 2)
    assert (tiers["THOR"]["devices"], tiers["THOR"]["slots"], tiers["THOR"]["slots_free"]) == (1, 2, 1)
    assert (tiers["ORIN"]["slots"], tiers["ORIN"]["slots_free"]) == (2, 2)
    assert tiers["ORIN"]["lamports_per_hour"] == money.TIERS["ORIN"].lamports_per_hour
    assert str(tiers["ORIN"]["sol_per_hour"]) == "0.004"
    assert out["server_time"] == w.clock() // 1000


def test_fleet_reads_only_the_devices_table_once_per_five_seconds(w):
    w.rent("M2", 600, 200_000)
    w.db.calls.clear()
    first = by_tier(w)
    assert w.db.calls == ["devices.all"]  # no contract, claim or ledger read
    w.rent("M2", 600, 200_000)  # a lease the cached answer does not show yet
    w.db.calls.clear()
    w.clock.advance(4.9)
    assert by_tier(w) == first and w.db.calls == []
    w.clock.advance(0.1)
    fresh = by_tier(w)
    assert w.db.calls == ["devices.all"]
    assert fresh["M2"]["slots_free"] == first["M2"]["slots_free"] - 1


def test_fleet_answer_carries_no_money_moved(w):
    w.rent("M3_ULTRA", 3600, 25_000_000)
    out = views.fleet_response(w.c.fleet.view(), w.clock())
    assert set(out) == {"tiers", "server_time"}
    for t in out["tiers"]:
        assert set(t) == {"tier", "lamports_per_hour", "sol_per_hour", "memory", "devices", "slots", "slots_free"}
