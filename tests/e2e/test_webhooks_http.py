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


# ------------------------------------------------------------------ delivery on the stack
class Receiver:
    """An HTTP receiver on 127.0.0.1 that answers 500 to its first delivery, 200 after."""

    def __init__(self) -> None:
        import http.server
        import threading

        self.got: list[tuple[bytes, dict]] = []
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                outer.got.append((body, {k.lower(): v for k, v in self.headers.items()}))
                self.send_response(500 if len(outer.got) == 1 else 200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)


EXPECTED = {"contract.created", "contract.settled", "refund.confirmed"}


def test_a_receiver_gets_every_event_hmac_verified_and_the_failed_one_again_with_the_same_id(api, payer, local_stack):
    import time

    from chalicelib.domain.webhooks import verify_signature
    from tests.e2e.client import price_lamports, rent_terms, settle_headers

    receiver = Receiver()
    try:
        r = api.post(
            "/api/webhooks",
            {"url": receiver.url, "events": ["contract.created", "contract.settled", "refund.confirmed"]},
            admin=True,
        )
        assert r.status == 201, r
        secret = r.body["secret"]
        wallet = payer.new_wallet()
        hours = 0.1
        sig = payer.pay(wallet, local_stack["treasury"], price_lamports("M2", hours), memo=rent_terms("M2", hours))
        r = api.post(
            "/api/rent", {"wallet": str(wallet.pubkey()), "tier": "M2", "duration_hours": hours, "tx_signature": sig}
        )
        assert r.status == 201, r
        cid = r.body["contract_id"]
        r = api.post(f"/api/contracts/{cid}/settle", data=b"", headers=settle_headers(wallet, cid))
        assert r.status == 200, r

        def mine() -> list[dict]:
            out = []
            for body, headers in list(receiver.got):
                assert verify_signature(secret, headers.get("si64-signature"), body, int(time.time())), headers
                event = json.loads(body)
                if cid in (event["data"].get("contract_id"), event["data"].get("refund_id")):
                    out.append(event)
            return out

        def ids() -> list[str]:  # every delivery the receiver got, this contract's or not (shared stack)
            return [json.loads(body)["id"] for body, _ in list(receiver.got)]

        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            events = mine()
            failed_again = bool(receiver.got) and ids().count(json.loads(receiver.got[0][0])["id"]) >= 2
            if {e["type"] for e in events} == EXPECTED and len(events) >= 3 and failed_again:
                break
            time.sleep(0.5)
        events = mine()
        assert {e["type"] for e in events} == EXPECTED, events
        refund = next(e for e in events if e["type"] == "refund.confirmed")
        assert refund["data"]["refund_id"] == cid and refund["data"]["tx_signature"]
        assert all(set(e) == {"id", "type", "created", "data"} for e in events)
        # the first delivery (this contract's or, on a shared stack, another's) was answered 500:
        # it came again, same id
        first = json.loads(receiver.got[0][0])
        assert ids().count(first["id"]) == 2, ids()
    finally:
        receiver.close()
