"""The rate limit, as a service over ClaimStore and Clock (ADR 0009, ADR 0020).

Two lines per subject (a client IP, or a device whose key verified):
1. this function instance's sliding window, in memory (no I/O);
2. the fleet-wide fixed window in the claims table, whose slots this instance reserves in
   blocks: one conditional UpdateItem reserves n slots (never past `limit`), and the next n - 1
   requests of that subject in that window pass from memory. n grows per subject and window
   like slow start (1, 2, 4, ... up to `block_cap(limit)`, and never more than the count the
   table last reported leaves); a refused block of n > 1 is retried once with n = 1. A window
   this instance saw full is refused without a write until it ends. Unused slots die with the
   window (they stay counted: stricter, never looser).
When the write does not answer, the request passes (fail open, logged at most every 10 s)
with the instance's window still enforced.

One `RateLimit` lives per function instance (bootstrap.Container holds it): its memory is that
instance's. Limits are passed per call, so a change of settings applies at once.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ..domain import errors as e

if TYPE_CHECKING:  # types only: importing the Protocols costs cold-start time
    from ..ports import ClaimStore, Clock

log = logging.getLogger("si64.api")
REASONS = {"address": "ip", "device": "device"}
FAIL_OPEN_LOG_EVERY_S = 10
MAX_SUBJECTS = 10_000
MAX_BLOCK = 64  # slots one reservation takes at most
RESERVE_WAIT_S = 2.0  # a request waits this long for another thread's reservation, then reserves its own


class RateLimited(e.DomainError):
    def __init__(self, detail: str, reason: str | None = None, *, retry_after: int):
        super().__init__(detail, reason)
        self.retry_after = retry_after


def _refusal(limit: int, window_s: int, what: str, retry_after: int) -> RateLimited:
    return RateLimited(
        f"More than {limit} requests in {window_s} s from this {what}.",
        reason=REASONS.get(what, "ip"),
        retry_after=retry_after,
    )


def block_cap(limit: int) -> int:
    """The largest block one instance reserves of a `limit`-request window: 9 for 150, 12 for
    200, 64 from 1,024 up, 1 below 32 (one write per request, as before)."""
    return max(1, min(MAX_BLOCK, limit // 16))


@dataclass
class _Window:
    """This instance's share of one subject's shared window."""

    start: int  # ms
    end: int  # ms
    left: int = 0  # slots reserved here and not yet spent
    size: int = 1  # the next block (slow start)
    count: int = 0  # the shared count the table last reported (0: not asked yet)
    limit: int = 0
    full: bool = False  # refused by the table, or its count reached the limit and `left` is spent
    busy: bool = False  # a reservation is in flight (its thread does the I/O outside the lock)
    outages: int = 0  # reservations that found the table down


@dataclass
class RateLimit:
    """claims: the shared window counter (`count_request`). clock: now, Unix ms (the shared
    windows). monotonic: seconds of this process (the instance's sliding windows)."""

    claims: ClaimStore
    clock: Clock
    monotonic: Callable[[], float] = time.monotonic
    _hits: dict[str, deque[float]] = field(default_factory=dict, repr=False)
    _windows: dict[str, _Window] = field(default_factory=dict, repr=False)
    _lock: threading.Condition = field(default_factory=lambda: threading.Condition(threading.Lock()), repr=False)
    _last_fail_open: float | None = field(default=None, repr=False)

    def check(self, subject: str, limit: int, window_s: int, what: str = "address", shared: bool = True) -> None:
        """RateLimited unless `subject` is within `limit` per `window_s` (see the module)."""
        self.check_instance(subject, limit, window_s, what)
        if not shared:
            return
        now = self.clock()
        window_ms = window_s * 1000
        start = now - now % window_ms
        refused = _refusal(limit, window_s, what, max(1, -(-(start + window_ms - now) // 1000)))
        with self._lock:
            w = self._window(subject, start, window_ms, now)
            w.limit = limit
            while w.busy:  # one reservation at a time: it may bring slots for this request too
                outages = w.outages
                if not self._lock.wait(RESERVE_WAIT_S) and w.busy:
                    break  # slow I/O: reserve apart (correct either way: the table holds the count)
                if w.outages != outages:
                    return  # the reservation waited on found the table down: fail open with it
            if self._spend(w):
                return
            if w.full:
                raise refused
            mine = not w.busy
            n = min(w.size, block_cap(limit), max(1, limit - w.count)) if mine else 1
            w.busy = w.busy or mine
        count, got = None, 0
        try:
            count, got = self._reserve(subject, start, window_ms, limit, n)
        except e.Unavailable:
            self._settle(w, mine, n, outage=True)
            self._log_fail_open()
            return
        except BaseException:
            self._settle(w, mine, n, outage=True)  # a bug: free the window for the next request
            raise
        self._settle(w, mine, n, count=count, got=got)
        if count is None:
            raise refused

    def _spend(self, w: _Window) -> bool:
        """Take a reserved slot (under the lock); mark the window full once its last is spent."""
        if w.left:
            w.left -= 1
            return True
        if w.count >= w.limit > 0:
            w.full = True
        return False

    def _reserve(self, subject: str, start: int, window_ms: int, limit: int, n: int) -> tuple[int | None, int]:
        """(the shared count, slots got): n, or 1 when n did not fit but 1 did, or (None, 0)."""
        count = self.claims.count_request(subject, start, window_ms, limit, n)
        if count is None and n > 1:
            n = 1
            count = self.claims.count_request(subject, start, window_ms, limit, 1)
        return count, (n if count is not None else 0)

    def _settle(
        self, w: _Window, mine: bool, n: int, *, count: int | None = None, got: int = 0, outage: bool = False
    ) -> None:
        """Book the outcome of a reservation of n slots (this request takes one of those got) and
        wake the requests waiting for it. After a fallback to 1 the window's last slots go one at a
        time; otherwise the next block doubles."""
        with self._lock:
            if mine:
                w.busy = False
            if outage:
                w.outages += 1
            elif count is None:
                w.full = True
            else:
                w.left += got - 1
                w.count = max(w.count, count)
                if mine:
                    w.size = 1 if got < n else min(2 * w.size, MAX_BLOCK)
                if w.left == 0 and w.count >= w.limit:
                    w.full = True
            self._lock.notify_all()

    def _window(self, subject: str, start: int, window_ms: int, now: int) -> _Window:
        """This instance's record of `subject`'s window starting at `start` (under the lock)."""
        w = self._windows.get(subject)
        if w is not None and w.start == start:
            return w
        if len(self._windows) >= MAX_SUBJECTS:  # bound memory: forget ended windows, then any idle ones
            kept = {k: v for k, v in self._windows.items() if v.end > now or v.busy}
            if len(kept) >= MAX_SUBJECTS:  # dropped slots stay counted in the table: stricter
                kept = {k: v for k, v in kept.items() if v.busy}
            self._windows = kept
        w = self._windows[subject] = _Window(start, start + window_ms)
        return w

    def check_instance(self, subject: str, limit: int, window_s: int, what: str = "address") -> None:
        """This instance's sliding window only (no I/O)."""
        now = self.monotonic()
        with self._lock:
            q = self._hits.setdefault(subject, deque())
            while q and q[0] <= now - window_s:
                q.popleft()
            if len(q) >= limit:
                raise _refusal(limit, window_s, what, max(1, int(q[0] + window_s - now + 0.999)))
            q.append(now)
            if len(self._hits) > MAX_SUBJECTS:  # bound memory: forget idle clients
                for k in [k for k, v in self._hits.items() if not v or v[-1] <= now - window_s][: MAX_SUBJECTS // 2]:
                    del self._hits[k]

    def _log_fail_open(self) -> None:
        mono = self.monotonic()
        if self._last_fail_open is None or mono - self._last_fail_open >= FAIL_OPEN_LOG_EVERY_S:
            self._last_fail_open = mono
            log.warning(
                "rate limiter: the claims table did not answer; failing open (the per-instance limit still applies)"
            )
