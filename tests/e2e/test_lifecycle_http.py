"""The rental lifecycle over real HTTP against the local stack (`local_stack`).

Payments are real transactions on the local chain sent with the stock solana-py
AsyncClient; the renter signs settle with its wallet keypair; devices report
with the keys the stack issued. Nothing is faked. Every lamport figure is
checked against the formulas of docs/api.md: live figures against bounds computed
from the wall clock around the request (an exact function of elapsed time),
settled figures exactly, from the contract's own timestamps in the ledger.
"""

from __future__ import annotations

import re
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import quote

import pytest

from chalicelib.domain.signing import renter_message

from .client import (
    LAMPORTS_PER_SOL,
    LPH,
    Api,
    extend_terms,
    price_lamports,
    rent_terms,
    settle_headers,
    signed_json,
    usage_lamports,
)

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]
CID_RE = re.compile(r"^CTR-[A-Za-z0-9_-]{16,}$")


def now_ms() -> int:
    return int(time.time() * 1000)


def assert_live(
    view: dict,
    tier: str,
    created_ms: int,
    before_ms: int,
    after_ms: int,
    received: int,
    used_key: str = "used_lamports",
    refund_key: str = "refund_available_lamports",
) -> None:
    """used = floor(lph × min(t, duration) / 3.6e6) for some t the server saw while answering."""
    dur_ms = view.get("duration_seconds", 0) * 1000 or 10**15
    lo = usage_lamports(tier, before_ms - created_ms, dur_ms)
    hi = usage_lamports(tier, after_ms - created_ms, dur_ms)
    assert lo <= view[used_key] <= hi, (view, lo, hi)
    assert view[refund_key] == received - view[used_key]


def rent_entry_ms(api: Api, cid: str) -> int:
    """The contract's creation time in ms: its rent posting is stamped with it."""
    rent = [e for e in api.entries(cid) if e["kind"] == "rent"]
    assert len(rent) == 2, rent
    return rent[0]["created_at_ms"]


def test_pricing_names_the_stack_treasury(api, local_stack):
    r = api.get("/api/pricing")
    assert r.status == 200, r
    assert r.body["treasury"] == local_stack["treasury"] and r.body["network"] == "localnet"
    assert {t["tier"]: t["lamports_per_hour"] for t in r.body["tiers"]} == LPH
    assert api.get("/api/health").body == {"status": "ok"}


