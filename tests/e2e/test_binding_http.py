"""Payment binding over HTTP on the local stack: every attack found by trying the API
with no credentials is refused and writes nothing; the payer's own requests still work, bound
either by the terms in the payment's memo or by the payer's signature over the request."""

from __future__ import annotations

import time

import pytest
import requests

from .client import LAMPORTS_PER_SOL, extend_terms, price_lamports, rent_terms, settle_headers, signed_json

pytestmark = pytest.mark.e2e


def rpc(url: str, method: str, params: list):
    r = requests.post(url, json={"jsonrpc": "2.0", "id": 1, "method": method, "params": params}, timeout=10)
    r.raise_for_status()
    return r.json()["result"]


def rent_body(wallet, sig: str, tier: str, hours) -> dict:
    return {"wallet": str(wallet), "tier": tier, "duration_hours": hours, "tx_signature": sig}


def assert_refused(api, r, status: int, code: str, reason: str | None, before: dict) -> None:
    assert (r.status, r.body["code"]) == (status, code), r
    if reason is not None:
        assert r.body["reason"] == reason, r
    assert api.snapshot() == before, "a refused request wrote something"


def test_the_treasurys_funding_transfer_cannot_be_booked_as_a_rental(api, local_stack):
    """Anyone can list the treasury's transfers: its 1,000 SOL funding is one of them."""
    treasury, url = local_stack["treasury"], local_stack["rpc_url"]
    history = rpc(url, "getSignaturesForAddress", [treasury, {"limit": 1000}])
    funding = history[-1]["signature"]  # newest first: the oldest is the funding airdrop
    tx = rpc(url, "getTransaction", [funding, {"encoding": "json", "maxSupportedTransactionVersion": 0}])
    funder = tx["transaction"]["message"]["accountKeys"][0]
    assert funder != treasury
    before = api.snapshot()
    r = api.post("/api/rent", rent_body(funder, funding, "THOR", 1))
    assert_refused(api, r, 401, "unauthorized", "binding", before)


def test_someone_elses_payment_cannot_be_claimed_first(api, payer, local_stack):
    """A pays 1 h of THOR (a bare transfer, A will sign its request); a watcher of the chain
    claims A's payment first with other terms, with and without a signature of its own."""
    treasury = local_stack["treasury"]
    a, mallory = payer.new_wallet(), payer.new_wallet()
    sig = payer.pay(a, treasury, price_lamports("THOR", 1), memo=None)
    before = api.snapshot()
    r = api.post("/api/rent", rent_body(a.pubkey(), sig, "M2", 0.02))
    assert_refused(api, r, 401, "unauthorized", "binding", before)
    # signed by the attacker, naming A's wallet: the signer is not the payer
    r = api.post("/api/rent", **signed_json(mallory, "/api/rent", rent_body(a.pubkey(), sig, "M2", 0.02)))
    assert_refused(api, r, 403, "forbidden", "X-Wallet", before)
    # signed by the attacker, naming its own wallet: it did not pay
    r = api.post("/api/rent", **signed_json(mallory, "/api/rent", rent_body(mallory.pubkey(), sig, "M2", 0.02)))
    assert_refused(api, r, 402, "payment_invalid", "wrong_payer", before)
    # A's own signed request still gets the rental A paid for
    r = api.post("/api/rent", **signed_json(a, "/api/rent", rent_body(a.pubkey(), sig, "THOR", 1)))
    assert r.status == 201 and r.body["tier"] == "THOR" and r.body["duration_seconds"] == 3600, r
    settle(api, a, r.body["contract_id"])


