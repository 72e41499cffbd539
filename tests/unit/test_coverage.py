"""Covered time (domain/coverage.py) against a brute-force union of millisecond sets."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from chalicelib.domain import coverage


def brute(created: int, expires: int, end: int, grace: int, ts: list[int]) -> int:
    """Count every ms of [created, min(end, expires)) inside the allowance or some [t − grace, t)."""
    ms: set[int] = set(range(created, min(created + grace, expires)))
    for t in ts:
        ms.update(range(max(t - grace, created), min(t, expires)))
    return len({m for m in ms if m < end})


def incremental(created: int, expires: int, grace: int, nows: list[int]) -> tuple[coverage.Coverage, list[int]]:
    cov = coverage.start(created, expires, grace)
    ts: list[int] = []
    for now in nows:
        t = coverage.report_time(cov, now)
        ts.append(t)
        cov = coverage.add(cov, t, created_ms=created, expires_ms=expires, grace_ms=grace)
    return cov, ts


@settings(max_examples=400, deadline=None)
@given(
    created=st.integers(0, 50),
    life=st.integers(1, 400),
    grace=st.integers(0, 80),
    nows=st.lists(st.integers(0, 500), max_size=12),
    end_at=st.integers(0, 450),
)
def test_incremental_coverage_equals_the_brute_force_union(
    created: int, life: int, grace: int, nows: list[int], end_at: int
) -> None:
    expires = created + life
    nows = sorted(created + n for n in nows if created + n < expires)  # reports come while live
    cov, _ = incremental(created, expires, grace, nows)
    end = min(max([created + end_at, *nows]), expires)  # a contract ends after the reports it accepted
    assert coverage.covered_until(cov, end, created) == brute(created, expires, end, grace, nows)
    assert coverage.covered_until(cov, expires, created) == brute(created, expires, expires, grace, nows)


@settings(max_examples=200, deadline=None)
@given(nows=st.lists(st.integers(0, 300), max_size=10), grace=st.integers(1, 60))
def test_a_report_out_of_order_counts_at_the_previous_time(nows: list[int], grace: int) -> None:
    created, expires = 0, 400
    cov, ts = incremental(created, expires, grace, nows)  # unsorted: concurrent instances
    assert ts == sorted(ts)
    assert coverage.covered_until(cov, expires, created) == brute(created, expires, expires, grace, ts)


def test_a_device_silent_after_4_s_of_30_s_with_1_s_grace() -> None:
    created, expires, grace = 1_000_000, 1_030_000, 1_000
    cov = coverage.start(created, expires, grace)
    for now in range(created + 500, created + 4_001, 500):  # a sample every 0.5 s for 4 s
        cov = coverage.add(cov, coverage.report_time(cov, now), created_ms=created, expires_ms=expires, grace_ms=grace)
    assert coverage.covered_until(cov, expires, created) == 4_000
    early = coverage.start(created, expires, grace)
    assert coverage.covered_until(early, created + 400, created) == 400  # settled inside the allowance


def test_gaps_are_the_complement_of_the_intervals() -> None:
    assert coverage.gaps([(0, 10), (5, 20), (30, 40)], 0, 50) == [(20, 30), (40, 50)]
    assert coverage.gaps([], 0, 5) == [(0, 5)]
    assert coverage.gaps([(-5, 60)], 0, 50) == []
