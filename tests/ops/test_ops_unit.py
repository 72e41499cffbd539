"""Unit tests of the operator CLI and the device agent: no sockets, no stack.

HTTP is replaced at ``si64.client.http_json`` (dashboard, export, CLI) or by
the reporter's ``transport`` (agent); psutil by a stand-in with scripted counters.
"""

from __future__ import annotations

import asyncio
import io
import json
import random
import re
import threading
import time
import urllib.parse
from collections import namedtuple
from decimal import Decimal

import pytest

from si64 import agent as ag
from si64 import cli, export, fmt
from si64 import client as cl
from si64 import dashboard as db

# ------------------------------------------------------------------ formatting


@pytest.mark.parametrize(
    "lamports, text",
    [
        (0, "0.000000000"),
        (1, "0.000000001"),
        (1_000_000_000, "1.000000000"),
        (-5_000, "-0.000005000"),
        (123_456_789_012_345_678, "123,456,789.012345678"),
        (2**63 + 1, "9,223,372,036.854775809"),  # beyond float precision: still exact
    ],
)
def test_sol_is_exact(lamports, text):
    assert fmt.sol(lamports) == text
    whole, frac = text.lstrip("-").replace(",", "").split(".")
    assert (int(whole) * 10**9 + int(frac)) * (-1 if lamports < 0 else 1) == lamports
    assert Decimal(text.replace(",", "")) * 10**9 == lamports


def test_sol_places_never_cuts_digits_and_refuses_floats():
    assert fmt.sol(1_500_000_000, places=3) == "1.500"
    assert fmt.sol(1_500_000_001, places=3) == "1.500000001"
    assert fmt.sol(7, unit=True) == "0.000000007 SOL"
    assert fmt.sol(None) == "n/a"
    with pytest.raises(TypeError):
        fmt.sol(0.1)
    with pytest.raises(TypeError):
        fmt.sol(True)
    # the lamport field is read, never the float SOL field
    assert fmt.lamports_of({"prepaid": 0.3, "prepaid_lamports": 300_000_000}, "prepaid") == 300_000_000
    assert fmt.lamports_of({"prepaid": 0.3}, "prepaid") is None


def test_durations_and_signatures():
    assert [fmt.duration(s) for s in (None, -5, 0, 59, 61, 3725, 90061)] == [
        "n/a",
        "0s",
        "0s",
        "59s",
        "1m01s",
        "1h02m05s",
        "1d01h01m",
    ]
    assert fmt.short_sig(None) == "-" and fmt.short_sig("a" * 88) == "aaaaaaaa…aaaaaaaa"
    assert fmt.utc(1_764_070_000, with_date=True) == "2025-11-25 11:26:40Z"


# ------------------------------------------------------------------ configuration and errors


def test_resolve_precedence(tmp_path):
    (tmp_path / "stack.json").write_text(
        json.dumps({"api_url": "http://127.0.0.1:5555", "admin_key": "stack-admin", "device_keys": {"d1": "dk_d1_x"}})
    )
    env = {"SI64_STATE_DIR": str(tmp_path)}
    t = cl.resolve(env=env)
    assert (t.api_url, t.admin_key, t.device_keys) == ("http://127.0.0.1:5555", "stack-admin", {"d1": "dk_d1_x"})
    t = cl.resolve(env=dict(env, SI64_API_URL="https://stage.example/api/", SI64_ADMIN_KEY="env-key"))
    assert (t.api_url, t.admin_key) == ("https://stage.example/api", "env-key")
    t = cl.resolve("https://flag.example", "flag-key", env=dict(env, SI64_ADMIN_KEY="env-key"))
    assert (t.api_url, t.admin_key, t.device_keys) == ("https://flag.example", "flag-key", {})
    # the local stack's admin key is never sent to another URL
    t = cl.resolve("https://flag.example", env=env)
    assert t.admin_key is None
    with pytest.raises(cl.ConfigError, match="stack.json not found"):
        cl.resolve(env={"SI64_STATE_DIR": str(tmp_path / "nothing")})


