"""Contract cases of covered time (domain/coverage.py, docs/adr/0016-covered-time.md), on the
adapter and the fake alike: the covered time is kept on a small item apart from the contract,
written by the rent (`open_rental`), advanced by `MetricsStore.cover` (one conditional write that
leaves the contract item alone), closed by `end_rental`, and read with the contract by every read
that returns it (`get`, `report_context`, `page`, `due`)."""

from __future__ import annotations

from dataclasses import replace

from chalicelib.domain import contracts as dc
from tests.contract.test_storage import (
    HOUR_S,
    NOW,
    ROWS,
    ROWS_READ,
    all_pages,
    conflict,
    dev,
    end,
    extend,
    extended,
    new_contract,
    rent,
)

__all__ = ["dev"]  # the fixture, shared with test_storage


def covered_contract(**kw):
    c = new_contract(**kw)
    return replace(c, covered_ms=60_000, covered_end_ms=c.created_at_ms + 60_000)


def changed_tables(before: dict, after: dict) -> set[str]:
    return {t for t in after if after[t] != before[t]}


def forget_coverage_item(store, contract_id: str) -> None:
    """Make the contract one opened before the coverage item existed: its covered time only on
    the contract item (backend-specific set-up, as test_storage's legacy batch)."""
    if store.name == "fake":
        del store.metrics.db.tables["coverage"][contract_id]
    else:
        from chalicelib.adapters.models import CoverageItem
        from chalicelib.domain.metering import COVERAGE_KEY

        CoverageItem(contract_id, COVERAGE_KEY).delete()


def test_cover_advances_the_covered_time_in_one_write_and_leaves_the_contract_item_alone(dev):
    c = rent(dev, covered_contract())
    snap = dev.snapshot()
    assert dev.metrics.cover(c.contract_id, c.covered_end_ms, 61_000, c.covered_end_ms + 1_000) is True
    got = dev.contracts.get(c.contract_id)
    assert (got.covered_ms, got.covered_end_ms, got.version) == (61_000, c.covered_end_ms + 1_000, c.version)
    assert got == replace(c, covered_ms=61_000, covered_end_ms=c.covered_end_ms + 1_000)
    assert dev.metrics.report_context("dev-1", c.contract_id)[1] == got
    changed = changed_tables(snap, dev.snapshot())
    assert len(changed) == 1 and not next(iter(changed)).endswith("contracts")
    assert dev.metrics.cover(c.contract_id, got.covered_end_ms, 62_000, got.covered_end_ms + 1_000) is True
    assert dev.contracts.get(c.contract_id).covered_ms == 62_000


def test_cover_on_a_stale_end_or_an_ended_contract_writes_nothing(dev):
    c = rent(dev, covered_contract())
    snap = dev.snapshot()
    assert dev.metrics.cover(c.contract_id, c.covered_end_ms - 1, 70_000, c.covered_end_ms + 10_000) is False
    assert dev.snapshot() == snap
    ended = end(dev, c, NOW + HOUR_S * 500)
    snap = dev.snapshot()
    assert dev.metrics.cover(c.contract_id, ended.covered_end_ms, 70_000, ended.covered_end_ms + 10_000) is False
    assert dev.snapshot() == snap
    assert dev.contracts.get(c.contract_id) == ended  # an ended contract reads its final figures


def test_end_refuses_a_contract_whose_coverage_changed_since_read(dev):
    c = rent(dev, covered_contract())
    assert dev.metrics.cover(c.contract_id, c.covered_end_ms, 61_000, c.covered_end_ms + 1_000)
    snap = dev.snapshot()
    assert conflict(end, dev, c, NOW + 120_000) == {"coverage"}
    assert dev.snapshot() == snap
    fresh = dev.contracts.get(c.contract_id)
    ended = end(dev, fresh, NOW + 120_000)
    assert dev.contracts.get(c.contract_id) == ended
    assert ended.credit_lamports is not None and ended.covered_ms == 61_000


