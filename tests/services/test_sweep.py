"""The billing sweep (services/sweep.py, jobs/sweep.py) on fakes."""

from __future__ import annotations

import json

from chalicelib.domain import contracts as dc
from chalicelib.domain import ledger
from chalicelib.domain import refunds as R
from chalicelib.jobs.refunds import handle_records
from chalicelib.jobs.sweep import run_sweep
from tests.services.refund_support import World, assert_books_balance


def settlements(w: World, contract_id: str) -> list:
    return [e for e in w.entries(contract_id) if e.kind in ("settled", "expired")]


def test_a_contract_expires_at_its_time_uses_exactly_its_price_and_the_rest_comes_back():
    w = World()
    c = w.open(seconds=90, overpay=777_777)
    w.clock.advance(89)
    assert w.c.sweep.run().expired == 0  # not yet due
    w.clock.advance(1 + 30)  # due, and the sweep runs a little later
    report = w.c.sweep.run()
    assert (report.due, report.expired, report.refunds_queued, report.lag_seconds) == (1, 1, 1, 30)
    e = w.c.contracts.get(c.contract_id)
    assert (e.status, e.ended_at_ms, e.used_lamports) == (dc.EXPIRED, c.expires_at_ms, c.price_lamports)
    assert e.refund_lamports == 777_777 and e.refund_status == R.QUEUED
    assert w.c.devices.get(c.device_id).leases == 0  # its slot is free
    records = [{"messageId": "m", "body": json.dumps(w.queue.messages[-1])}]
    assert handle_records(records, w.c.refund_worker) == {"batchItemFailures": []}
    assert w.chain.transfers_to(c.wallet)[0].lamports == 777_777
    assert w.c.sweep.run().due == 0  # nothing left to do
    assert_books_balance(w)


def test_sweep_and_settle_racing_give_one_settlement():
    w = World()
    c = w.open(seconds=60, overpay=10_000)
    w.clock.advance(61)
    # the renter's settle commits between the sweep's read and its write
    w.db.before_next("tx.end_rental", lambda: w.c.rentals.settle(c.contract_id, c.wallet))
    report = w.c.sweep.run()
    assert (report.due, report.expired, report.lost_races) == (1, 0, 1)
    assert len(settlements(w, c.contract_id)) == 3  # escrow, revenue, refund: once
    assert w.c.contracts.get(c.contract_id).status == dc.EXPIRED
    assert w.c.devices.get(c.device_id).leases == 0
    assert len(w.queue.messages) == 1  # one refund queued (by the settle)
    assert_books_balance(w)


def test_two_sweeps_at_once_handle_each_contract_once():
    w = World()
    opened = [w.open(seconds=60 + i, overpay=10_000 + i) for i in range(7)]
    w.clock.advance(120)
    second = []
    w.db.before_next("tx.end_rental", lambda: second.append(w.c.sweep.run()))
    first = w.c.sweep.run()
    assert first.expired + second[0].expired == 7
    # what the first sweep had read was ended by the second meanwhile: lost races, not redone
    assert first.lost_races >= 1 and first.expired + first.lost_races == first.due
    for c in opened:
        assert len(settlements(w, c.contract_id)) == 3
    assert len({m["refund_id"] for m in w.queue.messages}) == 7 and len(w.queue.messages) == 7
    assert sum(d.leases for d in w.c.devices.all()) == 0
    assert_books_balance(w)


def test_work_grows_with_due_contracts_not_with_the_table():
    w = World(shards=4, devices=10, capacity=1000)
    for _ in range(400):
        w.open(seconds=7200)
    due = [w.open(seconds=60) for _ in range(10)]
    w.clock.advance(61)
    report = w.c.sweep.run()
    assert report.expired == 10 and report.items_read == 10
    # per shard: one due page (+1 when a page is full), one owed query and one low-time query (the
    # 400 contracts with more than 10 min left are not read: items_read above)
    assert report.queries <= 4 * 3 + 4
    assert {m["refund_id"] for m in w.queue.messages} <= {c.contract_id for c in due}


def test_pages_through_a_backlog_larger_than_a_page():
    w = World(devices=5, capacity=1000)
    for _ in range(25):
        w.open(seconds=60)
    w.clock.advance(61)
    from dataclasses import replace

    sweep = replace(w.c.sweep, page_size=4)
    assert sweep.run().expired == 25


def test_owed_refunds_not_moving_are_queued_again_after_the_grace_period():
    w = World(refund_requeue_seconds=120)
    w.queue.fail_sends = 1  # the settle's enqueue is lost
    c = w.settled(overpay=50_000)
    assert w.queue.messages == []
    assert w.c.sweep.run().refunds_requeued == 0  # within the grace period
    w.clock.advance(121)
    report = w.c.sweep.run()
    assert report.refunds_requeued == 1 and w.queue.messages[-1]["refund_id"] == c.contract_id
    records = [{"messageId": "m", "body": json.dumps(w.queue.messages[-1])}]
    assert handle_records(records, w.c.refund_worker) == {"batchItemFailures": []}
    w.clock.advance(600)
    assert w.c.sweep.run().refunds_requeued == 0  # confirmed: no longer owed
    assert_books_balance(w)


def test_a_database_outage_is_reported_and_nothing_is_half_done():
    w = World()
    w.open(seconds=60, overpay=1)
    w.clock.advance(61)
    w.db.down = True
    report = w.c.sweep.run()
    assert report.expired == 0 and report.errors
    w.db.down = False
    assert w.c.sweep.run().expired == 1
    assert_books_balance(w)


def test_the_job_writes_its_metrics(capsys):
    w = World()
    w.open(seconds=60, overpay=1)
    w.clock.advance(75)
    summary = run_sweep(w.c)
    assert summary["expired"] == 1 and summary["lag_seconds"] == 15
    line = [ln for ln in capsys.readouterr().out.splitlines() if '"_aws"' in ln][-1]
    emf = json.loads(line)
    assert emf["SweepLagSeconds"] == 15 and emf["Expirations"] == 1 and emf["SweepDue"] == 1
    assert emf["_aws"]["CloudWatchMetrics"][0]["Namespace"] == "SI64"


def test_whole_book_figures_come_from_the_counters():
    w = World()
    a = w.settled(overpay=5_000_000)
    w.open(seconds=3600, overpay=3)
    calls_before = len(w.db.calls)
    st = w.c.books.stats()
    # no table read: only the sparse active-by-expiry index, for what is due (nothing here)
    assert {c for c in w.db.calls[calls_before:] if c.startswith("contracts.")} <= {"contracts.due"}
    assert st.contracts_by_status == {"ACTIVE": 1, "SETTLED": 1, "EXPIRED": 0}
    assert st.revenue == a.used_lamports and st.pending_refunds == a.refund_lamports
    assert st.refunds_by_status["QUEUED"] == 1
    page = w.c.books.ledger_page(1, None)
    assert page.totals_scope == "book" and page.total_pending_refunds == a.refund_lamports
    assert page.total_used == a.used_lamports
    assert ledger.balance(w.all_entries()) == 0


def test_a_refund_the_run_queues_is_not_queued_again_by_the_same_run():
    w = World(refund_requeue_seconds=60)
    c = w.open(seconds=60, overpay=10_000)
    w.clock.advance(3600)  # the sweep comes long after the expiry
    report = w.c.sweep.run()
    assert (report.expired, report.refunds_queued, report.refunds_requeued) == (1, 1, 0)
    assert [m["refund_id"] for m in w.queue.messages] == [c.contract_id]
