"""ports.RefundStore and ports.BookStore: one suite over the fakes and the
DynamoDB adapters on moto."""

from __future__ import annotations

import pytest

from chalicelib.domain import books, ledger
from chalicelib.domain import contracts as dc
from chalicelib.domain import refunds as R
from chalicelib.domain.errors import Conflict
from chalicelib.domain.records import Claim
from tests.contract.test_storage import NOW, new_contract, rent, spec
from tests.support.fakes import new_signature, new_wallet


def settled(store, refund_min: int = 5_000) -> dc.Contract:
    store.devices.upsert(spec("dev-1"), 4)
    c = rent(store, new_contract("dev-1"))
    after = dc.finalize(c, now_ms=NOW + 600_000, refund_min_lamports=refund_min)
    store.tx.end_rental(c, after, ledger.settlement_postings(after))
    return after


def sent(store, r: R.Refund, sig: str | None = None, lvbh: int = 500) -> R.Refund:
    after = R.mark_sent(r, sig or new_signature(), lvbh, b"\x01signed-bytes\x00")
    store.refunds.advance(r, after, [], NOW)
    return after


def test_a_contract_refund_reads_back_from_its_contract(store):
    c = settled(store)
    r = store.refunds.get(c.contract_id)
    assert (r.refund_id, r.wallet, r.lamports, r.status, r.version) == (
        c.contract_id,
        c.wallet,
        c.refund_lamports,
        R.QUEUED,
        c.version,
    )
    assert store.refunds.get(dc.new_contract_id()) is None
    store.devices.upsert(spec("dev-2"), 4)
    active = rent(store, new_contract("dev-2"))
    assert store.refunds.get(active.contract_id) is None  # ACTIVE: no refund yet


def test_each_step_is_conditional_on_the_record_read(store):
    c = settled(store)
    r = store.refunds.get(c.contract_id)
    s = sent(store, r)
    got = store.refunds.get(c.contract_id)
    assert (got.status, got.tx_signature, got.last_valid_block_height, got.attempt, got.raw, got.version) == (
        R.SENT,
        s.tx_signature,
        500,
        1,
        b"\x01signed-bytes\x00",
        r.version + 1,
    )
    assert store.contracts.get(c.contract_id).version == r.version + 1
    # a second delivery that read QUEUED loses: nothing written
    before = store.snapshot()
    with pytest.raises(Conflict) as exc:
        store.refunds.advance(r, R.mark_sent(r, new_signature(), 501, b"other"), [], NOW)
    assert exc.value.failed == {"refund"}
    assert store.snapshot() == before
    # a replacement on a stale transaction loses too
    stale = R.Refund(**{**s.__dict__, "tx_signature": new_signature()})
    v = R.Verdict(R.EXPIRED, 500)
    with pytest.raises(Conflict):
        store.refunds.advance(stale, R.replace_expired(stale, v, new_signature(), 900), [], NOW)
    assert store.snapshot() == before


def test_confirm_books_paid_and_fee_once_and_leaves_the_pending_index(store):
    c = settled(store)
    s = sent(store, store.refunds.get(c.contract_id))
    assert [x.contract_id for x in store.contracts.refunds_owed(_shard(c), NOW + 10**9, 10)] == [c.contract_id]
    done = R.confirm(s, 5000, NOW + 1)
    store.refunds.advance(s, done, ledger.refund_paid_postings(done), NOW + 1)
    got = store.refunds.get(c.contract_id)
    assert (got.status, got.fee_lamports, got.confirmed_at_ms, got.raw) == (R.CONFIRMED, 5000, NOW + 1, None)
    assert store.contracts.refunds_owed(_shard(c), NOW + 10**9, 10) == []
    entries, _ = store.ledger.by_contract(c.contract_id, 100, None)
    assert ledger.balance(entries) == 0 and ledger.balance(entries, ledger.REFUNDS_PAYABLE) == 0
    # the same entries again (another path) are refused as a whole
    before = store.snapshot()
    with pytest.raises(Conflict):
        store.refunds.advance(s, done, ledger.refund_paid_postings(done), NOW + 1)
    assert store.snapshot() == before


