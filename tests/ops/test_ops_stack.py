"""`si64` and the device agent against a real local stack (`local_stack`, free ports).

Contracts are rented the way a client does it (solana-py payment bound by its
memo, POST /api/rent) and settled with the wallet's signature; the CLI runs as
a subprocess (`python -m si64`) reading the stack's stack.json through
SI64_STATE_DIR, exactly as an operator's shell would.
"""

from __future__ import annotations

import itertools
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from chalicelib.domain.signing import rent_memo
from tests.e2e.client import (
    Api,
    Payer,
    duration_seconds,
    price_lamports,
    settle_headers,
)
from tests.fixtures.stack import free_port
from tests.support.installs import one_at_a_time

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def api(local_stack) -> Api:
    return Api(local_stack["api_url"], local_stack["admin_key"])


@pytest.fixture(scope="module")
def payer(local_stack) -> Payer:
    return Payer(local_stack["rpc_url"])


_RENTED: list[tuple] = []  # (wallet, contract_id): settled when the module ends, so no slot stays taken


@pytest.fixture(scope="module", autouse=True)
def _settle_leftovers(api):
    yield
    for wallet, cid in _RENTED:
        api.post(f"/api/contracts/{cid}/settle", data=b"", headers=settle_headers(wallet, cid))


def rent(api: Api, payer: Payer, treasury: str, tier: str = "M2", hours=0.1, extra: int = 4_321):
    wallet = payer.new_wallet()
    paid = price_lamports(tier, hours) + extra
    sig = payer.pay(wallet, treasury, paid, memo=rent_memo(tier, duration_seconds(hours)))
    r = api.post(
        "/api/rent", {"wallet": str(wallet.pubkey()), "tier": tier, "duration_hours": hours, "tx_signature": sig}
    )
    assert r.status == 201, r
    _RENTED.append((wallet, r.body["contract_id"]))
    return wallet, r.body, paid


def si64_env(local_stack, **extra) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SI64_")}
    env.update(SI64_STATE_DIR=local_stack["state_dir"], PYTHONUNBUFFERED="1", COLUMNS="200")
    env.update(extra)
    return env


def si64(local_stack, *args, env=None, timeout=60) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "si64", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
        env=env or si64_env(local_stack),
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )


def one_error_line(p: subprocess.CompletedProcess) -> str:
    assert p.returncode != 0, p
    assert "Traceback" not in p.stderr, p.stderr
    lines = p.stderr.splitlines()
    assert len(lines) == 1, p.stderr
    return lines[0]


# ------------------------------------------------------------------ dashboard


def test_dashboard_snapshot_lists_the_contract_it_rented(api, payer, local_stack):
    _, contract, paid = rent(api, payer, local_stack["treasury"], "ORIN", 0.05)
    cid = contract["contract_id"]

    p = si64(local_stack, "dashboard")
    assert p.returncode == 0, p.stderr
    out = p.stdout
    assert "\x1b" not in out  # stdout is a pipe: plain text
    row = next(line for line in out.splitlines() if cid in line)
    assert "ORIN" in row and contract["device_id"] in row
    sol_paid = f"{paid // 10**9}.{paid % 10**9:09d}"
    assert sol_paid in row  # prepaid, exact SOL from lamports
    active = api.stats()["contracts"]["ACTIVE"]
    assert re.search(rf"active contracts\s+{active}\b", out), out

    p = si64(local_stack, "dashboard", "--json")
    assert p.returncode == 0, p.stderr
    snap = json.loads(p.stdout)
    mine = [r for r in snap["active"] if r["contract_id"] == cid]
    assert len(mine) == 1 and mine[0]["prepaid_lamports"] == paid and mine[0]["device_id"] == contract["device_id"]
    assert 0 <= mine[0]["used_lamports"] <= price_lamports("ORIN", 0.05)
    assert mine[0]["refund_lamports"] == paid - mine[0]["used_lamports"]
    assert snap["queues"]["refund_queue"] is not None and snap["queues"]["dead_letter_queue"] is not None

    p = si64(local_stack, "devices", "list")
    assert p.returncode == 0 and contract["device_id"] in p.stdout and "\x1b" not in p.stdout


