"""Refunds and expiry over HTTP on the whole local stack (`python -m dev.stack`): the
event runner polls the refund queue into the refund function and runs the billing sweep;
a stock solana-py client pays; the chain's own records prove what landed.

The stack of this module runs with SI64_MIN_DURATION_SECONDS=1 (contracts of a few
seconds) and SI64_SWEEP_SECONDS=2."""

from __future__ import annotations

import json
import time
import urllib.request

import pytest

from chalicelib.domain.signing import refund_memo
from si64.renter import renter_headers
from tests.e2e.client import Api, Payer, price_lamports, settle_headers
from tests.fixtures.stack import start_stack

DEADLINE = 30.0


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    with start_stack(
        tmp_path_factory.mktemp("refund-stack"),
        SI64_MIN_DURATION_SECONDS="1",
        SI64_SWEEP_SECONDS="2",
        SI64_REFUND_RETRY_SECONDS="1",
    ) as info:
        yield info


@pytest.fixture(scope="module")
def api(stack) -> Api:
    return Api(stack["api_url"], stack["admin_key"])


@pytest.fixture(scope="module")
def payer(stack):
    with Payer(stack["rpc_url"]) as p:
        yield p


@pytest.fixture(scope="module")
def treasury0(stack, payer):
    return payer.balance(stack["treasury"])


