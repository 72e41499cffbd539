"""Renter tools for trying the API with curl against `make run` (never packaged).

  python -m local.wallet pay --tier M2 --hours 0.5     # airdrop if needed, pay the treasury, print JSON
  python -m local.wallet pay --lamports 1234567        # pay an exact amount
  python -m local.wallet sign POST /api/contracts/CTR-…/settle   # print the three renter headers
  python -m local.wallet address

Uses a stock solana-py AsyncClient against the stack's RPC, and a wallet keypair
kept in $SI64_STATE_DIR/wallets/<name>.json (solana-keygen format).
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MEMO_PROGRAM = "MemoSq4gqABAXKb96qnH8TysNcWxMyWCqXgDLGmfcHr"


def state_dir() -> Path:
    return Path(os.environ.get("SI64_STATE_DIR") or ROOT / ".local")


def load_stack() -> dict:
    path = state_dir() / "stack.json"
    if not path.exists():
        sys.exit(f"{path} not found: start the stack with `make run` first")
    return json.loads(path.read_text())


def load_wallet(name: str):
    from solders.keypair import Keypair
    path = state_dir() / "wallets" / f"{name}.json"
    if path.exists():
        return Keypair.from_bytes(bytes(json.loads(path.read_text())))
    kp = Keypair()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(list(bytes(kp))))
    return kp


def price_of(tier: str, hours: str) -> int:
    sys.path.insert(0, str(ROOT))
    from chalicelib.domain import money
    return money.price_lamports(money.TIERS[tier].lamports_per_hour, money.duration_seconds(Decimal(hours)))


async def pay(rpc_url: str, kp, treasury: str, lamports: int, memo: str) -> str:
    from solana.rpc.async_api import AsyncClient
    from solana.rpc.commitment import Confirmed
    from solders.instruction import Instruction
    from solders.message import Message
    from solders.pubkey import Pubkey
    from solders.system_program import TransferParams, transfer
    from solders.transaction import Transaction

    async with AsyncClient(rpc_url, commitment=Confirmed) as client:
        balance = (await client.get_balance(kp.pubkey())).value
        if balance < lamports + 1_000_000:
            air = await client.request_airdrop(kp.pubkey(), max(2_000_000_000, lamports * 2))
            await client.confirm_transaction(air.value, Confirmed)
        blockhash = (await client.get_latest_blockhash()).value.blockhash
        ixs = [transfer(TransferParams(from_pubkey=kp.pubkey(), to_pubkey=Pubkey.from_string(treasury),
                                       lamports=lamports)),
               Instruction(Pubkey.from_string(MEMO_PROGRAM), memo.encode(), [])]
        tx = Transaction([kp], Message(ixs, kp.pubkey()), blockhash)
        sig = (await client.send_transaction(tx)).value
        await client.confirm_transaction(sig, Confirmed)
        return str(sig)


def sign_headers(kp, method: str, path: str) -> dict:
    ts = str(int(time.time()))
    sig = kp.sign_message(f"si64:{method} {path}:{ts}".encode())
    return {"X-Wallet": str(kp.pubkey()), "X-Timestamp": ts, "X-Signature": str(sig)}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m local.wallet", description=__doc__.splitlines()[0])
    ap.add_argument("--wallet", default="demo", help="wallet name under $SI64_STATE_DIR/wallets/")
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("pay", help="pay the treasury; prints {wallet, tx_signature, lamports}")
    p.add_argument("--tier", default="M2")
    p.add_argument("--hours", default="1")
    p.add_argument("--lamports", type=int, help="exact amount (default: the price of --tier/--hours)")
    p.add_argument("--memo", default="si64 rent")
    s = sub.add_parser("sign", help="print renter headers for METHOD PATH (curl -H format with --curl)")
    s.add_argument("method")
    s.add_argument("path")
    s.add_argument("--curl", action="store_true")
    sub.add_parser("address")
    args = ap.parse_args(argv)
    kp = load_wallet(args.wallet)
    if args.cmd == "address":
        print(kp.pubkey())
    elif args.cmd == "pay":
        stack = load_stack()
        lamports = args.lamports if args.lamports is not None else price_of(args.tier, args.hours)
        sig = asyncio.run(pay(stack["rpc_url"], kp, stack["treasury"], lamports, args.memo))
        print(json.dumps({"wallet": str(kp.pubkey()), "tx_signature": sig, "lamports": lamports}))
    else:
        headers = sign_headers(kp, args.method.upper(), args.path)
        if args.curl:
            print(" ".join(f"-H '{k}: {v}'" for k, v in headers.items()))
        else:
            print(json.dumps(headers))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
