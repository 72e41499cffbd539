"""Rentals.settle and .status on fakes: exact settlement figures, dust, idempotence, lost races,
an answer lost after the write, the refund queue down, outages."""

from __future__ import annotations

import pytest

from chalicelib.domain import contracts as dc
from chalicelib.domain import ledger
from chalicelib.domain.errors import Conflict, Forbidden, NotFound, Unavailable
from chalicelib.services.rentals import MAX_RETRIES
from tests.support.fakes import new_wallet


@pytest.fixture
def k(w) -> dc.Contract:
    """ORIN for 2 h, paid exactly (8,000,000)."""
    return w.rent("ORIN", 7200, 8_000_000)


def _settlement(w, contract_id):
    return {
        (e.account, e.debit_lamports, e.credit_lamports, e.kind)
        for e in w.entries(contract_id)
        if e.kind not in ("rent", "extend")
    }


def test_settle_bills_the_time_used_and_queues_the_rest(w, k):
    w.clock.advance(1800)
    s = w.rentals.settle(k.contract_id, k.wallet)
    assert (s.status, s.version, s.refund_status) == (dc.SETTLED, 2, dc.REFUND_QUEUED)
    assert (s.used_lamports, s.refund_lamports) == (2_000_000, 6_000_000)  # 4,000,000 × 0.5 h
    assert s.ended_at_ms == w.clock() and w.p.contracts.get(k.contract_id) == s
    assert w.leases() == {}  # the slot is free again
    assert w.queue.messages == [{"refund_id": k.contract_id, "contract_id": k.contract_id, "version": 2}]
    assert _settlement(w, k.contract_id) == {
        (ledger.escrow(k.contract_id), 8_000_000, 0, "settled"),
        (ledger.REVENUE, 0, 2_000_000, "settled"),
        (ledger.REFUNDS_PAYABLE, 0, 6_000_000, "settled"),
    }
    rows = w.entries(k.contract_id)
    assert ledger.balance(rows) == 0 and ledger.balance(rows, ledger.escrow(k.contract_id)) == 0


def test_usage_is_floored_to_the_lamport_at_millisecond_resolution(w):
    k = w.rent("M2", 3600, 1_000_000)
    w.clock.now_ms += 1001
    s = w.rentals.settle(k.contract_id, k.wallet)
    assert (s.used_lamports, s.refund_lamports) == (278, 999_722)  # 1,000,000 × 1001 / 3,600,000 = 278.05…


def test_settle_twice_is_the_same_settlement_and_one_refund(w, k):
    w.clock.advance(1800)
    first = w.rentals.settle(k.contract_id, k.wallet)
    before = w.db.snapshot()
    w.clock.advance(600)
    again = w.rentals.settle(k.contract_id, k.wallet)
    assert again == first and w.db.snapshot() == before
    assert len(w.queue.messages) == 1


def test_only_the_contracts_wallet_may_settle(w, k):
    before = w.db.snapshot()
    with pytest.raises(Forbidden) as exc:
        w.rentals.settle(k.contract_id, new_wallet())
    assert exc.value.reason == "wallet" and w.db.snapshot() == before and w.queue.messages == []


def test_no_such_contract(w):
    with pytest.raises(NotFound):
        w.rentals.settle("CTR-nosuchcontract000000", new_wallet())
    with pytest.raises(NotFound):
        w.c.contract_reads.status("CTR-nosuchcontract000000")


def test_past_its_expiry_it_is_expired_and_only_the_overpayment_comes_back(w):
    k = w.rent("M2", 3600, 1_010_000)
    w.clock.advance(5000)
    s = w.rentals.settle(k.contract_id, k.wallet)
    assert (s.status, s.ended_at_ms, s.used_lamports, s.refund_lamports, s.refund_status) == (
        dc.EXPIRED,
        k.expires_at_ms,
        1_000_000,
        10_000,
        dc.REFUND_QUEUED,
    )
    assert {e.kind for e in w.entries(k.contract_id)} == {"rent", "expired"}


@pytest.mark.parametrize(
    "overpaid, status, queued",
    [
        (0, dc.REFUND_DUST, 0),  # nothing left: no refund leg at all
        (4_999, dc.REFUND_DUST, 0),  # below refund_min_lamports (5,000): retained
        (5_000, dc.REFUND_QUEUED, 1),  # exactly the minimum is sent
    ],
)
def test_a_refund_below_the_minimum_is_retained_dust(w, overpaid, status, queued):
    k = w.rent("M2", 3600, 1_000_000 + overpaid)
    w.clock.advance(3600)
    s = w.rentals.settle(k.contract_id, k.wallet)
    assert (s.refund_lamports, s.refund_status, len(w.queue.messages)) == (overpaid, status, queued)
    owed = ledger.REFUNDS_PAYABLE if queued else ledger.RETAINED_DUST
    assert ledger.balance(w.entries(k.contract_id), owed) == -overpaid
    assert ledger.balance(w.entries(k.contract_id)) == 0


