"""Books (ledger page, postings, stats), Catalog and Operator on fakes."""

from __future__ import annotations

from dataclasses import replace

import pytest

from chalicelib.domain import contracts as dc
from chalicelib.domain import ledger
from chalicelib.domain.errors import Conflict, InvalidRequest, NotFound, Unavailable
from chalicelib.domain.records import hash_device_key

from .conftest import TREASURY, spec


@pytest.fixture
def three(w):
    """At t0 + 3600 s: A (ORIN 2 h, 8,000,000) active; B (M2 1 h, 1,000,000) settled at 30 min;
    C (M2 1 h, 1,003,000) expired, its 3,000 overpayment retained as dust."""
    a = w.rent("ORIN", 7200, 8_000_000)
    b = w.rent("M2", 3600, 1_000_000)
    c = w.rent("M2", 3600, 1_003_000)
    w.clock.advance(1800)
    w.rentals.settle(b.contract_id, b.wallet)
    w.clock.advance(1800)
    w.rentals.settle(c.contract_id, c.wallet)
    return a, b, c


def test_ledger_page_splits_active_and_completed_with_exact_totals(w, three):
    a, b, c = three
    page = w.books.ledger_page(1000, None)
    assert [k.contract_id for k, _ in page.active] == [a.contract_id]
    assert page.active[0][1].used_lamports == 4_000_000  # 2 of its hours at 4,000,000/h: half of it
    assert {k.contract_id: (k.status, k.refund_status) for k in page.completed} == {
        b.contract_id: (dc.SETTLED, dc.REFUND_QUEUED),
        c.contract_id: (dc.EXPIRED, dc.REFUND_DUST),
    }
    assert (page.total_active_value, page.total_used, page.total_pending_refunds) == (
        8_000_000,
        500_000 + 1_000_000,  # revenue booked by the ended contracts (the book's meaning, ADR 0006)
        500_000,
    )
    assert page.size == 3 and page.next_token is None


def test_book_totals_are_the_counters_and_leave_live_usage_in_the_rows(w, three):
    """As bootstrap wires it (with the book's counters, ADR 0006): total_active_value is the
    prepaid of ACTIVE contracts and total_used the revenue booked by ENDED ones only; the
    live usage of an ACTIVE contract (A: 4,000,000 so far) is in its row, not in the total.
    A check that adds the rows' live usage to the book's total sees a "drift" that is not one."""
    a, b, c = three
    page = w.books.ledger_page(1000, None)
    assert page.totals_scope == "book"
    assert page.active[0][1].used_lamports == 4_000_000
    assert (page.total_active_value, page.total_used, page.total_pending_refunds) == (
        8_000_000,
        500_000 + 1_000_000,
        500_000,
    )
    # the same figures from the rows, with the book's meaning: prepaid of ACTIVE, used of ended
    assert page.total_active_value == sum(k.received_lamports for k, _ in page.active)
    assert page.total_used == sum(k.used_lamports for k in page.completed)


def test_ledger_pages_cover_every_contract_once(w, three):
    seen, token = [], None
    while True:
        page = w.books.ledger_page(2, token)
        seen += [k.contract_id for k, _ in page.active] + [k.contract_id for k in page.completed]
        token = page.next_token
        if not token:
            break
    assert sorted(seen) == sorted(k.contract_id for k in three)


def test_a_token_the_books_did_not_issue_is_invalid(w, three):
    with pytest.raises(InvalidRequest):
        w.books.ledger_page(10, "not-a-token")


def test_entries_of_a_contract_balance(w, three):
    _, b, _ = three
    page = w.books.entries(b.contract_id, None, 100, None)
    assert (page.debit_lamports, page.credit_lamports, page.balance_lamports) == (2_000_000, 2_000_000, 0)
    assert [e.kind for e in page.entries] == ["rent", "rent", "settled", "settled", "settled"]
    assert page.next_token is None


def test_entries_of_an_account(w, three):
    page = w.books.entries(None, ledger.REVENUE, 100, None)
    assert (page.debit_lamports, page.credit_lamports, page.balance_lamports) == (0, 1_500_000, -1_500_000)
    treasury = w.books.entries(None, ledger.TREASURY, 100, None)
    assert treasury.debit_lamports == 8_000_000 + 1_000_000 + 1_003_000
    dust = w.books.entries(None, ledger.RETAINED_DUST, 100, None)
    assert dust.credit_lamports == 3_000


def test_entries_pages_in_order(w, three):
    a, _, _ = three
    first = w.books.entries(None, ledger.TREASURY, 2, None)
    rest = w.books.entries(None, ledger.TREASURY, 2, first.next_token)
    assert len(first.entries) == 2 and len(rest.entries) == 1
    with pytest.raises(InvalidRequest):  # a token of one account is not one of another
        w.books.entries(None, ledger.REVENUE, 2, first.next_token)


