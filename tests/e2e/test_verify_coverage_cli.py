"""Device-signed receipts end to end on a local stack of its own (2 s coverage grace):

`si64 devices keygen` and `si64 devices set-key` for every M2 device, a contract rented and paid
on the local chain, the real device agent (`si64 agent --sign`, a subprocess) reporting, stopped
and restarted (its chain continues), silence, settlement, then `si64 verify-coverage` with the
renter's wallet: VERIFIED, with the contract's own covered and uncovered figures.

Then the operator lies: the same command through an HTTP proxy that alters the `/coverage`
answer (a forged signature, a missing receipt, a reordered chain, a changed interval, covered
time claimed for the silence) must fail with exit status 1, naming the problem."""

from __future__ import annotations

import http.server
import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from solders.keypair import Keypair

from si64.renter import renter_headers
from si64_protocol.receipts import receipt_message
from tests.fixtures.stack import start_stack

from .client import Api, Payer, price_lamports, rent_terms, settle_headers

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]
GRACE_S = 2
TERMS = ("--grace-seconds", str(GRACE_S), "--slack-seconds", "2")  # the stack's grace; batches every 1 s


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    with start_stack(tmp_path_factory.mktemp("receipts"), SI64_COVERAGE_GRACE_SECONDS=str(GRACE_S)) as info:
        yield info


