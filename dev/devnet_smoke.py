"""`make devnet-smoke`: one rent, extend, settle and refund end to end against a stage on Solana devnet.

    python -m dev.devnet_smoke [--api URL] [--rpc URL] [--payer KEYPAIR_JSON] [--tier M2]

* ``--api`` (``$SI64_API_URL``): a deployed stage's ``EndpointURL`` without the trailing ``/api/``
  part that the routes carry, or a local API pointed at devnet (``make run`` with
  ``SOLANA_RPC_URL``/``SI64_NETWORK=devnet``), default ``http://127.0.0.1:8000``.
* ``--rpc`` (``$SOLANA_RPC_URL``): the cluster the stage uses, default
  ``https://api.devnet.solana.com``.
* ``--payer`` (``$SI64_DEVNET_PAYER``): a keypair file (the JSON array of ``solana-keygen``)
  holding devnet SOL; without one a fresh keypair asks the devnet faucet for 1 SOL (rate-limited).

First it probes the RPC and the API with a short timeout (a TCP connection, then ``getHealth``
and ``GET /api/health``); if either cannot be reached it prints ``devnet-smoke: SKIPPED …`` with
the reason and exits 0 (nothing else is sent anywhere). Otherwise: pays a rent whose memo binds
its terms, rents, pays and extends, settles (signed by the wallet), waits until the refund is
CONFIRMED (finalized on chain), then checks on the chain that the refund transfer carries the
memo ``si64:refund:<contract>`` and paid exactly the refunded lamports. Exit 1 on any failure.
Local tooling: never packaged.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

DEFAULT_RPC = "https://api.devnet.solana.com"
DEFAULT_API = "http://127.0.0.1:8000"
PROBE_SECONDS = 3.0


def say(msg: str) -> None:
    print(f"devnet-smoke: {msg}", flush=True)


def _http(method: str, url: str, body: bytes | None = None, headers: dict | None = None, timeout: float = 30.0):
    req = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, json.loads(r.read() or b"null")
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"null")


def rpc(url: str, method: str, params: list | None = None, timeout: float = 30.0):
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": params or []}).encode()
    status, out = _http("POST", url, body, {"Content-Type": "application/json"}, timeout)
    if status != 200 or "error" in out:
        raise RuntimeError(f"{method}: HTTP {status} {out}")
    return out["result"]


def probe(url: str, timeout: float = PROBE_SECONDS) -> str | None:
    """None when `url`'s host accepts a TCP connection within `timeout`; else why not."""
    parts = urllib.parse.urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        with socket.create_connection((parts.hostname, port), timeout=timeout):
            return None
    except OSError as exc:
        return f"{parts.hostname}:{port} unreachable ({exc.__class__.__name__}: {exc})"


def reachability(api: str, rpc_url: str) -> str | None:
    for what, url in (("RPC", rpc_url), ("API", api)):
        why = probe(url)
        if why:
            return f"{what} {url}: {why}"
    try:
        if rpc(rpc_url, "getHealth", timeout=PROBE_SECONDS) != "ok":
            return f"RPC {rpc_url} is not healthy"
        status, _ = _http("GET", f"{api}/api/health", timeout=PROBE_SECONDS)
        if status != 200:
            return f"API {api}/api/health answered {status}"
    except (OSError, RuntimeError, ValueError) as exc:
        return f"probe failed: {exc}"
    return None


def wait_for(what: str, fn, timeout: float, every: float = 1.0):
    deadline = time.monotonic() + timeout
    while True:
        got = fn()
        if got:
            return got
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what}: not after {timeout:.0f} s")
        time.sleep(every)


