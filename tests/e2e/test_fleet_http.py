"""GET /api/fleet over HTTP on the local stack: public, money-free, cached at most 5 s."""

from __future__ import annotations

import time

import pytest

from chalicelib.domain import money

from .client import price_lamports, rent_terms

pytestmark = pytest.mark.e2e


def test_fleet_is_public_and_shows_a_new_lease_within_five_seconds(api, payer, local_stack):
    first = api.get("/api/fleet")
    assert first.status == 200, first
    assert first.headers.get("Cache-Control") == "public, max-age=5"
    assert [t["tier"] for t in first.body["tiers"]] == list(money.TIERS)
    for t in first.body["tiers"]:
        assert set(t) == {"tier", "lamports_per_hour", "sol_per_hour", "memory", "devices", "slots", "slots_free"}
        assert 0 <= t["slots_free"] <= t["slots"] and t["devices"] > 0
    assert set(first.body) == {"tiers", "server_time"}
    m2 = {t["tier"]: t for t in first.body["tiers"]}["M2"]
    assert m2["slots"] == sum(d["capacity"] for d in api.get("/api/devices/M2").body)

    wallet = payer.new_wallet()
    sig = payer.pay(wallet, local_stack["treasury"], price_lamports("M2", 0.1), memo=rent_terms("M2", 0.1))
    r = api.post(
        "/api/rent", {"wallet": str(wallet.pubkey()), "tier": "M2", "duration_hours": 0.1, "tx_signature": sig}
    )
    assert r.status == 201, r
    deadline = time.monotonic() + 10  # the cache holds at most 5 s
    while True:
        now = {t["tier"]: t for t in api.get("/api/fleet").body["tiers"]}["M2"]
        if now["slots_free"] == m2["slots_free"] - 1 or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert now["slots_free"] == m2["slots_free"] - 1
