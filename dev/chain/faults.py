"""Test controls of the local chain: faults a tester switches on through ``si64_*`` methods.

They exist only in this local chain (never in production code) so that tests can
provoke what a real cluster does now and then:

* **fail**: the RPC answers every request with a JSON-RPC error (``mode="error"``:
  ``-32005 "Node is unhealthy"``, as an unhealthy node does), with HTTP 503
  (``mode="http503"``) or by closing the connection without an answer
  (``mode="disconnect"``);
* **slow**: the RPC waits ``delay_seconds`` before answering (client timeouts);
* **drop**: ``sendTransaction`` runs preflight, returns the signature and never
  lands the transaction (a leader that drops it), so its blockhash can expire
  without it landing;
* **refuse**: any transaction that would write to a refused account fails with
  ``InsufficientFundsForRent`` for that account, as the runtime refuses a
  transfer that leaves a fresh account below rent exemption.

Each of fail/slow/drop lasts ``seconds`` (wall time) and/or ``requests`` (a
count), whichever ends first; with neither it lasts until cleared. ``methods``
limits fail/slow to the named JSON-RPC methods. Controls themselves (``si64_*``,
``localChain_*``) are never failed, slowed or counted.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

CONTROL_PREFIXES = ("si64_", "localChain_")
FAIL_MODES = ("error", "http503", "disconnect")


def is_control(method: Any) -> bool:
    return isinstance(method, str) and method.startswith(CONTROL_PREFIXES)


@dataclass
class Window:
    """A fault that lasts until ``until`` (monotonic) and/or for ``remaining`` more uses."""

    until: float | None = None
    remaining: int | None = None
    methods: frozenset | None = None
    params: dict = field(default_factory=dict)

    def live(self, now: float) -> bool:
        if self.until is not None and now >= self.until:
            return False
        return self.remaining is None or self.remaining > 0

    def applies(self, methods: list[str]) -> bool:
        return self.methods is None or any(m in self.methods for m in methods)

    def use(self) -> None:
        if self.remaining is not None:
            self.remaining -= 1

    def describe(self, now: float) -> dict:
        out: dict = dict(self.params)
        out["secondsLeft"] = None if self.until is None else max(0.0, round(self.until - now, 3))
        out["requestsLeft"] = self.remaining
        out["methods"] = None if self.methods is None else sorted(self.methods)
        return out


class Faults:
    """Thread-safe fault state shared by the HTTP front, the RPC methods and the chain."""

    def __init__(self, monotonic_fn: Callable[[], float] = time.monotonic):
        self._mono = monotonic_fn
        self._lock = threading.Lock()
        self._fail: Window | None = None
        self._slow: Window | None = None
        self._drop: Window | None = None
        self._refused: dict[str, bool] = {}
        self.dropped: list[str] = []  # signatures accepted and never landed, oldest first

    # ---------------------------------------------------------------- set
    def _window(self, seconds: float | None, requests: int | None, methods: list | None, params: dict) -> Window:
        if seconds is not None and (isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or seconds <= 0):
            raise ValueError("seconds must be a positive number")
        if requests is not None and (isinstance(requests, bool) or not isinstance(requests, int) or requests <= 0):
            raise ValueError("requests must be a positive integer")
        if methods is not None and (not isinstance(methods, list) or not all(isinstance(m, str) for m in methods)):
            raise ValueError("methods must be a list of method names")
        until = None if seconds is None else self._mono() + float(seconds)
        return Window(until, requests, None if methods is None else frozenset(methods), params)

    def fail(
        self,
        mode: str = "error",
        seconds: float | None = None,
        requests: int | None = None,
        methods: list | None = None,
    ) -> None:
        if mode not in FAIL_MODES:
            raise ValueError(f"mode must be one of {', '.join(FAIL_MODES)}")
        window = self._window(seconds, requests, methods, {"mode": mode})
        with self._lock:
            self._fail = window

    def slow(
        self,
        delay_seconds: float,
        seconds: float | None = None,
        requests: int | None = None,
        methods: list | None = None,
    ) -> None:
        if (
            isinstance(delay_seconds, bool)
            or not isinstance(delay_seconds, (int, float))
            or not 0 < delay_seconds <= 120
        ):
            raise ValueError("delaySeconds must be a number in (0, 120]")
        window = self._window(seconds, requests, methods, {"delaySeconds": float(delay_seconds)})
        with self._lock:
            self._slow = window

    def drop(self, seconds: float | None = None, requests: int | None = None) -> None:
        window = self._window(seconds, requests, None, {})
        with self._lock:
            self._drop = window

    def refuse(self, address: str, refused: bool = True) -> None:
        with self._lock:
            if refused:
                self._refused[address] = True
            else:
                self._refused.pop(address, None)

    def clear(self) -> None:
        with self._lock:
            self._fail = self._slow = self._drop = None
            self._refused.clear()

    # ---------------------------------------------------------------- use
    def _take(self, name: str, methods: list[str]) -> Window | None:
        """The live window ``name`` if it applies to ``methods`` (one use is consumed)."""
        with self._lock:
            window: Window | None = getattr(self, name)
            if window is None:
                return None
            if not window.live(self._mono()):
                setattr(self, name, None)
                return None
            if not window.applies(methods):
                return None
            window.use()
            return window

    def take_fail(self, methods: list[str]) -> str | None:
        """The failure mode to apply to a request carrying ``methods``, or None."""
        methods = [m for m in methods if not is_control(m)]
        if not methods:
            return None
        window = self._take("_fail", methods)
        return None if window is None else window.params["mode"]

    def take_delay(self, methods: list[str]) -> float:
        methods = [m for m in methods if not is_control(m)]
        if not methods:
            return 0.0
        window = self._take("_slow", methods)
        return 0.0 if window is None else window.params["delaySeconds"]

    def take_drop(self) -> bool:
        return self._take("_drop", ["sendTransaction"]) is not None

    def note_dropped(self, signature: str) -> None:
        with self._lock:
            self.dropped.append(signature)

    def refused_index(self, writable_keys: list[tuple[int, str]]) -> int | None:
        """Index of the first refused account among ``(index, address)`` writable keys."""
        with self._lock:
            if not self._refused:
                return None
            for index, address in writable_keys:
                if address in self._refused:
                    return index
        return None

    def describe(self) -> dict:
        now = self._mono()
        with self._lock:
            out = {}
            for name in ("fail", "slow", "drop"):
                window: Window | None = getattr(self, "_" + name)
                out[name] = window.describe(now) if window is not None and window.live(now) else None
            out["refused"] = sorted(self._refused)
            out["dropped"] = list(self.dropped)
            return out