def test_end_twice_names_the_closed_coverage_too(dev):
    c = rent(dev, covered_contract())
    end(dev, c, NOW + 1000)
    snap = dev.snapshot()
    assert conflict(end, dev, c, NOW + 2000) == {"contract", "coverage", "device", "ledger", "outbox"}
    assert dev.snapshot() == snap


def test_a_report_does_not_make_an_extension_retry(dev):
    """Extending changes nothing a report computes: it neither reads nor writes the covered time."""
    c = rent(dev, covered_contract())
    assert dev.metrics.cover(c.contract_id, c.covered_end_ms, 61_000, c.covered_end_ms + 1_000)
    after = extended(c)
    extend(dev, c, after)
    got = dev.contracts.get(c.contract_id)
    assert (got.version, got.expires_at_ms) == (after.version, after.expires_at_ms)
    assert (got.covered_ms, got.covered_end_ms) == (61_000, c.covered_end_ms + 1_000)
    assert dev.metrics.cover(c.contract_id, got.covered_end_ms, 62_000, got.covered_end_ms + 1_000)
    assert dev.contracts.get(c.contract_id).covered_ms == 62_000


def test_page_and_due_read_the_kept_covered_time(dev):
    c = rent(dev, covered_contract(seconds=60))
    assert dev.metrics.cover(c.contract_id, c.covered_end_ms, 1_000, c.covered_end_ms + 1)
    want = dev.contracts.get(c.contract_id)
    assert want.covered_ms == 1_000
    listed = [k for page in all_pages(dev.contracts.page, 10) for k in page]
    assert [k for k in listed if k.contract_id == c.contract_id] == [want]
    due = [k for s in range(dev.contracts.shards) for k in dev.contracts.due(s, c.expires_at_ms, 10)]
    assert due == [want]


def test_metrics_latest_never_returns_the_coverage_item(dev):
    c = rent(dev, covered_contract())
    assert dev.metrics.latest(c.contract_id) == []
    dev.metrics.put_batch(c.contract_id, "dev-1", ROWS, NOW)
    assert dev.metrics.latest(c.contract_id) == ROWS_READ


def test_a_contract_opened_before_the_coverage_item_reads_and_bills_its_own(dev):
    c = rent(dev, covered_contract())
    forget_coverage_item(dev, c.contract_id)
    assert dev.contracts.get(c.contract_id) == c  # the covered time on the contract item
    # the first report creates the item from what it read; then the item is what counts
    assert dev.metrics.cover(c.contract_id, c.covered_end_ms, 61_000, c.covered_end_ms + 1_000)
    assert dev.contracts.get(c.contract_id).covered_ms == 61_000
    assert conflict(end, dev, c, NOW + 120_000) == {"coverage"}
    ended = end(dev, dev.contracts.get(c.contract_id), NOW + 120_000)
    assert ended.covered_ms == 61_000 and dev.contracts.get(c.contract_id) == ended


def test_ending_a_contract_opened_before_the_coverage_item_closes_it(dev):
    c = rent(dev, covered_contract())
    forget_coverage_item(dev, c.contract_id)
    ended = end(dev, c, NOW + 120_000)
    assert dev.contracts.get(c.contract_id) == ended and ended.status == dc.SETTLED
    snap = dev.snapshot()
    assert dev.metrics.cover(c.contract_id, c.covered_end_ms, 61_000, c.covered_end_ms + 1_000) is False
    assert dev.snapshot() == snap


def test_a_contract_without_coverage_writes_no_coverage_item(dev):
    snap = dev.snapshot()
    c = rent(dev, new_contract())
    changed = changed_tables(snap, dev.snapshot())
    assert not any(t.endswith(("metrics", "coverage")) for t in changed)
    ended = end(dev, c, NOW + 120_000)
    assert dev.contracts.get(c.contract_id) == ended and ended.credit_lamports is None
    assert not any(t.endswith(("metrics", "coverage")) for t in changed_tables(snap, dev.snapshot()))
