"""A keep-alive JSON client for the load run, and the recorder of every request it makes.

``Api(base_url, recorder)`` keeps one ``http.client`` connection per thread (the server,
Chalice's local server, answers HTTP/1.1 keep-alive). Each call is recorded under an
operation name: latency, status and the docs/api.md ``code`` of an error body. A request that
got no answer (timeout, reset) is recorded with status 0 and code ``transport:<Error>``.
A keep-alive connection the server closed while idle is re-opened once, before anything
was answered; nothing else is retried here (the actors decide what to retry).
"""

from __future__ import annotations

import http.client
import json
import math
import threading
import time
import urllib.parse
from collections import Counter, defaultdict

STALE = (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError, http.client.CannotSendRequest)


class Recorder:
    """Thread-safe tallies: per operation the latencies (s) and status+code counts."""

    def __init__(self):
        self._lock = threading.Lock()
        self.latencies: dict[str, list[float]] = defaultdict(list)
        self.codes: Counter = Counter()  # (op, status, code)
        self.window: tuple[float, float] | None = None  # monotonic (start, end) of the drive phase
        self.in_window: Counter = Counter()  # requests per op completed inside the window

    def record(self, op: str, status: int, code: str | None, seconds: float) -> None:
        now = time.monotonic()
        with self._lock:
            self.latencies[op].append(seconds)
            self.codes[(op, status, code or "")] += 1
            if self.window and self.window[0] <= now <= self.window[1]:
                self.in_window[op] += 1

    def mark(self) -> tuple:
        """Where the tallies stand now (for `since`): per op the number of latencies, the codes."""
        with self._lock:
            return time.monotonic(), {op: len(v) for op, v in self.latencies.items()}, Counter(self.codes)

    def since(self, mark: tuple) -> dict:
        """Per op, what completed after `mark`: count, rate, p50/p99 ms; and the status counts."""
        t0, lengths, codes = mark
        with self._lock:
            seconds = max(time.monotonic() - t0, 1e-9)
            lat = {op: v[lengths.get(op, 0) :] for op, v in self.latencies.items()}
            new_codes = self.codes - codes
        ops = {
            op: {
                "requests": len(v),
                "per_second": round(len(v) / seconds, 2),
                "p50_ms": percentile_ms(v, 50),
                "p99_ms": percentile_ms(v, 99),
            }
            for op, v in sorted(lat.items())
            if v
        }
        counts = [
            {"op": op, "status": st, "code": code or None, "count": n}
            for (op, st, code), n in sorted(new_codes.items())
        ]
        return {"seconds": round(seconds, 2), "operations": ops, "status_counts": counts}

    def open_window(self, seconds: float) -> None:
        start = time.monotonic()
        self.window = (start, start + seconds)

    def close_window(self) -> float:
        """End the window now (if earlier than planned); its length in seconds."""
        start, end = self.window
        self.window = (start, min(end, time.monotonic()))
        return self.window[1] - start

    def summary(self, window_seconds: float) -> dict:
        with self._lock:
            ops = {}
            for op, lat in sorted(self.latencies.items()):
                ops[op] = {
                    "requests": len(lat),
                    "in_window": self.in_window[op],
                    "per_second": round(self.in_window[op] / window_seconds, 2) if window_seconds else 0.0,
                    "p50_ms": percentile_ms(lat, 50),
                    "p99_ms": percentile_ms(lat, 99),
                    "max_ms": round(max(lat) * 1000, 1) if lat else None,
                }
            counts = [
                {"op": op, "status": st, "code": code or None, "count": n}
                for (op, st, code), n in sorted(self.codes.items())
            ]
            total = sum(self.in_window.values())
        by_status: Counter = Counter()
        for c in counts:
            by_status[f"{c['status']} {c['code']}" if c["code"] else str(c["status"])] += c["count"]
        return {
            "window_seconds": round(window_seconds, 2),
            "requests_in_window": total,
            "requests_per_second": round(total / window_seconds, 2) if window_seconds else 0.0,
            "requests_total": sum(len(v) for v in self.latencies.values()),
            "operations": ops,
            "status_counts": counts,
            "status_totals": dict(sorted(by_status.items())),
        }


