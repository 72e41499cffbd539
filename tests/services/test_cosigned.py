"""Co-signed payments, on the fakes: one transaction moves lamports to the treasury from
several signers. Each payer's transfers are that payer's: a rent or an extend counts only
its wallet's, a claim is per signature AND payer, every other share is refundable to its
payer alone (their signed request or an operator's orphan refund), one payer's refund never
blocks another's, and the books and reconcile account for every share to the lamport."""

from __future__ import annotations

import pytest

from chalicelib.domain import ledger, money
from chalicelib.domain import refunds as R
from chalicelib.domain.commands import ExtendRequest, RentRequest
from chalicelib.domain.errors import InvalidRequest, PaymentAlreadyUsed, PaymentInvalid
from chalicelib.domain.signing import extend_memo, refund_memo, rent_memo
from tests.services.test_reconcile import work, world
from tests.support.fakes import new_signature, new_wallet, payment_tx

M2 = money.TIERS["M2"].lamports_per_hour
PRICE = money.price_lamports(M2, 3600)
SHARE = 300_000  # the co-signer's transfer in the probe


def cosigned(w, transfers: dict[str, int], memo: str | None = None) -> str:
    """One transaction signed by every payer of `transfers` (the first pays the fee and signs
    the memo), each payer → treasury its lamports."""
    payers = list(transfers)
    return w.rpc.land(
        payment_tx(
            new_signature(),
            signers=payers,
            transfers=[(p, w.settings.treasury, n) for p, n in transfers.items()],
            memo=memo,
            block_time=w.rpc.now_s(),
        )
    )


def books_balanced(w) -> None:
    entries = w.all_entries()
    assert ledger.balance(entries) == 0
    for e in {e.contract_id for e in entries}:
        assert ledger.balance([x for x in entries if x.contract_id == e]) == 0


def test_a_rent_counts_only_its_wallets_transfers_and_the_cosigners_share_stays_theirs():
    w = world()
    renter, cosigner = new_wallet(), new_wallet()
    sig = cosigned(w, {renter: PRICE, cosigner: SHARE}, memo=rent_memo("M2", 3600))
    receipt = w.c.rentals.rent(RentRequest(renter, "M2", 3600, sig))
    assert receipt.body["prepaid_lamports"] == PRICE  # not PRICE + SHARE: the co-signer's money is not the renter's
    assert w.c.claims.get_claim(sig, renter).kind == "rent"
    assert w.c.claims.get_claim(sig, cosigner) is None

    # before anyone claims it, reconcile names the co-signer's share: no unexplained difference
    rep = w.reconciler.run(orphan_age_seconds=0)
    assert rep.difference_lamports == 0, rep.mismatches
    [o] = rep.orphans
    assert (o.signature, o.payer, o.lamports) == (sig, cosigner, SHARE)
    assert not rep.ok  # an orphan share is a mismatch the operator must act on

    # the co-signer gets its share back by its own signed request
    pr = w.c.payment_refunds.request(sig, cosigner)
    assert pr.first and pr.refund.refund_id == f"PAY-{sig}-{cosigner}"
    assert (pr.refund.wallet, pr.refund.lamports, pr.refund.status) == (cosigner, SHARE, R.QUEUED)
    assert w.c.claims.get_claim(sig, renter).kind == "rent"  # the renter's claim is untouched
    books_balanced(w)
    mid = w.reconciler.run(orphan_age_seconds=0)
    assert mid.ok, mid.mismatches
    work(w)
    [t] = w.chain.transfers_to(cosigner)
    assert (t.lamports, t.memo) == (SHARE, refund_memo(f"PAY-{sig}-{cosigner}"))
    after = w.reconciler.run(orphan_age_seconds=0)
    assert after.ok and after.difference_lamports == 0, after.mismatches
    books_balanced(w)

    # the renter cannot take the co-signer's share, nor the co-signer the renter's
    with pytest.raises(PaymentAlreadyUsed):
        w.c.payment_refunds.request(sig, renter)  # the renter's share paid for its contract
    again = w.c.payment_refunds.request(sig, cosigner)
    assert not again.first and again.refund.status == R.CONFIRMED
    assert len(w.chain.transfers_to(cosigner)) == 1


