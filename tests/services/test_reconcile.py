"""Reconciliation, operator refunds of orphan payments, refunds by status and the DLQ redrive,
on the fakes: payments land on the FakeRpc node, refunds on the FakeRefundChain,
and FakeChainHistory is the treasury's history of both (its funding first)."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from chalicelib.domain import ledger, money
from chalicelib.domain import refunds as R
from chalicelib.domain.commands import ExtendRequest, RentRequest
from chalicelib.domain.errors import InvalidRequest, PaymentAlreadyUsed, PaymentInvalid, Unavailable
from chalicelib.domain.payments import Transfer
from chalicelib.domain.reconcile import ChainTx
from chalicelib.domain.signing import extend_memo, refund_memo, rent_memo
from chalicelib.jobs.refunds import handle_records
from chalicelib.services.refunds import RefundAdmin
from tests.services.refund_support import M2, World
from tests.support.fake_history import FUNDING, FakeChainHistory
from tests.support.fakes import new_signature, new_wallet

HOUR = money.price_lamports(M2, 3600)


def work(w: World) -> None:
    records = [{"messageId": f"m{i}", "body": json.dumps(m)} for i, m in enumerate(w.queue.messages)]
    w.queue.messages.clear()
    assert handle_records(records, w.c.refund_worker) == {"batchItemFailures": []}


def world():
    w = World(refund_min_lamports=5000)
    w.history = FakeChainHistory(w.rpc, w.chain)
    w.c.chain_history = w.history  # plugged in before the container's first use of it
    w.reconciler = w.c.reconciler
    return w


def rent(w: World, seconds: int = 3600, overpay: int = 0):
    wallet = new_wallet()
    sig = w.rpc.pay(wallet, money.price_lamports(M2, seconds) + overpay, memo=rent_memo("M2", seconds))
    receipt = w.c.rentals.rent(RentRequest(wallet, "M2", seconds, sig))
    return w.c.contracts.get(receipt.body["contract_id"])


def busy(w: World) -> list:
    """Rents, an extension, settles, one expiry-sized settle, refunds confirmed."""
    a, b, c = rent(w), rent(w, overpay=1234), rent(w, 1800)
    sig = w.rpc.pay(a.wallet, money.price_lamports(M2, 900), memo=extend_memo(a.contract_id, 900))
    w.c.rentals.extend(ExtendRequest(a.contract_id, 900, sig))
    w.clock.advance(600)
    w.c.rentals.settle(a.contract_id, a.wallet)
    w.c.rentals.settle(b.contract_id, b.wallet)
    work(w)
    return [a, b, c]


def test_a_busy_run_reconciles_and_the_baseline_is_the_funding():
    w = world()
    busy(w)
    rep = w.reconciler.run(orphan_age_seconds=3600)
    assert rep.ok, rep.mismatches
    assert rep.baseline_lamports == FUNDING  # the airdrop before the first booked payment
    assert rep.chain_lamports == w.history.lamports
    treasury_net = ledger.balance(w.all_entries(), ledger.TREASURY)
    assert rep.ledger_lamports == treasury_net and rep.chain_lamports == FUNDING + treasury_net
    assert rep.unbooked == [] and rep.refunds_checked == 2 and rep.difference_lamports == 0
    # only the first booked transaction is read (for the baseline): booked ones need no getTransaction
    assert rep.transactions_read == 1 + 2  # + the two confirmed refunds checked on chain


def test_a_transfer_outside_the_api_is_an_orphan_then_the_operator_refunds_it_and_the_books_agree():
    w = world()
    busy(w)
    stranger = new_wallet()
    sig = w.rpc.pay(stranger, 777_777)  # to the treasury, no memo, no request
    young = w.reconciler.run(orphan_age_seconds=3600)
    assert young.ok and [u.kind for u in young.unbooked] == ["recent_payment"]  # may still be rented

    rep = w.reconciler.run(orphan_age_seconds=0)
    assert not rep.ok
    [o] = rep.orphans
    assert (o.signature, o.payer, o.lamports) == (sig, stranger, 777_777)
    assert any(sig in line and "777777 lamports" in line for line in rep.mismatches), rep.mismatches
    assert rep.difference_lamports == 0  # the balance is explained: the orphan is the unbooked part

    pr = w.c.payment_refunds.refund_orphan(sig, w.history)
    assert pr.first and pr.refund.refund_id == f"PAY-{sig}-{stranger}" and pr.refund.wallet == stranger
    assert pr.refund.status == R.QUEUED and pr.refund.lamports == 777_777
    assert w.c.claims.get_claim(sig, stranger).request == f"refund:operator:{stranger}"
    mid = w.reconciler.run(orphan_age_seconds=0)  # booked, queued, not yet paid: already consistent
    assert mid.ok, mid.mismatches
    work(w)
    [t] = w.chain.transfers_to(stranger)
    assert (t.lamports, t.memo) == (777_777, refund_memo(f"PAY-{sig}-{stranger}"))
    after = w.reconciler.run(orphan_age_seconds=0)
    assert after.ok, after.mismatches
    assert after.refunds_checked == 3

    with pytest.raises(PaymentAlreadyUsed) as again:  # refunded once, never twice
        w.c.payment_refunds.refund_orphan(sig, w.history)
    assert again.value.reason == "refund"


def test_the_operator_cannot_refund_a_contracts_payment_a_refund_tx_or_an_unknown_signature():
    w = world()
    [a, *_] = busy(w)
    with pytest.raises(PaymentAlreadyUsed) as held:
        w.c.payment_refunds.refund_orphan(a.payments[0].sig, w.history)
    assert held.value.reason == "tx_signature"
    refund_tx = w.chain.transfers[0].signature  # the treasury signed it
    with pytest.raises(PaymentInvalid) as treasury_signed:
        w.c.payment_refunds.refund_orphan(refund_tx, w.history)
    assert treasury_signed.value.reason == "treasury_signed"
    with pytest.raises(PaymentInvalid) as unknown:
        w.c.payment_refunds.refund_orphan(new_signature(), w.history)
    assert unknown.value.reason == "not_found"
    w.history.down = True
    with pytest.raises(Unavailable):
        w.c.payment_refunds.refund_orphan(w.rpc.pay(new_wallet(), 10_000), w.history)
    assert not any(rec.get("kind") == "refund" for rec in w.db.tables["claims"].values())


def test_a_refund_paid_otherwise_than_recorded_and_an_unbooked_outflow_are_named():
    w = world()
    busy(w)
    i = next(i for i, t in enumerate(w.history.log) if t.signers == (w.chain.treasury,))
    t = w.history.log[i]
    [paid] = t.transfers
    w.history.log[i] = replace(
        t,
        transfers=(Transfer(paid.source, paid.destination, paid.lamports - 1),),
        balances={w.chain.treasury: (t.balances[w.chain.treasury][0], t.balances[w.chain.treasury][1] + 1)},
    )
    w.history.lamports += 1
    rep = w.reconciler.run(orphan_age_seconds=0)
    assert not rep.ok
    assert rep.difference_lamports == 1  # the ledger booked one lamport more than the chain paid
    [p] = rep.refund_problems
    assert p.tx_signature == t.signature and "the record says" in p.problems[0]

    w2 = world()
    busy(w2)
    out = ChainTx(
        new_signature(),
        0,
        None,
        False,
        (w2.chain.treasury,),
        (Transfer(w2.chain.treasury, new_wallet(), 50_000),),
        (),
        5000,
    )
    w2.history._record(out, payment=False)
    rep2 = w2.reconciler.run()
    assert not rep2.ok and [u.kind for u in rep2.unbooked] == ["unexplained"]
    assert rep2.unbooked[0].lamports == -55_000 and rep2.difference_lamports == 0
    assert any(out.signature in m for m in rep2.mismatches)


def test_a_landed_refund_not_yet_booked_is_in_flight_not_a_mismatch():
    w = world()
    a = rent(w)
    w.clock.advance(600)
    w.c.rentals.settle(a.contract_id, a.wallet)
    w.chain.fee_unreadable = True  # lands, but the worker cannot confirm it yet: stays SENT
    records = [{"messageId": "m", "body": json.dumps(m)} for m in w.queue.messages]
    w.queue.messages.clear()
    handle_records(records, w.c.refund_worker)
    assert w.c.refunds.get(a.contract_id).status == R.SENT
    rep = w.reconciler.run(orphan_age_seconds=0)
    assert rep.ok, rep.mismatches
    assert [u.kind for u in rep.unbooked] == ["refund_in_flight"]


def test_a_baseline_slot_moves_the_window_and_the_history_bound_makes_it_incomplete():
    w = world()
    busy(w)
    rep = w.reconciler.run(orphan_age_seconds=0, baseline_slot=1)  # the funding's slot
    assert rep.ok, rep.mismatches
    assert rep.baseline_lamports == FUNDING and rep.baseline_slot == 1
    small = replace(w.reconciler, max_transactions=1)
    w.rpc.pay(new_wallet(), 10_000)
    w.rpc.pay(new_wallet(), 10_000)
    rep2 = small.run(orphan_age_seconds=0)
    assert not rep2.complete and not rep2.ok and any("incomplete" in m for m in rep2.mismatches)


def test_refunds_by_status_pages_and_the_dead_letters_move_back():
    w = world()
    made = [rent(w) for _ in range(3)]
    for c in made:
        w.clock.advance(10)
        w.c.rentals.settle(c.contract_id, c.wallet)
    payer = new_wallet()
    orphan = w.rpc.pay(payer, 900_000)
    w.c.payment_refunds.refund_orphan(orphan, w.history)
    admin = RefundAdmin(listing=w.c.refunds, dead_letters=w.queue, max_redrive=2)
    page, token = admin.list(R.QUEUED, 2, None)
    assert [r.refund_id for r in page] == [made[2].contract_id, made[1].contract_id]  # newest first
    rest, token2 = admin.list(R.QUEUED, 2, token)
    assert [r.refund_id for r in rest] == [made[0].contract_id, f"PAY-{orphan}-{payer}"]
    assert admin.list(R.QUEUED, 2, token2) == ([], None)
    assert admin.list(R.FAILED, 10, None) == ([], None)
    with pytest.raises(InvalidRequest):
        admin.list("PAID", 10, None)
    with pytest.raises(InvalidRequest):
        admin.list(R.FAILED, 10, token)  # a token of another status

    w.queue.dead_letters = [{"refund_id": "CTR-x", "contract_id": "CTR-x", "version": 1}] * 3
    w.queue.messages.clear()
    assert admin.redrive(50) == 2 and len(w.queue.messages) == 2 and len(w.queue.dead_letters) == 1
    assert admin.redrive() == 1 and admin.redrive() == 0
