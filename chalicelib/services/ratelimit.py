"""The rate limit, as a service over ClaimStore and Clock (ADR 0009).

Two lines per subject (a client IP, or a device whose key verified):
1. this function instance's sliding window, in memory (no I/O), and the shared windows this
   instance already saw full (refused without a write until the window ends);
2. the fleet-wide fixed window in the claims table: one conditional UpdateItem per request.
When that write does not answer, the request passes (fail open, logged at most every 10 s)
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


@dataclass
class RateLimit:
    """claims: the shared window counter (`count_request`). clock: now, Unix ms (the shared
    windows). monotonic: seconds of this process (the instance's sliding windows)."""

    claims: ClaimStore
    clock: Clock
    monotonic: Callable[[], float] = time.monotonic
    _hits: dict[str, deque[float]] = field(default_factory=dict, repr=False)
    _full: dict[str, int] = field(default_factory=dict, repr=False)  # subject -> start (ms) of a window known full
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
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
        if self._known_full(subject, start):
            raise refused
        try:
            count = self.claims.count_request(subject, start, window_ms, limit)
        except e.Unavailable:
            self._log_fail_open()
            return
        if count is None or count >= limit:
            self._mark_full(subject, start)
        if count is None:
            raise refused

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

    def _known_full(self, subject: str, window_start_ms: int) -> bool:
        with self._lock:
            return self._full.get(subject) == window_start_ms

    def _mark_full(self, subject: str, window_start_ms: int) -> None:
        with self._lock:
            if len(self._full) > MAX_SUBJECTS:
                self._full = {k: v for k, v in self._full.items() if v >= window_start_ms}
            self._full[subject] = window_start_ms

    def _log_fail_open(self) -> None:
        mono = self.monotonic()
        if self._last_fail_open is None or mono - self._last_fail_open >= FAIL_OPEN_LOG_EVERY_S:
            self._last_fail_open = mono
            log.warning(
                "rate limiter: the claims table did not answer; failing open (the per-instance limit still applies)"
            )