def test_the_cosigner_can_rent_with_its_own_share_of_the_same_transaction():
    w = world()
    a, b = new_wallet(), new_wallet()
    sig = cosigned(w, {a: PRICE, b: PRICE})
    w.c.rentals.rent(RentRequest(a, "M2", 3600, sig), signed_by=a)
    other = w.c.rentals.rent(RentRequest(b, "M2", 3600, sig), signed_by=b)
    assert other.first and other.body["prepaid_lamports"] == PRICE
    with pytest.raises(PaymentAlreadyUsed):  # each share pays once
        w.c.rentals.rent(RentRequest(b, "M2", 1800, sig), signed_by=b)
    assert w.reconciler.run(orphan_age_seconds=0).ok
    books_balanced(w)


def test_an_extend_counts_only_the_contracts_wallet():
    w = world()
    renter, cosigner = new_wallet(), new_wallet()
    first = w.rpc.pay(renter, PRICE, memo=rent_memo("M2", 3600))
    c = w.c.rentals.rent(RentRequest(renter, "M2", 3600, first)).body["contract_id"]
    half = money.price_lamports(M2, 1800)
    # the co-signer pays the price of the extension; the renter pays 1 lamport short of it
    sig = cosigned(w, {renter: half - 1, cosigner: half}, memo=extend_memo(c, 1800))
    with pytest.raises(PaymentInvalid) as exc:
        w.c.rentals.extend(ExtendRequest(c, 1800, sig))
    assert exc.value.reason == "insufficient_amount"
    # each payer's share comes back to that payer alone
    assert w.c.payment_refunds.request(sig, renter).refund.lamports == half - 1
    assert w.c.payment_refunds.request(sig, cosigner).refund.lamports == half
    work(w)
    assert w.reconciler.run(orphan_age_seconds=0).ok
    books_balanced(w)


def test_one_payers_refund_never_blocks_anothers():
    w = world()
    a, b = new_wallet(), new_wallet()
    sig = cosigned(w, {a: 40_000, b: 60_000})
    pa = w.c.payment_refunds.request(sig, a)
    pb = w.c.payment_refunds.request(sig, b)  # was: several_payers, then 409
    assert (pa.refund.lamports, pb.refund.lamports) == (40_000, 60_000)
    assert pa.refund.refund_id != pb.refund.refund_id
    work(w)
    assert [t.lamports for t in w.chain.transfers_to(a)] == [40_000]
    assert [t.lamports for t in w.chain.transfers_to(b)] == [60_000]
    assert w.c.payment_refunds.status(sig, a).refund.status == R.CONFIRMED
    assert w.c.payment_refunds.status(sig, b).refund.status == R.CONFIRMED
    rep = w.reconciler.run(orphan_age_seconds=0)
    assert rep.ok and rep.difference_lamports == 0, rep.mismatches
    books_balanced(w)


def test_the_operator_refunds_each_orphan_share_to_its_payer():
    w = world()
    w.c.rentals.rent(RentRequest(r := new_wallet(), "M2", 3600, w.rpc.pay(r, PRICE, memo=rent_memo("M2", 3600))))
    a, b = new_wallet(), new_wallet()
    sig = cosigned(w, {a: 70_000, b: 80_000})
    rep = w.reconciler.run(orphan_age_seconds=0)
    assert [(o.payer, o.lamports) for o in rep.orphans] == sorted([(a, 70_000), (b, 80_000)])
    assert rep.difference_lamports == 0
    with pytest.raises(InvalidRequest) as ambiguous:  # two unclaimed shares: name one
        w.c.payment_refunds.refund_orphan(sig, w.history)
    assert ambiguous.value.reason == "payer"
    with pytest.raises(PaymentInvalid) as stranger:
        w.c.payment_refunds.refund_orphan(sig, w.history, new_wallet())
    assert stranger.value.reason == "wrong_payer"
    pb = w.c.payment_refunds.refund_orphan(sig, w.history, b)
    assert (pb.refund.wallet, pb.refund.lamports) == (b, 80_000)
    pa = w.c.payment_refunds.refund_orphan(sig, w.history)  # the only unclaimed share left
    assert (pa.refund.wallet, pa.refund.lamports) == (a, 70_000)
    with pytest.raises(PaymentAlreadyUsed):
        w.c.payment_refunds.refund_orphan(sig, w.history)
    with pytest.raises(PaymentAlreadyUsed):
        w.c.payment_refunds.refund_orphan(sig, w.history, a)
    work(w)
    assert sum(t.lamports for t in w.chain.transfers_to(a)) == 70_000
    assert sum(t.lamports for t in w.chain.transfers_to(b)) == 80_000
    assert w.reconciler.run(orphan_age_seconds=0).ok
    books_balanced(w)