def test_failed_keeps_the_money_owed_and_leaves_the_pending_index(store):
    c = settled(store)
    r = store.refunds.get(c.contract_id)
    store.refunds.advance(r, R.fail(r, "InsufficientFundsForRent: account 1"), [], NOW)
    got = store.refunds.get(c.contract_id)
    assert (got.status, got.reason) == (R.FAILED, "InsufficientFundsForRent: account 1")
    assert store.contracts.refunds_owed(_shard(c), NOW + 10**9, 10) == []
    back = R.retry(got)
    store.refunds.advance(got, back, [], NOW + 5)
    assert store.refunds.get(c.contract_id).status == R.QUEUED
    assert [x.contract_id for x in store.contracts.refunds_owed(_shard(c), NOW + 10**9, 10)] == [c.contract_id]


def test_a_payment_refund_claims_the_signature_with_its_booking(store):
    sig, wallet = new_signature(), new_wallet()
    rid = R.payment_refund_id(sig, wallet)
    r = R.new_refund(rid, wallet, 12_345, min_lamports=5000)
    claim = Claim(sig, "refund", rid, wallet, f"refund:{wallet}", {"refund_id": rid})
    store.refunds.open_payment_refund(claim, r, ledger.orphan_payment_postings(rid, 12_345, sig, NOW), NOW)
    got = store.refunds.get(rid)
    assert (got.refund_id, got.wallet, got.lamports, got.status, got.version) == (rid, wallet, 12_345, R.QUEUED, 1)
    held = store.claims.get_claim(sig, wallet)
    assert (held.kind, held.contract_id, held.wallet) == ("refund", rid, wallet)
    before = store.snapshot()
    with pytest.raises(Conflict) as exc:  # a second booking
        store.refunds.open_payment_refund(claim, r, ledger.orphan_payment_postings(rid, 12_345, sig, NOW), NOW)
    assert "claim" in exc.value.failed and store.snapshot() == before
    # a co-signer's share of the same transaction is claimed apart: its refund books beside it
    other = new_wallet()
    rid2 = R.payment_refund_id(sig, other)
    r2 = R.new_refund(rid2, other, 300_000, min_lamports=5000)
    claim2 = Claim(sig, "refund", rid2, other, f"refund:{other}", {"refund_id": rid2})
    store.refunds.open_payment_refund(claim2, r2, ledger.orphan_payment_postings(rid2, 300_000, sig, NOW), NOW)
    assert store.refunds.get(rid2).wallet == other and store.refunds.get(rid2).lamports == 300_000
    assert store.claims.get_claim(sig, other).contract_id == rid2
    assert store.refunds.get(rid).lamports == 12_345  # the first payer's refund is untouched
    s = sent(store, got)
    assert store.refunds.get(rid).status == R.SENT and store.refunds.get(rid).tx_signature == s.tx_signature
    # a signature held by a rental is not a payment refund
    store.devices.upsert(spec("dev-9"), 4)
    c = rent(store, new_contract("dev-9"))
    assert store.refunds.get(R.payment_refund_id(c.payments[0].sig, c.wallet)) is None


def test_the_counters_add_up_every_record(store):
    c = settled(store)
    store.devices.upsert(spec("dev-3"), 4)
    active = rent(store, new_contract("dev-3"))
    s = sent(store, store.refunds.get(c.contract_id))
    done = R.confirm(s, 5000, NOW)
    store.refunds.advance(s, done, ledger.refund_paid_postings(done), NOW)
    sig, payer = new_signature(), new_wallet()
    rid = R.payment_refund_id(sig, payer)
    pr = R.new_refund(rid, payer, 7_000, min_lamports=5000)
    store.refunds.open_payment_refund(Claim(sig, "refund", rid, pr.wallet, "r", {}), pr, [], NOW)
    t = books.total(store.book.counters())
    assert len(store.book.counters()) <= 4  # one item per shard at most
    assert (t["contracts_ACTIVE"], t["contracts_SETTLED"], t["active_prepaid_lamports"]) == (
        1,
        1,
        active.received_lamports,
    )
    assert t["revenue_lamports"] == c.used_lamports
    assert (t["refunds_CONFIRMED_n"], t["refunds_CONFIRMED_lamports"], t["refund_fees_lamports"]) == (
        1,
        c.refund_lamports,
        5000,
    )
    assert (t["refunds_QUEUED_n"], t["refunds_QUEUED_lamports"]) == (1, 7_000)


def _shard(c):
    from chalicelib.domain.storage import shard_of
    from tests.contract.conftest import SHARDS

    return shard_of(c.contract_id, SHARDS)
