"""Device-signed receipts in the CLI: the device's key, its registration, and the renter's check.

    devices keygen DEVICE [--key-file FILE]          (local: prints the device's public key)
    devices set-key DEVICE PUBKEY                     (admin: registers it, POST …/pubkey)
    verify-coverage CONTRACT [--wallet NAME|FILE] [--pubkey KEY] [--grace-seconds 60]
                    [--slack-seconds 10] [--json]     (renter: exit 1 unless every check passes)

`si64 agent --sign` signs each batch with the key of `devices keygen` (si64/device_receipts.py);
`verify-coverage` checks the receipts with si64/verify.py.
"""

from __future__ import annotations

import argparse
import json
import sys
import urllib.parse
from pathlib import Path
from typing import Any

from .client import Client, ConfigError, OpsError, state_dir
from .device_receipts import ReceiptChain, chain_path, device_key_path, load_or_create_device_key


class VerificationFailed(OpsError):
    """verify-coverage found problems (already printed): exit status 1."""


def _non_negative(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 0 <= value < float("inf"):
        raise argparse.ArgumentTypeError(f"must be a number of seconds ≥ 0: {text!r}")
    return value


def _pubkey_arg(text: str) -> str:
    from solders.pubkey import Pubkey

    try:
        return str(Pubkey.from_string(text))
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a base58 ed25519 public key: {text!r}") from None


def add_device_parsers(dvs: Any, parser_class: type[argparse.ArgumentParser]) -> None:
    kg = dvs.add_parser("keygen", help="the device's ed25519 signing key (created once, mode 0600): prints its pubkey")
    kg.add_argument("device_id", metavar="DEVICE")
    kg.add_argument("--key-file", type=Path, help="(default: $SI64_STATE_DIR/devices/DEVICE/keypair.json)")
    sk = dvs.add_parser("set-key", help="register a device's ed25519 public key: its batches must then be signed")
    sk.add_argument("device_id", metavar="DEVICE")
    sk.add_argument("pubkey", type=_pubkey_arg, metavar="PUBKEY", help="base58, as `si64 devices keygen` prints it")


def add_parsers(sub: Any, parser_class: type[argparse.ArgumentParser]) -> None:
    v = sub.add_parser(
        "verify-coverage", help="check a contract's covered time against its device's signed receipts (renter)"
    )
    v.add_argument("contract_id", metavar="CONTRACT")
    v.add_argument(
        "--wallet", default="demo", help="the renter's wallet: a name under $SI64_STATE_DIR/wallets/ or a file (demo)"
    )
    v.add_argument("--pubkey", type=_pubkey_arg, help="the device's key as you know it (default: the published one)")
    v.add_argument("--grace-seconds", type=_non_negative, default=60.0, help="coverage grace of the API (60)")
    v.add_argument(
        "--slack-seconds",
        type=_non_negative,
        default=10.0,
        help="allowed time from a batch's last sample to its arrival, clock skew included (10)",
    )
    v.add_argument("--json", action="store_true", help="print the verdict as JSON")


def add_agent_arguments(a: argparse.ArgumentParser) -> None:
    a.add_argument("--sign", action="store_true", help="sign each batch with the device's key (receipts)")
    a.add_argument("--signing-key", type=Path, metavar="FILE", help="the key to sign with (implies --sign)")


def agent_chain(args: argparse.Namespace, log: Any) -> ReceiptChain | None:
    """The receipt chain `si64 agent` signs with (None without --sign / --signing-key)."""
    if not (args.sign or args.signing_key):
        return None
    path = args.signing_key or device_key_path(args.device)
    kp, created = load_or_create_device_key(path)
    if created:
        log(
            f"new signing key {kp.pubkey()} in {path}: register it with "
            f"`si64 devices set-key {args.device} {kp.pubkey()}` before this device's batches are accepted"
        )
    chain = ReceiptChain(args.contract, kp, chain_path(path, args.contract))
    if chain.next_seq or chain.pending:
        log(
            f"receipt chain of {args.contract} resumed at seq {chain.next_seq}" + (" (resending)" * bool(chain.pending))
        )
    return chain


def check_agent_key(client: Client, view: dict[str, Any], chain: ReceiptChain | None, log: Any) -> None:
    """Before signing: the API must publish this key for the device (or none yet: say how to register it)."""
    if chain is None:
        return
    device = view.get("device_id")
    published, _ = published_keys(client, view.get("tier"), device)
    if published is None:
        log(
            f"the API publishes no signing key for {device}: register it "
            f"(`si64 devices set-key {device} {chain.pubkey}`)"
        )
    elif published != chain.pubkey:
        raise ConfigError(f"the API publishes the key {published} for {device}, not this agent's {chain.pubkey}")


# ------------------------------------------------------------------ commands
def cmd_keygen(args: argparse.Namespace) -> int:
    path = args.key_file or device_key_path(args.device_id)
    kp, created = load_or_create_device_key(path)
    print(kp.pubkey())
    what = "new key written to" if created else "existing key in"
    print(
        f"si64: {what} {path} (keep it on the device); register it: si64 devices set-key {args.device_id} "
        f"{kp.pubkey()}",
        file=sys.stderr,
    )
    return 0


def cmd_set_key(client: Client, args: argparse.Namespace) -> int:
    path = f"/api/admin/devices/{urllib.parse.quote(args.device_id, safe='')}/pubkey"
    answer = client.request("POST", path, body={"pubkey": args.pubkey}, admin=True) or {}
    device = answer.get("device_id") or answer.get("id") or args.device_id
    print(f"{device}: signing key {answer.get('pubkey') or args.pubkey} registered; its batches must now be signed")
    return 0


def _renter_keypair(wallet: str) -> Any:
    from solders.keypair import Keypair

    path = Path(wallet) if ("/" in wallet or wallet.endswith(".json")) else state_dir() / "wallets" / f"{wallet}.json"
    try:
        return Keypair.from_bytes(bytes(json.loads(path.read_text())))
    except FileNotFoundError:
        raise ConfigError(f"no wallet {path}: pass the renter's --wallet NAME or FILE") from None
    except (OSError, ValueError, TypeError) as exc:
        raise ConfigError(f"cannot read the wallet {path}: {exc}") from None


def published_keys(client: Client, tier: str | None, device_id: str | None) -> tuple[str | None, list[str]]:
    """The device's signing key as the API publishes it (`GET /api/devices/{tier}`: `pubkey`, or
    None) and the keys it held before (`previous_pubkeys`)."""
    if not tier or not device_id:
        return None, []
    listed = client.get(f"/api/devices/{urllib.parse.quote(tier, safe='')}")
    devices = listed.get("devices") if isinstance(listed, dict) else listed
    for d in devices or []:
        if isinstance(d, dict) and d.get("id") == device_id:
            key, before = d.get("pubkey"), d.get("previous_pubkeys")
            previous = [k for k in before if isinstance(k, str)] if isinstance(before, list) else []
            return (key if isinstance(key, str) and key else None), previous
    return None, []


def cmd_verify(client: Client, args: argparse.Namespace) -> int:
    from . import fmt
    from .renter import renter_headers
    from .verify import check

    cid = args.contract_id
    kp = _renter_keypair(args.wallet)
    path = f"/api/contracts/{cid}"
    contract = client.get(f"/api/contracts/{urllib.parse.quote(cid, safe='')}")
    coverage = client.get(
        f"/api/contracts/{urllib.parse.quote(cid, safe='')}/coverage",
        headers=renter_headers(kp, "GET", path + "/coverage"),
    )
    published, previous = published_keys(client, contract.get("tier"), contract.get("device_id"))
    pubkey = args.pubkey or published
    verdict = check(
        cid,
        coverage if isinstance(coverage, dict) else {},
        contract if isinstance(contract, dict) else {},
        pubkey,
        previous=() if args.pubkey else previous,  # a pinned key is the only one trusted
        grace_ms=round(args.grace_seconds * 1000),
        slack_ms=round(args.slack_seconds * 1000),
    )
    if args.pubkey and args.pubkey != published and args.pubkey not in previous:
        verdict.problems.append(f"the API publishes another key for {verdict.device_id}: {published}")
    if args.json:
        print(json.dumps(verdict.as_json(), indent=2))
    else:
        word = "VERIFIED" if verdict.ok else "FAILED"
        source = "given with --pubkey" if args.pubkey else "as published by the API"
        print(f"{cid} on {verdict.device_id}: {word}")
        print(f"  device key    {pubkey or 'none'} ({source})")
        print(f"  receipts      {verdict.receipts}, {verdict.signatures_ok} with a valid signature")
        covered = "-" if verdict.covered_ms is None else fmt.duration(verdict.covered_ms // 1000)
        uncovered = "-" if verdict.uncovered_ms is None else fmt.duration(verdict.uncovered_ms // 1000)
        print(f"  covered       {verdict.covered_ms} ms ({covered}) claimed; {verdict.unproven_ms} ms of it unproven")
        print(f"  uncovered     {verdict.uncovered_ms} ms ({uncovered}) in {len(verdict.gaps)} gaps")
        print(
            f"  proven        {verdict.proven_ms} ms (start-up allowance and receipts, grace {args.grace_seconds:g} s)"
        )
        for n in verdict.notes:
            print(f"  note: {n}")
        for p in verdict.problems:
            print(f"  problem: {p}")
    if not verdict.ok:
        raise VerificationFailed(f"{cid}: {len(verdict.problems)} problems; its covered time is not proven")
    return 0


HANDLERS = {
    ("devices", "set-key"): cmd_set_key,
    ("verify-coverage", None): cmd_verify,
}
