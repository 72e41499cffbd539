"""The refund worker (services/refunds.py RefundWorker + jobs/refunds.py) on fakes: exact
lamports and memo, idempotent under concurrent deliveries and crashes, one replacement
for an expired blockhash, outages retried, refusals FAILED and still owed."""

from __future__ import annotations

import json
import threading

import pytest

from chalicelib.domain import ledger
from chalicelib.domain import refunds as R
from chalicelib.domain.errors import Unavailable
from chalicelib.domain.signing import refund_memo
from chalicelib.jobs.refunds import handle_records
from tests.services.refund_support import World, assert_books_balance
from tests.support.fakes import REFUND_FEE


def deliver(w: World, refund_id: str, message_id: str = "m-1") -> list[str]:
    """One SQS delivery of the refund's message; the message ids left for redelivery."""
    body = json.dumps({"refund_id": refund_id, "version": 2})
    out = handle_records([{"messageId": message_id, "body": body}], w.c.refund_worker)
    return [f["itemIdentifier"] for f in out["batchItemFailures"]]


def test_a_refund_lands_with_the_exact_lamports_and_the_contract_memo():
    w = World()
    c = w.settled(after_seconds=900, overpay=123_457)
    assert c.refund_status == R.QUEUED and w.queue.messages[-1]["refund_id"] == c.contract_id
    owed = c.refund_lamports
    assert owed == c.received_lamports - c.used_lamports > 0

    assert deliver(w, c.contract_id) == []

    [t] = w.chain.transfers
    assert (t.destination, t.lamports, t.memo, t.err) == (c.wallet, owed, refund_memo(c.contract_id), None)
    assert w.chain.balances[c.wallet] == owed
    after = w.c.contracts.get(c.contract_id)
    assert (after.refund_status, after.refund_tx, after.refund_fee, after.refund_attempt) == (
        R.CONFIRMED,
        t.signature,
        REFUND_FEE,
        1,
    )
    assert after.refund_raw is None  # the signed bytes are dropped once it landed
    kinds = {
        (e.account, e.debit_lamports, e.credit_lamports)
        for e in w.entries(c.contract_id)
        if e.kind in ("refund", "network_fee")
    }
    assert kinds == {
        (ledger.REFUNDS_PAYABLE, owed, 0),
        (ledger.TREASURY, 0, owed),
        (ledger.NETWORK_FEES, REFUND_FEE, 0),
        (ledger.TREASURY, 0, REFUND_FEE),
    }
    assert ledger.balance(w.entries(c.contract_id), ledger.REFUNDS_PAYABLE) == 0
    assert w.c.contracts.refunds_owed(0, 10**15, 10) + w.c.contracts.refunds_owed(1, 10**15, 10) == []
    # redelivered after it landed: nothing more happens
    assert deliver(w, c.contract_id) == []
    assert len(w.chain.transfers) == 1
    assert_books_balance(w)


def test_a_delivery_reads_the_record_once_and_goes_on_from_its_own_writes():
    w = World()
    c = w.settled(overpay=50_000)
    w.db.calls.clear()
    assert deliver(w, c.contract_id) == []
    refunds = [name for name in w.db.calls if name.startswith("refunds.")]
    # QUEUED -> SENT -> CONFIRMED: one read, then each step on the record its own write left
    assert refunds == ["refunds.get", "refunds.advance", "refunds.advance"]
    assert w.c.contracts.get(c.contract_id).refund_status == R.CONFIRMED
    assert_books_balance(w)


def test_a_record_moved_by_another_delivery_after_our_write_is_read_again_and_confirmed_once():
    w = World()
    c = w.settled(overpay=50_000)
    # between this delivery's SENT write and its next step, a second delivery confirms the refund
    w.chain.on_call["status"] = lambda: deliver(w, c.contract_id, "m-2")
    w.db.calls.clear()
    assert deliver(w, c.contract_id) == []
    after = w.c.contracts.get(c.contract_id)
    assert after.refund_status == R.CONFIRMED and len(w.chain.transfers) == 1
    # the first delivery's CONFIRM on its own (stale) record lost the race, read again, saw it done
    assert w.db.calls.count("refunds.get") == 3
    [paid] = [e for e in w.entries(c.contract_id) if e.kind == "refund" and e.account == ledger.REFUNDS_PAYABLE]
    assert paid.debit_lamports == after.refund_lamports
    assert_books_balance(w)


