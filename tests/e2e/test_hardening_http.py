"""Issue 10 over real HTTP against the local stack: the docs/api.md error shape for unknown
routes and wrong methods, NaN/Infinity naming their field, metric timestamps within the
contract's lifetime, figures a client can reproduce (the server's milliseconds, SOL as
plain decimals) and duration limits on the rounded seconds.

Every refusal is a 4xx in the docs/api.md shape that writes nothing (the operator's views and
the contract's samples are compared before and after).
"""

from __future__ import annotations

import json
import re
import time
from decimal import Decimal
from pathlib import Path

import pytest

from chalicelib.domain import signing

from .client import LAMPORTS_PER_SOL, duration_seconds, price_lamports, settle_headers, usage_lamports

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]
SAMPLE = {"cpu_percent": 12.5, "memory_mb": 2048, "disk_io_mbps": 1, "network_io_mbps": 0.5}
SKEW_MS = 30_000  # services.telemetry.SAMPLE_CLOCK_SKEW_MS


def plain_decimal(number: str) -> Decimal:
    """json parse_float hook: every fraction on the wire is a plain decimal (never 2.78e-07)."""
    assert re.fullmatch(r"-?[0-9]+\.[0-9]+", number), number
    return Decimal(number)


def wire(r) -> dict:
    return json.loads(r.text, parse_float=plain_decimal)


def assert_error(r, status: int, code: str, reason=None) -> None:
    assert r.status == status, r
    assert r.is_error_shape, r
    assert r.body["code"] == code, r
    if reason is not None:
        assert r.body["reason"] == reason, r
    assert r.headers.get("Content-Type", "").startswith("application/json"), r


def rent(api, payer, treasury, tier: str = "M2", hours=0.1, funds: int = LAMPORTS_PER_SOL):
    """A rental bound by its payment's memo (docs/api.md "Binding a payment", way 2)."""
    kp = payer.new_wallet(funds)
    seconds = duration_seconds(hours)
    sig = payer.pay(kp, treasury, price_lamports(tier, hours), memo=signing.rent_memo(tier, seconds))
    body = (
        json.dumps({"wallet": str(kp.pubkey()), "tier": tier, "tx_signature": sig})[:-1]
        + f', "duration_hours": {hours}}}'
    )  # the number exactly as written
    r = api.post("/api/rent", data=body)
    assert r.status == 201, r
    return kp, r


def settle(api, kp, cid):
    r = api.post(f"/api/contracts/{cid}/settle", data=b"", headers=settle_headers(kp, cid))
    assert r.status == 200, r
    return r


# ------------------------------------------------------------------ unknown routes, wrong methods
def edge_no_route_body() -> dict:
    """The body infra/edge.yaml gives API Gateway for a path or method without a route."""
    text = (ROOT / "infra" / "edge.yaml").read_text()
    block = text[text.index("MISSING_AUTHENTICATION_TOKEN:") :]
    m = re.search(r"application/json: '(\{.*?\})'", block)
    return json.loads(m.group(1))


@pytest.mark.parametrize(
    "method, path",
    [
        ("GET", "/api/nope"),
        ("GET", "/nope"),  # "/" is the renter web app on the local stack (dev/web_static.py)
        ("POST", "/api/nope"),
        ("GET", "/api/contracts"),
        ("GET", "/api/contracts/CTR-aaaaaaaaaaaaaaaaaaaa/metrics/extra"),
        ("DELETE", "/api/health"),
        ("PUT", "/api/rent"),
        ("GET", "/api/rent"),
        ("POST", "/api/pricing"),
        ("PATCH", "/api/contracts/CTR-aaaaaaaaaaaaaaaaaaaa"),
        ("GET", "/api/metrics/CTR-aaaaaaaaaaaaaaaaaaaa"),
        ("DELETE", "/api/contracts/CTR-aaaaaaaaaaaaaaaaaaaa/settle"),
    ],
)
def test_unknown_routes_and_wrong_methods_answer_like_the_deployed_gateway(api, method, path):
    r = api.request(method, path, data=b'{"a": 1}' if method in ("POST", "PUT", "PATCH") else None)
    assert_error(r, 404, "not_found", "route")
    assert r.body == edge_no_route_body()
    assert "Code" not in r.body and "message" not in r.body