def test_api_error_is_one_line():
    e = cl.ApiError(
        401,
        {"detail": "A valid X-Admin-Key header is required.\nreally", "code": "unauthorized", "reason": "X-Admin-Key"},
        "GET",
        "/api/stats",
        "check --admin-key",
    )
    assert "\n" not in str(e)
    assert str(e).startswith("401 unauthorized: A valid X-Admin-Key header is required.")
    assert "check --admin-key" in str(e)
    assert str(cl.ApiError(403, {"message": "Missing Authentication Token"}, "GET", "/x")).startswith(
        "403: Missing Authentication Token"
    )


# ------------------------------------------------------------------ a fake API behind http_json


def _rows(n_active: int, n_done: int, now: int):
    active = [
        {
            "contract_id": f"CTR-active{i:016d}",
            "wallet": "W",
            "tier": "M2",
            "status": "ACTIVE",
            "device_id": f"device-m2-{i % 3:03d}",
            "expires_at": now + 10 + (i * 7919) % 5000,
            "prepaid": 0.001,
            "prepaid_lamports": 1_000_000 + i,
            "used": 0.0,
            "used_lamports": 1_000 + i,
            "refund": 0.0,
            "refund_lamports": 999_000,
        }
        for i in range(n_active)
    ]
    done = [
        {
            "contract_id": f"CTR-done{i:018d}",
            "wallet": "W",
            "tier": "ORIN",
            "status": "SETTLED",
            "settlement_time": now - 10_000 + i,
            "refund_status": "CONFIRMED" if i % 2 else "DUST",
            "refund_tx": f"sig{i:085d}",
            "prepaid_lamports": 2_000_000,
            "used_lamports": 1_500_000,
            "refund_lamports": 500_000 if i % 2 else 4_000,
        }
        for i in range(n_done)
    ]
    return active, done


