"""Dependency faults on the fakes, at every port call of every use case:

* a DynamoDB or RPC call that times out / is throttled before it runs (Unavailable): the
  request answers 503 and leaves nothing behind (snapshot before = after);
* a write that LANDED but whose answer was lost (a read timeout after the commit): the
  request answers 503, and the client's retry is idempotent (one contract, one extension,
  one settlement, one transfer);
* the SDK resending a landed transaction (`repeat_next`), and a transaction cancelled for
  TransactionConflict (`Conflict(contended=…)`): the service retries and succeeds;
* the refund chain down, dropping a transfer, slow to finalize, slow to show its fee.

After each: `harness.check`, and after recovery `check_settled`.
"""

from __future__ import annotations

import pytest

from chalicelib.domain import contracts as dc
from chalicelib.domain import refunds as R
from chalicelib.domain.errors import Conflict, InvalidRequest, PaymentAlreadyUsed, Unavailable
from tests.support.fakes import database_unavailable

from .harness import WRITES, Kill, World, check, check_settled
from .test_kill_every_step import SCENARIOS, _fresh, calls_of, same_ids  # noqa: F401

REQUESTS = ("rent", "extend", "settle", "payment_refund")  # answer a client: 503 on an outage


def _outage(call: str) -> Unavailable:
    if call.startswith(("rpc.", "chain.")):
        return Unavailable("Solana RPC unreachable (timeout)", reason="rpc")
    return database_unavailable()


@pytest.mark.parametrize("name", REQUESTS)
def test_a_request_whose_dependency_times_out_answers_503_and_leaves_nothing(name):
    s = SCENARIOS[name]
    for k, call in enumerate(calls_of(s)):
        if call.startswith("queue."):
            continue  # the queue port never raises: a lost enqueue is the sweep's (test_kill_every_step)
        w = _fresh(s)
        before = w.db.snapshot()
        w.kill = Kill(k, "before", _outage(call))
        with pytest.raises(Unavailable):
            s.run(w)
        assert w.db.snapshot() == before, f"{name}: {call} timed out and something was written"
        assert w.queue.messages == [] or name == "payment_refund" and not w.queue.messages
        check(w)
        s.restart(w)  # the client's retry once the dependency is back
        w.drain()
        check_settled(w)
        for after in s.checks:
            after(w)


@pytest.mark.parametrize("name", REQUESTS)
def test_a_write_that_landed_with_its_answer_lost_is_retried_idempotently(name):
    s = SCENARIOS[name]
    writes = [(k, c) for k, c in enumerate(calls_of(s)) if c.startswith(WRITES)]
    assert writes
    for k, call in writes:
        w = _fresh(s)
        w.kill = Kill(k, "after", _outage(call))
        try:  # a rent or extend reads the claim after a timeout and answers its receipt
            s.run(w)
        except Unavailable:
            pass
        check(w)
        s.restart(w)  # _rent_restart & co assert one contract, one extension, one settlement
        s.restart(w)  # and again
        w.drain()
        check_settled(w)
        for after in s.checks:
            after(w)


@pytest.mark.parametrize("name", ["refund_worker", "sweep"])
def test_a_background_job_whose_dependency_times_out_is_finished_by_the_next_run(name):
    s = SCENARIOS[name]
    for k, call in enumerate(calls_of(s)):
        if call.startswith("queue."):
            continue
        for when in ("before", "after"):
            w = _fresh(s)
            w.kill = Kill(k, when, _outage(call))
            s.run(w)  # the job reports (batchItemFailures / report.errors), it does not crash
            check(w)
            s.restart(w)
            w.drain()
            check_settled(w)
            for after in s.checks:
                after(w)


@pytest.mark.parametrize(
    "name, write",
    [
        ("rent", "tx.open_rental"),
        ("extend", "tx.extend_rental"),
        ("settle", "tx.end_rental"),
        ("payment_refund", "refunds.open_payment_refund"),
    ],
)
def test_the_sdk_resending_a_landed_transaction_is_answered_as_the_first(name, write):
    """botocore retries a TransactWriteItems whose answer timed out; the retry meets the first's
    own writes (ConditionalCheckFailed). The service must see its own write, not a rival's."""
    s = SCENARIOS[name]
    w = _fresh(s)
    w.db.repeat_next(write)
    s.run(w)
    check(w)
    s.restart(w)
    w.drain()
    check_settled(w)
    for after in s.checks:
        after(w)


@pytest.mark.parametrize(
    "name, write, roles",
    [
        ("rent", "tx.open_rental", ["device"]),
        ("extend", "tx.extend_rental", ["contract"]),
        ("settle", "tx.end_rental", ["contract"]),
        ("refund_worker", "refunds.advance", ["refund"]),
    ],
)
def test_transaction_conflicts_are_retried_until_they_pass(name, write, roles):
    """TransactionConflict: another transaction held an item; nothing was written. The
    adapter raises Conflict(contended=…); the service re-reads and tries again."""
    s = SCENARIOS[name]
    w = _fresh(s)
    w.db.fail_next(write, Conflict([], contended=roles), times=3)
    s.run(w)
    assert w.trace.count(write) == calls_of(s).count(write) + 3  # three cancelled, then through
    check(w)
    w.drain()
    check_settled(w)
    for after in s.checks:
        after(w)


def test_endless_transaction_conflicts_answer_503_contention_and_write_nothing():
    w = World()
    req = w.rent_request(3600)
    before = w.db.snapshot()
    w.db.fail_next("tx.open_rental", Conflict([], contended=["device"]), times=50)
    with pytest.raises(Unavailable) as exc:
        w.c.rentals.rent(req)
    assert exc.value.reason == "contention" and w.db.snapshot() == before
    w.db.clear_faults()
    assert w.c.rentals.rent(req).first
    check(w)


