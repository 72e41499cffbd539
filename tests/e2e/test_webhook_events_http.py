"""The sweep's and the refusal job's webhook events over HTTP on the local stack, HMAC-verified:
contract.low_time once per contract and expiry (the sweep runs every 2 s here, so a receiver that
got one event after many runs got it once), payment.refused for a payment the API refused
(derived from the orphan share, never written by the refusal itself), and the delivery log a
renter reads of its own webhook (another wallet gets 404)."""

from __future__ import annotations

import http.server
import json
import threading
import time
from decimal import Decimal

from solders.keypair import Keypair

from chalicelib.domain.webhooks import verify_signature
from tests.e2e.client import price_lamports, rent_terms
from tests.e2e.test_webhooks_http import signed

MINUTE_HOURS = Decimal("0.0166667")  # rounds to 60 s: the shortest contract, told at its first sweep


class Receiver:
    """An HTTP receiver on 127.0.0.1 that answers 200 and keeps every delivery."""

    def __init__(self) -> None:
        self.got: list[tuple[bytes, dict[str, str]]] = []
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                outer.got.append((body, {k.lower(): v for k, v in self.headers.items()}))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def events(self, secret: str) -> list[dict]:
        out = []
        for body, headers in list(self.got):
            assert verify_signature(secret, headers.get("si64-signature"), body, int(time.time())), headers
            out.append(json.loads(body))
        return out

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)


def register(api, kp: Keypair, url: str, events: list[str]) -> tuple[str, str]:
    raw = json.dumps({"url": url, "events": events}).encode()
    r = api.request("POST", "/api/webhooks", data=raw, headers=signed(kp, "POST", "/api/webhooks", raw))
    assert r.status == 201, r
    return r.body["webhook_id"], r.body["secret"]


def wait_for(predicate, seconds: float = 60.0) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and not predicate():
        time.sleep(0.5)


def si64_webhooks(local_stack, kp: Keypair, tmp_path, *args: str):
    """`python -m si64 webhooks --wallet FILE` against the stack, as a renter's shell runs it."""
    import os
    import subprocess
    import sys

    key = tmp_path / f"{kp.pubkey()}.json"
    key.write_text(json.dumps(list(bytes(kp))))
    env = {k: v for k, v in os.environ.items() if not k.startswith("SI64_")}
    env.update(SI64_STATE_DIR=local_stack["state_dir"], SI64_API_URL=local_stack["api_url"])
    done = subprocess.run(
        [sys.executable, "-m", "si64", "webhooks", "--wallet", str(key), *args],
        capture_output=True,
        text=True,
        check=False,
        env=env,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout) if "--json" in args else done.stdout


def test_a_renter_gets_contract_low_time_once_hmac_verified(api, payer, local_stack, tmp_path):
    receiver = Receiver()
    try:
        wallet = payer.new_wallet()
        hook_id, secret = register(api, wallet, receiver.url, ["contract.low_time"])
        sig = payer.pay(
            wallet, local_stack["treasury"], price_lamports("M2", MINUTE_HOURS), memo=rent_terms("M2", MINUTE_HOURS)
        )
        hours = float(MINUTE_HOURS)
        r = api.post(
            "/api/rent", {"wallet": str(wallet.pubkey()), "tier": "M2", "duration_hours": hours, "tx_signature": sig}
        )
        assert r.status == 201, r
        cid = r.body["contract_id"]

        def told() -> list[dict]:
            return [e for e in receiver.events(secret) if e["data"]["contract_id"] == cid]

        wait_for(lambda: bool(told()))
        time.sleep(8)  # four more sweeps and dispatches: none tells it again
        events = told()
        assert [e["type"] for e in events] == ["contract.low_time"], events
        data = events[0]["data"]
        assert data["status"] == "ACTIVE" and 0 < data["remaining_ms"] <= data["threshold_ms"] == 60_000
        assert data["wallet"] == str(wallet.pubkey())

        # `si64 webhooks` (HTTP only, renter-signed) shows the delivery and its status
        out = si64_webhooks(local_stack, wallet, tmp_path, "--json")
        [hook] = out["webhooks"]
        assert hook["url"] == receiver.url and hook["events"] == ["contract.low_time"]
        [delivery] = [d for d in hook["deliveries"] if d["event_id"] == events[0]["id"]]
        assert (delivery["status"], delivery["attempts"], delivery["last_status"]) == ("delivered", 1, 200)
        text = si64_webhooks(local_stack, wallet, tmp_path)
        assert f"{events[0]['id']}  contract.low_time" in text and "delivered" in text
        assert si64_webhooks(local_stack, Keypair(), tmp_path, "--json")["webhooks"] == []  # another wallet: none
        path = f"/api/webhooks/{hook_id}/deliveries"  # another wallet reading this log: 404, nothing of it
        r = api.get(path, headers=signed(Keypair(), "GET", path))
        assert r.status == 404 and r.is_error_shape and events[0]["id"] not in r.text, r
    finally:
        receiver.close()


def test_a_refused_payment_is_told_to_its_payer_once_hmac_verified(api, payer, local_stack):
    receiver = Receiver()
    try:
        treasury, hours = local_stack["treasury"], float(MINUTE_HOURS)
        booked = payer.new_wallet()  # a booked payment first: orphans are found after the first one
        sig = payer.pay(booked, treasury, price_lamports("M2", MINUTE_HOURS), memo=rent_terms("M2", MINUTE_HOURS))
        r = api.post(
            "/api/rent", {"wallet": str(booked.pubkey()), "tier": "M2", "duration_hours": hours, "tx_signature": sig}
        )
        assert r.status == 201, r

        wallet = payer.new_wallet()
        _, secret = register(api, wallet, receiver.url, ["payment.refused"])
        short = price_lamports("M2", MINUTE_HOURS) - 1
        sig = payer.pay(wallet, treasury, short, memo=rent_terms("M2", MINUTE_HOURS))
        r = api.post(
            "/api/rent", {"wallet": str(wallet.pubkey()), "tier": "M2", "duration_hours": hours, "tx_signature": sig}
        )
        assert r.status == 402 and r.is_error_shape, r

        def told() -> list[dict]:
            return [e for e in receiver.events(secret) if e["data"]["tx_signature"] == sig]

        wait_for(lambda: bool(told()), 90)
        time.sleep(12)  # the job runs every 10 s here: a second run tells nobody again
        events = told()
        assert [e["type"] for e in events] == ["payment.refused"], events
        assert events[0]["data"]["payer"] == str(wallet.pubkey()) and events[0]["data"]["lamports"] == short
        assert events[0]["data"]["refund_path"] == f"/api/payments/{sig}/refund"
    finally:
        receiver.close()
