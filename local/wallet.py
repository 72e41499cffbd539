"""Renter tools for trying the API with curl against `make run` (never packaged).

  python -m local.wallet pay --tier M2 --hours 0.5             # airdrop if needed, pay, print JSON
  python -m local.wallet pay --tier M2 --hours 1 --memo none   # a bare transfer
  python -m local.wallet pay --contract CTR-… --hours 1 --memo extend
  python -m local.wallet pay --lamports 1234567                # an exact amount
  python -m local.wallet sign POST /api/contracts/CTR-…/settle --curl
  python -m local.wallet sign POST /api/rent --body rent.json --curl   # the body's hash is signed too
  python -m local.wallet address

`pay` puts a binding memo in the payment (`--memo rent`: rent of --tier for --hours,
`--memo extend`: extension of --contract by --hours, as chalicelib/domain/signing.py
spells them); `sign` prints the renter headers over METHOD PATH and the raw body.
Payments go through local/renter.py (stock solana-py AsyncClient) to the stack's RPC;
the wallet keypair is $SI64_STATE_DIR/wallets/<name>.json (solana-keygen format).
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
from decimal import Decimal
from pathlib import Path

from chalicelib.domain import money, signing
from local.renter import LAMPORTS_PER_SOL, Renter, load_or_create_keypair, renter_headers

ROOT = Path(__file__).resolve().parents[1]


def state_dir() -> Path:
    return Path(os.environ.get("SI64_STATE_DIR") or ROOT / ".local")


def load_stack() -> dict:
    path = state_dir() / "stack.json"
    if not path.exists():
        sys.exit(f"{path} not found: start the stack with `make run` first")
    return json.loads(path.read_text())


def payment(args) -> tuple[int, str | None]:
    """(lamports, memo) of a `pay` command."""
    seconds = money.duration_seconds(Decimal(args.hours))
    lamports = args.lamports
    if lamports is None:
        lamports = money.price_lamports(money.TIERS[args.tier].lamports_per_hour, seconds)
    if args.memo == "rent":
        return lamports, signing.rent_memo(args.tier, seconds)
    if args.memo == "extend":
        if not args.contract:
            sys.exit("--memo extend needs --contract CONTRACT_ID")
        return lamports, signing.extend_memo(args.contract, seconds)
    return lamports, None


def read_body(arg: str | None) -> bytes:
    if arg is None:
        return b""
    return sys.stdin.buffer.read() if arg == "-" else Path(arg).read_bytes()


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m local.wallet", description=__doc__.splitlines()[0])
    ap.add_argument("--wallet", default="demo", help="wallet name under $SI64_STATE_DIR/wallets/")
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("pay", help="pay the treasury; prints {wallet, tx_signature, lamports, memo}")
    p.add_argument("--tier", default="M2", choices=sorted(money.TIERS))
    p.add_argument("--hours", default="1")
    p.add_argument("--lamports", type=int, help="exact amount (default: the price of --tier/--hours)")
    p.add_argument("--memo", default="rent", choices=("rent", "extend", "none"), help="binding memo (default rent)")
    p.add_argument("--contract", help="the contract an --memo extend payment is for")
    s = sub.add_parser("sign", help="print renter headers for METHOD PATH [body] (curl -H format with --curl)")
    s.add_argument("method")
    s.add_argument("path", help="the route's path as docs/api.md writes it, e.g. /api/rent (no query)")
    s.add_argument("--body", help="file holding the exact request body, or - for stdin")
    s.add_argument("--curl", action="store_true")
    sub.add_parser("address")
    args = ap.parse_args(argv)
    kp = load_or_create_keypair(state_dir() / "wallets" / f"{args.wallet}.json")
    if args.cmd == "address":
        print(kp.pubkey())
    elif args.cmd == "pay":
        stack = load_stack()
        lamports, memo = payment(args)
        with Renter(stack["rpc_url"]) as renter:
            renter.top_up(kp.pubkey(), max(2 * LAMPORTS_PER_SOL, 2 * lamports), minimum=lamports + 1_000_000)
            sig = renter.pay(kp, stack["treasury"], lamports, memo)
        print(json.dumps({"wallet": str(kp.pubkey()), "tx_signature": sig, "lamports": lamports, "memo": memo}))
    else:
        body = read_body(args.body)
        headers = renter_headers(kp, args.method.upper(), args.path, body)
        if args.curl:
            print(" ".join(f"-H {shlex.quote(f'{k}: {v}')}" for k, v in headers.items()))
        else:
            print(json.dumps(headers))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
