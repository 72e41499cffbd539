"""Webhook registration over HTTP on the local stack: admin and renter-signed, the secret shown
once, another owner's webhook out of reach, bad input 400 with nothing written. Locally
(SI64_WEBHOOK_ALLOW_LOCAL=1, set by the stack) http and 127.0.0.1 targets are allowed."""

from __future__ import annotations

import json

from solders.keypair import Keypair

from chalicelib.domain.signing import renter_message

URL = "http://127.0.0.1:9/si64-hook"


def signed(kp: Keypair, method: str, path: str, raw: bytes = b"") -> dict:
    import time

    ts = str(int(time.time()))
    sig = kp.sign_message(renter_message(method, path, ts, raw))
    return {"X-Wallet": str(kp.pubkey()), "X-Timestamp": ts, "X-Signature": str(sig)}


def test_register_list_delete_over_http(api):
    r = api.post("/api/webhooks", {"url": URL, "events": ["contract.created", "contract.settled"]}, admin=True)
    assert r.status == 201, r
    admin_hook, secret = r.body["webhook_id"], r.body["secret"]
    assert secret.startswith("whsec_")

    kp = Keypair()
    raw = json.dumps({"url": URL, "events": ["refund.confirmed"]}).encode()
    r = api.request("POST", "/api/webhooks", data=raw, headers=signed(kp, "POST", "/api/webhooks", raw))
    assert r.status == 201, r
    mine = r.body["webhook_id"]

    r = api.get("/api/webhooks", headers=signed(kp, "GET", "/api/webhooks"))
    assert r.status == 200 and [h["webhook_id"] for h in r.body["webhooks"]] == [mine], r
    r = api.get("/api/webhooks", admin=True)
    assert r.status == 200 and admin_hook in [h["webhook_id"] for h in r.body["webhooks"]], r
    assert secret not in r.text and "whsec_" not in r.text

    path = f"/api/webhooks/{admin_hook}"  # the wallet cannot delete the operator's webhook
    r = api.request("DELETE", path, headers=signed(kp, "DELETE", path))
    assert r.status == 404 and r.is_error_shape, r
    path = f"/api/webhooks/{mine}"
    r = api.request("DELETE", path, headers=signed(kp, "DELETE", path))
    assert r.status == 200 and r.body == {"webhook_id": mine, "deleted": True}, r
    r = api.get("/api/webhooks", headers=signed(kp, "GET", "/api/webhooks"))
    assert r.body["webhooks"] == []


def test_bad_input_is_400_and_no_credentials_401(api):
    before = api.get("/api/webhooks", admin=True).body["count"]
    for body in (
        {"url": "ftp://127.0.0.1/x", "events": ["contract.settled"]},
        {"url": URL, "events": ["contract.nope"]},
        {"url": URL, "events": []},
    ):
        r = api.post("/api/webhooks", body, admin=True)
        assert r.status == 400 and r.is_error_shape, r
    r = api.post("/api/webhooks", {"url": URL, "events": ["refund.failed"]})
    assert r.status == 401 and r.is_error_shape, r
    r = api.post(
        "/api/webhooks", {"url": URL, "events": ["refund.failed"]}, admin=True, headers={"Idempotency-Key": "k"}
    )
    assert r.status == 400 and r.body["reason"] == "Idempotency-Key", r
    assert api.get("/api/webhooks", admin=True).body["count"] == before