def test_rent_status_metrics_extend_settle(api, payer, local_stack):
    treasury = local_stack["treasury"]
    tier, hours = "M2", 0.1
    price = price_lamports(tier, hours)
    assert price == 100_000
    overpay = 12_345  # received, not the price, is what the contract holds; the rest comes back
    paid1 = price + overpay

    before = api.snapshot()
    wallet = payer.new_wallet()
    treasury_before = payer.balance(treasury)
    sig1 = payer.pay(wallet, treasury, paid1, memo=rent_terms(tier, hours))  # binds the terms: no headers needed
    assert payer.balance(treasury) == treasury_before + paid1

    # ---- rent
    t0 = now_ms()
    r = api.post(
        "/api/rent",
        {
            "wallet": str(wallet.pubkey()),
            "tier": tier,
            "duration_hours": hours,
            "tx_signature": sig1,
            "amount": 0.000112345,
        },
    )
    t1 = now_ms()
    assert r.status == 201, r
    rent = r.body
    cid, device = rent["contract_id"], rent["device_id"]
    assert CID_RE.match(cid), cid
    assert rent["status"] == "ACTIVE" and rent["tier"] == tier
    assert rent["duration_seconds"] == 360 and rent["duration_hours"] == hours
    assert rent["cost_lamports"] == price and rent["prepaid_lamports"] == paid1
    assert rent["cost_sol"] == pytest.approx(price / LAMPORTS_PER_SOL)
    assert rent["prepaid_sol"] == pytest.approx(paid1 / LAMPORTS_PER_SOL)
    assert rent["expires_at"] - rent["created_at"] == 360
    created_ms = rent_entry_ms(api, cid)
    assert t0 - 1000 <= created_ms <= t1 + 1000 and created_ms // 1000 == rent["created_at"]
    assert device in local_stack["device_keys"]

    after_rent = api.snapshot()
    assert after_rent["leases"][device] == before["leases"][device] + 1
    assert {k: v for k, v in after_rent["leases"].items() if k != device} == {
        k: v for k, v in before["leases"].items() if k != device
    }
    assert after_rent["contracts"]["ACTIVE"] == before["contracts"]["ACTIVE"] + 1
    assert after_rent["devices"]["slots_leased"] == before["devices"]["slots_leased"] + 1
    assert after_rent["active_prepaid"] == before["active_prepaid"] + paid1

    # ---- status: live figures
    b = now_ms()
    r = api.get(f"/api/contracts/{cid}")
    a = now_ms()
    assert r.status == 200, r
    view = r.body
    assert view["status"] == "ACTIVE" and view["wallet"] == str(wallet.pubkey())
    assert view["device_id"] == device and view["tier"] == tier
    assert view["prepaid_lamports"] == paid1 and view["settled_at"] is None
    assert view["refund"] == {"status": "NONE", "lamports": 0, "tx_signature": None}
    assert view["created_at"] == rent["created_at"] and view["expires_at"] == rent["expires_at"]
    assert_live(view, tier, created_ms, b, a, paid1)
    assert (created_ms + 360_000 - a) // 1000 <= view["remaining_seconds"] <= -(-(created_ms + 360_000 - b) // 1000)

    # ---- metrics: one sample, then a batch of 120 (the maximum)
    key = {"X-Device-Key": local_stack["device_keys"][device]}
    single = {"cpu_percent": 42.5, "memory_mb": 8192, "disk_io_mbps": 1.25, "network_io_mbps": 0.5}
    b = now_ms()
    r = api.post(f"/api/metrics/{cid}", single, headers=key)
    a = now_ms()
    assert r.status == 200, r
    assert r.body["metrics_recorded"] is True and r.body["samples_recorded"] == 1
    assert r.body["contract_id"] == cid
    assert_live(
        dict(r.body, duration_seconds=360),
        tier,
        created_ms,
        b,
        a,
        paid1,
        "cost_so_far_lamports",
        "refund_available_lamports",
    )
    single_ts_floor = b  # the server stamped the single sample at or after this

    base = single_ts_floor - 12_000  # within the contract's lifetime (30 s clock-skew allowance), before the single
    batch = [
        {
            "cpu_percent": i * 0.5,
            "memory_mb": 1000 + i,
            "disk_io_mbps": i,
            "network_io_mbps": 0.25,
            "timestamp_ms": base + i * 100,
        }
        for i in range(120)
    ]
    b = now_ms()
    r = api.post(f"/api/metrics/{cid}", {"samples": batch[::-1]}, headers=key)  # any order
    a = now_ms()
    assert r.status == 200, r
    assert r.body["samples_recorded"] == 120
    assert_live(
        dict(r.body, duration_seconds=360),
        tier,
        created_ms,
        b,
        a,
        paid1,
        "cost_so_far_lamports",
        "refund_available_lamports",
    )

    r = api.get(f"/api/contracts/{cid}/metrics")
    assert r.status == 200, r
    samples = r.body["samples"]
    assert r.body["contract_id"] == cid and len(samples) == 100  # the latest 100 of 121, oldest first
    assert [s["timestamp_ms"] for s in samples[:-1]] == [s["timestamp_ms"] for s in batch[21:]]
    for got, sent in zip(samples[:-1], batch[21:], strict=True):
        assert got == pytest.approx(sent), (got, sent)
    last = samples[-1]
    assert last["timestamp_ms"] >= single_ts_floor
    assert {k: last[k] for k in single} == single

    # ---- extend by 0.1 h with a second payment from the same wallet
    sig2 = payer.pay(wallet, treasury, price, memo=extend_terms(cid, hours))
    ext_body = {"additional_hours": hours, "tx_signature": sig2}
    r = api.post(f"/api/contracts/{cid}/extend", ext_body)
    assert r.status == 200, r
    ext = r.body
    assert ext["contract_id"] == cid and ext["extended_hours"] == hours
    assert ext["additional_cost_lamports"] == price and ext["new_total_cost_lamports"] == 2 * price
    assert ext["additional_cost_sol"] == pytest.approx(price / LAMPORTS_PER_SOL)
    assert ext["new_total_cost"] == pytest.approx(2 * price / LAMPORTS_PER_SOL)
    assert ext["new_expiration"] == rent["expires_at"] + 360
    again = api.post(f"/api/contracts/{cid}/extend", ext_body)  # a retry: same answer, counted once
    assert (again.status, again.body) == (200, ext)
    received = paid1 + price

    b = now_ms()
    view = api.get(f"/api/contracts/{cid}").body
    a = now_ms()
    assert view["duration_seconds"] == 720 and view["expires_at"] == rent["expires_at"] + 360
    assert view["prepaid_lamports"] == received
    assert_live(view, tier, created_ms, b, a, received)

    # ---- settle, signed by the wallet
    path = f"/api/contracts/{cid}/settle"
    b = now_ms()
    r = api.post(path, data=b"", headers=settle_headers(wallet, cid))
    a = now_ms()
    assert r.status == 200, r
    st = r.body
    assert st["contract_id"] == cid and st["status"] == "SETTLED" and st["refund_status"] == "QUEUED"
    assert st["prepaid_lamports"] == received
    assert st["tx_signature"] is None  # the refund worker sends it later
    entries = api.entries(cid)
    settled_ms = [e for e in entries if e["kind"] == "settled"][0]["created_at_ms"]
    assert b <= settled_ms + 5 and settled_ms <= a + 5
    t = settled_ms - created_ms
    used = usage_lamports(tier, t, 720_000)
    assert used > 0 and st["used_lamports"] == used
    assert st["refund_lamports"] == received - used
    assert used == LPH[tier] * min(t, 720_000) // 3_600_000
    assert st["settled_at"] == settled_ms // 1000
    assert st["refund_sol"] == pytest.approx((received - used) / LAMPORTS_PER_SOL)
    assert st["used_sol"] == pytest.approx(used / LAMPORTS_PER_SOL)

    again = api.post(path, data=b"", headers=settle_headers(wallet, cid, ts=int(time.time()) + 1))
    # settling again changes nothing (the refund worker, in the background, may have moved the
    # refund on meanwhile: QUEUED → SENT → CONFIRMED, with its tx_signature)
    moving = ("refund_status", "tx_signature", "refund_tx_signature")
    assert again.status == 200 and again.body["refund_status"] in ("QUEUED", "SENT", "CONFIRMED"), again
    assert {k: v for k, v in again.body.items() if k not in moving} == {k: v for k, v in st.items() if k not in moving}

    r = api.get(f"/api/contracts/{cid}")
    assert r.status == 200, r
    final = r.body
    assert final["status"] == "SETTLED" and final["settled_at"] == st["settled_at"]
    assert final["used_lamports"] == used and final["prepaid_lamports"] == received
    assert final["refund_available_lamports"] == 0 and final["remaining_seconds"] == 0
    # QUEUED until the refund worker (a later issue) picks it up; the amount never changes
    assert final["refund"]["status"] in ("QUEUED", "SENT", "CONFIRMED"), final
    assert final["refund"]["lamports"] == received - used

    # ---- the books: every contract balances, its escrow is zero after settlement
    # (the refund's payout and fee, booked once the refund worker confirms it, are apart)
    entries = [e for e in api.entries(cid) if e["kind"] not in ("refund", "network_fee")]
    debits = sum(e["debit_lamports"] for e in entries)
    credits = sum(e["credit_lamports"] for e in entries)
    assert debits == credits == 2 * received
    by_account: dict[str, int] = {}
    for e in entries:
        assert e["contract_id"] == cid
        by_account[e["account"]] = by_account.get(e["account"], 0) + e["debit_lamports"] - e["credit_lamports"]
    assert by_account == {
        "treasury": received,
        f"escrow:{cid}": 0,
        "revenue": -used,
        "refunds_payable": -(received - used),
    }
    assert sorted({e["kind"] for e in entries}) == ["extend", "rent", "settled"]
    assert {e["ref"] for e in entries if e["kind"] in ("rent", "extend")} == {sig1, sig2}
    assert len({e["entry_id"] for e in entries}) == len(entries)

    led = api.ledger()
    row = next(c for c in led["completed_settlements"] if c["contract_id"] == cid)
    assert row["wallet"] == str(wallet.pubkey()) and row["refund_status"] in ("QUEUED", "SENT", "CONFIRMED")
    assert (row["prepaid_lamports"], row["used_lamports"], row["refund_lamports"]) == (received, used, received - used)
    assert row["settlement_time"] == st["settled_at"]
    assert all(c["contract_id"] != cid for c in led["active_contracts"])
    for name in ("total_active_value_lamports", "total_used_lamports", "total_pending_refunds_lamports"):
        assert isinstance(led[name], int) and led[name] >= 0

    after = api.snapshot()
    assert after["leases"] == before["leases"]  # the slot is free again
    assert after["contracts"]["SETTLED"] == before["contracts"]["SETTLED"] + 1
    assert after["contracts"]["ACTIVE"] == before["contracts"]["ACTIVE"]
    assert after["revenue"] == before["revenue"] + used
    # the snapshot waits for the refund worker (event runner): the refund is paid, nothing owed
    assert after["pending"] == before["pending"] == 0
    assert after["refunds"].get("CONFIRMED", 0) == before["refunds"].get("CONFIRMED", 0) + 1
    stats = api.stats()
    assert stats["treasury"] == treasury and stats["rpc_reachable"] is True
    assert abs(stats["server_time"] - time.time()) < 5
    assert stats["queues"]["dead_letter_queue"]["visible"] == 0

    # ---- an ended contract takes no more usage and no more extensions
    r = api.post(f"/api/metrics/{cid}", single, headers=key)
    assert (r.status, r.body["code"]) == (409, "contract_not_active"), r
    sig3 = payer.pay(wallet, treasury, price, memo=extend_terms(cid, hours))
    r = api.post(f"/api/contracts/{cid}/extend", {"additional_hours": hours, "tx_signature": sig3})
    assert (r.status, r.body["code"]) == (409, "contract_not_active"), r
    # nothing booked by the refused requests (the refund worker books the refund's payout and fee)
    assert [e for e in api.entries(cid) if e["kind"] not in ("refund", "network_fee")] == entries