def percentile_ms(values: list[float], p: float) -> float | None:
    """Nearest-rank percentile, in milliseconds."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(p / 100 * len(ordered)))
    return round(ordered[rank - 1] * 1000, 1)


class Api:
    """JSON over one keep-alive connection per thread; every call recorded as `op`."""

    def __init__(self, base_url: str, recorder: Recorder, timeout: float = 30.0):
        u = urllib.parse.urlsplit(base_url)
        if u.hostname != "127.0.0.1":
            raise ValueError(f"the load run talks to 127.0.0.1 only, not {base_url}")
        self.host, self.port, self.timeout = u.hostname, u.port, timeout
        self.base_url = base_url.rstrip("/")
        self.recorder = recorder
        self._local = threading.local()
        self._all: list[http.client.HTTPConnection] = []
        self._lock = threading.Lock()

    def _conn(self, fresh: bool = False) -> http.client.HTTPConnection:
        conn = getattr(self._local, "conn", None)
        if conn is None or fresh:
            if conn is not None:
                conn.close()
            conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
            self._local.conn = conn
            with self._lock:
                self._all.append(conn)
        return conn

    def close(self) -> None:
        with self._lock:
            for c in self._all:
                c.close()
            self._all.clear()

    def call(
        self, op: str, method: str, path: str, body=None, headers: dict | None = None, raw: bytes | None = None
    ) -> tuple[int, object, dict]:
        """(status, parsed JSON or None, response headers); status 0 when nothing was answered.
        `raw` sends exactly these bytes (a signed body); else `body` is JSON-encoded."""
        data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
        hdrs = {"Accept": "application/json", **(headers or {})}
        if data is not None:
            hdrs["Content-Type"] = "application/json"
        t0 = time.perf_counter()
        try:
            status, raw_answer, rh = self._send(method, path, data, hdrs)
        except (OSError, http.client.HTTPException) as exc:
            self._conn(fresh=True)
            self.recorder.record(op, 0, f"transport:{type(exc).__name__}", time.perf_counter() - t0)
            return 0, None, {}
        seconds = time.perf_counter() - t0
        try:
            parsed = json.loads(raw_answer) if raw_answer else None
        except ValueError:
            parsed = None
        code = parsed.get("code") if status >= 400 and isinstance(parsed, dict) else None
        if status >= 400 and not code:
            code = "unshaped"  # an error outside the docs/api.md shape
        elif status >= 500 and parsed.get("reason"):
            code = f"{code}:{parsed['reason']}"  # which dependency or check: database, contention, ...
        elif status >= 500 and parsed.get("reason"):
            code = f"{code}:{parsed['reason']}"  # which dependency or check (database, contention, ...)
        self.recorder.record(op, status, code, seconds)
        return status, parsed, rh

    def _send(self, method, path, data, hdrs):
        for attempt in (0, 1):
            conn = self._conn(fresh=attempt == 1)
            try:
                conn.request(method, path, body=data, headers=hdrs)
                resp = conn.getresponse()
            except STALE:
                if attempt == 1:
                    raise
                continue  # the server closed an idle keep-alive connection: once more, fresh
            answer = resp.read()
            if resp.will_close:
                self._conn(fresh=True)
            return resp.status, answer, {k.lower(): v for k, v in resp.getheaders()}
        raise AssertionError("unreachable")

    def read(self, op: str, path: str, headers: dict | None = None, tries: int = 5) -> tuple[int, object, dict]:
        """A GET of the run's observers (slot monitor, books): a 429 waits its Retry-After
        (at most 10 s) and asks again, at most `tries` times; every answer is recorded."""
        for _ in range(tries):
            status, ans, rh = self.call(op, "GET", path, headers=headers)
            if status != 429:
                break
            try:
                wait = float(rh.get("retry-after", "1"))
            except ValueError:
                wait = 1.0
            time.sleep(min(max(wait, 0.1), 10.0))
        return status, ans, rh