def test_a_memo_bound_rent_needs_no_credentials_and_binds_its_terms_only(api, payer, local_stack):
    treasury = local_stack["treasury"]
    a = payer.new_wallet()
    sig = payer.pay(a, treasury, price_lamports("ORIN", 0.1), memo=rent_terms("ORIN", 0.1))
    before = api.snapshot()
    r = api.post("/api/rent", rent_body(a.pubkey(), sig, "M2", 0.1))  # someone tries other terms
    assert_refused(api, r, 402, "payment_invalid", "memo_mismatch", before)
    first = api.post("/api/rent", rent_body(a.pubkey(), sig, "ORIN", 0.1))
    assert first.status == 201, first
    replay = api.post("/api/rent", rent_body(a.pubkey(), sig, "ORIN", 0.1))
    assert (replay.status, replay.body) == (200, first.body)
    cid = first.body["contract_id"]

    # a rent memo never pays an extend; an extend memo naming another contract pays nothing here
    snap = api.snapshot()
    as_rent = payer.pay(a, treasury, price_lamports("ORIN", 0.1), memo=rent_terms("ORIN", 0.1))
    r = api.post(f"/api/contracts/{cid}/extend", {"additional_hours": 0.1, "tx_signature": as_rent})
    assert_refused(api, r, 402, "payment_invalid", "memo_mismatch", snap)
    elsewhere = "CTR-" + "x" * 22
    for_other = payer.pay(a, treasury, price_lamports("ORIN", 0.1), memo=extend_terms(elsewhere, 0.1))
    r = api.post(f"/api/contracts/{cid}/extend", {"additional_hours": 0.1, "tx_signature": for_other})
    assert_refused(api, r, 402, "payment_invalid", "memo_mismatch", snap)
    ok = payer.pay(a, treasury, price_lamports("ORIN", 0.1), memo=extend_terms(cid, 0.1))
    r = api.post(f"/api/contracts/{cid}/extend", {"additional_hours": 0.1, "tx_signature": ok})
    assert r.status == 200 and r.body["extended_seconds"] == 360, r
    settle(api, a, cid)


def test_an_idempotency_replay_needs_the_requests_own_credentials(api, payer, local_stack):
    treasury = local_stack["treasury"]
    a = payer.new_wallet()
    sig = payer.pay(a, treasury, price_lamports("M2", 0.1), memo=rent_terms("M2", 0.1))
    cid = api.post("/api/rent", rent_body(a.pubkey(), sig, "M2", 0.1)).body["contract_id"]
    key = {"Idempotency-Key": f"binding-{cid}"}
    done = api.post(f"/api/contracts/{cid}/settle", data=b"", headers={**settle_headers(a, cid), **key})
    assert done.status == 200, done
    r = api.post(f"/api/contracts/{cid}/settle", data=b"", headers=key)  # no renter headers at all
    assert (r.status, r.body["code"]) == (401, "unauthorized") and "Idempotent-Replayed" not in r.headers, r
    # another wallet's valid signature with the same key gets no replay either
    other = payer.new_wallet(LAMPORTS_PER_SOL // 100)
    r = api.post(f"/api/contracts/{cid}/settle", data=b"", headers={**settle_headers(other, cid), **key})
    assert (r.status, r.body["code"]) == (403, "forbidden") and "Idempotent-Replayed" not in r.headers, r
    again = api.post(f"/api/contracts/{cid}/settle", data=b"", headers={**settle_headers(a, cid), **key})
    assert (again.status, again.body) == (200, done.body) and again.headers.get("Idempotent-Replayed") == "true"


@pytest.mark.parametrize("ts", ["²", "1¹", "１７６４００００００", "17640000a0", "-1", "1e9", "0x10"])
def test_a_timestamp_that_is_not_ascii_digits_is_401(api, payer, ts):
    """`str.isdigit()` accepts "²": a credential parse error is a 401, never a 500."""
    kp = payer.new_wallet(LAMPORTS_PER_SOL // 100)
    cid = "CTR-" + "y" * 22
    headers = dict(settle_headers(kp, cid), **{"X-Timestamp": ts.encode("utf-8")})  # raw bytes on the wire
    for path, body in ((f"/api/contracts/{cid}/settle", b""), ("/api/rent", b'{"wallet": "x"}')):
        r = api.post(path, data=body, headers=headers)
        assert (r.status, r.body["code"], r.body["reason"]) == (401, "unauthorized", "X-Timestamp"), r


def settle(api, kp, cid: str) -> None:
    r = api.post(f"/api/contracts/{cid}/settle", data=b"", headers=settle_headers(kp, cid))
    assert r.status == 200, r
    time.sleep(0)  # nothing to wait for: the refund is the worker's