def test_head_of_an_unknown_route_is_a_404_without_a_body_and_the_connection_stays_usable(api):
    r = api.request("HEAD", "/api/nope")
    assert r.status == 404 and r.text == ""
    r = api.request("POST", "/api/health", data=b'{"x": "' + b"y" * 5000 + b'"}')  # body read off the socket
    assert_error(r, 404, "not_found", "route")
    assert api.get("/api/health").status == 200  # same keep-alive session, still in step


# ------------------------------------------------------------------ NaN / Infinity name the field
@pytest.mark.parametrize("constant", ["NaN", "Infinity", "-Infinity"])
def test_nan_and_infinity_name_their_field(api, local_stack, constant):
    before = api.snapshot()
    raw = f'{{"wallet": "x", "tier": "M2", "duration_hours": {constant}, "tx_signature": "y"}}'
    r = api.post("/api/rent", data=raw)
    assert_error(r, 400, "invalid_request", "duration_hours")
    assert "not valid JSON" not in r.body["detail"] and constant in r.body["detail"]
    raw = f'{{"additional_hours": {constant}, "tx_signature": "y"}}'
    assert_error(
        api.post("/api/contracts/CTR-aaaaaaaaaaaaaaaaaaaa/extend", data=raw), 400, "invalid_request", "additional_hours"
    )
    assert api.snapshot() == before


# ------------------------------------------------------------------ a live contract
@pytest.fixture(scope="module")
def live(api, payer, local_stack):
    kp, r = rent(api, payer, local_stack["treasury"], tier="M2", hours=0.1)
    cid, device = r.body["contract_id"], r.body["device_id"]
    yield {"kp": kp, "cid": cid, "key": {"X-Device-Key": local_stack["device_keys"][device]}, "rent": r}
    api.post(f"/api/contracts/{cid}/settle", data=b"", headers=settle_headers(kp, cid))


def test_metrics_nan_in_a_batch_names_the_sample_field(api, live):
    cid, key = live["cid"], live["key"]
    before = api.get(f"/api/contracts/{cid}/metrics").body
    raw = (
        '{"samples": [{"cpu_percent": 1, "memory_mb": 1, "disk_io_mbps": 0, "network_io_mbps": 0}, '
        '{"cpu_percent": NaN, "memory_mb": 1, "disk_io_mbps": 0, "network_io_mbps": 0}]}'
    )
    assert_error(
        api.post(f"/api/metrics/{cid}", data=raw, headers=key), 400, "invalid_request", "samples[1].cpu_percent"
    )
    assert api.get(f"/api/contracts/{cid}/metrics").body == before


