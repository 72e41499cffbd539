"""Contract cases of covered time (domain/coverage.py), on the adapter and the fake alike:
`MetricsStore.cover` (one conditional write that keeps the version) and the coverage condition
of `Transactions.extend_rental` / `end_rental`."""

from __future__ import annotations

from dataclasses import replace

from tests.contract.test_storage import HOUR_S, NOW, conflict, dev, end, extend, extended, new_contract, rent

__all__ = ["dev"]  # the fixture, shared with test_storage


def covered_contract():
    c = new_contract()
    return replace(c, covered_ms=60_000, covered_end_ms=c.created_at_ms + 60_000)


def test_cover_extends_the_covered_time_and_keeps_the_version(dev):
    c = rent(dev, covered_contract())
    snap = dev.snapshot()
    assert dev.metrics.cover(c.contract_id, c.covered_end_ms, 61_000, c.covered_end_ms + 1_000) is True
    got = dev.contracts.get(c.contract_id)
    assert (got.covered_ms, got.covered_end_ms, got.version) == (61_000, c.covered_end_ms + 1_000, c.version)
    assert got == replace(c, covered_ms=61_000, covered_end_ms=c.covered_end_ms + 1_000)
    after = dev.snapshot()
    changed = {t for t in after if after[t] != snap[t]}
    assert len(changed) == 1 and next(iter(changed)).endswith("contracts")


def test_cover_on_a_stale_end_or_an_ended_contract_writes_nothing(dev):
    c = rent(dev, covered_contract())
    snap = dev.snapshot()
    assert dev.metrics.cover(c.contract_id, c.covered_end_ms - 1, 70_000, c.covered_end_ms + 10_000) is False
    assert dev.snapshot() == snap
    ended = end(dev, c, NOW + HOUR_S * 500)
    snap = dev.snapshot()
    assert dev.metrics.cover(c.contract_id, ended.covered_end_ms, 70_000, ended.covered_end_ms + 10_000) is False
    assert dev.snapshot() == snap


def test_end_and_extend_refuse_a_contract_whose_coverage_changed_since_read(dev):
    c = rent(dev, covered_contract())
    assert dev.metrics.cover(c.contract_id, c.covered_end_ms, 61_000, c.covered_end_ms + 1_000)
    snap = dev.snapshot()
    assert conflict(end, dev, c, NOW + 120_000) == {"contract"}
    assert conflict(extend, dev, c, extended(c)) >= {"contract"}
    fresh = dev.contracts.get(c.contract_id)
    ended = end(dev, fresh, NOW + 120_000)
    assert dev.contracts.get(c.contract_id) == ended
    assert ended.credit_lamports is not None and ended.covered_ms == 61_000
    assert snap != dev.snapshot()


def test_a_contract_without_coverage_still_ends(dev):
    c = rent(dev, new_contract())
    ended = end(dev, c, NOW + 120_000)
    assert dev.contracts.get(c.contract_id) == ended and ended.credit_lamports is None