class FakeApi:
    """Routes of the API, answered from memory; counts calls."""

    def __init__(self, n_active=3, n_done=2, admin_key="k", now=1_800_000_000, dust=(4_000, 3_000)):
        self.now, self.admin_key = now, admin_key
        self.active, self.done = _rows(n_active, n_done, now)
        self.dust = list(dust)
        self.calls: list[str] = []

    def __call__(self, method, url, body=None, headers=None, timeout=None):
        u = urllib.parse.urlsplit(url)
        q = dict(urllib.parse.parse_qsl(u.query))
        self.calls.append(u.path)
        headers = headers or {}
        admin = u.path.startswith(("/api/billing", "/api/admin/")) or u.path == "/api/stats"
        if admin and headers.get("X-Admin-Key") != self.admin_key:
            return (
                401,
                {"detail": "A valid X-Admin-Key header is required.", "code": "unauthorized", "reason": "X-Admin-Key"},
                {},
            )
        if u.path == "/api/stats":
            return (
                200,
                {
                    "contracts": {"ACTIVE": len(self.active), "SETTLED": len(self.done), "EXPIRED": 0},
                    "devices": {"count": 12, "slots_leased": len(self.active), "slots_free": 1, "capacity": 48},
                    "refunds_by_status": {"CONFIRMED": 1},
                    "queues": {"refund_queue": {"visible": 3, "in_flight": 1}, "dead_letter_queue": None},
                    "revenue_lamports": 1_500_000 * len(self.done),
                    "revenue": 0.1,
                    "pending_refunds_lamports": 0,
                    "active_prepaid_lamports": sum(r["prepaid_lamports"] for r in self.active),
                    "rpc_reachable": True,
                    "server_time": self.now,
                },
                {},
            )
        if u.path == "/api/pricing":
            return 200, {"tiers": [{"tier": "M2"}, {"tier": "ORIN"}]}, {}
        if u.path == "/api/admin/devices":
            devices = []
            for tier in ("M2", "ORIN"):
                devices += [
                    {
                        "id": f"device-{tier}-1",
                        "tier": tier,
                        "leases": 2,
                        "capacity": 4,
                        "uptime": "99.5%",
                        "audited": True,
                        "last_seen_ms": (self.now - 30) * 1000,
                        "key_set": True,
                    },
                    {
                        "id": f"device-{tier}-2",
                        "tier": tier,
                        "leases": 0,
                        "capacity": 4,
                        "uptime": "100.0%",
                        "audited": False,
                        "last_seen_ms": None,
                        "key_set": False,
                    },
                ]
            return 200, {"devices": devices, "count": len(devices), "server_time_ms": self.now * 1000}, {}
        if u.path.startswith("/api/devices/"):
            tier = u.path.rsplit("/", 1)[1]
            return (
                200,
                [
                    {
                        "id": f"device-{tier}-1",
                        "tier": tier,
                        "leases": 2,
                        "capacity": 4,
                        "uptime": "99.5%",
                        "audited": True,
                    },
                    {
                        "id": f"device-{tier}-2",
                        "tier": tier,
                        "leases": 0,
                        "capacity": 4,
                        "uptime": "100.0%",
                        "audited": False,
                    },
                ],
                {},
            )
        if u.path == "/api/billing/ledger":
            rows = [("a", r) for r in self.active] + [("d", r) for r in self.done]
            start, limit = int(q.get("next_token") or 0), int(q["limit"])
            page = rows[start : start + limit]
            nxt = str(start + limit) if start + limit < len(rows) else None
            return (
                200,
                {
                    "active_contracts": [r for k, r in page if k == "a"],
                    "completed_settlements": [r for k, r in page if k == "d"],
                    "next_token": nxt,
                },
                {},
            )
        if u.path == "/api/billing/entries":
            if q.get("account") == "retained_dust":
                return (
                    200,
                    {
                        "entries": [
                            {
                                "entry_id": f"x#{i}",
                                "account": "retained_dust",
                                "debit_lamports": 0,
                                "credit_lamports": d,
                            }
                            for i, d in enumerate(self.dust)
                        ],
                        "next_token": None,
                    },
                    {},
                )
            cid = q.get("contract_id")
            if cid and cid not in {r["contract_id"] for r in self.active + self.done}:
                return 200, {"entries": [], "next_token": None}, {}  # no such contract: no postings
            if cid:
                return (
                    200,
                    {
                        "entries": [
                            {
                                "entry_id": f"{cid}#1#rent#0",
                                "contract_id": cid,
                                "account": "treasury",
                                "debit_lamports": 10,
                                "credit_lamports": 0,
                                "kind": "rent",
                                "created_at_ms": 2,
                            },
                            {
                                "entry_id": f"{cid}#1#rent#1",
                                "contract_id": cid,
                                "account": f"escrow:{cid}",
                                "debit_lamports": 0,
                                "credit_lamports": 10,
                                "kind": "rent",
                                "created_at_ms": 2,
                            },
                        ],
                        "next_token": None,
                    },
                    {},
                )
            acc = q.get("account")
            cid0 = self.active[0]["contract_id"] if self.active else "CTR-x"
            rows = (
                [
                    {
                        "entry_id": f"{cid0}#1#rent#0",
                        "contract_id": cid0,
                        "account": "treasury",
                        "debit_lamports": 10,
                        "credit_lamports": 0,
                        "kind": "rent",
                        "created_at_ms": 2,
                    }
                ]
                if acc == "treasury"
                else []
            )
            return 200, {"entries": rows, "next_token": None}, {}
        return 403, {"message": "Missing Authentication Token"}, {}


@pytest.fixture
def fake_api(monkeypatch):
    def make(**kw):
        api = FakeApi(**kw)
        monkeypatch.setattr(cl, "http_json", api)
        return api

    return make


def _client(key="k"):
    return cl.Client(cl.Target("http://api.test", key), sleep=lambda s: None)


