"""A contract past its expiry shows it has ended from that moment (the app in process on the
fakes): GET /api/contracts/{id} and the operator's ledger page show it EXPIRED with exactly the
figures the billing sweep then books, `booked: false` until it has, /api/stats counts it ended
(and says how many await the sweep) — and the GETs write nothing."""

from __future__ import annotations

import json

from chalicelib.domain.signing import rent_memo
from tests.edge.conftest import ADMIN_KEY
from tests.support.fakes import new_wallet
from tests.support.hostile_numbers import conforms

ADMIN = {"X-Admin-Key": ADMIN_KEY}


def stored(edge) -> str:
    return json.dumps({t: sorted(map(repr, edge.p.db.tables[t].items())) for t in ("contracts", "ledger")})


def test_past_expiry_is_expired_at_once_and_the_sweep_books_the_same_figures(edge):
    wallet = new_wallet()
    sig = edge.p.rpc.pay(wallet, 1_100_000, memo=rent_memo("M2", 3600))  # 100,000 above the price
    body = {"wallet": wallet, "tier": "M2", "duration_hours": 1, "tx_signature": sig}
    status, rent, _ = edge.post("/api/rent", body)
    assert status == 201, rent
    cid = rent["contract_id"]
    _, live, _ = edge.get(f"/api/contracts/{cid}")
    assert (live["status"], live["booked"]) == ("ACTIVE", True) and live["remaining_seconds"] > 0

    edge.p.clock.now_ms = rent["expires_at"] * 1000 + 1  # one millisecond past the expiry; no sweep yet
    before = stored(edge)
    _, shown, _ = edge.get(f"/api/contracts/{cid}")
    _, page, _ = edge.get("/api/billing/ledger", headers=ADMIN)
    _, stats, _ = edge.get("/api/stats", headers=ADMIN)
    assert stored(edge) == before, "a GET wrote"
    assert stats["contracts"] == {"ACTIVE": 0, "SETTLED": 0, "EXPIRED": 1}
    assert stats["contracts_booked"] == {"ACTIVE": 1, "SETTLED": 0, "EXPIRED": 0}
    assert stats["expired_awaiting_sweep"] == {"count": 1, "complete": True}
    for name, body in (("Contract", shown), ("LedgerPage", page), ("Stats", stats)):
        conforms(name, body)
    assert (shown["status"], shown["booked"], shown["remaining_seconds"]) == ("EXPIRED", False, 0)
    assert shown["used_lamports"] == rent["cost_lamports"] and shown["refund_available_lamports"] == 0
    assert shown["settled_at_ms"] == shown["expires_at_ms"]
    assert shown["refund"] == {"status": "QUEUED", "lamports": 100_000, "tx_signature": None}
    assert [c["contract_id"] for c in page["active_contracts"]] == []
    [row] = page["completed_settlements"]
    assert (row["contract_id"], row["status"], row["booked"]) == (cid, "EXPIRED", False)

    edge.p.clock.now_ms += 45_000  # the sweep runs up to a minute later
    report = edge.c.sweep.run()
    assert report.expired == 1
    _, booked, _ = edge.get(f"/api/contracts/{cid}")
    assert booked["booked"] is True
    same = ("status", "used_lamports", "settled_at_ms", "refund_available_lamports", "remaining_seconds")
    assert {k: booked[k] for k in same} == {k: shown[k] for k in same}
    assert booked["refund"]["lamports"] == shown["refund"]["lamports"]
    assert booked["refund"]["status"] == shown["refund"]["status"]
    _, stats, _ = edge.get("/api/stats", headers=ADMIN)
    assert stats["contracts"] == stats["contracts_booked"] == {"ACTIVE": 0, "SETTLED": 0, "EXPIRED": 1}
    assert stats["expired_awaiting_sweep"]["count"] == 0
    _, page, _ = edge.get("/api/billing/ledger", headers=ADMIN)
    [row2] = page["completed_settlements"]
    assert row2 == {**row, "booked": True}
