"""A renter's web page, played by a stock @solana/web3.js 1.x with fetch: pay with the rental's
terms in the payment's memo (the binding a transaction-only wallet can always do), rent with no
credentials, replay, try the payment for other terms, read back; and a stock Solana Pay wallet
flow that pays a quote's transfer request and makes no second request."""

from __future__ import annotations

import json
import os
import shutil
import subprocess

import pytest

from tests.e2e.test_local_chain import JS_DIR, _ensure_node_modules


def run_script(script: str, *args: str) -> dict:
    """Run one of tests/e2e/js's scripts with Node.js; its last stdout line, as JSON."""
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed: the @solana/web3.js end-to-end test needs Node.js 18+")
    _ensure_node_modules()
    proc = subprocess.run(
        [node, script, *args],
        cwd=JS_DIR,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "NODE_NO_WARNINGS": "1"},
    )
    assert proc.returncode == 0, proc.stderr + proc.stdout
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_web3js_pays_and_rents_over_http(local_stack):
    out = run_script("rent.mjs", local_stack.api_url, local_stack.rpc_url, "ORIN", "0.25")
    assert out["seconds"] == "900" and out["price"] == "1000000"
    rent, replay, contract = out["rent"], out["replay"], out["contract"]
    assert rent["status"] == 201, rent
    assert rent["body"]["cost_lamports"] == 1_000_000 and rent["body"]["prepaid_lamports"] == 1_000_000
    assert rent["body"]["tier"] == "ORIN" and rent["body"]["duration_seconds"] == 900
    assert replay == {"status": 200, "body": rent["body"]}
    other = out["other"]  # the memo binds ORIN for 900 s: the payment cannot rent anything else
    assert other["status"] == 402 and other["body"]["reason"] == "memo_mismatch", other
    assert contract["status"] == 200 and contract["body"]["wallet"] == out["wallet"]
    assert contract["body"]["status"] == "ACTIVE" and contract["body"]["refund"]["status"] == "NONE"


def test_a_stock_solana_pay_flow_with_web3js_opens_the_contract_with_no_second_request(local_stack):
    """The wallet reads only the quote's `solana_pay_url`, pays it the way @solana/pay builds a
    transfer (memo, then the transfer with the reference as a read-only key), and never calls
    the API again: the quote watcher finds the payment by its reference and opens the contract."""
    out = run_script("quote.mjs", local_stack.api_url, local_stack.rpc_url, "M2", "0.25")
    quote, status, contract = out["quote"], out["status"], out["contract"]
    assert out["lamports"] == str(quote["lamports"])  # the URL's amount is the quote's, exactly
    assert status["status"] == 200 and status["body"]["status"] == "PAID", status
    assert status["body"]["tx_signature"] == out["signature"]
    assert contract["status"] == 200, contract
    body = contract["body"]
    assert body["contract_id"] == status["body"]["contract_id"] and body["wallet"] == out["wallet"]
    assert body["status"] == "ACTIVE" and body["tier"] == "M2" and body["prepaid_lamports"] == quote["lamports"]
