"""A DynamoDB outage answers 503 `unavailable` on every route that needs the database,
and nothing else does: a failure that is not an outage stays a bug (500).

Every route of the app is walked (a route added without a case here fails the test);
each request is one that would succeed with the database up, so it reaches the store.
"""

from __future__ import annotations

import json
import time

import pytest
from botocore.exceptions import ClientError
from pynamodb.exceptions import QueryError
from solders.keypair import Keypair

from chalicelib.domain.signing import extend_memo, rent_memo, renter_message
from tests.support.fakes import new_wallet

from .conftest import ADMIN_KEY

CID = "CTR-AAAAAAAAAAAAAAAAAAAAAA"
ADMIN = {"X-Admin-Key": ADMIN_KEY}
SAMPLE = {"cpu_percent": 1, "memory_mb": 1, "disk_io_mbps": 0, "network_io_mbps": 0}
# Routes that never touch DynamoDB (documented in README "Endpoints": 0 AWS calls).
NO_DATABASE = {
    ("GET", "/api/pricing"),
    ("GET", "/api/openapi.json"),
    ("POST", "/api/admin/refunds/redrive"),
}  # SQS only


def _requests(api):
    """(method, route, path, body, headers) for every route of docs/api.md."""
    if api.c.chain_history is None:  # reconciliation reads the chain first: the fake node's history
        from tests.support.fake_history import FakeChainHistory
        from tests.support.fakes import FakeRefundChain, FakeTreasurySigner

        api.c.chain_history = FakeChainHistory(api.c.rpc, FakeRefundChain(FakeTreasurySigner(api.c.rpc.treasury)))
    wallet = new_wallet()
    rent = {
        "wallet": wallet,
        "tier": "M2",
        "duration_hours": 1,
        "tx_signature": api.c.rpc.pay(wallet, 1_000_000, memo=rent_memo("M2", 3600)),
    }
    kp = Keypair()
    ts = str(api.c.clock() // 1000)
    settle_path = f"/api/contracts/{CID}/settle"
    renter = {
        "X-Wallet": str(kp.pubkey()),
        "X-Timestamp": ts,
        "X-Signature": str(kp.sign_message(renter_message("POST", settle_path, ts))),
    }
    extend = {"additional_hours": 1, "tx_signature": api.c.rpc.pay(wallet, 1_000_000, memo=extend_memo(CID, 3600))}
    key = {"X-Device-Key": "dk_device-m2-001_" + "k" * 32}
    refund_path = f"/api/payments/{api.c.rpc.pay(str(kp.pubkey()), 1_000)}/refund"
    refund_renter = {
        "X-Wallet": str(kp.pubkey()),
        "X-Timestamp": ts,
        "X-Signature": str(kp.sign_message(renter_message("POST", refund_path, ts))),
    }
    return [
        ("GET", "/api/health", "/api/health", None, {}),
        ("GET", "/api/pricing", "/api/pricing", None, {}),
        ("GET", "/api/devices/{tier}", "/api/devices/M2", None, {}),
        ("GET", "/api/fleet", "/api/fleet", None, {}),
        ("POST", "/api/quotes", "/api/quotes", {"tier": "M2", "duration_hours": 1}, {}),
        ("GET", "/api/quotes/{quote_id}", "/api/quotes/QTE-doesnotexist00000000", None, {}),
        ("POST", "/api/rent", "/api/rent", rent, {}),
        ("GET", "/api/contracts/{contract_id}", f"/api/contracts/{CID}", None, {}),
        ("POST", "/api/contracts/{contract_id}/extend", f"/api/contracts/{CID}/extend", extend, {}),
        ("POST", "/api/contracts/{contract_id}/settle", settle_path, None, renter),
        ("GET", "/api/contracts/{contract_id}/metrics", f"/api/contracts/{CID}/metrics", None, {}),
        ("GET", "/api/contracts/{contract_id}/coverage", f"/api/contracts/{CID}/coverage", None, ADMIN),
        ("POST", "/api/metrics/{contract_id}", f"/api/metrics/{CID}", SAMPLE, key),
        ("GET", "/api/billing/ledger", "/api/billing/ledger", None, ADMIN),
        ("GET", "/api/billing/entries", f"/api/billing/entries?contract_id={CID}", None, ADMIN),
        ("GET", "/api/stats", "/api/stats", None, ADMIN),
        # refunds of payments no contract holds, operator retry
        ("POST", "/api/payments/{tx_signature}/refund", refund_path, None, refund_renter),
        ("GET", "/api/payments/{tx_signature}/refund", f"{refund_path}?payer={kp.pubkey()}", None, {}),
        ("POST", "/api/refunds/{refund_id}/retry", f"/api/refunds/{CID}/retry", None, ADMIN),
        # the device fleet, the document, operator refunds and reconciliation
        ("GET", "/api/openapi.json", "/api/openapi.json", None, {}),
        ("GET", "/api/admin/devices", "/api/admin/devices", None, ADMIN),
        ("POST", "/api/admin/devices/{device_id}/key", "/api/admin/devices/device-m2-001/key", None, ADMIN),
        (
            "POST",
            "/api/admin/devices/{device_id}/audited",
            "/api/admin/devices/device-m2-001/audited",
            {"audited": True},
            ADMIN,
        ),
        (
            "POST",
            "/api/admin/devices/{device_id}/pubkey",
            "/api/admin/devices/device-m2-001/pubkey",
            {"pubkey": "4Nd1mYQQGZ7rM6J9xJ2xY3nNf4Z4VZg8bUb6Qm3fPDgE"},
            ADMIN,
        ),
        ("GET", "/api/admin/refunds", "/api/admin/refunds?status=FAILED", None, ADMIN),
        ("POST", "/api/admin/refunds/redrive", "/api/admin/refunds/redrive", None, ADMIN),
        (
            "POST",
            "/api/admin/payments/{tx_signature}/refund",
            f"/api/admin/payments/{api.c.rpc.pay(new_wallet(), 2_000)}/refund",
            None,
            ADMIN,
        ),
        ("GET", "/api/admin/reconcile", "/api/admin/reconcile", None, ADMIN),
        ("POST", "/api/webhooks", "/api/webhooks", {"url": "https://h.example/x", "events": ["refund.failed"]}, ADMIN),
        ("GET", "/api/webhooks", "/api/webhooks", None, ADMIN),
        ("DELETE", "/api/webhooks/{webhook_id}", "/api/webhooks/WH-none", None, ADMIN),
        ("GET", "/api/webhooks/{webhook_id}/deliveries", "/api/webhooks/WH-none/deliveries", None, ADMIN),
    ]


def _send(api, method, path, body, headers):
    if method in ("GET", "DELETE"):
        r = api.client.http.request(method, path, headers=headers)
    else:
        r = api.client.http.post(
            path, body="" if body is None else json.dumps(body), headers={"Content-Type": "application/json", **headers}
        )
    return r.status_code, json.loads(r.body or b"null")


@pytest.fixture
def database_down(api, monkeypatch):
    from chalicelib.adapters import models

    for m in [*models.MODELS.values(), *models.TABLE_OF]:
        monkeypatch.setattr(m.Meta, "host", "http://127.0.0.1:9")  # nothing listens on the discard port
        monkeypatch.setattr(m.Meta, "connect_timeout_seconds", 1)
        monkeypatch.setattr(m.Meta, "max_retry_attempts", 0)
        monkeypatch.setattr(m, "_connection", None)
    yield
    for m in [*models.MODELS.values(), *models.TABLE_OF]:
        m._connection = None


def test_the_walk_covers_every_route(api):
    from app import app

    routes = {(m, path) for path, methods in app.routes.items() for m in methods if m != "OPTIONS"}  # CORS preflights
    assert routes == {(m, route) for m, route, *_ in _requests(api)}


@pytest.mark.parametrize("idempotency_key", [None, "outage-1"])
def test_every_route_is_503_when_dynamodb_is_unreachable(api, database_down, idempotency_key):
    answers = {}
    for method, route, path, body, headers in _requests(api):
        if idempotency_key and method == "POST":
            headers = dict(headers, **{"Idempotency-Key": idempotency_key})
        t0 = time.monotonic()
        answers[(method, route)] = _send(api, method, path, body, headers) + (time.monotonic() - t0,)
    for (method, route), (status, body, seconds) in answers.items():
        if (method, route) in NO_DATABASE and not (idempotency_key and method == "POST"):  # the key is stored
            assert status == 200, (route, body)
            continue
        assert (status, body["code"], body["reason"]) == (503, "unavailable", "database"), (method, route, body)
        assert body["request_id"] and seconds < 10


def _query_error(code):
    return QueryError("Failed to query items", ClientError({"Error": {"Code": code, "Message": "m"}}, "Query"))


@pytest.mark.parametrize(
    "code, status, expected",
    [
        ("ThrottlingException", 503, "unavailable"),
        ("ProvisionedThroughputExceededException", 503, "unavailable"),
        ("ValidationException", 500, "internal"),
        ("AccessDeniedException", 500, "internal"),
        ("UnrecognizedClientException", 500, "internal"),
    ],
)
def test_only_outages_are_503_other_database_errors_are_bugs(api, monkeypatch, code, status, expected):
    from chalicelib.adapters.models import DeviceItem

    def fail(*args, **kwargs):
        raise _query_error(code)

    monkeypatch.setattr(DeviceItem.by_tier, "query", fail)
    st, body = api.get("/api/devices/M2")
    assert (st, body["code"]) == (status, expected)
    assert body["detail"] != "m" and "Traceback" not in json.dumps(body)


def test_stats_are_the_books_counters_on_dynamodb(api):
    """stats read the book's counter items, never the contracts table (ADR 0006)."""
    wallet = new_wallet()
    for _ in range(3):
        body = {
            "wallet": wallet,
            "tier": "M2",
            "duration_hours": 1,
            "tx_signature": api.c.rpc.pay(wallet, 1_000_000, memo=rent_memo("M2", 3600)),
        }
        assert api.post("/api/rent", body)[0] == 201
    st, stats = api.get("/api/stats", ADMIN)
    assert st == 200 and stats["contracts"]["ACTIVE"] == 3 and stats["active_prepaid_lamports"] == 3_000_000