def smoke(api: str, rpc_url: str, payer_file: str | None, tier: str, seconds: int) -> dict:
    from solders.keypair import Keypair

    from si64.renter import Renter, renter_headers

    status, pricing = _http("GET", f"{api}/api/pricing")
    assert status == 200, pricing
    treasury = pricing["treasury"]
    per_hour = next(t["lamports_per_hour"] for t in pricing["tiers"] if t["tier"] == tier)
    price = -(-per_hour * seconds // 3600)
    say(f"network {pricing.get('network')}, treasury {treasury}, {tier} {per_hour} lamports/h")
    with Renter(rpc_url, poll_seconds=0.5) as renter:
        if payer_file:
            kp = Keypair.from_bytes(bytes(json.loads(Path(payer_file).read_text())))
        else:
            kp = Keypair()
            renter.airdrop(kp.pubkey(), 10**9)
        wallet = str(kp.pubkey())
        say(f"payer {wallet} holds {renter.balance(kp.pubkey())} lamports")
        sig = renter.pay(kp, treasury, price, f"si64:rent:{tier}:{seconds}")
        body = json.dumps({"wallet": wallet, "tier": tier, "duration_hours": seconds / 3600, "tx_signature": sig})
        status, rent = _http("POST", f"{api}/api/rent", body.encode(), {"Content-Type": "application/json"})
        if status != 201:
            raise RuntimeError(f"rent: {status} {rent}")
        cid = rent["contract_id"]
        say(f"rented {cid} on {rent.get('device_id')} (payment {sig})")
        sig2 = renter.pay(kp, treasury, price, f"si64:extend:{cid}:{seconds}")
        body = json.dumps({"additional_hours": seconds / 3600, "tx_signature": sig2})
        status, ext = _http(
            "POST", f"{api}/api/contracts/{cid}/extend", body.encode(), {"Content-Type": "application/json"}
        )
        if status != 200:
            raise RuntimeError(f"extend: {status} {ext}")
        say(f"extended by {seconds} s (payment {sig2})")
        path = f"/api/contracts/{cid}/settle"
        status, settled = _http("POST", api + path, b"", renter_headers(kp, "POST", path, b""))
        if status != 200:
            raise RuntimeError(f"settle: {status} {settled}")
        say(f"settled: {settled.get('refund_lamports')} lamports owed back ({settled.get('refund_status')})")
        t0 = time.monotonic()

        def confirmed():
            _, c = _http("GET", f"{api}/api/contracts/{cid}")
            return c if c["refund"]["status"] == "CONFIRMED" else None

        final = wait_for("refund CONFIRMED", confirmed, 180.0)
        took = time.monotonic() - t0
        refund = final["refund"]
        tx = rpc(
            rpc_url,
            "getTransaction",
            [
                refund["tx_signature"],
                {"encoding": "jsonParsed", "commitment": "finalized", "maxSupportedTransactionVersion": 0},
            ],
        )
        keys = [k["pubkey"] if isinstance(k, dict) else k for k in tx["transaction"]["message"]["accountKeys"]]
        i = keys.index(wallet)
        received = tx["meta"]["postBalances"][i] - tx["meta"]["preBalances"][i]
        memos = [
            ix.get("parsed") for ix in tx["transaction"]["message"]["instructions"] if ix.get("program") == "spl-memo"
        ]
        if received != refund["lamports"] or f"si64:refund:{cid}" not in memos:
            raise RuntimeError(f"refund on chain does not match: received {received}, memos {memos}, {refund}")
        say(f"refund CONFIRMED in {took:.1f} s after settle: {received} lamports, tx {refund['tx_signature']}")
        return {"contract_id": cid, "refund_lamports": received, "settle_to_confirmed_s": round(took, 1)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m dev.devnet_smoke", description=__doc__.splitlines()[0])
    ap.add_argument("--api", default=os.environ.get("SI64_API_URL") or DEFAULT_API)
    ap.add_argument("--rpc", default=os.environ.get("SOLANA_RPC_URL") or DEFAULT_RPC)
    ap.add_argument("--payer", default=os.environ.get("SI64_DEVNET_PAYER") or None)
    ap.add_argument("--tier", default="M2")
    ap.add_argument("--seconds", type=int, default=600, help="rent and extend by this long (default 600)")
    args = ap.parse_args(argv)
    api = args.api.rstrip("/")
    why = reachability(api, args.rpc)
    if why:
        say(f"SKIPPED — {why}. Nothing was sent. Set SI64_API_URL / SOLANA_RPC_URL (docs/deploy.md, devnet).")
        return 0
    try:
        out = smoke(api, args.rpc, args.payer, args.tier, args.seconds)
    except Exception as exc:  # noqa: BLE001 - the smoke test reports whatever broke
        say(f"FAILED — {exc}")
        return 1
    say(f"PASSED {json.dumps(out)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