def test_the_queue_down_still_commits_and_leaves_the_refund_queued_for_the_sweep(w, k):
    w.queue.down = True
    w.clock.advance(1800)
    s = w.rentals.settle(k.contract_id, k.wallet)
    assert s.status == dc.SETTLED and s.refund_status == dc.REFUND_QUEUED
    assert w.p.contracts.get(k.contract_id) == s and w.queue.messages == []
    assert [c.contract_id for c in w.p.contracts.refunds_owed(0, w.clock(), 10)] == [k.contract_id]


# --- lost races ----------------------------------------------------------------------------------


def test_a_concurrent_extension_bumps_the_version_so_settle_re_reads_and_bills_it(w, k):
    w.clock.advance(1800)
    rival = w.extend_request(k, 1800, 2_000_000)
    w.db.before_next("tx.end_rental", lambda: w.rentals.extend(rival))
    s = w.rentals.settle(k.contract_id, k.wallet)
    assert (s.version, s.received_lamports, s.used_lamports, s.refund_lamports) == (3, 10_000_000, 2_000_000, 8_000_000)
    assert w.queue.messages == [{"refund_id": k.contract_id, "contract_id": k.contract_id, "version": 3}]
    assert ledger.balance(w.entries(k.contract_id)) == 0


def test_a_concurrent_settle_wins_so_both_answer_the_same_settlement_and_one_refund(w, k):
    w.clock.advance(1800)
    rival = []
    w.db.before_next("tx.end_rental", lambda: rival.append(w.rentals.settle(k.contract_id, k.wallet)))
    mine = w.rentals.settle(k.contract_id, k.wallet)
    assert mine == rival[0] and len(w.queue.messages) == 1
    assert len([e for e in w.entries(k.contract_id) if e.kind == "settled"]) == 3
    assert w.leases() == {}


def test_the_retry_loop_gives_up_as_unavailable_and_writes_nothing(w, k):
    w.db.fail_next("tx.end_rental", Conflict(["contract"]), times=MAX_RETRIES)
    before = w.db.snapshot()
    with pytest.raises(Unavailable) as exc:
        w.rentals.settle(k.contract_id, k.wallet)
    assert exc.value.reason == "contention" and w.db.snapshot() == before and w.queue.messages == []


def test_a_settlement_that_landed_but_whose_answer_was_lost_is_returned_by_the_retry(w, k):
    w.clock.advance(1800)
    w.db.fail_next("tx.end_rental", after=True)
    with pytest.raises(Unavailable):
        w.rentals.settle(k.contract_id, k.wallet)
    stored = w.p.contracts.get(k.contract_id)
    assert stored.status == dc.SETTLED and w.queue.messages == []
    w.clock.advance(60)
    assert w.rentals.settle(k.contract_id, k.wallet) == stored
    # nobody queued its refund: it stays QUEUED in the table, where the sweep finds it
    assert w.queue.messages == []
    assert [c.contract_id for c in w.p.contracts.refunds_owed(0, w.clock(), 10)] == [k.contract_id]


def test_an_sdk_retry_of_a_landed_settlement_is_read_back_as_the_settlement(w, k):
    w.clock.advance(1800)
    w.db.repeat_next("tx.end_rental")
    s = w.rentals.settle(k.contract_id, k.wallet)
    assert s == w.p.contracts.get(k.contract_id) and s.status == dc.SETTLED
    assert len([e for e in w.entries(k.contract_id) if e.kind == "settled"]) == 3


def test_an_sdk_retry_of_a_landed_settlement_still_queues_its_refund(w, k):
    w.clock.advance(1800)
    w.db.repeat_next("tx.end_rental")
    s = w.rentals.settle(k.contract_id, k.wallet)
    assert w.queue.messages == [{"refund_id": k.contract_id, "contract_id": k.contract_id, "version": s.version}]


@pytest.mark.parametrize("down", ["database", "contracts", "tx"])
def test_a_store_outage_is_unavailable_and_writes_nothing(w, k, down):
    before = w.db.snapshot()
    if down == "database":
        w.db.down = True
    else:
        getattr(w.p, down).down = True
    with pytest.raises(Unavailable):
        w.rentals.settle(k.contract_id, k.wallet)
    assert w.db.snapshot() == before and w.queue.messages == []


# --- status --------------------------------------------------------------------------------------


def test_status_is_the_stored_contract_with_live_figures_at_the_read(w, k):
    w.clock.advance(900)
    snap = w.c.contract_reads.status(k.contract_id)
    assert snap.contract == k and snap.at_ms == w.clock()
    f = snap.contract.figures(snap.at_ms)
    assert (f.elapsed_ms, f.used_lamports, f.refund_available_lamports, f.remaining_seconds) == (
        900_000,
        1_000_000,
        7_000_000,
        6300,
    )


def test_status_of_a_settled_contract_is_frozen_at_its_end(w, k):
    w.clock.advance(1800)
    w.rentals.settle(k.contract_id, k.wallet)
    w.clock.advance(3600)
    snap = w.c.contract_reads.status(k.contract_id)
    f = snap.contract.figures(snap.at_ms)
    assert (f.elapsed_ms, f.used_lamports, f.refund_available_lamports, f.remaining_seconds) == (
        1_800_000,
        2_000_000,
        0,
        0,
    )


def test_status_in_an_outage_is_unavailable(w, k):
    w.p.contracts.down = True
    with pytest.raises(Unavailable):
        w.c.contract_reads.status(k.contract_id)
