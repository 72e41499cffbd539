"""`si64 reconcile` and `si64 refunds …` against a whole local stack of their own.

A busy run — rents (memo-bound), an extension, metrics, settles, an expiry by the sweep, a
payment refused as short and refunded to its payer — and once the refund worker has paid
everything, `si64 reconcile` passes. A transfer sent to the treasury outside the API makes
`si64 reconcile --orphan-age 0` fail naming it; `si64 refunds orphan SIG` refunds it, and
reconcile passes again with the orphan claimed, booked and paid back.

The stack is this module's own (not the session's): reconciliation looks at the treasury's
whole history, and other suites leave unbound payments on the session stack on purpose.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from chalicelib.domain.signing import extend_memo, rent_memo
from si64 import renter as local_renter
from tests.e2e.client import Api, Payer, duration_seconds, price_lamports, settle_headers
from tests.fixtures.stack import start_stack

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    with start_stack(tmp_path_factory.mktemp("reconcile"), SI64_MIN_DURATION_SECONDS="2") as info:
        yield info


@pytest.fixture(scope="module")
def api(stack) -> Api:
    return Api(stack["api_url"], stack["admin_key"])


@pytest.fixture(scope="module")
def payer(stack):
    with Payer(stack["rpc_url"]) as p:
        yield p


def si64(stack, *args, timeout=90) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SI64_")}
    env.update(SI64_STATE_DIR=stack["state_dir"], PYTHONUNBUFFERED="1", COLUMNS="200")
    done = subprocess.run(
        [sys.executable, "-m", "si64", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
        env=env,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )
    dump = os.environ.get("SI64_TEST_TRANSCRIPT")  # docs: the transcript of what the operator saw
    if dump:
        with open(dump, "a") as f:
            f.write(f"$ si64 {' '.join(args)}\n{done.stdout}{done.stderr}(exit {done.returncode})\n\n")
    return done


def rent(api, payer, treasury, tier="M2", hours=0.1, extra=1_000_000):
    wallet = payer.new_wallet()
    memo = rent_memo(tier, duration_seconds(hours))
    sig = payer.pay(wallet, treasury, price_lamports(tier, hours) + extra, memo=memo)
    r = api.post(
        "/api/rent", {"wallet": str(wallet.pubkey()), "tier": tier, "duration_hours": hours, "tx_signature": sig}
    )
    assert r.status == 201, r
    return wallet, r.body


def settle(api, wallet, cid):
    r = api.post(f"/api/contracts/{cid}/settle", data=b"", headers=settle_headers(wallet, cid))
    assert r.status == 200, r
    return r.body


def busy_run(stack, api, payer) -> None:
    t = stack["treasury"]
    rented = [rent(api, payer, t, "M2"), rent(api, payer, t, "ORIN"), rent(api, payer, t, "THOR", 0.05)]
    (w0, c0) = rented[0]
    sig = payer.pay(w0, t, price_lamports("M2", 0.05), memo=extend_memo(c0["contract_id"], duration_seconds(0.05)))
    r = api.post(f"/api/contracts/{c0['contract_id']}/extend", {"additional_hours": 0.05, "tx_signature": sig})
    assert r.status == 200, r
    key = stack["device_keys"][c0["device_id"]]
    r = api.post(
        f"/api/metrics/{c0['contract_id']}",
        {"cpu_percent": 12, "memory_mb": 100, "disk_io_mbps": 1, "network_io_mbps": 1},
        headers={"X-Device-Key": key},
    )
    assert r.status == 200, r
    time.sleep(1.0)
    for wallet, body in rented[:2]:
        settle(api, wallet, body["contract_id"])
    # a contract nobody settles: the sweep (every 2 s) ends it at its expiry and refunds the overpayment
    rent(api, payer, t, "M2", 0.001)
    # a payment refused as 1 lamport short, refunded to its payer (payer-signed)
    short = payer.new_wallet()
    sig = payer.pay(short, t, price_lamports("M2", 0.1) - 1, memo=rent_memo("M2", duration_seconds(0.1)))
    r = api.post("/api/rent", {"wallet": str(short.pubkey()), "tier": "M2", "duration_hours": 0.1, "tx_signature": sig})
    assert r.status == 402 and r.body["reason"] == "insufficient_amount", r
    path = f"/api/payments/{sig}/refund"
    r = api.post(path, data=b"", headers=local_renter.renter_headers(short, "POST", path, b""))
    assert r.status == 201, r
    settle(api, *(lambda w, b: (w, b["contract_id"]))(*rented[2]))
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        s = api.settled_refunds()
        if (
            s["contracts_booked"].get("EXPIRED", 0) >= 1  # booked by the sweep, its refund queued
            and not s["refunds_by_status"].get("QUEUED")
            and not s["refunds_by_status"].get("SENT")
        ):
            break
        time.sleep(0.5)
    s = api.stats()
    assert s["contracts_booked"]["EXPIRED"] >= 1 and s["refunds_by_status"].get("CONFIRMED", 0) >= 5, s
    assert not s["refunds_by_status"].get("FAILED"), s


def wait_confirmed(api, refund_id: str, timeout=60.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        sig, _, payer = refund_id[len("PAY-") :].partition("-")
        r = api.get(f"/api/payments/{sig}/refund?payer={payer}")
        if r.status == 200 and r.body["refund"]["status"] == "CONFIRMED":
            return r.body
        time.sleep(0.3)
    raise AssertionError(f"{refund_id} not confirmed in {timeout} s")


def test_reconcile_passes_after_a_busy_run_fails_on_an_outside_transfer_and_passes_once_refunded(stack, api, payer):
    busy_run(stack, api, payer)
    ok = si64(stack, "reconcile")
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "OK: the books agree with the chain" in ok.stdout
    assert re.search(r"difference\s+\+0 lamports", ok.stdout), ok.stdout
    rep = json.loads(si64(stack, "reconcile", "--json").stdout)
    assert rep["ok"] and rep["treasury"]["difference_lamports"] == 0 and rep["refunds"]["confirmed_checked"] >= 5
    assert rep["treasury"]["baseline_lamports"] == 1000 * 10**9  # make run's airdrop, before any payment

    stranger = payer.new_wallet()
    orphan = payer.pay(stranger, stack["treasury"], 3_210_000, memo=None)  # outside the API
    young = si64(stack, "reconcile")  # younger than the default hour: it may still be rented
    assert young.returncode == 0, young.stdout + young.stderr
    assert "recent_payment" in young.stdout and orphan in young.stdout

    bad = si64(stack, "reconcile", "--orphan-age", "0")
    assert bad.returncode == 1, bad.stdout + bad.stderr
    assert f"MISMATCH: orphan payment {orphan}: 3210000 lamports from {stranger.pubkey()}" in bad.stdout
    assert bad.stderr.strip().splitlines() == ["si64: error: reconciliation failed: 1 difference(s)"]

    done = si64(stack, "refunds", "orphan", orphan)
    assert done.returncode == 0, done.stderr
    refund_id = f"PAY-{orphan}-{stranger.pubkey()}"
    assert done.stdout.startswith(f"{refund_id}: 0.003210000 SOL back to {stranger.pubkey()}, QUEUED")
    again = si64(stack, "refunds", "orphan", orphan)
    assert again.returncode == 1 and again.stderr.count("\n") == 1 and "409 payment_already_used" in again.stderr
    paid = wait_confirmed(api, refund_id)
    assert paid["refund"]["lamports"] == 3_210_000

    good = si64(stack, "reconcile", "--orphan-age", "0")
    assert good.returncode == 0, good.stdout + good.stderr
    rep = json.loads(si64(stack, "reconcile", "--orphan-age", "0", "--json").stdout)
    assert rep["ok"] and rep["orphans"] == [] and rep["unbooked"] == []
    entries = api.get(f"/api/billing/entries?contract_id={refund_id}", admin=True).body
    kinds = sorted(e["kind"] for e in entries["entries"])
    assert kinds.count("orphan_payment") == 2 and kinds.count("refund") == 2 and kinds.count("network_fee") == 2

    listed = si64(stack, "refunds", "list", "--status", "CONFIRMED", "--all", "--json")
    assert listed.returncode == 0 and refund_id in [r["refund_id"] for r in json.loads(listed.stdout)]
    failed = si64(stack, "refunds", "list")
    assert failed.returncode == 0 and "0 FAILED refund(s)" in failed.stdout
    moved = si64(stack, "refunds", "redrive-dlq")
    assert (
        moved.returncode == 0
        and moved.stdout.strip() == "moved 0 message(s) from the refund dead-letter queue to the refund queue"
    )
    unknown = si64(stack, "refunds", "retry", "CTR-nosuchcontract")
    assert unknown.returncode == 1 and "404 not_found" in unknown.stderr and unknown.stderr.count("\n") == 1
