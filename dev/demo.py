"""A whole rental against `make run`, as a new user would do it by hand.

    make run                       # in one terminal
    .venv/bin/python -m dev.demo # in another  (--stack PATH to use another stack.json)

It reads the stack's ``stack.json``, creates a fresh wallet, airdrops 2 SOL on
the local chain, pays the treasury the price of 0.1 h of M2 (a system transfer
with the rent's binding memo, through packages/si64/src/si64/renter.py), rents (the request also
carries the wallet's signed headers over its body), reports one metrics sample
and a batch with the leased device's key, reads the contract, extends it by
0.1 h with a second payment and settles it with a request signed by the wallet.
Every HTTP request and response is printed on one line each.

Honest by construction: any non-2xx answer (or a failed payment) is printed
and the demo exits 1; it exits 0 only when every step did what docs/api.md says.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import urllib.error
import urllib.request
from decimal import Decimal
from pathlib import Path

from chalicelib.domain import money, signing
from si64.renter import LAMPORTS_PER_SOL, PaymentFailed, Renter, renter_headers

ROOT = Path(__file__).resolve().parent.parent
TIER, HOURS = "M2", "0.1"


class DemoFailed(Exception):
    pass


def compact(obj, limit: int = 400) -> str:
    text = obj if isinstance(obj, str) else json.dumps(obj, separators=(",", ":"))
    return text if len(text) <= limit else text[: limit - 3] + "..."


class Http:
    """Prints `> METHOD path body` and `< status body`; raises DemoFailed on non-2xx."""

    def __init__(self, base_url: str):
        self.base_url = base_url.rstrip("/")

    def __call__(self, method: str, path: str, body=None, headers: dict | None = None, show: str | None = None):
        data = None if body is None else json.dumps(body).encode()
        hdrs = {"Content-Type": "application/json", **(headers or {})}
        print(
            f"> {method} {path}"
            + (f" {show or compact(body)}" if body is not None else "")
            + ("  [" + ", ".join(h for h in headers) + "]" if headers else ""),
            flush=True,
        )
        req = urllib.request.Request(self.base_url + path, data=data, headers=hdrs, method=method)
        try:
            with urllib.request.urlopen(req, timeout=30) as resp:
                status, text = resp.status, resp.read().decode("utf-8", "replace")
        except urllib.error.HTTPError as exc:
            status, text = exc.code, exc.read().decode("utf-8", "replace")
        except (urllib.error.URLError, OSError) as exc:
            raise DemoFailed(f"{method} {path}: cannot reach {self.base_url} ({exc}); is `make run` up?") from None
        print(f"< {status} {compact(text)}", flush=True)
        if not 200 <= status < 300:
            raise DemoFailed(f"{method} {path} answered {status}")
        try:
            return json.loads(text)
        except ValueError:
            raise DemoFailed(f"{method} {path} answered {status} with a body that is not JSON") from None


def signed(wallet, method: str, path: str, body=None) -> dict:
    """The wallet's headers over the exact bytes `Http` sends (binds the request to the wallet)."""
    return renter_headers(wallet, method, path, b"" if body is None else json.dumps(body).encode())


def run(stack: dict) -> None:
    from solders.keypair import Keypair

    http = Http(stack["api_url"])
    pricing = http("GET", "/api/pricing")
    treasury = pricing["treasury"]
    if treasury != stack["treasury"]:
        raise DemoFailed(f"/api/pricing names treasury {treasury}, stack.json {stack['treasury']}")
    lph = next(t["lamports_per_hour"] for t in pricing["tiers"] if t["tier"] == TIER)
    seconds = money.duration_seconds(Decimal(HOURS))
    price = money.price_lamports(lph, seconds)

    wallet = Keypair()
    print(f"# wallet {wallet.pubkey()} (a fresh keypair); {HOURS} h of {TIER} costs {price} lamports")
    with Renter(stack["rpc_url"]) as renter:
        sig = renter.airdrop(wallet.pubkey(), 2 * LAMPORTS_PER_SOL)
        print(f"  airdrop 2 SOL -> {wallet.pubkey()}: {sig}", flush=True)
        memo = signing.rent_memo(TIER, seconds)
        sig = renter.pay(wallet, treasury, price, memo)
        print(f"  paid {price} lamports to the treasury (memo {memo!r}): {sig}", flush=True)

        body = {"wallet": str(wallet.pubkey()), "tier": TIER, "duration_hours": float(HOURS), "tx_signature": sig}
        rent = http("POST", "/api/rent", body, signed(wallet, "POST", "/api/rent", body))
        cid, device = rent["contract_id"], rent["device_id"]
        key = stack.get("device_keys", {}).get(device)
        if not key:
            raise DemoFailed(f"stack.json has no device key for {device}")
        device_hdr = {"X-Device-Key": key}

        sample = {"cpu_percent": 37.5, "memory_mb": 6144, "disk_io_mbps": 12.5, "network_io_mbps": 3.25}
        http("POST", f"/api/metrics/{cid}", sample, device_hdr)
        now_ms = int(time.time() * 1000)
        samples = [dict(sample, cpu_percent=20 + i, timestamp_ms=now_ms - (10 - i) * 1000) for i in range(10)]
        http("POST", f"/api/metrics/{cid}", {"samples": samples}, device_hdr, show=f'{{"samples":[...{len(samples)}]}}')
        http("GET", f"/api/contracts/{cid}/metrics")
        http("GET", f"/api/contracts/{cid}")

        memo = signing.extend_memo(cid, seconds)
        sig2 = renter.pay(wallet, treasury, price, memo)
        print(f"  paid {price} lamports to the treasury (memo {memo!r}): {sig2}", flush=True)
        path = f"/api/contracts/{cid}/extend"
        body = {"additional_hours": float(HOURS), "tx_signature": sig2}
        ext = http("POST", path, body, signed(wallet, "POST", path, body))
        if ext["new_expiration"] != rent["expires_at"] + seconds:
            raise DemoFailed(
                f"extension moved the expiry to {ext['new_expiration']}, not {rent['expires_at'] + seconds}"
            )

        path = f"/api/contracts/{cid}/settle"
        settled = http("POST", path, None, signed(wallet, "POST", path))
        final = http("GET", f"/api/contracts/{cid}")
    if settled["status"] != "SETTLED" or final["status"] != "SETTLED":
        raise DemoFailed(f"contract {cid} is {final['status']} after settling")
    if settled["refund_lamports"] != settled["prepaid_lamports"] - settled["used_lamports"]:
        raise DemoFailed("refund != prepaid - used")
    print(
        f"# done: {cid} on {device}: paid {settled['prepaid_lamports']} lamports, used "
        f"{settled['used_lamports']}, refund {settled['refund_lamports']} ({settled['refund_status']})"
    )


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m dev.demo", description=__doc__.split("\n\n")[0])
    parser.add_argument("--stack", default=".local/stack.json", help="the stack.json written by `make run`")
    args = parser.parse_args(argv)
    path = Path(args.stack)
    if not path.exists() and not path.is_absolute() and (ROOT / path).exists():
        path = ROOT / path
    try:
        stack = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        print(f"demo: cannot read {path}: {exc}; start the stack with `make run` first", file=sys.stderr)
        return 2
    try:
        run(stack)
    except (DemoFailed, PaymentFailed) as exc:
        print(f"demo FAILED: {exc}", file=sys.stderr)
        return 1
    except Exception as exc:  # noqa: BLE001 - e.g. the chain RPC refused a transaction
        print(f"demo FAILED: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
