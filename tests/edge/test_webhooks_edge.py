"""Webhook registration over the real app on fakes: renter-signed or admin, the secret shown
once, validation and SSRF refusals writing nothing, another wallet's webhook out of reach."""

from __future__ import annotations

import json

import pytest
from solders.keypair import Keypair

from chalicelib.domain.signing import renter_message
from tests.edge.conftest import ADMIN_KEY

ADMIN = {"X-Admin-Key": ADMIN_KEY}
URL = "https://hooks.example.com/si64"


def signed(edge, kp: Keypair, method: str, path: str, raw: bytes = b"") -> dict:
    ts = str(edge.p.clock() // 1000)
    sig = kp.sign_message(renter_message(method, path, ts, raw))
    return {"X-Wallet": str(kp.pubkey()), "X-Timestamp": ts, "X-Signature": str(sig)}


def register(edge, kp: Keypair, body: dict):
    raw = json.dumps(body).encode()
    return edge.post("/api/webhooks", raw, signed(edge, kp, "POST", "/api/webhooks", raw))


def listed(edge, kp: Keypair) -> list:
    status, body, _ = edge.get("/api/webhooks", signed(edge, kp, "GET", "/api/webhooks"))
    assert status == 200, body
    return body["webhooks"]


def test_a_renter_registers_lists_and_deletes_and_the_secret_is_shown_once(edge):
    kp = Keypair()
    status, body, _ = register(edge, kp, {"url": URL, "events": ["contract.settled", "refund.confirmed"]})
    assert status == 201, body
    assert body["webhook_id"].startswith("WH-") and body["secret"].startswith("whsec_")
    hooks = listed(edge, kp)
    assert hooks == [
        {
            "webhook_id": body["webhook_id"],
            "url": URL,
            "events": ["contract.settled", "refund.confirmed"],
            "created_at": edge.p.clock() // 1000,
        }
    ]
    assert body["secret"] not in json.dumps(hooks)
    path = f"/api/webhooks/{body['webhook_id']}"
    status, gone, _ = edge.request("DELETE", path, headers=signed(edge, kp, "DELETE", path))
    assert status == 200 and gone == {"webhook_id": body["webhook_id"], "deleted": True}
    assert listed(edge, kp) == []
    status, again, _ = edge.request("DELETE", path, headers=signed(edge, kp, "DELETE", path))
    assert status == 404 and again["code"] == "not_found"


def test_the_admin_has_its_own_list_and_a_wallet_cannot_see_or_delete_it(edge):
    status, body, _ = edge.post("/api/webhooks", {"url": URL, "events": ["payment.refused"]}, ADMIN)
    assert status == 201, body
    status, mine, _ = edge.get("/api/webhooks", ADMIN)
    assert status == 200 and [h["webhook_id"] for h in mine["webhooks"]] == [body["webhook_id"]]
    kp = Keypair()
    assert listed(edge, kp) == []
    path = f"/api/webhooks/{body['webhook_id']}"
    status, err, _ = edge.request("DELETE", path, headers=signed(edge, kp, "DELETE", path))
    assert status == 404
    status, mine, _ = edge.get("/api/webhooks", ADMIN)
    assert len(mine["webhooks"]) == 1


@pytest.mark.parametrize(
    "body",
    [
        {"url": "http://hooks.example.com/x", "events": ["contract.settled"]},  # http in production
        {"url": "https://127.0.0.1/x", "events": ["contract.settled"]},  # loopback (SSRF)
        {"url": "https://169.254.169.254/latest", "events": ["contract.settled"]},  # link-local (SSRF)
        {"url": "https://10.0.0.8/x", "events": ["contract.settled"]},  # private (SSRF)
        {"url": URL, "events": ["contract.nope"]},
        {"url": URL, "events": []},
        {"url": URL},
        {"url": URL, "events": ["contract.settled"], "secret": "mine"},
    ],
)
def test_bad_input_is_400_and_writes_nothing(edge, body):
    before = edge.p.db.snapshot()["webhooks"]
    status, err, _ = edge.post("/api/webhooks", body, ADMIN)
    assert status == 400 and err["code"] == "invalid_request", err
    assert edge.p.db.snapshot()["webhooks"] == before


def test_locally_http_and_loopback_are_allowed(edge):
    edge.settings(webhook_allow_local=True)
    status, body, _ = edge.post("/api/webhooks", {"url": "http://127.0.0.1:9/x", "events": ["refund.failed"]}, ADMIN)
    assert status == 201, body


def test_credentials_are_required_and_a_bad_admin_key_is_401(edge):
    status, err, _ = edge.post("/api/webhooks", {"url": URL, "events": ["refund.failed"]})
    assert status == 401
    status, err, _ = edge.get("/api/webhooks", {"X-Admin-Key": "wrong"})
    assert status == 401
    assert edge.p.db.snapshot()["webhooks"] == {}


def test_idempotency_key_is_refused_so_the_secret_is_never_stored_for_a_replay(edge):
    status, err, _ = edge.post(
        "/api/webhooks", {"url": URL, "events": ["refund.failed"]}, {**ADMIN, "Idempotency-Key": "k1"}
    )
    assert status == 400 and err["reason"] == "Idempotency-Key"
    assert edge.p.db.snapshot()["webhooks"] == {}
    assert not edge.claims_records("idem#")


def test_at_most_ten_per_owner(edge):
    for _ in range(10):
        assert edge.post("/api/webhooks", {"url": URL, "events": ["refund.failed"]}, ADMIN)[0] == 201
    status, err, _ = edge.post("/api/webhooks", {"url": URL, "events": ["refund.failed"]}, ADMIN)
    assert status == 400 and err["reason"] == "webhooks"


def test_an_outage_is_503_and_writes_nothing(edge):
    edge.p.db.fail_next("webhooks.add")
    status, err, _ = edge.post("/api/webhooks", {"url": URL, "events": ["refund.failed"]}, ADMIN)
    assert status == 503, err
    assert edge.p.db.snapshot()["webhooks"] == {}


def test_a_renter_reads_its_own_webhooks_deliveries_and_another_wallet_gets_404(edge):
    from chalicelib.domain import webhooks as W

    kp, other = Keypair(), Keypair()
    status, body, _ = register(edge, kp, {"url": URL, "events": ["contract.created"]})
    assert status == 201, body
    hook_id = body["webhook_id"]
    entry = W.Delivery("evt_1", "contract.created", W.FAILING, 2, 1_000, edge.p.clock(), 1_764_000_060_000, 500, "500")
    edge.p.stores["delivery_log"].record(hook_id, entry)
    path = f"/api/webhooks/{hook_id}/deliveries"
    status, got, _ = edge.get(path, signed(edge, kp, "GET", path))
    assert status == 200, got
    assert got == {
        "webhook_id": hook_id,
        "count": 1,
        "deliveries": [
            {
                "event_id": "evt_1",
                "type": "contract.created",
                "status": "failing",
                "attempts": 2,
                "next_try_at": 1_764_000_060,
                "last_status": 500,
                "last_error": "500",
                "event_created": 1,
                "updated_at": edge.p.clock() // 1000,
            }
        ],
    }
    # another wallet, and the operator (its own webhooks only), are told there is no such webhook
    status, refused, _ = edge.get(path, signed(edge, other, "GET", path))
    assert status == 404 and refused["code"] == "not_found" and "evt_1" not in json.dumps(refused)
    status, refused, _ = edge.get(path, ADMIN)
    assert status == 404, refused
    status, refused, _ = edge.get(path)
    assert status == 401, refused
    bad = "/api/webhooks/not-an-id/deliveries"
    status, refused, _ = edge.get(bad, signed(edge, kp, "GET", bad))
    assert status == 404, refused