def test_snapshot_figures_come_from_the_api(fake_api):
    api = fake_api(n_active=3, n_done=2)
    snap = db.Dashboard(_client()).collect()
    figures = {label: value for label, value, _ in db.summary(snap)}
    assert figures["active contracts"] == "3"
    assert figures["prepaid (active)"] == fmt.sol(3_000_003, unit=True)
    assert figures["used so far (active)"] == fmt.sol(1_000 + 1_001 + 1_002, unit=True)
    assert figures["settled revenue"] == fmt.sol(3_000_000, unit=True)
    assert figures["dust retained"] == fmt.sol(7_000, unit=True)
    assert figures["refund queue"] == "3 waiting · 1 in flight"
    assert figures["dead-letter queue"] == "n/a"  # the API could not read that queue
    rows = {d["tier"]: d for d in db.device_rows(snap)}
    assert rows["M2"] == {
        "tier": "M2",
        "devices": 2,
        "leased": 2,
        "capacity": 8,
        "free": 6,
        "audited": 1,
        "uptime_min": "99.5%",
        "last_seen": api.now - 30,
    }
    assert set(api.calls) == {
        "/api/stats",
        "/api/billing/ledger",
        "/api/billing/entries",
        "/api/pricing",
        "/api/admin/devices",
    }


def test_thousand_active_contracts_top_n_plus_totals_fast_and_plain(fake_api):
    fake_api(n_active=1_000, n_done=2_500)
    t0 = time.perf_counter()
    snap = db.Dashboard(_client()).collect()
    out = io.StringIO()
    db.make_console(plain=True, file=out).print(db.render(snap, top=15, settlements=10, plain=True))
    elapsed = time.perf_counter() - t0
    text = out.getvalue()
    assert "\x1b" not in text  # plain text: no ANSI
    assert not any(line != line.rstrip() for line in text.splitlines())
    assert "15 of 1,000 shown" in text and "all 1,000" in text and "10 of 2,500" in text
    assert text.count("CTR-active") == 15 and text.count("CTR-done") == 10
    # the footer totals are over all 1,000, in exact SOL
    assert fmt.sol(sum(1_000 + i for i in range(1_000))) in text
    assert fmt.sol(sum(1_000_000 + i for i in range(1_000))) in text
    # soonest to expire first; latest settlement first
    shown = db.top_active(snap, 15)
    assert [r["expires_at"] for r in shown] == sorted(r["expires_at"] for r in snap.active)[:15]
    assert db.last_settlements(snap, 1)[0]["contract_id"] == "CTR-done" + f"{2_499:018d}"
    assert len(text.splitlines()) < 80
    assert elapsed < 2.0, elapsed  # 4 ledger pages, 1,000 rows sorted, one frame drawn


def test_page_bound_marks_figures_partial(fake_api):
    fake_api(n_active=2_500, n_done=0)
    snap = db.Dashboard(_client(), max_pages=2).collect()
    assert snap.ledger_truncated and len(snap.active) == 2_000
    out = io.StringIO()
    db.make_console(plain=True, file=out).print(db.render(snap, plain=True))
    assert "PARTIAL" in out.getvalue() and "partial: first pages only" in out.getvalue()