def _env(stack: dict[str, Any]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SI64_")}
    env.update(SI64_STATE_DIR=stack["state_dir"], PYTHONUNBUFFERED="1")
    return env


def si64(stack: dict[str, Any], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "si64", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
        env=_env(stack),
        timeout=60,
        stdin=subprocess.DEVNULL,
    )


def run_agent(stack: dict[str, Any], device: str, cid: str, until: Callable[[], bool]) -> str:
    """The device agent with --sign until `until()` (polled, at most 60 s), then SIGTERM (it flushes
    and exits 0); its output."""
    args = ["agent", "--device", device, "--contract", cid, "--sign", "--interval", "0.2", "--batch-seconds", "1"]
    proc = subprocess.Popen(
        [sys.executable, "-m", "si64", *args],
        cwd=ROOT,
        env=_env(stack),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while not until() and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.25)
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, out
    return out


@pytest.fixture(scope="module")
def settled(stack: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    api = Api(stack["api_url"], stack["admin_key"])
    devices = [d["id"] for d in api.get("/api/devices/M2").body]
    for device in devices:  # a key is registered while the device leases nothing
        keygen = si64(stack, "devices", "keygen", device)
        assert keygen.returncode == 0, keygen.stderr
        registered = si64(stack, "devices", "set-key", device, keygen.stdout.strip())
        assert registered.returncode == 0, registered.stderr
    published = {d["id"]: d.get("pubkey") for d in api.get("/api/devices/M2").body}
    assert all(published[d] for d in devices), published

    hours = 0.02  # 72 s
    with Payer(stack["rpc_url"]) as payer:
        wallet = payer.new_wallet()
        sig = payer.pay(wallet, stack["treasury"], price_lamports("M2", hours), memo=rent_terms("M2", hours))
    r = api.post(
        "/api/rent", {"wallet": str(wallet.pubkey()), "tier": "M2", "duration_hours": hours, "tx_signature": sig}
    )
    assert r.status == 201, r
    cid, device = r.body["contract_id"], r.body["device_id"]
    wallet_file = tmp_path_factory.mktemp("renter") / "wallet.json"
    wallet_file.write_text(json.dumps(list(bytes(wallet))))

    def receipts() -> int:
        path = f"/api/contracts/{cid}/coverage"
        r = api.get(path, headers=renter_headers(wallet, "GET", path))
        assert r.status == 200, r
        return len(r.body["receipts"])

    first = run_agent(stack, device, cid, lambda: receipts() >= 3)
    second = run_agent(stack, device, cid, lambda: receipts() >= 6)  # a restarted agent continues the chain
    time.sleep(GRACE_S + 4)  # silence: a gap
    s = api.post(f"/api/contracts/{cid}/settle", data=b"", headers=settle_headers(wallet, cid))
    assert s.status == 200, s
    contract = api.get(f"/api/contracts/{cid}").body
    key_file = Path(stack["state_dir"]) / "devices" / device / "keypair.json"  # `devices keygen`'s, on the device
    device_key = Keypair.from_bytes(bytes(json.loads(key_file.read_text())))
    return {
        "cid": cid,
        "device": device,
        "wallet": str(wallet_file),
        "contract": contract,
        "logs": first + second,
        "device_key": device_key,
    }


def test_verify_coverage_verifies_the_real_agents_receipts(stack: dict[str, Any], settled: dict[str, Any]) -> None:
    p = si64(stack, "verify-coverage", settled["cid"], "--wallet", settled["wallet"], *TERMS)
    assert p.returncode == 0, p.stdout + p.stderr
    assert f"{settled['cid']} on {settled['device']}: VERIFIED" in p.stdout
    j = si64(stack, "verify-coverage", settled["cid"], "--wallet", settled["wallet"], *TERMS, "--json")
    verdict = json.loads(j.stdout)
    contract = settled["contract"]
    assert verdict["ok"] is True and verdict["unproven_ms"] == 0
    assert (verdict["covered_ms"], verdict["uncovered_ms"]) == (contract["covered_ms"], contract["uncovered_ms"])
    assert verdict["uncovered_ms"] >= 4_000 and verdict["gaps"]  # the silence is a gap
    assert verdict["receipts"] >= 6 and verdict["signatures_ok"] == verdict["receipts"]
    assert "resumed at seq" in settled["logs"]  # the second run continued the first one's chain


def test_a_renter_without_the_wallet_is_refused(stack: dict[str, Any], settled: dict[str, Any]) -> None:
    other = Path(settled["wallet"]).with_name("other.json")
    other.write_text(json.dumps(list(bytes(Keypair()))))
    p = si64(stack, "verify-coverage", settled["cid"], "--wallet", str(other))
    assert p.returncode == 1 and "403" in p.stderr and len(p.stderr.splitlines()) == 1, p.stderr


# ------------------------------------------------------------------ an operator that lies


class LyingProxy:
    """GETs forwarded to the API; the `/coverage` answer passed through `self.lie` first."""

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream
        self.lie: Callable[[dict[str, Any]], None] = lambda cov: None
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                headers = {k: v for k, v in self.headers.items() if k.lower().startswith("x-")}
                req = urllib.request.Request(proxy.upstream + self.path, headers=headers)
                try:
                    with urllib.request.urlopen(req, timeout=15) as resp:
                        status, body = resp.status, resp.read()
                except urllib.error.HTTPError as exc:
                    status, body = exc.code, exc.read()
                if status == 200 and self.path.endswith("/coverage"):
                    cov = json.loads(body)
                    proxy.lie(cov)
                    body = json.dumps(cov).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> LyingProxy:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join()


def _forge(cov: dict[str, Any]) -> None:
    cov["receipts"][1]["signature"] = str(Keypair().sign_message(b"anything"))


def _swap(cov: dict[str, Any]) -> None:
    rs = cov["receipts"]
    rs[1], rs[2] = rs[2], rs[1]


def _another_contracts(device_key: Keypair) -> Callable[[dict[str, Any]], None]:
    """Receipt 1 replaced by one the device really signed, with the same fields, for another contract."""

    def lie(cov: dict[str, Any]) -> None:
        r = cov["receipts"][1]
        msg = receipt_message("CTR-another", 1, r["from_ms"], r["to_ms"], r["samples_sha256"], r["prev_sha256"])
        r["signature"] = str(device_key.sign_message(msg.encode()))

    return lie


def _claim_the_silence(cov: dict[str, Any]) -> None:
    cov["covered_ms"] += cov["uncovered_ms"]
    cov["uncovered_ms"], cov["gaps"] = 0, []


@pytest.mark.parametrize(
    ("make_lie", "named"),
    [
        (lambda key: _forge, "receipt 1 (seq 1): the signature does not verify"),
        (lambda key: lambda cov: cov["receipts"].pop(2), "the receipt chain is broken: receipt 2: seq is 3"),
        (lambda key: _swap, "the receipt chain is broken: receipt 1: seq is 2"),
        (_another_contracts, "receipt 1 (seq 1): the signature does not verify"),
        (
            lambda key: lambda cov: cov["receipts"][0].update(to_ms=cov["receipts"][0]["to_ms"] + 1),
            "receipt 0 (seq 0): the signature does not verify",
        ),
        (lambda key: _claim_the_silence, "are backed by no valid receipt"),
    ],
    ids=[
        "forged-signature",
        "missing-receipt",
        "reordered",
        "another-contract",
        "tampered-interval",
        "claimed-silence",
    ],
)
def test_verify_coverage_catches_an_operator_that_lies(
    stack: dict[str, Any],
    settled: dict[str, Any],
    make_lie: Callable[[Keypair], Callable[[dict[str, Any]], None]],
    named: str,
) -> None:
    with LyingProxy(stack["api_url"]) as proxy:
        proxy.lie = make_lie(settled["device_key"])
        p = si64(
            stack,
            "--api",
            proxy.url,
            "verify-coverage",
            settled["cid"],
            "--wallet",
            settled["wallet"],
            *TERMS,
            "--json",
        )
    assert p.returncode == 1, p.stdout + p.stderr
    verdict = json.loads(p.stdout)
    assert verdict["ok"] is False and any(named in problem for problem in verdict["problems"]), verdict["problems"]
