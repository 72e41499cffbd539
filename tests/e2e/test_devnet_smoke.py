"""`make devnet-smoke` (dev/devnet_smoke.py): skipped with a clear message when the cluster or
the API cannot be reached (as on this machine: no network but package registries), and the
whole run — rent, extend, settle, refund checked on chain — against a local stack of its own
(its chain stands in for devnet; the refund's fee would leave the shared stack's treasury
below what tests/e2e/test_stack.py expects)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from dev.procs import free_port
from tests.fixtures.stack import start_stack
from tests.infra.conftest import ROOT

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    with start_stack(tmp_path_factory.mktemp("devnet-smoke-stack")) as info:
        yield info


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "dev.devnet_smoke", *args],
        cwd=str(ROOT),
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_an_unreachable_cluster_is_skipped_with_the_reason():
    closed = free_port()
    proc = run("--rpc", f"http://127.0.0.1:{closed}", "--api", "http://127.0.0.1:9")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.startswith(
        f"devnet-smoke: SKIPPED — RPC http://127.0.0.1:{closed}: 127.0.0.1:{closed} unreachable"
    )
    assert "Nothing was sent" in proc.stdout and "PASSED" not in proc.stdout


def test_an_unreachable_api_is_skipped_too(stack):
    proc = run("--rpc", stack.rpc_url, "--api", f"http://127.0.0.1:{free_port()}")
    assert proc.returncode == 0 and "SKIPPED — API" in proc.stdout, proc.stdout + proc.stderr


def test_the_whole_smoke_against_the_local_stack(stack):
    proc = run("--rpc", stack.rpc_url, "--api", stack.api_url, "--seconds", "120")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lines = proc.stdout.splitlines()
    assert any(line.startswith("devnet-smoke: rented CTR-") for line in lines), lines
    assert any(line.startswith("devnet-smoke: extended by 120 s") for line in lines), lines
    assert any("refund CONFIRMED" in line for line in lines), lines
    assert lines[-1].startswith("devnet-smoke: PASSED"), lines