def test_cli_errors_are_one_line(fake_api, capsys, monkeypatch, tmp_path):
    fake_api()
    monkeypatch.setenv("SI64_STATE_DIR", str(tmp_path))
    assert cli.main(["--api", "http://api.test", "--admin-key", "wrong", "dashboard"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("si64: error: 401 unauthorized:"), err
    assert (
        cli.main(["--api", "http://api.test", "--admin-key", "k", "contracts", "show", "CTR-nosuchcontract00000000"])
        == 1
    )
    assert capsys.readouterr().err.startswith("si64: error: 403")  # the fake answers unknown paths as API GW
    monkeypatch.delenv("SI64_API_URL", raising=False)
    assert cli.main(["dashboard"]) == 2
    assert "stack.json not found" in capsys.readouterr().err


def test_cli_dashboard_json_and_plain(fake_api, capsys):
    fake_api(n_active=3, n_done=2)
    assert cli.main(["--api", "http://api.test", "--admin-key", "k", "dashboard", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["active_contracts"] == 3 and data["dust_retained_lamports"] == 7_000
    assert data["active_used_lamports"] == 3_003 and len(data["active"]) == 3
    assert cli.main(["--api", "http://api.test", "--admin-key", "k", "dashboard"]) == 0
    out = capsys.readouterr().out
    assert "CTR-active0000000000000000" in out and "\x1b" not in out


def test_client_waits_out_429(monkeypatch):
    answers = [(429, {"code": "rate_limited"}, {"Retry-After": "2"}), (200, {"ok": 1}, {})]
    monkeypatch.setattr(cl, "http_json", lambda *a, **k: answers.pop(0))
    slept = []
    c = cl.Client(cl.Target("http://api.test", "k"), sleep=slept.append)
    assert c.get("/api/stats", admin=True) == {"ok": 1} and slept == [2.0]


def test_export_whole_ledger_dedups_and_balances(fake_api, tmp_path, capsys):
    fake_api(n_active=3, n_done=2, dust=())
    rows, complete = export.collect(_client())
    assert complete and len(rows) == 10  # 2 postings x 5 contracts; the treasury query adds nothing new
    assert len({r["entry_id"] for r in rows}) == 10
    assert export.totals(rows) == (50, 50)
    path = tmp_path / "ledger.csv"
    assert cli.main(["--api", "http://api.test", "--admin-key", "k", "ledger", "export", "--csv", str(path)]) == 0
    lines = path.read_text().splitlines()
    assert lines[0] == ",".join(export.COLUMNS) and len(lines) == 11
    assert "debits 50 = credits 50 lamports" in capsys.readouterr().out


def test_export_catches_postings_of_no_contract_and_says_when_unbalanced(fake_api, tmp_path, capsys):
    fake_api(n_active=1, n_done=0, dust=(4_000,))  # a dust credit with no counterpart: a broken ledger
    path = tmp_path / "ledger.csv"
    assert cli.main(["--api", "http://api.test", "--admin-key", "k", "ledger", "export", "--csv", str(path)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("si64: error: the ledger does not balance: debits 10") and err.count("\n") == 1
    assert "retained_dust,0,4000" in path.read_text()


# ------------------------------------------------------------------ agent: sampler, buffer, backoff

Cpu = namedtuple("Cpu", "x")
Disk = namedtuple("Disk", "read_bytes write_bytes")
Net = namedtuple("Net", "bytes_sent bytes_recv")
Mem = namedtuple("Mem", "total available")


class FakePsutil:
    def __init__(self):
        self.disk, self.net, self.cpu = Disk(0, 0), Net(0, 0), 12.5

    def cpu_percent(self, interval=None):
        assert interval is None  # never the blocking form
        return self.cpu

    def disk_io_counters(self):
        return self.disk

    def net_io_counters(self):
        return self.net

    def virtual_memory(self):
        return Mem(8 * 10**9, 6 * 10**9)


def test_sampler_reports_real_deltas_per_interval():
    ps, clock = FakePsutil(), [100.0]
    s = ag.Sampler(ps, clock=lambda: clock[0], wall_ms=lambda: 1_700_000_000_000)
    clock[0] += 0.5
    ps.disk, ps.net = Disk(1_000_000, 500_000), Net(250_000, 0)  # 1.5 MB disk, 0.25 MB net in 0.5 s
    x = s.sample()
    assert x == {
        "timestamp_ms": 1_700_000_000_000,
        "cpu_percent": 12.5,
        "memory_mb": 2000.0,
        "disk_io_mbps": 3.0,
        "network_io_mbps": 0.5,
    }
    clock[0] += 0.25
    ps.net = Net(250_000, 250_000)
    x = s.sample()
    assert x["disk_io_mbps"] == 0.0 and x["network_io_mbps"] == 1.0  # only this interval's bytes
    clock[0] += 0.5
    ps.disk = Disk(0, 0)  # counter reset: not a negative rate
    assert s.sample()["disk_io_mbps"] == 0.0
    ps.disk = None  # no disk counters in this container
    clock[0] += 0.5
    assert s.sample()["disk_io_mbps"] == 0.0 and s.disk_available is False


def test_buffer_drops_oldest_and_acks_by_sequence():
    b = ag.SampleBuffer(3)
    for i in range(5):
        b.add({"i": i})
    assert len(b) == 3 and b.dropped == 2
    seq, batch = b.peek(2)
    assert [s["i"] for s in batch] == [2, 3]
    b.add({"i": 5})  # while the batch is in flight, the buffer overflows: {2} is dropped
    b.add({"i": 6})
    assert b.dropped == 4
    assert b.ack(seq) == 0  # 2 and 3 already gone: nothing newer is lost
    assert [s["i"] for s in b.peek(10)[1]] == [4, 5, 6]
    with pytest.raises(ValueError):
        ag.SampleBuffer(0)


def test_backoff_grows_exponentially_with_full_jitter_and_a_cap():
    b = ag.Backoff(base=0.5, cap=8.0, rng=random.Random(7))
    ceilings, delays = [], []
    for _ in range(8):
        ceilings.append(b.ceiling())
        delays.append(b.next_delay())
    assert ceilings == [0.5, 1.0, 2.0, 4.0, 8.0, 8.0, 8.0, 8.0]
    assert all(0.05 <= d <= c for d, c in zip(delays, ceilings, strict=True))
    assert len(set(delays)) == len(delays)  # jittered
    b.reset()
    assert b.ceiling() == 0.5


# ------------------------------------------------------------------ agent: the reporter loop


class CountingSampler:
    def __init__(self):
        self.n, self.lock = 0, threading.Lock()

    def sample(self):
        with self.lock:
            self.n += 1
            return {
                "timestamp_ms": 1_700_000_000_000 + self.n,
                "cpu_percent": 1.0,
                "memory_mb": 1.0,
                "disk_io_mbps": 0.0,
                "network_io_mbps": 0.0,
            }


def _reporter(transport, **kw):
    kw.setdefault("interval", 0.005)
    kw.setdefault("batch_seconds", 0.05)
    kw.setdefault("backoff", ag.Backoff(base=0.01, cap=0.05, rng=random.Random(1)))
    return ag.MetricsReporter(
        "http://api.test", "CTR-x", "dk", sampler=kw.pop("sampler", CountingSampler()), transport=transport, **kw
    )


def test_reporter_retries_through_an_outage_and_stops_at_409():
    posts, state = [], {"t0": time.monotonic()}

    def transport(method, url, body, headers):
        assert (method, url, headers) == ("POST", "http://api.test/api/metrics/CTR-x", {"X-Device-Key": "dk"})
        age = time.monotonic() - state["t0"]
        if 0.1 < age < 0.5:
            raise cl.Unreachable("cannot reach the SI64 API (connection refused)")
        if age > 0.8:
            return 409, {"code": "contract_not_active", "detail": "ended", "reason": None}, {}
        posts.append(body["samples"])
        return 200, {"cost_so_far_lamports": 1}, {}

    r = _reporter(transport)
    result = asyncio.run(asyncio.wait_for(r.run(), 10))
    assert result.reason == "contract_ended" and result.exit_code == 0
    assert "409 contract_not_active" in result.message
    assert result.failures >= 2  # retried, with backoff
    assert all(1 <= len(b) <= ag.MAX_BATCH for b in posts)
    sent = [s["timestamp_ms"] for b in posts for s in b]
    assert sent == sorted(sent) and len(sent) == len(set(sent)) == result.samples_sent  # nothing twice, in order
    assert sent[0] == 1_700_000_000_001  # nothing lost at the start


def test_reporter_bounded_buffer_and_batches_of_at_most_120_after_outage():
    up = {"ok": False}
    posts = []

    def transport(method, url, body, headers):
        if not up["ok"]:
            raise cl.Unreachable("down")
        posts.append(len(body["samples"]))
        return 200, {}, {}

    async def scenario():
        r = _reporter(
            transport, interval=0.001, max_buffer=300, backoff=ag.Backoff(base=0.01, cap=0.02, rng=random.Random(2))
        )
        task = asyncio.create_task(r.run())
        while r.buffer.dropped == 0:
            assert len(r.buffer) <= 300
            await asyncio.sleep(0.01)
        up["ok"] = True
        await asyncio.sleep(0.3)
        r.stop()
        return await task

    result = asyncio.run(asyncio.wait_for(scenario(), 20))
    assert result.reason == "stopped" and result.dropped > 0
    assert max(posts) == ag.MAX_BATCH and all(n <= ag.MAX_BATCH for n in posts)


def test_reporter_fatal_on_wrong_key_and_drops_refused_batches():
    def wrong_key(method, url, body, headers):
        return 401, {"code": "unauthorized", "detail": "bad device key", "reason": "X-Device-Key"}, {}

    result = asyncio.run(asyncio.wait_for(_reporter(wrong_key).run(), 10))
    assert result.reason == "fatal" and result.exit_code == 1 and "401 unauthorized" in result.message

    calls = {"n": 0}

    def refuse_first(method, url, body, headers):
        calls["n"] += 1
        if calls["n"] == 1:
            return 400, {"code": "invalid_request", "detail": "bad", "reason": "samples[0].cpu_percent"}, {}
        if calls["n"] >= 3:
            return 409, {"code": "contract_not_active", "detail": "ended", "reason": None}, {}
        return 200, {}, {}

    result = asyncio.run(asyncio.wait_for(_reporter(refuse_first).run(), 10))
    assert result.reason == "contract_ended" and result.rejected >= 1 and result.batches_sent == 1


def test_reporter_never_blocks_its_loop_while_posting():
    """A post that takes 300 ms (in the executor) does not stop sampling on the loop."""
    sampler = CountingSampler()
    during = []

    def slow(method, url, body, headers):
        n0 = sampler.n
        time.sleep(0.3)
        during.append(sampler.n - n0)
        return 409, {"code": "contract_not_active", "detail": "ended", "reason": None}, {}

    r = _reporter(slow, sampler=sampler, interval=0.01, batch_seconds=0.02)
    asyncio.run(asyncio.wait_for(r.run(), 10))
    assert during and during[0] >= 10, during  # ~30 samples taken while the post was in flight


# ------------------------------------------------------------------ unknown input, alignment


def test_unknown_tier_contract_or_account_exits_non_zero_in_one_line(fake_api, capsys, tmp_path):
    fake_api()
    base = ["--api", "http://api.test", "--admin-key", "k"]
    assert cli.main([*base, "devices", "list", "--tier", "FOO"]) == 2
    err = capsys.readouterr().err
    assert err == "si64: error: unknown tier 'FOO' (tiers: M2, ORIN)\n", err
    assert cli.main([*base, "devices", "list", "--tier", "orin", "--json"]) == 0  # a tier in any case
    assert {d["tier"] for d in json.loads(capsys.readouterr().out)} == {"ORIN"}

    path = tmp_path / "one.csv"
    assert cli.main([*base, "ledger", "export", "--csv", str(path), "--contract", "CTR-nope"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("si64: error: no postings for CTR-nope") and err.count("\n") == 1, err
    assert not path.exists()  # nothing written
    assert cli.main([*base, "ledger", "export", "--csv", str(path), "--account", "tresury"]) == 2
    assert capsys.readouterr().err.startswith("si64: error: unknown account 'tresury'")
    cid = "CTR-active0000000000000000"
    assert cli.main([*base, "ledger", "export", "--csv", str(path), "--contract", cid]) == 0
    assert path.read_text().count(cid) >= 2


def test_contracts_show_posting_columns_line_up():
    entries = [
        {"created_at": 1_800_000_000, "kind": "rent", "account": "treasury", "debit_lamports": 1_000_000},
        {"created_at": 1_800_000_000, "kind": "rent", "account": "escrow:CTR-" + "x" * 22, "credit_lamports": 1},
        {"created_at": 1_800_000_100, "kind": "refund_confirmed", "account": "refunds_payable", "debit_lamports": 5},
        {"created_at": 1_800_000_100, "kind": "settled", "account": "revenue", "credit_lamports": 12, "ref": "sig"},
    ]
    lines = cli.posting_lines(entries)
    assert len(lines) == 4
    for column in ("treasury", "Dr ", "Cr "):
        starts = {line.index(column) for line in lines if column in line}
        assert len(starts) == 1, (column, lines)
    accounts = {line.index(e["account"]) for line, e in zip(lines, entries, strict=True)}
    assert len(accounts) == 1, lines
    ends = {len(line.split("  Cr ")[0]) for line in lines}  # the debit column ends at one place
    assert len(ends) == 1, lines


# ------------------------------------------------------------------ 80x24, contracts past their expiry


def _fit_text(snap, width, height, top=15) -> list[str]:
    from rich.console import Console

    buf = io.StringIO()
    con = Console(file=buf, width=width, height=height, color_system=None, force_terminal=False)
    con.print(db.render_fit(snap, top, 10, width=width, height=height, console=con))
    return buf.getvalue().splitlines()


def test_contract_ends_at_its_expiry_whatever_the_sweep_says():
    now = 1_800_000_000
    assert not db.has_ended({"status": "ACTIVE", "expires_at": now + 1}, now)
    assert db.has_ended({"status": "ACTIVE", "expires_at": now}, now)  # the API's rule: now >= expiry
    assert db.has_ended({"status": "SETTLED", "expires_at": now + 999}, now)
    # the server's milliseconds decide when the row has them
    assert not db.has_ended({"status": "ACTIVE", "expires_at": now, "expires_at_ms": now * 1000 + 500}, now, now * 1000)
    assert db.has_ended(
        {"status": "ACTIVE", "expires_at": now, "expires_at_ms": now * 1000 + 500}, now, now * 1000 + 500
    )


def test_a_contract_past_its_expiry_shows_as_ended_before_the_sweep(fake_api):
    api = fake_api(n_active=3, n_done=2)
    gone = api.active[1]
    gone["expires_at"] = api.now - 5  # the sweep has not booked it yet: the ledger still says ACTIVE
    snap = db.Dashboard(_client()).collect()
    assert gone["contract_id"] not in [r["contract_id"] for r in db.top_active(snap, 15)]
    figures = {label: (value, note) for label, value, note in db.summary(snap)}
    assert figures["active contracts"] == ("2", "settled 2 · expired 0 (+1 awaiting sweep)")
    latest = db.last_settlements(snap, 1)[0]
    assert (latest["contract_id"], latest["status"], latest["refund_status"]) == (
        gone["contract_id"],
        "EXPIRED",
        "awaiting sweep",
    )
    assert latest["settlement_time"] == gone["expires_at"]
    out = io.StringIO()
    db.make_console(plain=True, file=out).print(db.render(snap, plain=True))
    text = out.getvalue()
    active_part, rest = text.split("Last settlements")
    assert gone["contract_id"] not in active_part and gone["contract_id"] in rest and "awaiting sweep" in rest
    assert "lowest uptime" in text and "uptime (min)" not in text
    data = db.as_json(snap, 15, 10)
    assert data["ended_awaiting_sweep"] == 1 and len(data["active"]) == 2
    # every other frame at 80x24 says it too
    lines = _fit_text(snap, 80, 24)
    assert any("active contracts 2 " in x and "+1 awaiting sweep" in x for x in lines), lines


@pytest.mark.parametrize("n_active", [0, 3, 40, 1_000])
def test_80x24_shows_a_compact_summary_and_the_soonest_to_expire(fake_api, n_active):
    fake_api(n_active=n_active, n_done=30)
    snap = db.Dashboard(_client()).collect()
    lines = _fit_text(snap, 80, 24)
    assert len(lines) <= 23 and max(len(x.rstrip()) for x in lines) <= 80, "\n".join(lines)
    text = "\n".join(lines)
    assert "…" not in text and "Summary" not in text  # the compact summary, nothing cut short
    assert re.search(r"active contracts \d+", text)
    soonest = [r["contract_id"] for r in db.top_active(snap, 15)]
    shown = [r for r in soonest if r in text]
    assert shown == soonest[: len(shown)]  # the soonest first, none skipped
    assert len(shown) >= min(n_active, 10), text  # at least ten rows of contracts when there are
    if n_active <= 3:  # room left: the settlements and devices follow
        assert "Last settlements" in text and "Device slots by tier" in text


def test_a_tall_terminal_keeps_the_whole_summary(fake_api):
    fake_api(n_active=3, n_done=2)
    snap = db.Dashboard(_client()).collect()
    text = "\n".join(_fit_text(snap, 200, 90))
    assert "Summary" in text and "refundable now (active)" in text and "Device slots by tier" in text
    assert "lowest uptime" in text and "capacity" in text