def test_replay_and_reuse_of_a_payment(api, payer, local_stack):
    treasury = local_stack["treasury"]
    wallet = payer.new_wallet()
    price = price_lamports("ORIN", 0.05)
    sig = payer.pay(wallet, treasury, price, memo=None)  # a bare transfer: the requests are signed instead
    body = {"wallet": str(wallet.pubkey()), "tier": "ORIN", "duration_hours": 0.05, "tx_signature": sig}
    first = api.post("/api/rent", **signed_json(wallet, "/api/rent", body))
    assert first.status == 201, first
    snap = api.snapshot()

    replay = api.post("/api/rent", **signed_json(wallet, "/api/rent", body))  # a retry after a timeout
    assert (replay.status, replay.body) == (200, first.body)
    raw = (
        f'{{"tx_signature": "{sig}", "duration_hours": 5e-2, "tier": "ORIN", '
        f'"wallet": "{wallet.pubkey()}", "extra": 1}}'
    )
    replay = api.post("/api/rent", **signed_json(wallet, "/api/rent", raw))  # the same request spelt differently
    assert (replay.status, replay.body) == (200, first.body)

    other = api.post("/api/rent", **signed_json(wallet, "/api/rent", dict(body, duration_hours=0.02)))
    assert other.status == 409 and other.body["code"] == "payment_already_used", other  # same payment, other terms
    assert other.is_error_shape
    other = api.post("/api/rent", **signed_json(wallet, "/api/rent", dict(body, tier="M2")))  # enough, but spent
    assert other.status == 409 and other.body["code"] == "payment_already_used", other
    cid = first.body["contract_id"]
    ext_path = f"/api/contracts/{cid}/extend"
    other = api.post(ext_path, **signed_json(wallet, ext_path, {"additional_hours": 0.05, "tx_signature": sig}))
    assert other.status == 409 and other.body["code"] == "payment_already_used", other
    assert api.snapshot() == snap  # one contract, one slot, nothing else written

    # Idempotency-Key: the same key and body → the first answer; another body → 409
    path = f"/api/contracts/{cid}/settle"
    ts = str(int(time.time()))

    def signed(body: bytes) -> dict:  # docs/api.md "Credentials": a non-empty body signs its sha256 too
        return {
            "X-Wallet": str(wallet.pubkey()),
            "X-Timestamp": ts,
            "Idempotency-Key": "e2e-settle-1",
            "X-Signature": str(wallet.sign_message(renter_message("POST", path, ts, body))),
        }

    settled = api.post(path, data=b"{}", headers=signed(b"{}"))
    assert settled.status == 200, settled
    replayed = api.post(path, data=b"{}", headers=signed(b"{}"))
    assert (replayed.status, replayed.body) == (200, settled.body)
    assert replayed.headers.get("Idempotent-Replayed") == "true"
    mismatch = api.post(path, data=b'{"x": 1}', headers=signed(b'{"x": 1}'))
    assert mismatch.status == 409 and mismatch.body["code"] == "idempotency_mismatch", mismatch


