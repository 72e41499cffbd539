"""Refunds over HTTP on a local stack whose chain takes real time (`SI64_CHAIN_TIMING=real`):
400 ms slots, a transaction `confirmed` one slot after it lands and `finalized` 32 slots
(~13 s) later, blockhashes valid for 150 slots, fees charged.

What this proves and the instant chain cannot: a refund is SENT while its transaction is
only processed/confirmed and becomes CONFIRMED only once the node reports it finalized; a
dropped refund is re-sent (same signature) and lands once; a dropped refund whose blockhash
expired is replaced by a new transaction and lands once. Slow: keep it to these few tests."""

from __future__ import annotations

import time

import pytest

from chalicelib.domain.signing import refund_memo
from tests.e2e.client import Api, Payer, price_lamports, settle_headers
from tests.e2e.test_refunds_http import memo_of, rent, rpc
from tests.fixtures.stack import start_stack

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

DEADLINE = 90.0  # a bound, not a measurement: finalization alone takes ~13 s


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    with start_stack(
        tmp_path_factory.mktemp("real-chain-stack"),
        SI64_CHAIN_TIMING="real",
        SI64_MIN_DURATION_SECONDS="1",
        # a pending refund's message comes back every 4 s: 5 receives (the redrive limit) span
        # ~20 s, more than finalization takes; were it 1 s, as on the instant chain, the message
        # would reach the dead-letter queue before its transaction is finalized. The sweep
        # queues a refund without progress again after 15 s (120 s by default).
        SI64_REFUND_RETRY_SECONDS="4",
        SI64_REFUND_REQUEUE_SECONDS="15",
    ) as info:
        yield info


@pytest.fixture(scope="module")
def api(stack) -> Api:
    return Api(stack["api_url"], stack["admin_key"])


@pytest.fixture(scope="module")
def payer(stack):
    with Payer(stack["rpc_url"]) as p:
        yield p


@pytest.fixture
def faults(stack):
    rpc(stack, "si64_clearFaults")
    yield lambda method, *params: rpc(stack, method, list(params))
    rpc(stack, "si64_clearFaults")


def chain_status(stack, sig):
    return rpc(stack, "getSignatureStatuses", [[sig], {"searchTransactionHistory": True}])["value"][0]


def rented_and_settled(api, payer, stack, before_settle=None):
    kp = payer.new_wallet()
    _, r = rent(api, payer, stack, kp, 1, price_lamports("M2", 1) + 1_500_000)
    assert r.status == 201, r
    cid = r.body["contract_id"]
    if before_settle:
        before_settle()
    s = api.post(f"/api/contracts/{cid}/settle", headers=settle_headers(kp, cid))
    assert s.status == 200 and s.body["refund_status"] == "QUEUED", s
    return kp, cid, s.body["refund_lamports"]


def watch(api, stack, cid, until, on_poll=None) -> tuple[dict, list]:
    """Poll the contract until `until(body)`; returns (body, [(api refund status, chain level)])."""
    seen = []
    deadline = time.monotonic() + DEADLINE
    while True:
        body = api.get(f"/api/contracts/{cid}").body
        refund = body["refund"]
        sig = refund.get("tx_signature")
        st = chain_status(stack, sig) if sig else None
        seen.append((refund["status"], sig, st and st["confirmationStatus"]))
        if on_poll:
            on_poll(refund, st)
        if until(body):
            return body, seen
        assert time.monotonic() < deadline, (body, seen[-5:])
        time.sleep(0.25)


def refunds_received(stack, wallet, cid) -> list[str]:
    """Signatures of finalized transactions to `wallet` carrying the refund memo of `cid`."""
    history = rpc(stack, "getSignaturesForAddress", [str(wallet)])
    return [h["signature"] for h in history if h["memo"] and h["memo"].endswith(refund_memo(cid))]


def test_settle_is_sent_then_confirmed_only_once_finalized(api, payer, stack):
    kp, cid, lamports = rented_and_settled(api, payer, stack)
    before = payer.balance(kp.pubkey())
    body, seen = watch(api, stack, cid, lambda b: b["refund"]["status"] == "CONFIRMED")
    sig = body["refund"]["tx_signature"]
    # while the node said processed/confirmed, the API said SENT; CONFIRMED came with finalized
    assert ("SENT", sig, "confirmed") in seen or ("SENT", sig, "processed") in seen, seen
    assert all(level == "finalized" for status, _, level in seen if status == "CONFIRMED"), seen
    assert chain_status(stack, sig)["confirmationStatus"] == "finalized"
    assert body["refund"]["lamports"] == lamports
    assert payer.balance(kp.pubkey()) - before == lamports  # the treasury paid the fee
    assert memo_of(stack, sig) == [refund_memo(cid)]
    assert refunds_received(stack, kp.pubkey(), cid) == [sig]


def test_a_dropped_refund_is_re_sent_and_lands_once(api, payer, stack, faults):
    # the refund worker's first sendTransaction is dropped by the leader
    kp, cid, lamports = rented_and_settled(
        api, payer, stack, before_settle=lambda: faults("si64_dropTransactions", {"requests": 1})
    )
    before = payer.balance(kp.pubkey())
    body, seen = watch(api, stack, cid, lambda b: b["refund"]["status"] == "CONFIRMED")
    sig = body["refund"]["tx_signature"]
    assert faults("si64_faults")["dropped"] == [sig]  # the same signature, re-sent, landed
    assert {s for _, s, _ in seen if s} == {sig}
    assert payer.balance(kp.pubkey()) - before == lamports
    assert refunds_received(stack, kp.pubkey(), cid) == [sig]


def test_a_dropped_refund_whose_blockhash_expired_is_replaced_and_lands_once(api, payer, stack, faults):
    dropped_sig = {}

    def on_poll(refund, st):
        if refund["status"] == "SENT" and not dropped_sig and refund.get("tx_signature"):
            # every send is dropped until its blockhash is past: then let the replacement through
            assert st is None
            dropped_sig["sig"] = refund["tx_signature"]
            faults("si64_advanceSlots", 151 + 32)
            faults("si64_clearFaults")

    kp, cid, lamports = rented_and_settled(api, payer, stack, before_settle=lambda: faults("si64_dropTransactions", {}))
    before = payer.balance(kp.pubkey())
    body, seen = watch(api, stack, cid, lambda b: b["refund"]["status"] == "CONFIRMED", on_poll)
    first, final = dropped_sig["sig"], body["refund"]["tx_signature"]
    assert final != first
    assert chain_status(stack, first) is None  # never landed, and now it never can
    assert chain_status(stack, final)["confirmationStatus"] == "finalized"
    assert payer.balance(kp.pubkey()) - before == lamports
    assert refunds_received(stack, kp.pubkey(), cid) == [final]
