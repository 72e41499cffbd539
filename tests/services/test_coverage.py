"""Covered time and the downtime credit on fakes (docs/api.md "Proven usage and downtime credit")."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal

import pytest

from chalicelib.api import views
from chalicelib.domain import contracts as dc
from chalicelib.domain import ledger, money
from chalicelib.domain.errors import Conflict
from chalicelib.domain.records import Claim
from tests.services.conftest import World, make_world

LPH = money.TIERS["M2"].lamports_per_hour
PRICE_30S = money.price_lamports(LPH, 30)


def rows(now_ms: int, earliest_ms: int | None = None, latest_ms: int | None = None) -> list[list]:
    return [[now_ms, Decimal("50"), 1024, Decimal("1.5"), Decimal("0.5")]]


@pytest.fixture
def cw() -> World:
    return make_world(coverage_grace_seconds=1, min_duration_seconds=1)


def report_every_half_second(w: World, contract_id: str, key: str, until_ms: int) -> None:
    while w.clock() + 500 <= until_ms:
        w.clock.now_ms += 500
        w.telemetry.record(contract_id, key, rows)


def test_a_device_silent_after_4_s_of_30_s_is_billed_4_s_and_credited_the_rest(cw):
    k = cw.rent("M2", 30, PRICE_30S)
    key = cw.operator.issue_device_key(k.device_id)
    report_every_half_second(cw, k.contract_id, key, k.created_at_ms + 4_000)
    cw.clock.now_ms = k.expires_at_ms + 1
    assert cw.c.sweep.run().expired == 1
    e = cw.p.contracts.get(k.contract_id)
    used = LPH * 4_000 // 3_600_000
    assert (e.status, e.used_lamports, e.credit_lamports) == (dc.EXPIRED, used, PRICE_30S - used)
    assert e.refund_lamports == PRICE_30S - used and e.refund_status == dc.REFUND_QUEUED
    view = views.settle_response(e)
    assert (view["covered_ms"], view["uncovered_ms"], view["credit_lamports"]) == (4_000, 26_000, PRICE_30S - used)
    entries = cw.entries(k.contract_id)
    assert ledger.balance(entries) == 0 and ledger.balance(entries, ledger.escrow(k.contract_id)) == 0
    credit = [(x.debit_lamports, x.credit_lamports) for x in entries if x.account == ledger.DOWNTIME_CREDIT]
    assert sorted(credit) == [(0, PRICE_30S - used), (PRICE_30S - used, 0)]
    owed = sum(x.credit_lamports for x in entries if x.account == ledger.REFUNDS_PAYABLE)
    revenue = sum(x.credit_lamports for x in entries if x.account == ledger.REVENUE)
    assert (owed, revenue) == (e.refund_lamports, used)  # received = used + credit + other refund
    st = cw.books.stats()
    assert (st.downtime_credit, st.revenue) == (PRICE_30S - used, used)
    assert views.stats_response(st)["downtime_credit_lamports"] == PRICE_30S - used
    page = cw.books.ledger_page(100, None)
    assert views.ledger_response(page)["completed_settlements"][0]["credit_lamports"] == PRICE_30S - used


def test_a_device_that_covered_the_whole_life_bills_exactly_the_price():
    w = make_world(coverage_grace_seconds=30, min_duration_seconds=1)  # the allowance covers it all
    k = w.rent("M2", 30, PRICE_30S + 7)
    w.clock.now_ms = k.expires_at_ms
    w.c.sweep.run()
    e = w.p.contracts.get(k.contract_id)
    assert (e.covered_ms, e.used_lamports, e.credit_lamports, e.refund_lamports) == (30_000, PRICE_30S, 0, 7)
    assert PRICE_30S != LPH * 30_000 // 3_600_000  # the price, not the floor of covered time
    assert not [x for x in w.entries(k.contract_id) if x.account == ledger.DOWNTIME_CREDIT]


def test_the_time_after_the_last_report_is_uncovered(cw):
    k = cw.rent("M2", 30, PRICE_30S)
    key = cw.operator.issue_device_key(k.device_id)
    report_every_half_second(cw, k.contract_id, key, k.expires_at_ms - 1)  # the last at 29.5 s
    cw.clock.now_ms = k.expires_at_ms
    cw.c.sweep.run()
    e = cw.p.contracts.get(k.contract_id)
    used = LPH * 29_500 // 3_600_000
    assert (e.used_lamports, e.credit_lamports) == (used, PRICE_30S - used)


def test_live_status_shows_coverage_so_far_and_settle_books_it(cw):
    k = cw.rent("M2", 30, PRICE_30S)
    key = cw.operator.issue_device_key(k.device_id)
    report_every_half_second(cw, k.contract_id, key, k.created_at_ms + 3_000)
    cw.clock.now_ms = k.created_at_ms + 10_000  # silent for 7 s
    live = views.contract_response(cw.p.contracts.get(k.contract_id), cw.clock(), 5_000)
    covered_used = LPH * 3_000 // 3_600_000
    credit = LPH * 10_000 // 3_600_000 - covered_used
    assert (live["covered_ms"], live["uncovered_ms"], live["credit_lamports"]) == (3_000, 7_000, credit)
    assert live["used_lamports"] == covered_used
    s = cw.rentals.settle(k.contract_id, k.wallet)
    assert (s.status, s.used_lamports, s.credit_lamports) == (dc.SETTLED, covered_used, credit)
    assert s.refund_lamports == PRICE_30S - covered_used
    ended = views.contract_response(s, cw.clock() + 60_000, 5_000)
    assert (ended["covered_ms"], ended["uncovered_ms"], ended["credit_lamports"]) == (3_000, 7_000, credit)


def test_settled_inside_the_start_up_allowance_is_billed_its_elapsed_time(cw):
    k = cw.rent("M2", 30, PRICE_30S)
    cw.clock.now_ms += 700
    s = cw.rentals.settle(k.contract_id, k.wallet)
    assert (s.used_lamports, s.credit_lamports) == (LPH * 700 // 3_600_000, 0)


def test_a_report_between_a_settles_read_and_write_makes_it_read_again(cw):
    k = cw.rent("M2", 30, PRICE_30S)
    key = cw.operator.issue_device_key(k.device_id)
    cw.clock.now_ms += 5_000
    stale = cw.p.contracts.get(k.contract_id)
    cw.telemetry.record(k.contract_id, key, rows)  # covers [4 s, 5 s]
    after = dc.finalize(stale, now_ms=cw.clock(), refund_min_lamports=5_000)
    with pytest.raises(Conflict):
        cw.p.tx.end_rental(stale, after, ledger.settlement_postings(after))
    s = cw.rentals.settle(k.contract_id, k.wallet)  # reads again: the report is billed
    assert s.covered_ms == 2_000 and s.used_lamports == LPH * 2_000 // 3_600_000


def test_the_cover_write_refuses_a_stale_end_and_an_ended_contract(cw):
    k = cw.rent("M2", 30, PRICE_30S)
    assert not cw.p.metrics.cover(k.contract_id, k.covered_end_ms - 1, 5, k.covered_end_ms + 5)
    assert cw.p.metrics.cover(k.contract_id, k.covered_end_ms, 1_500, k.covered_end_ms + 500)
    got = cw.p.contracts.get(k.contract_id)
    assert (got.covered_ms, got.version) == (1_500, k.version)  # the version is kept
    cw.rentals.settle(k.contract_id, k.wallet)
    ended = cw.p.contracts.get(k.contract_id)
    assert not cw.p.metrics.cover(k.contract_id, ended.covered_end_ms, 9_000, ended.covered_end_ms + 9)


def test_a_resent_report_counts_at_its_new_time(cw):
    k = cw.rent("M2", 30, PRICE_30S)
    key = cw.operator.issue_device_key(k.device_id)
    cw.clock.now_ms += 3_000
    fixed = [[cw.clock(), Decimal("1"), 1, Decimal("1"), Decimal("1")]]
    cw.telemetry.record(k.contract_id, key, lambda *_: fixed)
    cw.clock.now_ms += 2_000
    cw.telemetry.record(k.contract_id, key, lambda *_: fixed)  # the same batch: stored once
    got = cw.p.contracts.get(k.contract_id)
    assert len(cw.db.tables["metrics"]) == 1
    assert (got.covered_ms, got.covered_end_ms) == (3_000, k.created_at_ms + 5_000)


def test_a_contract_opened_without_coverage_bills_elapsed_time(cw):
    k = cw.rent("M2", 30, PRICE_30S)
    legacy = replace(k, covered_ms=None, covered_end_ms=None)
    e = dc.finalize(legacy, now_ms=k.created_at_ms + 20_000, refund_min_lamports=5_000)
    assert (e.used_lamports, e.credit_lamports) == (LPH * 20_000 // 3_600_000, None)


def test_a_report_whose_write_comes_after_a_settle_is_refused_not_lost(cw):
    """The report read the contract live; the settlement lands before its coverage write: the
    write finds the coverage item closed, re-reads, finds the contract ended and counts nothing.
    The settlement billed what it read, and the stored figures are the settled ones."""
    k = cw.rent("M2", 30, PRICE_30S)
    key = cw.operator.issue_device_key(k.device_id)
    cw.clock.now_ms += 5_000
    settled: list[dc.Contract] = []
    cw.db.before_next("metrics.cover", lambda: settled.append(cw.rentals.settle(k.contract_id, k.wallet)))
    cw.telemetry.record(k.contract_id, key, rows)
    (s,) = settled
    assert (s.status, s.covered_ms) == (dc.SETTLED, 1_000)  # the start-up allowance only
    assert cw.db.calls.count("metrics.cover") == 1  # refused once, then the contract had ended
    got = cw.p.contracts.get(k.contract_id)
    assert got == s and got.used_lamports == LPH * 1_000 // 3_600_000
    assert cw.db.tables["coverage"][k.contract_id]["closed"] is True


def test_a_contract_kept_on_its_own_item_before_the_coverage_item_bills_every_report(cw):
    """Opened before the coverage item existed: its covered time on the contract item. The first
    report creates the item from it; the settlement bills every report."""
    k = cw.rent("M2", 30, PRICE_30S)
    del cw.db.tables["coverage"][k.contract_id]
    key = cw.operator.issue_device_key(k.device_id)
    cw.clock.now_ms += 2_000
    report_every_half_second(cw, k.contract_id, key, k.created_at_ms + 4_000)
    assert cw.p.contracts.get(k.contract_id).covered_ms == 3_500  # [0, 1 s] and [1.5 s, 4 s]
    assert cw.db.tables["coverage"][k.contract_id]["covered_end_ms"] == k.created_at_ms + 4_000
    cw.clock.now_ms = k.created_at_ms + 10_000
    s = cw.rentals.settle(k.contract_id, k.wallet)
    assert (s.covered_ms, s.used_lamports) == (3_500, LPH * 3_500 // 3_600_000)


def test_a_report_does_not_make_an_extension_read_again(cw):
    k = cw.rent("M2", 30, PRICE_30S)
    key = cw.operator.issue_device_key(k.device_id)
    cw.clock.now_ms += 3_000
    cw.telemetry.record(k.contract_id, key, rows)  # covers [2 s, 3 s]
    stale = cw.p.contracts.get(k.contract_id)
    cw.clock.now_ms += 1_000
    cw.telemetry.record(k.contract_id, key, rows)  # covers [3 s, 4 s] after the read
    after = dc.extend(
        stale, seconds=60, received_lamports=10**9, sig=stale.payments[0].sig, now_ms=cw.clock(), max_seconds=10**6
    )
    claim = Claim("sig-extend", "extend", k.contract_id, k.wallet, "fp", {})
    cw.p.tx.extend_rental(claim, stale, after, [], cw.clock())  # no conflict: extending ignores coverage
    got = cw.p.contracts.get(k.contract_id)
    assert (got.expires_at_ms, got.covered_ms) == (k.expires_at_ms + 60_000, 3_000)