def test_ledger_pages_cover_every_contract_once(api, payer, local_stack):
    # an ACTIVE contract that has used something already (as a full run always has: the
    # idempotency module leaves one): its live usage is in its row, not in the book's total_used
    wallet = payer.new_wallet()
    hours = 0.1
    sig = payer.pay(wallet, local_stack["treasury"], price_lamports("M2", hours), memo=rent_terms("M2", hours))
    r = api.post(
        "/api/rent", {"wallet": str(wallet.pubkey()), "tier": "M2", "duration_hours": hours, "tx_signature": sig}
    )
    assert r.status == 201, r
    live = r.body["contract_id"]
    time.sleep(1.5)  # M2 uses ~278 lamports a second

    # the sweep and the refund worker run in the background: take the book when it stood still
    # between two reads (the page and the whole-book counters are two reads, not one snapshot)
    def still(page: dict) -> tuple:  # what the background jobs change (live usage aside)
        rows = page["active_contracts"] + page["completed_settlements"]
        return (
            sorted((c["contract_id"], c["status"], c.get("refund_status")) for c in rows),
            page["total_active_value_lamports"],
            page["total_used_lamports"],
        )

    for _ in range(20):
        full, counts, again = api.ledger(), api.stats()["contracts"], api.ledger()
        if still(full) == still(again):
            break
        time.sleep(0.5)
    every = {c["contract_id"] for c in full["active_contracts"] + full["completed_settlements"]}
    assert len(every) == counts["ACTIVE"] + counts["SETTLED"] + counts["EXPIRED"]
    # a contract past its expiry is listed ended at once ("booked": false) but stays in the book's
    # ACTIVE totals until the sweep books it
    unbooked = [c for c in full["completed_settlements"] if not c["booked"]]
    assert full["total_active_value_lamports"] == sum(
        c["prepaid_lamports"] for c in full["active_contracts"] + unbooked
    )
    assert any(c["contract_id"] == live and c["used_lamports"] > 0 for c in full["active_contracts"])
    # ADR 0006: the book's total_used is the revenue booked by ENDED contracts; the live usage of
    # ACTIVE contracts changes every millisecond and is in their rows only
    assert full["total_used_lamports"] == sum(c["used_lamports"] for c in full["completed_settlements"] if c["booked"])
    seen: set = set()
    token = None
    for _ in range(len(every) + 2):
        q = "limit=2" + (f"&next_token={quote(token, safe='')}" if token else "")
        r = api.get(f"/api/billing/ledger?{q}", admin=True)
        assert r.status == 200, r
        ids = [c["contract_id"] for c in r.body["active_contracts"] + r.body["completed_settlements"]]
        assert len(ids) <= 2 and not set(ids) & seen, r
        seen |= set(ids)
        token = r.body["next_token"]
        if not token:
            break
    assert seen == every
    r = api.post(f"/api/contracts/{live}/settle", data=b"", headers=settle_headers(wallet, live))
    assert r.status == 200, r  # its slot is free again for the modules that follow


