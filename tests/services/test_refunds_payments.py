"""The payer-signed refund of a payment no contract holds (services/refunds.py PaymentRefunds)."""

from __future__ import annotations

import json

import pytest

from chalicelib.domain import ledger, money
from chalicelib.domain import refunds as R
from chalicelib.domain.commands import RentRequest
from chalicelib.domain.errors import PaymentAlreadyUsed, PaymentInvalid, Unavailable
from chalicelib.domain.signing import refund_memo, rent_memo
from chalicelib.jobs.refunds import handle_records
from tests.services.refund_support import M2, World, assert_books_balance
from tests.support.fakes import new_wallet

PRICE_1H = money.price_lamports(M2, 3600)


def work(w: World) -> None:
    """Deliver every queued message once."""
    records = [{"messageId": f"m{i}", "body": json.dumps(m)} for i, m in enumerate(w.queue.messages)]
    w.queue.messages.clear()
    assert handle_records(records, w.c.refund_worker) == {"batchItemFailures": []}


def test_a_payment_one_lamport_short_is_refunded_in_full_to_its_payer():
    w = World()
    payer = new_wallet()
    sig = w.rpc.pay(payer, PRICE_1H - 1, memo=rent_memo("M2", 3600))  # bound, but 1 lamport short
    with pytest.raises(PaymentInvalid) as refused:  # the rent that was refused
        w.c.rentals.rent(RentRequest(payer, "M2", 3600, sig))
    assert refused.value.reason == "insufficient_amount"

    pr = w.c.payment_refunds.request(sig, payer)
    assert pr.first and pr.refund.refund_id == f"PAY-{sig}-{payer}" and pr.refund.status == R.QUEUED
    assert pr.refund.lamports == PRICE_1H - 1
    assert w.queue.messages == [{"refund_id": f"PAY-{sig}-{payer}", "contract_id": f"PAY-{sig}-{payer}", "version": 1}]
    owed = [e for e in w.entries(f"PAY-{sig}-{payer}") if e.kind == "orphan_payment"]
    assert {(e.account, e.debit_lamports, e.credit_lamports) for e in owed} == {
        (ledger.TREASURY, PRICE_1H - 1, 0),
        (ledger.REFUNDS_PAYABLE, 0, PRICE_1H - 1),
    }

    work(w)
    [t] = w.chain.transfers
    assert (t.destination, t.lamports, t.memo) == (payer, PRICE_1H - 1, refund_memo(f"PAY-{sig}-{payer}"))
    assert w.c.payment_refunds.status(sig, payer).refund.status == R.CONFIRMED

    again = w.c.payment_refunds.request(sig, payer)  # a second request: the same refund
    assert not again.first and again.refund.status == R.CONFIRMED and again.refund.tx_signature == t.signature
    work(w)
    assert len(w.chain.transfers) == 1
    assert_books_balance(w)


def test_a_refunded_payment_can_never_pay_for_a_rental_afterwards():
    w = World()
    payer = new_wallet()
    sig = w.rpc.pay(payer, PRICE_1H, memo=rent_memo("M2", 3600))  # enough for a rental, but its payer asked for it back
    w.c.payment_refunds.request(sig, payer)
    with pytest.raises(PaymentAlreadyUsed):
        w.c.rentals.rent(RentRequest(payer, "M2", 3600, sig))
    assert list(w.db.tables["contracts"].values()) == []


def test_a_payment_a_contract_holds_is_409():
    w = World()
    payer = new_wallet()
    sig = w.rpc.pay(payer, PRICE_1H, memo=rent_memo("M2", 3600))
    w.c.rentals.rent(RentRequest(payer, "M2", 3600, sig))
    before = w.db.snapshot()
    with pytest.raises(PaymentAlreadyUsed):
        w.c.payment_refunds.request(sig, payer)
    assert w.db.snapshot() == before and w.queue.messages == []


def test_only_the_payer_and_only_a_payment_to_the_treasury():
    w = World()
    payer, other = new_wallet(), new_wallet()
    sig = w.rpc.pay(payer, 10_000)
    with pytest.raises(PaymentInvalid) as exc:
        w.c.payment_refunds.request(sig, other)  # not a signer of that payment
    assert exc.value.reason == "wrong_payer"
    elsewhere = w.rpc.pay(payer, 10_000, to=new_wallet())
    with pytest.raises(PaymentInvalid) as exc:
        w.c.payment_refunds.request(elsewhere, payer)
    assert exc.value.reason == "wrong_recipient"
    funding = w.rpc.pay(payer, 10_000, signers=[payer, w.chain.treasury])  # the treasury signed it
    with pytest.raises(PaymentInvalid) as exc:
        w.c.payment_refunds.request(funding, payer)
    assert exc.value.reason == "wrong_payer"
    w.c.payment_refunds.request(sig, payer)
    with pytest.raises(PaymentInvalid) as exc:
        w.c.payment_refunds.request(sig, other)  # its own share of that payment: it has none
    assert exc.value.reason == "wrong_payer"


def test_a_dust_payment_is_booked_as_retained_dust_and_never_sent():
    w = World()
    payer = new_wallet()
    sig = w.rpc.pay(payer, 1)
    pr = w.c.payment_refunds.request(sig, payer)
    assert pr.refund.status == R.DUST and w.queue.messages == []
    assert ledger.balance(w.entries(f"PAY-{sig}-{payer}"), ledger.RETAINED_DUST) == -1
    assert_books_balance(w)


def test_rpc_down_is_503_and_writes_nothing():
    w = World()
    payer = new_wallet()
    sig = w.rpc.pay(payer, 10_000)
    w.rpc.down = True
    before = w.db.snapshot()
    with pytest.raises(Unavailable):
        w.c.payment_refunds.request(sig, payer)
    assert w.db.snapshot() == before


def test_a_lost_enqueue_is_recovered_by_asking_again():
    w = World()
    payer = new_wallet()
    sig = w.rpc.pay(payer, 10_000)
    w.queue.fail_sends = 1
    assert w.c.payment_refunds.request(sig, payer).first
    assert w.queue.messages == []
    w.c.payment_refunds.request(sig, payer)
    work(w)
    assert w.c.payment_refunds.status(sig, payer).refund.status == R.CONFIRMED
    assert_books_balance(w)


def test_two_racing_requests_book_one_refund():
    w = World()
    payer = new_wallet()
    sig = w.rpc.pay(payer, 10_000)
    w.db.before_next("refunds.open_payment_refund", lambda: w.c.payment_refunds.request(sig, payer))
    pr = w.c.payment_refunds.request(sig, payer)
    assert not pr.first and pr.refund.refund_id == f"PAY-{sig}-{payer}"
    assert len([e for e in w.all_entries() if e.kind == "orphan_payment"]) == 2  # one booking, two legs
    assert_books_balance(w)
