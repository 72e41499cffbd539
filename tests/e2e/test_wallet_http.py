"""`python -m si64.wallet` against the local stack, as a user's shell runs it: it checks before it
pays (a wallet's balance does not move when it refuses), reads payments back from the chain, and
fails in one line when the stack is down."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.e2e.client import Api, duration_seconds, price_lamports, random_signature
from tests.fixtures.stack import free_port

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]


def wallet(state_dir, *args, name="e2e") -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SI64_")}
    env.update(SI64_STATE_DIR=str(state_dir))
    return subprocess.run(
        [sys.executable, "-m", "si64.wallet", "--wallet", name, *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
    )


def ok(p: subprocess.CompletedProcess) -> dict:
    assert p.returncode == 0, p.stderr
    return json.loads(p.stdout)


def refused(p: subprocess.CompletedProcess) -> str:
    assert p.returncode != 0 and "Traceback" not in p.stderr, p
    assert p.stdout == "" and p.stderr.count("\n") == 1, p.stderr
    return p.stderr


def test_pay_then_read_the_payment_back_and_refusals_pay_nothing(local_stack):
    sd = local_stack.state_dir
    paid = ok(wallet(sd, "pay", "--tier", "ORIN", "--hours", "0.25"))
    assert paid["memo"] == f"si64:rent:ORIN:{duration_seconds(0.25)}" and paid["lamports"] == price_lamports(
        "ORIN", 0.25
    )
    tx = ok(wallet(sd, "tx", paid["tx_signature"]))
    assert tx["memo"] == paid["memo"] and tx["status"] in ("confirmed", "finalized")
    assert tx["transfers"] == [{"from": paid["wallet"], "to": local_stack.treasury, "lamports": paid["lamports"]}]
    before = ok(wallet(sd, "balance"))
    assert before["wallet"] == paid["wallet"] and before["lamports"] > 0
    treasury = ok(wallet(sd, "balance", local_stack.treasury))["lamports"]

    # rent it, so there is a contract of this wallet to extend, and one of another wallet
    api = Api(local_stack.api_url, local_stack.admin_key)
    r = api.post(
        "/api/rent",
        {"wallet": paid["wallet"], "tier": "ORIN", "duration_hours": 0.25, "tx_signature": paid["tx_signature"]},
    )
    assert r.status == 201, r
    mine = r.body["contract_id"]
    other = ok(wallet(sd, "pay", "--tier", "M2", "--hours", "0.1", name="e2e-other"))
    r = api.post(
        "/api/rent",
        {"wallet": other["wallet"], "tier": "M2", "duration_hours": 0.1, "tx_signature": other["tx_signature"]},
    )
    assert r.status == 201, r
    theirs = r.body["contract_id"]
    treasury = ok(wallet(sd, "balance", local_stack.treasury))["lamports"]

    assert "no contract CTR-nope" in refused(wallet(sd, "pay", "--contract", "CTR-nope", "--hours", "0.1"))
    assert "belongs to wallet" in refused(wallet(sd, "pay", "--contract", theirs, "--hours", "0.1"))
    assert "at least" in refused(wallet(sd, "pay", "--hours", "0.001"))  # 4 s: under the published minimum
    assert "more than 0" in refused(wallet(sd, "pay", "--hours", "0"))
    assert "more than 0" in refused(wallet(sd, "pay", "--hours", "-1"))
    # nothing moved: neither the wallet nor the treasury
    assert ok(wallet(sd, "balance"))["lamports"] == before["lamports"]
    assert ok(wallet(sd, "balance", local_stack.treasury))["lamports"] == treasury

    ext = ok(wallet(sd, "pay", "--contract", mine, "--hours", "0.1"))  # the memo is extend's by default
    assert ext["memo"] == f"si64:extend:{mine}:360" and ext["lamports"] == price_lamports("ORIN", 0.1)
    r = api.post(f"/api/contracts/{mine}/extend", {"additional_hours": 0.1, "tx_signature": ext["tx_signature"]})
    assert r.status == 200, r

    assert "not found" in refused(wallet(sd, "tx", random_signature()))  # well-formed, never seen by the chain


def test_a_stopped_stack_is_one_line_for_every_command(local_stack, tmp_path):
    stale = dict(
        {k: v for k, v in local_stack.items() if isinstance(v, (str, int, dict)) and k != "env"},
        api_url=f"http://127.0.0.1:{free_port()}",
        rpc_url=f"http://127.0.0.1:{free_port()}",
    )
    (tmp_path / "stack.json").write_text(json.dumps(stale))
    line = refused(wallet(tmp_path, "pay", "--tier", "M2", "--hours", "0.5"))
    assert "cannot reach the SI64 API" in line and "is the local stack running?" in line, line
    for args in (("balance",), ("tx", random_signature())):
        line = refused(wallet(tmp_path, *args))
        assert "cannot reach the Solana RPC" in line and "is the local stack running?" in line, line