def test_metric_timestamps_must_fall_within_the_contracts_lifetime(api, live):
    cid, key = live["cid"], live["key"]
    status = api.get(f"/api/contracts/{cid}").body
    created = status["created_at_ms"]
    before = {"samples": api.get(f"/api/contracts/{cid}/metrics").body, "snapshot": api.snapshot()}
    now = int(time.time() * 1000)
    year_2000 = 946_684_800_000
    for ts in (year_2000, created - SKEW_MS - 1000, now + SKEW_MS + 60_000, status["expires_at_ms"] + SKEW_MS + 1):
        r = api.post(f"/api/metrics/{cid}", dict(SAMPLE, timestamp_ms=ts), headers=key)
        assert_error(r, 400, "invalid_request", "timestamp_ms")
        assert "lifetime" in r.body["detail"]
        batch = {"samples": [dict(SAMPLE, timestamp_ms=now - 1000), dict(SAMPLE, timestamp_ms=ts)]}
        assert_error(
            api.post(f"/api/metrics/{cid}", batch, headers=key), 400, "invalid_request", "samples[1].timestamp_ms"
        )
    assert {"samples": api.get(f"/api/contracts/{cid}/metrics").body, "snapshot": api.snapshot()} == before
    # within the lifetime, including the skew allowance before its start: stored, read back exactly
    ok = [
        dict(SAMPLE, timestamp_ms=created - SKEW_MS + 1000, cpu_percent=0.000001),
        dict(SAMPLE, timestamp_ms=created + 1, memory_mb=1e-7),
    ]
    r = api.post(f"/api/metrics/{cid}", {"samples": ok}, headers=key)
    assert r.status == 200 and r.body["samples_recorded"] == 2, r
    got = wire(api.get(f"/api/contracts/{cid}/metrics"))["samples"]
    first = [s for s in got if s["timestamp_ms"] in (ok[0]["timestamp_ms"], ok[1]["timestamp_ms"])]
    assert [s["cpu_percent"] for s in first][0] == Decimal("0.000001")
    assert first[1]["memory_mb"] == Decimal("1E-7")  # exact, written 0.0000001


# ------------------------------------------------------------------ figures a client can reproduce
def test_status_and_settle_carry_server_milliseconds_and_plain_decimals(api, payer, local_stack):
    kp, r = rent(api, payer, local_stack["treasury"], tier="M2", hours=0.1)
    cid = r.body["contract_id"]
    time.sleep(1.2)
    s = api.get(f"/api/contracts/{cid}")
    status = wire(s)
    assert isinstance(status["created_at_ms"], int) and status["settled_at_ms"] is None
    assert status["created_at"] == status["created_at_ms"] // 1000
    assert status["expires_at_ms"] - status["created_at_ms"] == status["duration_seconds"] * 1000
    out = settle(api, kp, cid)
    done = wire(out)
    assert (done["created_at_ms"], done["expires_at_ms"]) == (status["created_at_ms"], status["expires_at_ms"])
    assert done["settled_at_ms"] >= status["created_at_ms"] + 1200
    # what a client computes from the answer alone and docs/api.md's formula: the server's used_lamports
    used = usage_lamports(
        "M2", done["settled_at_ms"] - done["created_at_ms"], done["expires_at_ms"] - done["created_at_ms"]
    )
    assert done["used_lamports"] == used
    # ~1.2 s of M2 is ~333 lamports = 0.000000333 SOL: written plainly, exactly the lamports
    assert done["used_sol"] == Decimal(done["used_lamports"]).scaleb(-9)
    assert '"used_sol":0.000000' in out.text.replace(" ", "")
    after = wire(api.get(f"/api/contracts/{cid}"))
    assert after["settled_at_ms"] == done["settled_at_ms"] and after["used_lamports"] == used


def test_the_maximum_duration_is_checked_on_the_rounded_seconds(api, payer, local_stack):
    """720.0001 h is 2,592,000.36 s: it rounds to exactly 720 h and is accepted (and priced as 720 h)."""
    kp, r = rent(api, payer, local_stack["treasury"], tier="M2", hours="720.0001", funds=2 * LAMPORTS_PER_SOL)
    assert r.body["duration_seconds"] == 720 * 3600
    assert r.body["cost_lamports"] == price_lamports("M2", 720)
    settle(api, kp, r.body["contract_id"])
    # 720.000139 h rounds to 2,592,001 s: over the maximum, refused before the chain is asked
    r = api.post(
        "/api/rent",
        data=f'{{"wallet": "{kp.pubkey()}", "tier": "M2", "duration_hours": 720.000139, '
        '"tx_signature": "1111111111111111111111111111111111111111111111111111111111111111"}',
    )
    assert_error(r, 400, "invalid_request", "duration_hours")
