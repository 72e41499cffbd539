"""`si64 webhooks`: your webhooks, their newest deliveries and each one's status, over HTTP only.

    webhooks [--wallet KEYPAIR] [--json]

With `--wallet` (a keypair file, solana-keygen format) the requests are renter-signed: that
wallet's webhooks. Without it the operator key is used: the operator's webhooks. Each delivery
is `pending` (queued, not tried yet), `delivered`, `failing` (attempts so far and the next try)
or `given_up` (24 h after the event); `GET /api/webhooks` and
`GET /api/webhooks/{id}/deliveries` are the routes read.
"""

from __future__ import annotations

import json
import time
import urllib.parse
from pathlib import Path
from typing import Any

from .client import Client, ConfigError


def add_parsers(sub: Any, parser_class: Any) -> None:
    w = sub.add_parser("webhooks", help="your webhooks and their deliveries (pending, delivered, failing, given up)")
    w.add_argument("--wallet", metavar="KEYPAIR", help="sign as this wallet (a keypair file): its webhooks")
    w.add_argument("--json", action="store_true", help="print the webhooks with their deliveries as JSON")


def _get(client: Client, path: str, wallet: Any) -> Any:
    if wallet is None:
        return client.get(path, admin=True)
    from .renter import renter_headers

    return client.get(path, headers=renter_headers(wallet, "GET", path))


def _load_wallet(path: str | None) -> Any:
    if path is None:
        return None
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"no keypair file at {path}")
    from solders.keypair import Keypair

    try:
        return Keypair.from_bytes(bytes(json.loads(p.read_text())))
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"{path} is not a keypair file (a JSON list of 64 numbers): {exc}") from None


def _when(ts: int | None, now: float) -> str:
    if ts is None:
        return "-"
    delta = int(ts - now)
    return f"in {delta} s" if delta >= 0 else f"{-delta} s ago"


def delivery_line(d: dict[str, Any], now: float) -> str:
    status = d["status"]
    if status == "failing":
        why = d.get("last_error") or (f"HTTP {d['last_status']}" if d.get("last_status") else "no answer")
        detail = f"{d['attempts']} attempt(s), next try {_when(d.get('next_try_at'), now)}; last: {why}"
    elif status == "given_up":
        detail = f"after {d['attempts']} attempt(s); last: {d.get('last_error') or d.get('last_status')}"
    elif status == "delivered":
        detail = f"HTTP {d.get('last_status')} on attempt {d['attempts']}"
    else:
        detail = "queued, not tried yet"
    return f"  {d['event_id']}  {d['type']:<18} {status:<9} {detail}"


def cmd_webhooks(client: Client, args: Any) -> int:
    wallet = _load_wallet(args.wallet)
    listed = _get(client, "/api/webhooks", wallet)
    out = []
    for hook in listed["webhooks"]:
        path = f"/api/webhooks/{urllib.parse.quote(hook['webhook_id'], safe='')}/deliveries"
        out.append({**hook, "deliveries": _get(client, path, wallet)["deliveries"]})
    if args.json:
        print(json.dumps({"webhooks": out, "count": len(out)}, indent=2))
        return 0
    owner = f"wallet {wallet.pubkey()}" if wallet is not None else "the operator"
    if not out:
        print(f"no webhooks for {owner}")
        return 0
    now = time.time()
    for hook in out:
        print(f"{hook['webhook_id']}  {hook['url']}  events: {', '.join(hook['events'])}")
        if not hook["deliveries"]:
            print("  no deliveries yet")
        for d in hook["deliveries"]:
            print(delivery_line(d, now))
    return 0


HANDLERS = {("webhooks", None): cmd_webhooks}