def test_demo_runs_clean_against_the_stack(local_stack):
    stack_json = Path(local_stack["state_dir"]) / "stack.json"
    proc = subprocess.run(
        [sys.executable, "-m", "dev.demo", "--stack", str(stack_json)],
        cwd=str(ROOT),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, f"demo exited {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    out = proc.stdout
    for step in ("> GET /api/pricing", "> POST /api/rent", "< 201", "/extend", "/settle", "# done: CTR-"):
        assert step in out, out
    assert not re.search(r"^< [345]\d\d", out, re.M), out


def test_demo_fails_loudly_on_a_non_2xx(local_stack, tmp_path):
    """The demo is honest: a non-2xx answer is printed and it exits non-zero (here before anything is paid)."""
    import json

    broken = dict(
        {k: local_stack[k] for k in ("rpc_url", "treasury", "device_keys")},
        api_url=local_stack["api_url"] + "/no-such-stage",
    )
    path = tmp_path / "stack.json"
    path.write_text(json.dumps(broken))
    proc = subprocess.run(
        [sys.executable, "-m", "dev.demo", "--stack", str(path)],
        cwd=str(ROOT),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 1, (proc.stdout, proc.stderr)
    assert re.search(r"^< 4\d\d ", proc.stdout, re.M), proc.stdout
    assert "demo FAILED" in proc.stderr and "GET /api/pricing answered 4" in proc.stderr, proc.stderr
    assert "> POST" not in proc.stdout
