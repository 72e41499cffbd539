"""Covered time: how much of a contract's life its device proved it was serving. Pure Python.

docs/api.md "Proven usage and downtime credit": the covered time is the union of a start-up
allowance `[created, created + grace]` and, for each accepted report at server time `t`,
`[t − grace, t]`, clipped to the contract's life; exact to the millisecond (intervals are
half-open, `[a, b)` counts `b − a` ms).

It is kept incrementally, as two integers stored on the contract (`covered_ms`, the length of
the union so far, and `covered_end_ms`, where it ends): a report's server time is never before
the previous one's (`report_time`), so each new interval can only extend the union at its end and
`add` is exact without reading any earlier sample. The union's last run is contiguous up to
`covered_end_ms` and at least as long as any overhang past the contract's end, so clipping the
total at the end (`covered_until`) is exact too. docs/adr/0016-covered-time.md.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Coverage:
    covered_ms: int
    end_ms: int


def start(created_ms: int, expires_ms: int, grace_ms: int) -> Coverage:
    """The start-up allowance `[created, created + grace]`, clipped to the life."""
    end = min(created_ms + max(0, grace_ms), expires_ms)
    return Coverage(max(0, end - created_ms), max(created_ms, end))


def report_time(cov: Coverage, now_ms: int) -> int:
    """The server time a report counts at: now, never before the previous report's."""
    return max(now_ms, cov.end_ms)


def add(cov: Coverage, t_ms: int, *, created_ms: int, expires_ms: int, grace_ms: int) -> Coverage:
    """`cov` with `[t − grace, t]` (clipped to the life) added; `t` at or after `cov.end_ms`
    (`report_time`), or the interval adds nothing it could not already hold."""
    hi = min(t_ms, expires_ms)
    lo = max(t_ms - grace_ms, created_ms, cov.end_ms)
    if hi <= lo:
        return cov
    return Coverage(cov.covered_ms + (hi - lo), hi)


def covered_until(cov: Coverage, end_ms: int, created_ms: int) -> int:
    """The covered ms of `[created, end_ms)`: the union clipped at `end_ms` (an ended
    contract's end, or now for a live one), which is at or after every report counted: only the
    last run can reach past it, and only by what lies past it."""
    return max(0, min(cov.covered_ms - max(0, cov.end_ms - end_ms), end_ms - created_ms))


def gaps(intervals: list[tuple[int, int]], created_ms: int, end_ms: int) -> list[tuple[int, int]]:
    """The uncovered parts `[from, to)` of `[created, end)` given covering intervals (any order)."""
    out: list[tuple[int, int]] = []
    at = created_ms
    for lo, hi in sorted(intervals):
        lo, hi = max(lo, created_ms), min(hi, end_ms)
        if hi <= lo:
            continue
        if lo > at:
            out.append((at, lo))
        at = max(at, hi)
    if at < end_ms:
        out.append((at, end_ms))
    return out