def test_stats_are_the_whole_book_and_read_no_contract(w, three):
    calls_before = len(w.db.calls)
    s = w.books.stats()
    # only the sparse active-by-expiry index, for what is due: never a page or a scan of contracts
    assert {c for c in w.db.calls[calls_before:] if c.startswith("contracts.")} <= {"contracts.due"}
    assert (s.expired_unbooked, s.expired_unbooked_complete) == (0, True)
    assert s.contracts_by_status == {dc.ACTIVE: 1, dc.SETTLED: 1, dc.EXPIRED: 1}
    assert {k: v for k, v in s.refunds_by_status.items() if v} == {dc.REFUND_QUEUED: 1, dc.REFUND_DUST: 1}
    assert (s.revenue, s.pending_refunds, s.active_prepaid) == (1_500_000, 500_000, 8_000_000)
    assert (s.device_count, s.slots_leased, s.capacity) == (5, 1, 10)
    assert s.queues["refund_queue"] == {"visible": 1, "in_flight": 0}
    assert (s.treasury, s.rpc_reachable, s.at_ms) == (TREASURY, True, w.clock())


def test_a_contract_past_its_expiry_is_counted_ended_before_the_sweep_books_it(w, three):
    a, b, c = three
    w.clock.advance(3600)  # A (2 h) reaches its expiry; no sweep has run
    s = w.books.stats()
    assert s.contracts_by_status == {dc.ACTIVE: 1, dc.SETTLED: 1, dc.EXPIRED: 1}  # the books, as booked
    assert (s.expired_unbooked, s.expired_unbooked_complete) == (1, True)
    page = w.books.ledger_page(1000, None)
    assert page.active == [] and page.unbooked == {a.contract_id}
    shown = {k.contract_id: k for k in page.completed}[a.contract_id]
    assert (shown.status, shown.used_lamports, shown.ended_at_ms) == (dc.EXPIRED, 8_000_000, a.expires_at_ms)
    w.clock.advance(45)
    w.rentals.settle(a.contract_id, a.wallet)  # books it as the sweep would: finalize past the expiry
    assert w.books.stats().expired_unbooked == 0
    page = w.books.ledger_page(1000, None)
    booked = {k.contract_id: k for k in page.completed}[a.contract_id]
    assert page.unbooked == frozenset() and replace(booked, write_token=None) == replace(shown, write_token=None)


def test_stats_report_a_dead_rpc_and_queue_instead_of_failing(w, three):
    w.rpc.down = True
    w.queue.down = True
    s = w.books.stats()
    assert s.rpc_reachable is False and s.queues == {"refund_queue": None, "dead_letter_queue": None}


@pytest.mark.parametrize(
    "call",
    [
        lambda b: b.stats(),
        lambda b: b.ledger_page(10, None),
        lambda b: b.entries("CTR-x", None, 10, None),
        lambda b: b.entries(None, "revenue", 10, None),
    ],
)
def test_a_database_outage_is_unavailable_on_every_view(w, three, call):
    w.db.down = True
    with pytest.raises(Unavailable):
        call(w.books)


# --- catalog ---------------------------------------------------------------------------------------


def test_catalog_tiers_are_the_published_prices(w):
    assert [(t.name, t.lamports_per_hour) for t in w.catalog.tiers()] == [
        ("M2", 1_000_000),
        ("ORIN", 4_000_000),
        ("M3_ULTRA", 25_000_000),
        ("THOR", 35_000_000),
    ]


def test_catalog_devices_of_a_tier_by_id_with_live_slots(w):
    w.rent("M2", 600, 166_667)
    devices = w.catalog.devices_of("M2")
    assert [(d.device_id, d.leases, d.available) for d in devices] == [("dev-m2-a", 1, 1), ("dev-m2-b", 0, 2)]


@pytest.mark.parametrize("tier", ["m2", "GPU", ""])
def test_catalog_unknown_tier_is_not_found(w, tier):
    with pytest.raises(NotFound) as exc:
        w.catalog.devices_of(tier)
    assert exc.value.reason == "tier"


def test_catalog_health_reads_the_devices_table(w):
    w.catalog.health()
    assert w.db.calls == ["devices.get"]
    w.p.devices.down = True
    with pytest.raises(Unavailable):
        w.catalog.health()


# --- operator --------------------------------------------------------------------------------------


def test_seeding_again_updates_descriptions_and_capacity_never_leases(w):
    w.rent("THOR", 600, 5_833_334)
    w.operator.seed_devices([{**spec("dev-thor-a", "THOR"), "name": "RENAMED"}, spec("dev-thor-b", "THOR")], 3)
    a, b = w.catalog.devices_of("THOR")
    assert (a.name, a.capacity, a.leases) == ("RENAMED", 3, 1)
    assert (b.device_id, b.capacity, b.leases) == ("dev-thor-b", 3, 0)


def test_a_device_key_is_stored_only_as_its_hash_and_replaces_the_old_one(w):
    first = w.operator.issue_device_key("dev-orin-a")
    second = w.operator.issue_device_key("dev-orin-a")
    assert first.startswith("dk_dev-orin-a_") and len(first.split("_", 2)[2]) >= 16 and first != second
    stored = w.p.devices.get("dev-orin-a").key_hash
    assert stored == hash_device_key(second) and second not in repr(w.db.tables)


def test_a_key_for_an_unknown_device_is_a_conflict(w):
    with pytest.raises(Conflict) as exc:
        w.operator.issue_device_key("dev-nope")
    assert exc.value.failed == {"device"}


def test_operator_writes_in_an_outage_are_unavailable(w):
    w.db.down = True
    with pytest.raises(Unavailable):
        w.operator.seed_devices([spec("dev-new", "M2")], 2)
    with pytest.raises(Unavailable):
        w.operator.issue_device_key("dev-m2-a")