def rpc(stack, method, params=None):
    req = urllib.request.Request(
        stack["rpc_url"],
        data=json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": params or []}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.loads(r.read())["result"]


def rent(api, payer, stack, kp, hours, lamports):
    sig = payer.pay(kp, stack["treasury"], lamports)
    body = json.dumps({"wallet": str(kp.pubkey()), "tier": "M2", "duration_hours": hours, "tx_signature": sig})
    r = api.post("/api/rent", data=body, headers=renter_headers(kp, "POST", "/api/rent", body))
    return sig, r


def wait_refund(api, cid, status="CONFIRMED") -> dict:
    deadline = time.monotonic() + DEADLINE
    while True:
        got = api.get(f"/api/contracts/{cid}").body
        if got["refund"]["status"] == status:
            return got
        assert time.monotonic() < deadline, got
        time.sleep(0.3)


def memo_of(stack, sig) -> list[str]:
    tx = rpc(stack, "getTransaction", [sig, {"encoding": "json", "maxSupportedTransactionVersion": 0}])
    keys = tx["transaction"]["message"]["accountKeys"]
    from chalicelib.domain import keys as b58

    return [
        b58.decode(ix["data"]).decode()
        for ix in tx["transaction"]["message"]["instructions"]
        if keys[ix["programIdIndex"]].startswith("Memo")
    ]


def test_settle_and_the_refund_lands_within_seconds(api, payer, stack, treasury0):
    kp = payer.new_wallet()
    _, r = rent(api, payer, stack, kp, 1, price_lamports("M2", 1) + 1_500_000)
    assert r.status == 201, r
    cid = r.body["contract_id"]
    before = payer.balance(kp.pubkey())
    s = api.post(f"/api/contracts/{cid}/settle", headers=settle_headers(kp, cid))
    assert s.status == 200 and s.body["refund_status"] == "QUEUED", s
    t0 = time.monotonic()
    got = wait_refund(api, cid)
    took = time.monotonic() - t0
    assert took < 10, took
    assert got["refund"]["lamports"] == s.body["refund_lamports"]
    assert payer.balance(kp.pubkey()) - before == s.body["refund_lamports"]  # exactly
    assert memo_of(stack, got["refund"]["tx_signature"]) == [refund_memo(cid)]


def test_a_contract_left_alone_expires_and_its_overpayment_comes_back(api, payer, stack):
    kp = payer.new_wallet()
    hours = 3 / 3600  # three seconds
    price = price_lamports("M2", hours)
    _, r = rent(api, payer, stack, kp, hours, price + 2_000_000)
    assert r.status == 201, r
    cid = r.body["contract_id"]
    before = payer.balance(kp.pubkey())
    got = wait_refund(api, cid)  # expiry by the sweep (every 2 s), then the refund
    assert got["status"] == "EXPIRED"
    assert got["used_lamports"] == price == got["cost_lamports"]
    assert got["refund"]["lamports"] == 2_000_000
    assert payer.balance(kp.pubkey()) - before == 2_000_000
    assert got["settled_at"] == r.body["expires_at"]


def test_a_payment_one_lamport_short_is_refunded_to_its_payer(api, payer, stack):
    kp = payer.new_wallet()
    price = price_lamports("M2", 1)
    sig, r = rent(api, payer, stack, kp, 1, price - 1)
    assert r.status == 402 and r.body["reason"] == "insufficient_amount", r
    before = payer.balance(kp.pubkey())
    path = f"/api/payments/{sig}/refund"
    first = api.post(path, headers=renter_headers(kp, "POST", path))
    assert first.status == 201 and first.body["refund"]["status"] in ("QUEUED", "SENT", "CONFIRMED"), first
    deadline = time.monotonic() + DEADLINE
    while api.get(f"{path}?payer={kp.pubkey()}").body["refund"]["status"] != "CONFIRMED":
        assert time.monotonic() < deadline
        time.sleep(0.3)
    assert payer.balance(kp.pubkey()) - before == price - 1
    again = api.post(path, headers=renter_headers(kp, "POST", path))
    assert again.status == 200 and again.body["refund"]["status"] == "CONFIRMED"
    body = json.dumps({"wallet": str(kp.pubkey()), "tier": "M2", "duration_hours": 0.001, "tx_signature": sig})
    later = api.post("/api/rent", data=body, headers=renter_headers(kp, "POST", "/api/rent", body))
    assert later.status in (402, 409), later
    held_sig, held = rent(api, payer, stack, kp, 0.01, price_lamports("M2", 0.01))
    assert held.status == 201, held
    taken = api.post(
        f"/api/payments/{held_sig}/refund", headers=renter_headers(kp, "POST", f"/api/payments/{held_sig}/refund")
    )
    assert taken.status == 409 and taken.body["code"] == "payment_already_used", taken


def test_a_refused_recipient_is_failed_with_the_reason_and_still_owed(api, payer, stack):
    kp = payer.new_wallet()
    _, r = rent(api, payer, stack, kp, 1, price_lamports("M2", 1) + 1_000_000)
    cid = r.body["contract_id"]
    rpc(stack, "si64_refuseAccount", [str(kp.pubkey()), True])
    try:
        api.post(f"/api/contracts/{cid}/settle", headers=settle_headers(kp, cid))
        got = wait_refund(api, cid, "FAILED")
    finally:
        rpc(stack, "si64_refuseAccount", [str(kp.pubkey()), False])
    assert "InsufficientFundsForRent" in got["refund"]["reason"]
    owed = -sum(
        e["debit_lamports"] - e["credit_lamports"] for e in api.entries(cid) if e["account"] == "refunds_payable"
    )
    assert owed == got["refund"]["lamports"] > 0


def test_the_books_balance_and_match_the_chain(api, payer, stack, treasury0):
    led = api.ledger()
    ids = [k["contract_id"] for k in led["active_contracts"] + led["completed_settlements"]]
    assert ids
    for cid in ids:
        rows = api.entries(cid)
        assert sum(e["debit_lamports"] - e["credit_lamports"] for e in rows) == 0, cid
    rows, token = [], None
    while True:
        q = "/api/billing/entries?account=treasury&limit=1000" + (f"&next_token={token}" if token else "")
        page = api.get(q, admin=True).body
        rows += page["entries"]
        token = page["next_token"]
        if not token:
            break
    booked = sum(e["debit_lamports"] - e["credit_lamports"] for e in rows)
    # the chain's treasury change since this module started; payments nobody booked (the
    # 402'd payment before its refund was asked) are booked by now, so the two agree
    assert booked == payer.balance(stack["treasury"]) - treasury0
    stats = api.stats()
    assert stats["refunds_by_status"]["CONFIRMED"] >= 3 and stats["refunds_by_status"]["FAILED"] >= 1
    assert led["totals_scope"] == "book"