# ------------------------------------------------------------------ agent


def test_agent_keeps_metrics_flowing_and_stops_at_settlement(api, payer, local_stack):
    wallet, contract, _ = rent(api, payer, local_stack["treasury"], "M2", 0.1)
    cid, device = contract["contract_id"], contract["device_id"]
    proc = subprocess.Popen(
        [sys.executable, "-m", "si64", "agent", "--device", device, "--contract", cid, "--batch-seconds", "1"],
        cwd=ROOT,
        env=si64_env(local_stack),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        stdin=subprocess.DEVNULL,
    )
    try:
        deadline, samples = time.monotonic() + 30, []
        while time.monotonic() < deadline:
            r = api.get(f"/api/contracts/{cid}/metrics")
            if r.status == 200 and len(r.body["samples"]) >= 8:
                samples = r.body["samples"]
                break
            assert proc.poll() is None, proc.communicate()
            time.sleep(0.5)
        assert len(samples) >= 8, f"metrics did not flow: {samples}"
        ts = [s["timestamp_ms"] for s in samples]
        assert ts == sorted(ts) and len(set(ts)) == len(ts)
        gaps = [b - a for a, b in itertools.pairwise(ts)]
        # one sample every ~500 ms (a loaded machine may stretch one gap, never bunch them up)
        assert all(g >= 300 for g in gaps) and 400 <= statistics.median(gaps) <= 800, gaps
        assert any(s["cpu_percent"] > 0 for s in samples)
        # the agent's own posts cross the loopback interface: real I/O deltas, not constant zeros
        assert any(s["network_io_mbps"] > 0 for s in samples), samples
        assert all(s["memory_mb"] > 0 for s in samples)

        # still flowing a moment later
        time.sleep(2.5)
        later = api.get(f"/api/contracts/{cid}/metrics").body["samples"]
        assert later[-1]["timestamp_ms"] > ts[-1]

        r = api.post(f"/api/contracts/{cid}/settle", data=b"", headers=settle_headers(wallet, cid))
        assert r.status == 200, r
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, err
    assert f"contract {cid} has ended (409 contract_not_active); agent stopped" in out, (out, err)
    sent = int(re.search(r"(\d+) samples in \d+ batches sent", out).group(1))
    assert sent >= len(later)
    assert "Traceback" not in err


def test_agent_refuses_a_device_the_contract_is_not_on(api, payer, local_stack):
    _, contract, _ = rent(api, payer, local_stack["treasury"], "M2", 0.05)
    other = next(d for d in local_stack["device_keys"] if d != contract["device_id"])
    p = si64(local_stack, "agent", "--device", other, "--contract", contract["contract_id"])
    assert "is leased on device" in one_error_line(p)
    p = si64(
        local_stack,
        "agent",
        "--device",
        contract["device_id"],
        "--contract",
        contract["contract_id"],
        "--key",
        "dk_wrong_key",
        "--batch-seconds",
        "0.5",
    )
    assert one_error_line(p).startswith("si64: error: 401 unauthorized")


# ------------------------------------------------------------------ contracts show, ledger export


