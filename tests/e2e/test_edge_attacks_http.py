"""Attacks on the edge over HTTP, on a local stack of its own with a small per-address budget
(30 requests per 10 s, fleet-wide): one address inventing device keys is cut off at its own
budget while a real device key keeps its window; an unsupported Content-Type is 415 in the
error shape, counted by the rate limit and logged like any request. (The anonymous
Idempotency-Key case runs on the shared stack: tests/e2e/test_idempotency_http.py.)"""

from __future__ import annotations

import secrets
import time
from pathlib import Path

import pytest

from tests.e2e.edge_support import client_from, wait_for_window_start
from tests.fixtures.stack import start_stack

LIMIT, WINDOW = 30, 10


@pytest.fixture(scope="module")
def two_apis(tmp_path_factory):
    state = tmp_path_factory.mktemp("edge-attacks-stack")
    with start_stack(state, SI64_RATE_LIMIT=f"{LIMIT}/{WINDOW}", SI64_RATE_LIMIT_SHARED="1") as info:
        yield info["api_url"], None, info


def test_an_address_inventing_device_keys_is_cut_off_at_its_own_budget(two_apis):
    """Forged X-Device-Keys count against the address: 30 answers (401), then 429 (reason ip),
    whichever key each request invents; a real device key behind that address keeps its own
    window (404: no such contract, but not limited)."""
    a, _, info = two_apis
    device, real_key = next(iter(info["device_keys"].items()))
    path = f"{a}/api/metrics/CTR-AAAAAAAAAAAAAAAAAAAAAA"
    sample = {"cpu_percent": 1, "memory_mb": 1, "disk_io_mbps": 0, "network_io_mbps": 0}
    client = client_from("127.0.0.5")
    wait_for_window_start(WINDOW)  # (no warm-up request: this instance's sliding window would count it)
    t0 = time.time()
    answers = []
    for _ in range(LIMIT + 10):
        forged = f"dk_{device}_{secrets.token_hex(16)}"
        r = client.post(path, json=sample, headers={"X-Device-Key": forged}, timeout=30)
        answers.append((r.status_code, r.json()["code"], r.json()["reason"]))
    real = client.post(path, json=sample, headers={"X-Device-Key": real_key}, timeout=30)
    assert time.time() - t0 < WINDOW, "the burst took longer than one window: the machine is too slow"
    assert answers[:LIMIT] == [(401, "unauthorized", "X-Device-Key")] * LIMIT
    assert answers[LIMIT:] == [(429, "rate_limited", "ip")] * 10
    assert (real.status_code, real.json()["code"]) == (404, "not_found")


def test_an_unsupported_content_type_is_415_in_the_error_shape_through_the_edge(two_apis):
    """415 in the error shape, counted by the rate limit like any request, and logged."""
    a, _, info = two_apis
    client = client_from("127.0.0.6")
    wait_for_window_start(WINDOW)
    t0 = time.time()
    answers = [
        client.post(f"{a}/api/rent", data="<rent/>", headers={"Content-Type": "application/xml"}, timeout=30)
        for _ in range(LIMIT + 1)
    ]
    assert time.time() - t0 < WINDOW, "the burst took longer than one window: the machine is too slow"
    first = answers[0]
    assert first.headers["Content-Type"] == "application/json"
    assert first.json() == {
        "detail": first.json()["detail"],
        "code": "unsupported_media_type",
        "reason": "Content-Type",
    }
    assert [r.status_code for r in answers] == [415] * LIMIT + [429]
    logs = "".join(p.read_text(errors="replace") for p in Path(info["log_dir"]).glob("api*.log"))
    assert '"status":415' in logs and '"code":"unsupported_media_type"' in logs