# --- extend: a retry after a lost answer, at the edge of the limits ------------------------
@pytest.mark.parametrize("limit", ["max_duration", "max_extensions"])
def test_an_extend_retried_after_its_lost_answer_replays_even_at_the_limits(limit, monkeypatch):
    """bug (fixed in services/rentals.py): the retry re-validated the limits against the
    contract it had already extended: an extension reaching the maximum duration (or the last
    extension allowed) committed, its answer was lost, and the retry got 400 instead of its
    receipt. A contract that already holds the payment replays the first answer."""
    if limit == "max_extensions":
        monkeypatch.setattr(dc, "MAX_EXTENSIONS", 1)
    w = World(max_duration_hours=2)
    k = w.rent(3600)
    req = w.extend_request(k, 3600 if limit == "max_duration" else 600)
    w.db.fail_next("tx.extend_rental", after=True)
    assert w.c.rentals.extend(req).first  # the claim read after the timeout shows it landed
    again = w.c.rentals.extend(req)
    assert again.first is False and again.body["contract_id"] == k.contract_id
    assert len(w.c.contracts.get(k.contract_id).payments) == 2
    with pytest.raises((InvalidRequest, PaymentAlreadyUsed)):  # other terms with that payment: refused
        from chalicelib.domain.commands import ExtendRequest

        w.c.rentals.extend(ExtendRequest(k.contract_id, 60, req.tx_signature))
    check(w)


# --- the refund chain: down, dropping, slow ------------------------------------------------
def _owed(w: World, n: int = 3) -> list[dc.Contract]:
    ks = [w.rent(3600, overpay=30_000 + i) for i in range(n)]
    w.clock.advance(900)
    return [w.c.rentals.settle(k.contract_id, k.wallet) for k in ks]


def test_refund_chain_down_leaves_every_message_for_redelivery_and_nothing_paid():
    w = World()
    owed = _owed(w)
    w.chain.down = True
    before = w.db.snapshot()
    failed = w.deliver(w.collect())
    assert len(failed) == 3 and w.chain.transfers == [] and w.db.snapshot() == before
    check(w)
    w.drain()
    check_settled(w)
    assert all(len(w.chain.transfers_to(k.wallet)) == 1 for k in owed)


def test_a_dropped_transfer_is_replaced_once_its_blockhash_expired_and_paid_once():
    w = World()
    [k] = _owed(w, 1)
    w.chain.drop_sends = 100  # accepted by the node, never landing (a congested leader drops them)
    assert w.deliver(w.collect()) != []  # sent, resent, pending: retried later
    for _ in range(3):  # redeliveries while the first may still land: resent, never replaced
        assert w.deliver(w.inbox) != []
    assert w.c.contracts.get(k.contract_id).refund_attempt == 1 and w.chain.transfers == []
    assert len(set(w.chain.sent)) == 1 and len(w.chain.sent) >= 4  # the same bytes, again and again
    w.chain.drop_sends = 0
    w.chain.advance()  # past its last valid block height
    assert w.deliver(w.inbox) == []
    after = w.c.contracts.get(k.contract_id)
    assert (after.refund_status, after.refund_attempt) == (R.CONFIRMED, 2)
    check_settled(w)
    assert len(w.chain.transfers_to(k.wallet)) == 1


def test_a_slow_chain_pending_then_fee_unreadable_waits_and_confirms_once():
    w = World()
    [k] = _owed(w, 1)
    w.chain.pending = True  # landed at "processed" only: not final
    for _ in range(4):
        assert w.deliver(w.collect()) != []
        check(w)  # a landed transfer not yet booked is in flight, not lost
    assert len(w.chain.transfers) == 1
    w.chain.pending, w.chain.fee_unreadable = False, True
    assert w.deliver(w.inbox) != []
    assert w.c.contracts.get(k.contract_id).refund_status == R.SENT
    w.chain.fee_unreadable = False
    assert w.deliver(w.inbox) == []
    check_settled(w)
    assert len(w.chain.transfers_to(k.wallet)) == 1


def test_rpc_down_for_payments_answers_503_and_leaves_nothing():
    w = World()
    k = w.rent(3600)
    rent, extend = w.rent_request(600), w.extend_request(k, 600)
    before = w.db.snapshot()
    w.rpc.down = True
    for call in (lambda: w.c.rentals.rent(rent), lambda: w.c.rentals.extend(extend)):
        with pytest.raises(Unavailable) as exc:
            call()
        assert exc.value.reason == "rpc"
    assert w.db.snapshot() == before
    w.rpc.down = False
    assert w.c.rentals.rent(rent).first and w.c.rentals.extend(extend).first
    check(w)


@pytest.mark.parametrize("by", ["settle", "sweep"])
def test_an_sdk_resent_settlement_queues_its_refund_at_once(by):
    """The refund of a settlement whose transaction the SDK re-sent is queued by that request,
    not left to the sweep's requeue. (Today: left to the sweep; never lost, see
    test_the_sdk_resending_a_landed_transaction_is_answered_as_the_first.)"""
    w = World()
    k = w.rent(600 if by == "sweep" else 3600, overpay=25_000)
    w.clock.advance(700)
    w.db.repeat_next("tx.end_rental")
    if by == "settle":
        ended = w.c.rentals.settle(k.contract_id, k.wallet)
    else:
        report = w.c.sweep.run()
        assert (report.expired, report.lost_races, report.refunds_queued) == (1, 0, 1)
        ended = w.c.contracts.get(k.contract_id)
    assert [m["refund_id"] for m in w.queue.messages] == [k.contract_id]
    assert w.deliver(w.collect()) == []
    check_settled(w)
    assert [t.lamports for t in w.chain.transfers_to(k.wallet)] == [ended.refund_lamports]
