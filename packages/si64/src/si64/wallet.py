"""Renter tools for trying the API with curl against `make run` (in the si64 client, not in Lambda).

  python -m si64.wallet pay --tier M2 --hours 0.5             # airdrop if needed, pay, print JSON
  python -m si64.wallet pay --tier M2 --hours 1 --memo none   # a bare transfer
  python -m si64.wallet pay --contract CTR-… --hours 1        # an extension (memo extend)
  python -m si64.wallet pay --lamports 1234567                # an exact amount
  python -m si64.wallet sign POST /api/contracts/CTR-…/settle --curl
  python -m si64.wallet sign POST /api/rent --body rent.json --curl   # the body's hash is signed too
  python -m si64.wallet balance [ADDRESS]                     # lamports held (default: this wallet)
  python -m si64.wallet tx SIGNATURE                          # a transaction's memo and transfers
  python -m si64.wallet address

`pay` puts a binding memo in the payment (`--memo rent`: rent of --tier for --hours,
`--memo extend`: extension of --contract by --hours, as si64_protocol
spells them); `sign` prints the renter headers over METHOD PATH and the raw body.
Before it pays, `pay` checks with the API what the API would refuse: the duration against
the published limits, and for --contract that the contract exists, is still running and
belongs to this wallet. Payments go through packages/si64/src/si64/renter.py (stock solana-py AsyncClient) to
the stack's RPC; the wallet keypair is $SI64_STATE_DIR/wallets/<name>.json (solana-keygen
format). Any failure is one line on stderr and a non-zero exit status (2 for bad arguments);
SI64_DEBUG=1 shows tracebacks.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
import urllib.parse
from decimal import Decimal, InvalidOperation
from pathlib import Path

import si64_protocol as protocol
from si64.client import state_dir
from si64.renter import LAMPORTS_PER_SOL, PaymentFailed, Renter, load_or_create_keypair, renter_headers

PROG = "python -m si64.wallet"
STACK_HINT = " — is the local stack running? (`make run`)"


class WalletError(Exception):
    """A failure to tell in one line; nothing was paid unless the line says so."""

    exit_code = 1


class UsageError(WalletError):
    exit_code = 2


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, exit 2 (argparse prints usage + message)
        self.exit(2, f"{PROG}: error: {message} (see `{self.prog} --help`)\n")


def load_stack() -> dict:
    path = state_dir() / "stack.json"
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise UsageError(f"{path} not found: start the stack with `make run` first") from None
    except (OSError, ValueError) as exc:
        raise UsageError(f"cannot read {path}: {exc}") from None


def _hours(text: str) -> Decimal:
    try:
        d = Decimal(text) if len(text) <= 40 else Decimal("NaN")
    except InvalidOperation:
        d = Decimal("NaN")
    if not d.is_finite() or d <= 0:
        raise argparse.ArgumentTypeError(f"must be a number of hours more than 0: {text!r}")
    return d


def _lamports(text: str) -> int:
    if not (text.isascii() and text.isdigit() and len(text) <= 19) or int(text) < 1:
        raise argparse.ArgumentTypeError(f"must be a whole number of lamports ≥ 1: {text!r}")
    return int(text)


# ------------------------------------------------------------------ checks before paying
def api_client(stack: dict):
    from si64.client import Client, Target

    return Client(Target(str(stack["api_url"]).rstrip("/"), None, source=str(state_dir() / "stack.json")))


def _limits(pricing: dict) -> dict:
    return {"min_seconds": int(pricing["min_duration_seconds"]), "max_hours": int(pricing["max_duration_hours"])}


def _seconds(hours: Decimal, pricing: dict) -> int:
    seconds: int | None = None
    if hours.is_finite() and hours > 0:
        try:
            seconds = protocol.duration_seconds(hours)
        except ValueError:  # beyond 10**20 hours: far above any maximum
            seconds = None
    problem = protocol.duration_problem(seconds, **_limits(pricing))
    if problem:
        raise UsageError(f"'--hours' {problem} Nothing was paid.")
    assert seconds is not None
    return seconds


def _tier_rate(pricing: dict, tier: str) -> int:
    for t in pricing.get("tiers") or []:
        if t.get("tier") == tier:
            return int(t["lamports_per_hour"])
    raise UsageError(f"the API does not price tier {tier!r}; nothing was paid")


def plan_payment(args, api, wallet: str) -> tuple[int, str | None]:
    """(lamports, memo) of a `pay` command, after checking with the API what it would refuse."""
    from si64.client import ApiError

    memo_kind = args.memo or ("extend" if args.contract else "rent")
    if memo_kind == "extend" and not args.contract:
        raise UsageError("--memo extend needs --contract CONTRACT_ID")
    if memo_kind == "rent" and args.contract:
        raise UsageError("--contract is for an extension: use --memo extend (the default with --contract) or none")
    pricing = api.get("/api/pricing")
    seconds = _seconds(args.hours, pricing)
    tier = args.tier or "M2"
    if args.contract:
        cid = args.contract
        try:
            view = api.get(f"/api/contracts/{urllib.parse.quote(cid, safe='')}")
        except ApiError as exc:
            if exc.status in (400, 404):
                raise WalletError(f"no contract {cid} at {api.api_url} ({exc.status}); nothing was paid") from None
            raise
        if view.get("status") != protocol.ACTIVE or not view.get("remaining_seconds"):
            raise WalletError(
                f"contract {cid} has ended ({view.get('status')}): it cannot be extended; nothing was paid"
            )
        if view.get("wallet") != wallet:
            raise WalletError(
                f"contract {cid} belongs to wallet {view.get('wallet')}, not to this one ({wallet}): an extension "
                "is paid from the contract's wallet (--wallet NAME); nothing was paid"
            )
        if int(view.get("duration_seconds") or 0) + seconds > _limits(pricing)["max_hours"] * 3600:
            raise UsageError(
                f"contract {cid} would run more than {pricing['max_duration_hours']} hours in all; nothing was paid"
            )
        tier = view["tier"]
    lamports = args.lamports
    if lamports is None:
        lamports = protocol.price_lamports(_tier_rate(pricing, tier), seconds)
    if memo_kind == "rent":
        return lamports, protocol.rent_memo(tier, seconds)
    if memo_kind == "extend":
        return lamports, protocol.extend_memo(args.contract, seconds)
    return lamports, None


# ------------------------------------------------------------------ reading the chain
def tx_summary(result: dict, sig: str, wallet: str, commitment: str | None) -> dict:
    """A `getTransaction` (jsonParsed) result → its memo, its system transfers and what reached `wallet`."""
    meta = result.get("meta") or {}
    message = (result.get("transaction") or {}).get("message") or {}
    ixs = list(message.get("instructions") or [])
    for inner in meta.get("innerInstructions") or []:
        ixs.extend(inner.get("instructions") or [])
    memos, transfers = [], []
    for ix in ixs:
        parsed = ix.get("parsed")
        if ix.get("program") == "spl-memo" and isinstance(parsed, str):
            memos.append(parsed)
        elif ix.get("program") == "system" and isinstance(parsed, dict) and parsed.get("type") == "transfer":
            info = parsed.get("info") or {}
            transfers.append(
                {"from": info.get("source"), "to": info.get("destination"), "lamports": info.get("lamports")}
            )
    received = sum(int(t["lamports"] or 0) for t in transfers if t["to"] == wallet)
    return {
        "tx_signature": sig,
        "slot": result.get("slot"),
        "block_time": result.get("blockTime"),
        "status": "failed" if meta.get("err") is not None else (commitment or "confirmed"),
        "memo": "; ".join(memos) or None,
        "transfers": transfers,
        "wallet": wallet,
        "wallet_received_lamports": received,
        "fee_lamports": meta.get("fee"),
    }


def _sol(lamports: int) -> str:
    whole, frac = divmod(lamports, LAMPORTS_PER_SOL)
    return f"{whole}.{frac:09d}"


# ------------------------------------------------------------------ commands
def read_body(arg: str | None) -> bytes:
    if arg is None:
        return b""
    try:
        return sys.stdin.buffer.read() if arg == "-" else Path(arg).read_bytes()
    except OSError as exc:
        raise UsageError(f"cannot read --body {arg}: {exc.strerror or exc}") from None


def build_parser() -> argparse.ArgumentParser:
    ap = _Parser(prog=PROG, description=__doc__.splitlines()[0])
    ap.add_argument("--wallet", default="demo", help="wallet name under $SI64_STATE_DIR/wallets/ (demo)")
    sub = ap.add_subparsers(dest="cmd", required=True, metavar="COMMAND", parser_class=_Parser)
    p = sub.add_parser("pay", help="pay the treasury; prints {wallet, tx_signature, lamports, memo}")
    p.add_argument(
        "--tier",
        choices=protocol.TIER_NAMES,
        help="the tier rented, which sets the price per hour (M2); an extension pays its contract's tier",
    )
    p.add_argument(
        "--hours",
        type=_hours,
        default=Decimal(1),
        metavar="HOURS",
        help="hours rented or added, more than 0 (1); the price is that of the rounded seconds",
    )
    p.add_argument("--lamports", type=_lamports, help="exact amount (default: the price of --tier/--hours)")
    p.add_argument(
        "--memo",
        choices=("rent", "extend", "none"),
        help="binding memo: rent (the default), extend (the default with --contract), none (a bare transfer)",
    )
    p.add_argument("--contract", help="the contract an extension is for: it must exist, run and be this wallet's")
    s = sub.add_parser("sign", help="print renter headers for METHOD PATH [body] (curl -H format with --curl)")
    s.add_argument("method", help="the request's method, e.g. POST")
    s.add_argument("path", help="the route's path as docs/api.md writes it, e.g. /api/rent (no query)")
    s.add_argument("--body", help="file holding the exact request body, or - for stdin")
    s.add_argument("--curl", action="store_true", help="print -H arguments for curl instead of JSON")
    b = sub.add_parser("balance", help="lamports held on the local chain; prints {wallet, lamports, sol}")
    b.add_argument("address", nargs="?", help="any base58 address (default: this wallet's)")
    t = sub.add_parser("tx", help="a confirmed transaction: memo, transfers, what reached this wallet")
    t.add_argument("signature", metavar="SIG", help="the transaction's base58 signature, e.g. a refund's tx_signature")
    sub.add_parser("address", help="print this wallet's base58 address (creates the keypair when missing)")
    return ap


def run(args) -> int:
    kp = load_or_create_keypair(state_dir() / "wallets" / f"{args.wallet}.json")
    wallet = str(kp.pubkey())
    if args.cmd == "address":
        print(wallet)
        return 0
    if args.cmd == "sign":
        method = args.method.upper()
        if not method.isalpha() or not args.path.startswith("/") or "?" in args.path:
            raise UsageError("sign takes METHOD PATH, e.g. POST /api/rent (a path with no query string)")
        headers = renter_headers(kp, method, args.path, read_body(args.body))
        if args.curl:
            print(" ".join(f"-H {shlex.quote(f'{k}: {v}')}" for k, v in headers.items()))
        else:
            print(json.dumps(headers))
        return 0
    stack = load_stack()
    if args.cmd == "pay":
        lamports, memo = plan_payment(args, api_client(stack), wallet)
    elif args.cmd == "balance":
        address = _address(args.address or wallet)
    else:
        sig = _signature(args.signature)
    with _rpc(stack["rpc_url"]) as renter:
        if args.cmd == "pay":
            renter.top_up(kp.pubkey(), max(2 * LAMPORTS_PER_SOL, 2 * lamports), minimum=lamports + 1_000_000)
            sig = renter.pay(kp, stack["treasury"], lamports, memo)
            print(json.dumps({"wallet": wallet, "tx_signature": sig, "lamports": lamports, "memo": memo}))
        elif args.cmd == "balance":
            n = renter.balance(address)
            print(json.dumps({"wallet": address, "lamports": n, "sol": _sol(n)}))
        else:
            result = renter.transaction(sig)
            if result is None:
                raise WalletError(f"transaction {sig} not found at {stack['rpc_url']} (not confirmed yet?)")
            print(json.dumps(tx_summary(result, sig, wallet, renter.confirmation(sig))))
    return 0


def _address(text: str) -> str:
    from solders.pubkey import Pubkey

    try:
        return str(Pubkey.from_string(text))
    except ValueError:
        raise UsageError(f"not a base58 address: {text!r}") from None


def _signature(text: str) -> str:
    from solders.signature import Signature

    try:
        return str(Signature.from_string(text))
    except ValueError:
        raise UsageError(f"not a base58 transaction signature: {text!r}") from None


class _rpc:
    """A Renter whose RPC failures become one WalletError line."""

    def __init__(self, url: str):
        self.url = url
        self.renter = Renter(url)

    def __enter__(self) -> Renter:
        return self.renter

    def __exit__(self, kind, exc, tb) -> None:
        self.renter.close()
        if exc is None or isinstance(exc, WalletError):
            return
        from solana.exceptions import SolanaExceptionBase
        from solana.rpc.core import RPCException, TransactionExpiredBlockheightExceededError, UnconfirmedTxError

        if isinstance(exc, (PaymentFailed, UnconfirmedTxError, TransactionExpiredBlockheightExceededError)):
            raise WalletError(str(exc)) from None
        if isinstance(exc, RPCException):
            detail = exc.args[0] if exc.args else exc
            message = detail.get("message") if isinstance(detail, dict) else getattr(detail, "message", detail)
            raise WalletError(f"the Solana RPC at {self.url} refused the request: {message}") from None
        if isinstance(exc, (SolanaExceptionBase, OSError)):
            cause = exc.__cause__ or exc.__context__ or exc
            raise WalletError(
                f"cannot reach the Solana RPC at {self.url} ({type(cause).__name__}){STACK_HINT}"
            ) from None


def main(argv: list[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exc:  # --help (0) or a usage error, already printed in one line (2)
        return exc.code if isinstance(exc.code, int) else 2
    from si64.client import OpsError

    try:
        return run(args)
    except (WalletError, OpsError) as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:
        if os.environ.get("SI64_DEBUG"):
            raise
        print(
            f"{PROG}: internal error: {exc.__class__.__name__}: {exc} (SI64_DEBUG=1 shows the traceback)",
            file=sys.stderr,
        )
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