def test_five_concurrent_deliveries_give_one_transfer():
    w = World()
    c = w.settled(overpay=50_000)
    barrier = threading.Barrier(5, timeout=5)
    prepare = w.chain.prepare

    def racing_prepare(refund, blockhash):  # every delivery has read QUEUED before any records
        barrier.wait()
        return prepare(refund, blockhash)

    w.chain.prepare = racing_prepare
    results = []
    threads = [
        threading.Thread(target=lambda i=i: results.append(deliver(w, c.contract_id, f"m-{i}"))) for i in range(5)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert len(w.chain.transfers) == 1 and len(w.chain.sent) == 1
    assert w.c.contracts.get(c.contract_id).refund_status == R.CONFIRMED
    assert sum(len(r) for r in results) == 0  # every delivery ended done
    assert_books_balance(w)


def test_a_crash_after_the_broadcast_sends_no_second_transfer():
    w = World()
    c = w.settled(overpay=50_000)
    send = w.chain.send

    def send_then_die(raw):
        send(raw)
        raise RuntimeError("the function was killed right after the broadcast")

    w.chain.send = send_then_die
    assert deliver(w, c.contract_id) == ["m-1"]
    assert w.c.contracts.get(c.contract_id).refund_status == R.SENT  # recorded BEFORE the broadcast
    w.chain.send = send
    assert deliver(w, c.contract_id) == []
    assert len(w.chain.transfers) == 1
    assert w.c.contracts.get(c.contract_id).refund_status == R.CONFIRMED
    assert_books_balance(w)


def test_a_crash_between_recording_and_broadcast_resends_the_same_bytes():
    w = World()
    c = w.settled(overpay=50_000)
    w.chain.on_call["send"] = lambda: (_ for _ in ()).throw(RuntimeError("killed before the broadcast"))
    assert deliver(w, c.contract_id) == ["m-1"]
    rec = w.c.contracts.get(c.contract_id)
    assert rec.refund_status == R.SENT and w.chain.transfers == []
    assert deliver(w, c.contract_id) == []
    [t] = w.chain.transfers
    assert t.signature == rec.refund_tx  # the recorded transaction, not a new one
    assert_books_balance(w)


def test_a_lost_answer_of_the_record_write_still_sends_one_transfer():
    w = World()
    c = w.settled(overpay=50_000)
    w.db.fail_next("refunds.advance", after=True)  # SENT is stored, the worker hears an outage
    assert deliver(w, c.contract_id) == ["m-1"]
    assert w.chain.transfers == []
    assert deliver(w, c.contract_id) == []
    assert len(w.chain.transfers) == 1
    assert_books_balance(w)


def test_an_expired_blockhash_gives_one_replacement_and_one_transfer():
    w = World()
    c = w.settled(overpay=50_000)
    # pending after the broadcast; the same run pushes the same bytes again: dropped as well
    w.chain.drop_sends = 2
    assert deliver(w, c.contract_id) == ["m-1"]
    first = w.c.contracts.get(c.contract_id)
    assert first.refund_status == R.SENT and first.refund_attempt == 1
    w.chain.drop_sends = 5  # every push of the first transaction is lost
    assert deliver(w, c.contract_id) == ["m-1"]
    w.chain.advance()  # past its last valid block height
    w.chain.drop_sends = 0
    assert deliver(w, c.contract_id) == []
    after = w.c.contracts.get(c.contract_id)
    assert after.refund_status == R.CONFIRMED and after.refund_attempt == 2
    assert after.refund_tx != first.refund_tx
    assert len(w.chain.transfers) == 1 and w.chain.transfers[0].signature == after.refund_tx
    assert_books_balance(w)


def test_with_the_rpc_down_the_message_comes_back_and_confirms_once_it_returns():
    w = World()
    c = w.settled(overpay=50_000)
    w.chain.down = True
    for _ in range(3):
        assert deliver(w, c.contract_id) == ["m-1"]  # listed for redelivery, nothing lost
    assert w.c.contracts.get(c.contract_id).refund_status == R.QUEUED
    w.chain.down = False
    w.chain.on_call["send"] = lambda: setattr(w.chain, "down", True)  # goes down mid-flight
    assert deliver(w, c.contract_id) == ["m-1"]
    assert w.c.contracts.get(c.contract_id).refund_status == R.SENT
    w.chain.down = False
    assert deliver(w, c.contract_id) == []
    assert w.c.contracts.get(c.contract_id).refund_status == R.CONFIRMED
    assert len(w.chain.transfers) == 1
    assert_books_balance(w)


def test_a_database_outage_is_retried_later():
    w = World()
    c = w.settled(overpay=50_000)
    w.db.down = True
    assert deliver(w, c.contract_id) == ["m-1"]
    w.db.down = False
    assert deliver(w, c.contract_id) == []
    assert len(w.chain.transfers) == 1


def test_a_refused_recipient_is_failed_with_the_reason_and_still_owed():
    w = World()
    c = w.settled(overpay=50_000)
    w.chain.refused[c.wallet] = "InsufficientFundsForRent: account 1"
    assert deliver(w, c.contract_id) == []  # done: retrying would be refused again
    after = w.c.contracts.get(c.contract_id)
    assert (after.refund_status, after.refund_reason) == (R.FAILED, "InsufficientFundsForRent: account 1")
    assert w.chain.transfers == []
    owed = -ledger.balance(w.entries(c.contract_id), ledger.REFUNDS_PAYABLE)
    assert owed == c.refund_lamports  # still payable in the ledger
    assert w.counters()["refunds_FAILED_lamports"] == c.refund_lamports
    assert deliver(w, c.contract_id) == []  # FAILED waits for an operator
    assert w.chain.transfers == []
    assert_books_balance(w)


def test_a_transfer_that_lands_with_an_error_is_failed_and_its_fee_booked():
    w = World()
    c = w.settled(overpay=50_000)
    w.chain.land_with_error[c.wallet] = {"InstructionError": [0, {"Custom": 1}]}
    assert deliver(w, c.contract_id) == []
    after = w.c.contracts.get(c.contract_id)
    assert after.refund_status == R.FAILED and after.refund_reason == "InstructionError: 0 Custom 1"
    assert ledger.balance(w.entries(c.contract_id), ledger.NETWORK_FEES) == REFUND_FEE
    assert -ledger.balance(w.entries(c.contract_id), ledger.REFUNDS_PAYABLE) == c.refund_lamports
    assert_books_balance(w)


def test_a_pending_transaction_waits_without_a_second_transfer():
    w = World()
    c = w.settled(overpay=50_000)
    w.chain.pending = True
    assert deliver(w, c.contract_id) == ["m-1"]
    assert deliver(w, c.contract_id) == ["m-1"]
    assert len(w.chain.transfers) == 1
    w.chain.pending = False
    assert deliver(w, c.contract_id) == []
    assert w.c.contracts.get(c.contract_id).refund_status == R.CONFIRMED


def test_dust_and_unknown_ids_are_done_and_malformed_messages_dropped():
    w = World(refund_min_lamports=10**9)
    c = w.settled(overpay=0, after_seconds=3000)
    assert c.refund_status == R.DUST and w.queue.messages == []
    assert deliver(w, c.contract_id) == []
    assert deliver(w, "CTR-doesnotexistdoesnotexist") == []
    out = handle_records([{"messageId": "x", "body": "not json"}, {"messageId": "y", "body": "[1]"}], w.c.refund_worker)
    assert out == {"batchItemFailures": []}
    assert w.chain.transfers == []


def test_a_batch_reports_only_the_records_that_must_come_back():
    w = World()
    ok, stuck = w.settled(overpay=50_000), w.settled(overpay=60_000)
    w.chain.refused[stuck.wallet] = "x"
    records = [
        {"messageId": "a", "body": json.dumps({"refund_id": ok.contract_id})},
        {"messageId": "b", "body": json.dumps({"contract_id": ok.contract_id})},  # a duplicate
        {"messageId": "c", "body": json.dumps({"refund_id": stuck.contract_id})},
    ]
    out = handle_records(records, w.c.refund_worker)
    assert out == {"batchItemFailures": []}
    assert len(w.chain.transfers) == 1
    # now an outage only for the second refund
    third = w.settled(overpay=70_000)
    w.chain.down = True
    out = handle_records([{"messageId": "d", "body": json.dumps({"refund_id": third.contract_id})}], w.c.refund_worker)
    assert out == {"batchItemFailures": [{"itemIdentifier": "d"}]}


def test_unavailable_propagates_from_the_worker():
    w = World()
    c = w.settled(overpay=50_000)
    w.chain.down = True
    with pytest.raises(Unavailable):
        w.c.refund_worker.handle(c.contract_id)


def test_an_operator_retries_a_failed_refund_once_the_recipient_can_receive():
    w = World()
    c = w.settled(overpay=50_000)
    w.chain.refused[c.wallet] = "InsufficientFundsForRent: account 1"
    deliver(w, c.contract_id)
    assert w.c.contracts.get(c.contract_id).refund_status == R.FAILED
    del w.chain.refused[c.wallet]
    again = w.c.refund_operations.retry(c.contract_id)
    assert again.status == R.QUEUED and w.queue.messages[-1]["refund_id"] == c.contract_id
    assert deliver(w, c.contract_id) == []
    after = w.c.contracts.get(c.contract_id)
    assert after.refund_status == R.CONFIRMED and after.refund_attempt == 2  # the refused one was 1
    assert len(w.chain.transfers) == 1
    assert w.c.refund_operations.retry(c.contract_id).status == R.CONFIRMED  # nothing to retry
    assert_books_balance(w)