def test_contracts_show_and_ledger_export(api, payer, local_stack, tmp_path):
    wallet, contract, paid = rent(api, payer, local_stack["treasury"], "THOR", 0.02)
    cid = contract["contract_id"]
    r = api.post(f"/api/contracts/{cid}/settle", data=b"", headers=settle_headers(wallet, cid))
    assert r.status == 200, r

    p = si64(local_stack, "contracts", "show", cid)
    assert p.returncode == 0, p.stderr
    assert re.search(r"^status\s+SETTLED$", p.stdout, re.MULTILINE), p.stdout
    assert "ledger postings (" in p.stdout and "UNBALANCED" not in p.stdout

    path = tmp_path / "ledger.csv"
    p = si64(local_stack, "ledger", "export", "--csv", str(path))
    assert p.returncode == 0, p.stderr
    m = re.search(r"(\d+) postings \(whole ledger\) written to .*: debits (\d+) = credits (\d+) lamports", p.stdout)
    assert m, p.stdout
    import csv

    rows = list(csv.DictReader(path.open()))
    assert len(rows) == int(m.group(1))
    mine = [x for x in rows if x["contract_id"] == cid]
    assert {x["kind"] for x in mine} >= {"rent", "settled"}
    assert sum(int(x["debit_lamports"]) for x in mine) == sum(int(x["credit_lamports"]) for x in mine)
    assert any(x["account"] == "treasury" and int(x["debit_lamports"]) == paid for x in mine)
    assert len({x["entry_id"] for x in rows}) == len(rows)

    p = si64(local_stack, "ledger", "export", "--csv", "-", "--contract", cid)
    assert p.returncode == 0 and p.stdout.count(cid) >= len(mine)


# ------------------------------------------------------------------ error lines


def test_error_lines_wrong_key_unknown_id_stopped_stack(local_stack, tmp_path):
    p = si64(local_stack, "--admin-key", "not-the-key", "dashboard")
    assert one_error_line(p).startswith("si64: error: 401 unauthorized:")

    p = si64(local_stack, "contracts", "show", "CTR-" + "x" * 22)
    line = one_error_line(p)
    assert line.startswith("si64: error: 404 not_found:"), line

    # a stack that was stopped leaves its stack.json behind; nothing listens on its port any more
    stale = tmp_path / "stale"
    stale.mkdir()
    port = free_port()
    (stale / "stack.json").write_text(
        json.dumps(
            dict(
                {k: v for k, v in local_stack.items() if isinstance(v, (str, int, dict)) and k != "env"},
                api_url=f"http://127.0.0.1:{port}",
            )
        )
    )
    p = si64(local_stack, "dashboard", env=si64_env(local_stack, SI64_STATE_DIR=str(stale)))
    line = one_error_line(p)
    assert line == (
        f"si64: error: cannot reach the SI64 API at http://127.0.0.1:{port} (connection refused)"
        " — is the local stack running? (`make run`)"
    ), line

    p = si64(local_stack, "dashboard", env=si64_env(local_stack, SI64_STATE_DIR=str(tmp_path / "none")))
    assert "stack.json not found" in one_error_line(p) and p.returncode == 2


def test_unknown_input_exits_non_zero_in_one_line_over_the_stack(local_stack, tmp_path):
    p = si64(local_stack, "devices", "list", "--tier", "FOO")
    assert one_error_line(p).startswith("si64: error: unknown tier 'FOO' (tiers: ") and p.returncode == 2
    out = tmp_path / "nope.csv"
    p = si64(local_stack, "ledger", "export", "--csv", str(out), "--contract", "CTR-nope")
    assert one_error_line(p).startswith("si64: error: no postings for CTR-nope") and p.returncode == 1
    assert not out.exists()
    p = si64(local_stack, "refunds", "list", "--status", "CONFIRMED", "--all")
    assert p.returncode == 0 and "…" not in p.stdout, p.stdout  # whole ids, on a pipe


# ------------------------------------------------------------------ live dashboard in tmux


def _tmux() -> str:
    exe = shutil.which("tmux")
    if exe:
        return exe
    if os.geteuid() == 0 and shutil.which("apt-get"):
        with one_at_a_time("apt-get"):
            if not shutil.which("tmux"):
                apt = ["apt-get", "install", "-y", "-q", "tmux"]
                subprocess.run(apt, capture_output=True, timeout=300, check=False)
        exe = shutil.which("tmux")
    if not exe:
        pytest.skip("tmux is not installed and could not be installed with apt-get (`make` installs it)")
    return exe


