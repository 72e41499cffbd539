"""HTTP latency of each endpoint against the stack's API server on 127.0.0.1.

Each operation is timed N times, sequentially, in two modes that alternate request by request:
on a new connection per request (`http.client`, connect included: the figures `make bench`
always had) and on one keep-alive `requests.Session` (what a browser or an SDK does). Bounded:
at most N requests per mode and `per_endpoint_s` seconds per operation and mode, `budget_s` in
all (the n actually sent is reported). Requests are built (payments made, headers signed)
outside the timer.
"""

from __future__ import annotations

import itertools
import json
import math
import statistics
import time
import urllib.parse
from collections import Counter

from chalicelib.domain.signing import extend_memo, rent_memo
from dev.bench.common import SAMPLE, BenchError, Wallet, price, say

MODES = ("new_connection", "keep_alive")


def _body(body) -> bytes | None:
    return None if body is None else (body if isinstance(body, str) else json.dumps(body)).encode()


class NewConnection:
    """One `http.client.HTTPConnection` per request, closed after it."""

    def __init__(self, base: str, timeout: float = 30.0):
        u = urllib.parse.urlsplit(base)
        if u.hostname not in ("127.0.0.1", "localhost"):
            raise BenchError(f"refusing to send traffic to {u.hostname}: 127.0.0.1 only")
        self.host, self.port, self.timeout = u.hostname, u.port, timeout

    def __call__(self, method: str, path: str, body=None, headers=None) -> tuple[int, bytes, float]:
        import http.client

        conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
        h = {"Content-Type": "application/json", **(headers or {})}
        try:
            t0 = time.perf_counter()
            conn.request(method, path, body=_body(body), headers=h)
            resp = conn.getresponse()
            raw = resp.read()
            ms = (time.perf_counter() - t0) * 1000
        finally:
            conn.close()
        return resp.status, raw, ms

    def close(self) -> None:
        pass


class KeepAlive:
    """One `requests.Session`: the connection is opened once (untimed) and reused."""

    def __init__(self, base: str, timeout: float = 30.0):
        import requests

        NewConnection(base)  # the same 127.0.0.1-only check
        self.base, self.timeout = base.rstrip("/"), timeout
        self.session = requests.Session()
        self.session.get(self.base + "/api/health", timeout=timeout).content  # noqa: B018 - opens the connection

    def __call__(self, method: str, path: str, body=None, headers=None) -> tuple[int, bytes, float]:
        h = {"Content-Type": "application/json", **(headers or {})}
        t0 = time.perf_counter()
        r = self.session.request(method, self.base + path, data=_body(body), headers=h, timeout=self.timeout)
        raw = r.content
        ms = (time.perf_counter() - t0) * 1000
        return r.status_code, raw, ms

    def close(self) -> None:
        self.session.close()


def pct(values: list[float], p: float) -> float:
    s = sorted(values)
    k = max(0, min(len(s) - 1, math.ceil(p / 100 * len(s)) - 1))  # nearest rank
    return round(s[k], 2)


def summary(times: list[float], bad: Counter) -> dict:
    out = {"p50": pct(times, 50), "p95": pct(times, 95), "n": len(times), "mean": round(statistics.fmean(times), 2)}
    if bad:
        out["unexpected_status"] = dict(bad)
    return out


def latency(info: dict, payer: Wallet, n: int, budget_s: float, per_endpoint_s: float = 8.0) -> dict:
    """{operation: {p50, p95, n, mean (new connections), "keep_alive": {p50, p95, n, mean}}}."""
    base = info["api_url"]
    admin = {"X-Admin-Key": info["admin_key"]}
    deadline = time.monotonic() + budget_s
    clients = {"new_connection": NewConnection(base), "keep_alive": KeepAlive(base)}
    results: dict = {}

    def run(name, make, expect=(200,), keep=None):
        """make(i) -> (method, path, body, headers), prepared outside the timer; keep(body) sees answers.
        The two modes alternate request by request, so both see the same background load."""
        times: dict = {mode: [] for mode in MODES}
        bad: dict = {mode: Counter() for mode in MODES}
        stop = min(deadline, time.monotonic() + len(MODES) * per_endpoint_s)
        for i in range(n):
            if time.monotonic() > stop:
                say(f"time cap reached: {name} stopped after {i} requests per mode")
                break
            for mode in MODES:
                method, path, body, headers = make(i)
                st, raw, ms = clients[mode](method, path, body, headers)
                if st not in expect:
                    bad[mode][st] += 1
                    if sum(bad[mode].values()) == 1:
                        say(f"{name} ({mode}): {method} {path} -> {st} {raw[:200]!r}")
                elif keep is not None:
                    keep(json.loads(raw))
                times[mode].append(ms)
        if times["new_connection"]:
            results[name] = dict(summary(times["new_connection"], bad["new_connection"]))
            results[name]["keep_alive"] = summary(times["keep_alive"], bad["keep_alive"])

    def rent_one(tier, hours=1):
        sig = payer.pay(price(tier, hours), rent_memo(tier, hours * 3600))
        return {"wallet": payer.wallet, "tier": tier, "duration_hours": hours, "tx_signature": sig}

    try:
        run("health", lambda i: ("GET", "/api/health", None, None))
        run("pricing", lambda i: ("GET", "/api/pricing", None, None))
        run("devices", lambda i: ("GET", f"/api/devices/{['M2', 'ORIN', 'M3_ULTRA', 'THOR'][i % 4]}", None, None))
        rented: list[str] = []
        run(
            "rent",
            lambda i: ("POST", "/api/rent", rent_one(["ORIN", "M3_ULTRA"][i % 2]), None),
            expect=(201,),
            keep=lambda body: rented.append(body["contract_id"]),
        )
        target = json.loads(clients["new_connection"]("POST", "/api/rent", rent_one("THOR", 2))[1])
        cid, dev = target["contract_id"], target["device_id"]
        key = {"X-Device-Key": info["device_keys"][dev]}
        run("status", lambda i: ("GET", f"/api/contracts/{cid}", None, None))
        ext = lambda i: {"additional_hours": 1, "tx_signature": payer.pay(price("THOR", 1), extend_memo(cid, 3600))}
        run("extend", lambda i: ("POST", f"/api/contracts/{cid}/extend", ext(i), None))
        run("metrics", lambda i: ("POST", f"/api/metrics/{cid}", SAMPLE, key))

        def batch(i):
            now = int(time.time() * 1000)
            samples = [dict(SAMPLE, timestamp_ms=now - 10 * j) for j in range(120)]  # within the new contract's life
            return "POST", f"/api/metrics/{cid}", {"samples": samples}, key

        run("metrics_batch_120", batch)
        run("contract_metrics", lambda i: ("GET", f"/api/contracts/{cid}/metrics", None, None))
        run("ledger_page", lambda i: ("GET", "/api/billing/ledger?limit=100", None, admin))
        run("entries", lambda i: ("GET", f"/api/billing/entries?contract_id={cid}", None, admin))
        run("stats", lambda i: ("GET", "/api/stats", None, admin))

        fresh = itertools.cycle(list(rented))  # both modes together settle each rented contract once

        def settle(i):
            path = f"/api/contracts/{next(fresh)}/settle"
            return "POST", path, "", payer.renter_headers("POST", path)

        if rented:
            run("settle", settle)
    finally:
        for c in clients.values():
            c.close()
    return results