def _tmux_dashboard(local_stack, width: int, height: int, *args: str):
    """`si64 dashboard --watch 1 ARGS` in a private tmux server's width x height pane: (capture, kill)."""
    tmux = _tmux()
    base = [tmux, "-L", f"si64-ops-{uuid.uuid4().hex[:8]}"]  # a private tmux server: nothing else is touched
    env = si64_env(local_stack, TERM="xterm-256color")
    env.pop("COLUMNS", None)
    cmd = " ".join([sys.executable, "-m", "si64", "dashboard", "--watch", "1", *args])
    subprocess.run(
        base + ["new-session", "-d", "-s", "dash", "-x", str(width), "-y", str(height), "-c", str(ROOT), cmd],
        check=True,
        env=env,
        timeout=30,
    )

    def capture() -> str:
        return subprocess.run(
            base + ["capture-pane", "-p", "-t", "dash"], capture_output=True, text=True, check=True, timeout=30
        ).stdout

    def kill() -> None:
        subprocess.run(base + ["kill-server"], capture_output=True, timeout=30, check=False)

    return capture, kill


def test_watch_updates_in_place_two_tmux_frames(api, payer, local_stack, tmp_path):
    _, first, _ = rent(api, payer, local_stack["treasury"], "M2", 0.1)
    capture, kill = _tmux_dashboard(local_stack, 220, 90, "--top", "40")

    def wait_for(pred, what: str, timeout=40) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            frame = capture()
            if pred(frame):
                return frame
            time.sleep(0.3)
        raise AssertionError(f"tmux pane never showed {what}:\n{capture()}")

    def active_count(frame: str) -> int | None:
        m = re.search(r"active contracts\s+(\d+)", frame)
        return int(m.group(1)) if m else None

    def server_time(frame: str) -> str | None:
        m = re.search(r"server time (\S+ \S+)", frame)
        return m.group(1) if m else None

    try:
        frame1 = wait_for(lambda f: first["contract_id"] in f, "the first contract")
        n1, t1 = active_count(frame1), server_time(frame1)
        assert n1 is not None and n1 >= 1 and t1
        _, second, _ = rent(api, payer, local_stack["treasury"], "ORIN", 0.1)
        frame2 = wait_for(lambda f: second["contract_id"] in f, "the second contract")
        assert second["contract_id"] not in frame1
        assert active_count(frame2) == n1 + 1, frame2
        assert server_time(frame2) != t1
        # refreshed in place: one frame on the screen, not frames appended below each other
        assert frame2.count("SI64 dashboard") == 1 and frame2.count("Active contracts") == 1, frame2
        (tmp_path / "frame1.txt").write_text(frame1)
        (tmp_path / "frame2.txt").write_text(frame2)
    finally:
        kill()


def test_watch_in_a_classic_80x24_terminal_shows_the_contracts(api, payer, local_stack, tmp_path):
    """A new operator's first look: at 80x24 the summary is compact and the contracts that expire
    soonest are on screen (the whole summary once filled it and the table showed only "…")."""
    rented = [rent(api, payer, local_stack["treasury"], "M2", hours)[1] for hours in (0.05, 0.2)]
    capture, kill = _tmux_dashboard(local_stack, 80, 24)
    try:
        deadline, frame = time.monotonic() + 40, ""
        while time.monotonic() < deadline:
            frame = capture()
            if all(c["contract_id"] in frame for c in rented):
                break
            time.sleep(0.3)
        (tmp_path / "frame80x24.txt").write_text(frame)
        lines = frame.splitlines()
        assert all(c["contract_id"] in frame for c in rented), frame
        assert len(lines) <= 24 and max(len(x) for x in lines) <= 80, frame
        assert "Summary" not in frame and re.search(r"active contracts \d+", frame), frame
        assert "…" not in frame, frame  # nothing cut short, nothing elided
        # soonest to expire first: the 3-minute rental above the 12-minute one
        assert frame.index(rented[0]["contract_id"]) < frame.index(rented[1]["contract_id"]), frame
        row = next(x for x in lines if rented[0]["contract_id"] in x)
        assert "M2" in row and re.search(r"\d+m\d\ds\s*$", row), row  # time left, in the frame
    finally:
        kill()
