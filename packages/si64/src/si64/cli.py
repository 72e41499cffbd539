"""`si64`: the SI64 operator CLI (entry point ``si64.cli:main``; also ``python -m si64``).

    si64 [--api URL] [--admin-key KEY] COMMAND ...

    dashboard [--watch SECONDS] [--top N] [--settlements N] [--max-pages P] [--json] [--plain]
    devices list [--tier TIER] [--json]
    devices issue-key DEVICE_ID [--json]
    devices set-audited DEVICE_ID true|false
    devices keygen DEVICE_ID [--key-file FILE] | set-key DEVICE_ID PUBKEY
    contracts show CONTRACT_ID [--json]
    ledger export --csv FILE [--contract ID] [--account ACCOUNT ...]
    refunds list [--status FAILED] [--limit N] [--all] [--json]
    refunds retry REFUND_ID | redrive-dlq [--limit N] [--all] | orphan TX_SIGNATURE [--payer WALLET]
    reconcile [--orphan-age SECONDS] [--baseline-slot SLOT] [--json]     (exit 1 on any difference)
    webhooks [--wallet KEYPAIR] [--json]      your webhooks, their deliveries and each one's status
    agent --device ID --contract ID [--key KEY] [--interval 0.5] [--batch-seconds 5] [--max-buffer N]
          [--sign | --signing-key FILE]
    verify-coverage CONTRACT_ID [--wallet NAME] [--pubkey KEY] [--json]     (exit 1 unless proven)

The API and admin key come from --api/--admin-key, else SI64_API_URL/SI64_ADMIN_KEY,
else $SI64_STATE_DIR/stack.json (default ./.local/stack.json, written by `make run`).
Any failure is one line on stderr and a non-zero exit status (2 for usage and
configuration errors, 1 otherwise); SI64_DEBUG=1 shows tracebacks.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import urllib.parse

from . import books_cmd, coverage_cmd, fmt, webhooks_cmd
from .client import Client, ConfigError, OpsError, resolve

PROG = "si64"


class UsageError(OpsError):
    """An argument the API does not know (a tier, an account): exit status 2, like argparse."""

    exit_code = 2


def _positive_float(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 0 < v < float("inf"):  # also refuses nan
        raise argparse.ArgumentTypeError(f"must be a positive number of seconds: {text!r}")
    return v


def _positive_int(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer: {text!r}")
    return int(text)


def _bool(text: str) -> bool:
    value = {"true": True, "yes": True, "1": True, "false": False, "no": False, "0": False}.get(text.lower())
    if value is None:
        raise argparse.ArgumentTypeError(f"must be true or false: {text!r}")
    return value


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, exit 2 (argparse prints usage + message)
        self.exit(2, f"{PROG}: error: {message} (see `{self.prog} --help`)\n")


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog=PROG,
        description="SI64 operator CLI: dashboard, devices, contracts, ledger, refunds, reconciliation, device agent.",
    )
    p.add_argument("--api", metavar="URL", help="API base URL (env SI64_API_URL; default: the local stack's)")
    p.add_argument("--admin-key", metavar="KEY", help="operator key (env SI64_ADMIN_KEY; default: the local stack's)")
    p.add_argument("--timeout", type=_positive_float, default=15.0, help="HTTP timeout in seconds (15)")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True

    d = sub.add_parser("dashboard", help="summary, active contracts, settlements, devices, queues")
    d.add_argument("--watch", type=_positive_float, metavar="SECONDS", help="refresh in place every SECONDS")
    d.add_argument("--top", type=_positive_int, default=15, help="active contracts shown (15)")
    d.add_argument("--settlements", type=_positive_int, default=10, help="settlements shown (10)")
    d.add_argument(
        "--max-pages", type=_positive_int, default=10, help="ledger pages of 1,000 contracts read per frame (10)"
    )
    d.add_argument("--json", action="store_true", help="print the snapshot's figures as JSON (lamports)")
    d.add_argument("--plain", action="store_true", help="plain text even on a terminal")

    dv = sub.add_parser("devices", help="device inventory")
    dvs = dv.add_subparsers(dest="action", metavar="ACTION", parser_class=_Parser)
    dvs.required = True
    dl = dvs.add_parser("list", help="every device: leases, capacity, uptime, audited, last seen")
    dl.add_argument("--tier", help="only this tier")
    dl.add_argument("--json", action="store_true")
    ik = dvs.add_parser("issue-key", help="issue a new device key (shown once; the old key stops working)")
    ik.add_argument("device_id", metavar="DEVICE")
    ik.add_argument("--json", action="store_true", help="print {device_id, device_key} as JSON")
    sa = dvs.add_parser("set-audited", help="mark a device audited (true) or not (false)")
    sa.add_argument("device_id", metavar="DEVICE")
    sa.add_argument("audited", type=_bool, metavar="true|false")
    coverage_cmd.add_device_parsers(dvs, _Parser)

    c = sub.add_parser("contracts", help="contracts")
    cs = c.add_subparsers(dest="action", metavar="ACTION", parser_class=_Parser)
    cs.required = True
    show = cs.add_parser("show", help="one contract: live figures, refund, ledger postings, latest metrics")
    show.add_argument("contract_id")
    show.add_argument("--json", action="store_true")

    lg = sub.add_parser("ledger", help="the double-entry ledger")
    ls = lg.add_subparsers(dest="action", metavar="ACTION", parser_class=_Parser)
    ls.required = True
    ex = ls.add_parser("export", help="postings as CSV (integer lamports)")
    ex.add_argument("--csv", required=True, metavar="FILE", help="output file ('-' for stdout)")
    ex.add_argument("--contract", metavar="ID", help="only this contract's postings")
    ex.add_argument(
        "--account",
        action="append",
        default=[],
        metavar="ACCOUNT",
        help="only this account's postings (repeatable), e.g. treasury, retained_dust",
    )

    from .books_cmd import add_parsers as add_books_parsers

    add_books_parsers(sub, _Parser, _positive_int)
    webhooks_cmd.add_parsers(sub, _Parser)
    coverage_cmd.add_parsers(sub, _Parser)

    a = sub.add_parser("agent", help="report this host's metrics for a contract (device agent)")
    a.add_argument("--device", required=True, help="device id the contract is leased on")
    a.add_argument("--contract", required=True, help="contract id")
    a.add_argument("--key", help="device key (env SI64_DEVICE_KEY; default: stack.json device_keys[DEVICE])")
    a.add_argument("--interval", type=_positive_float, default=0.5, help="seconds between samples (0.5)")
    a.add_argument("--batch-seconds", type=_positive_float, default=5.0, help="seconds between posts (5)")
    a.add_argument(
        "--max-buffer",
        type=_positive_int,
        default=6000,
        help="samples kept while the API is unreachable; oldest dropped beyond (6000)",
    )
    a.add_argument("-v", "--verbose", action="store_true", help="log every batch")
    coverage_cmd.add_agent_arguments(a)
    return p


# ------------------------------------------------------------------ commands
def cmd_dashboard(client: Client, args) -> int:
    from . import dashboard

    return dashboard.run(
        client,
        watch=args.watch,
        top=args.top,
        settlements=args.settlements,
        max_pages=args.max_pages,
        as_json_out=args.json,
        plain=True if args.plain else None,
    )


def _device_path(device_id: str, action: str) -> str:
    return f"/api/admin/devices/{urllib.parse.quote(device_id, safe='')}/{action}"


def cmd_devices_list(client: Client, args) -> int:
    tier = None
    if args.tier:
        tiers = [t["tier"] for t in client.get("/api/pricing").get("tiers") or []]
        tier = next((t for t in tiers if t.upper() == args.tier.upper()), None)
        if tier is None:
            raise UsageError(f"unknown tier {args.tier!r} (tiers: {', '.join(tiers)})")
    listed = client.get("/api/admin/devices", admin=True)
    devices = [d for d in listed.get("devices") or [] if not tier or d.get("tier") == tier]
    if args.json:
        print(json.dumps(devices, indent=2))
        return 0
    from rich import box
    from rich.table import Table

    from .dashboard import _last_seen, make_console

    now = int(listed.get("server_time_ms") or 0) // 1000
    plain = not sys.stdout.isatty()
    t = Table(title=f"{len(devices)} devices", title_justify="left", box=box.SIMPLE if plain else box.HEAVY_HEAD)
    for col in (
        "id",
        "tier",
        "name",
        "region",
        "leases",
        "capacity",
        "available",
        "uptime",
        "audited",
        "key",
        "last seen",
    ):
        t.add_column(col)
    for d in devices:
        seen = _last_seen(d)
        t.add_row(
            str(d.get("id")),
            str(d.get("tier")),
            str(d.get("name")),
            str(d.get("region")),
            str(d.get("leases")),
            str(d.get("capacity")),
            str(d.get("available")),
            str(d.get("uptime")),
            "yes" if d.get("audited") else "no",
            "set" if d.get("key_set") else "none",
            f"{fmt.utc(seen, with_date=True)} ({fmt.ago(seen, now)})" if seen else "never",
        )
    make_console(plain=plain).print(t)
    return 0


def cmd_devices_issue_key(client: Client, args) -> int:
    issued = client.request("POST", _device_path(args.device_id, "key"), admin=True)
    if args.json:
        print(json.dumps({"device_id": issued["device_id"], "device_key": issued["device_key"]}))
        return 0
    print(issued["device_key"])
    note = _remember_local_key(client, issued["device_id"], issued["device_key"])
    print(
        f"{PROG}: new key for {issued['device_id']} (shown once, only its hash is stored; "
        f"the previous key no longer works){note}",
        file=sys.stderr,
    )
    return 0


def _remember_local_key(client: Client, device_id: str, key: str) -> str:
    """On the local stack, keep stack.json's device_keys (what `si64 agent` and the tests read) current."""
    from .client import load_stack, state_dir

    if "stack.json" not in client.target.source and device_id not in client.target.device_keys:
        return ""
    path = state_dir() / "stack.json"
    stack = load_stack()
    if not stack or str(stack.get("api_url", "")).rstrip("/") != client.api_url:
        return ""
    stack.setdefault("device_keys", {})[device_id] = key
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(stack, indent=2))
    os.replace(tmp, path)
    client.target.device_keys[device_id] = key
    return f"; {path} updated"


def cmd_devices_set_audited(client: Client, args) -> int:
    d = client.request("POST", _device_path(args.device_id, "audited"), body={"audited": args.audited}, admin=True)
    print(f"{d['id']}: audited {'yes' if d.get('audited') else 'no'}")
    return 0


def cmd_contracts_show(client: Client, args) -> int:
    cid = args.contract_id
    path = f"/api/contracts/{urllib.parse.quote(cid, safe='')}"
    view = client.get(path)
    entries = []
    for page in client.pages("/api/billing/entries", "entries", {"contract_id": cid}):
        entries.extend(page.get("entries") or [])
    metrics = client.get(path + "/metrics").get("samples") or []
    if args.json:
        print(json.dumps({"contract": view, "entries": entries, "latest_metrics": metrics[-5:]}, indent=2))
        return 0
    refund = view.get("refund") or {}
    lines = [
        ("contract", view.get("contract_id")),
        ("status", view.get("status")),
        ("wallet", view.get("wallet")),
        ("tier / device", f"{view.get('tier')} / {view.get('device_id')}"),
        ("created", fmt.utc(view.get("created_at"), True)),
        ("expires", fmt.utc(view.get("expires_at"), True)),
        ("settled", fmt.utc(view.get("settled_at"), True) if view.get("settled_at") else "-"),
        ("duration", fmt.duration(view.get("duration_seconds"))),
        ("time left", fmt.duration(view.get("remaining_seconds"))),
        ("prepaid", fmt.sol(fmt.lamports_of(view, "prepaid"), unit=True)),
        ("price", fmt.sol(fmt.lamports_of(view, "cost"), unit=True)),
        ("used", fmt.sol(fmt.lamports_of(view, "used"), unit=True)),
        ("refund available", fmt.sol(fmt.lamports_of(view, "refund_available"), unit=True)),
        (
            "refund",
            f"{refund.get('status')} {fmt.sol(refund.get('lamports'), unit=True)}"
            + (f" ({refund['reason']})" if refund.get("reason") else ""),
        ),
        ("refund tx", refund.get("tx_signature") or "-"),
    ]
    if metrics:
        m = metrics[-1]
        latest = (
            f"{len(metrics)} samples; last at {fmt.utc(m['timestamp_ms'] // 1000)}: "
            f"cpu {m['cpu_percent']}% mem {m['memory_mb']} MB "
            f"disk {m['disk_io_mbps']} MB/s net {m['network_io_mbps']} MB/s"
        )
        lines.append(("latest metrics", latest))
    else:
        lines.append(("latest metrics", "none reported"))
    width = max(len(k) for k, _ in lines)
    for k, v in lines:
        print(f"{k:<{width}}  {v}")
    debit = sum(int(e.get("debit_lamports") or 0) for e in entries)
    credit = sum(int(e.get("credit_lamports") or 0) for e in entries)
    print(
        f"\nledger postings ({len(entries)}; debits {fmt.sol(debit)} = credits {fmt.sol(credit)} SOL"
        f"{'' if debit == credit else '  UNBALANCED'}):"
    )
    for line in posting_lines(entries):
        print(line)
    return 0


def posting_lines(entries: list[dict]) -> list[str]:
    """One aligned line per posting: every column as wide as its widest value."""
    cells = [
        (
            fmt.utc(e.get("created_at"), True),
            str(e.get("kind") or ""),
            str(e.get("account") or ""),
            "Dr " + fmt.sol(e.get("debit_lamports") or 0),
            "Cr " + fmt.sol(e.get("credit_lamports") or 0),
            str(e.get("ref") or ""),
        )
        for e in entries
    ]
    if not cells:
        return []
    w = [max(len(c[i]) for c in cells) for i in range(5)]
    return [
        f"  {t:<{w[0]}}  {k:<{w[1]}}  {a:<{w[2]}}  {dr:>{w[3]}}  {cr:>{w[4]}}  {ref}".rstrip()
        for t, k, a, dr, cr, ref in cells
    ]


def cmd_ledger_export(client: Client, args) -> int:
    from . import export

    def progress(msg):
        print(f"{PROG}: {msg}", file=sys.stderr)

    unknown = [a for a in args.account if not export.known_account(a)]
    if unknown:
        raise UsageError(
            f"unknown account {unknown[0]!r} (accounts: {', '.join(export.SHARED_ACCOUNTS)}, escrow:CONTRACT_ID)"
        )
    rows, complete = export.collect(client, args.contract, tuple(args.account), progress)
    if args.contract and not any(r.get("contract_id") == args.contract for r in rows):
        # every contract and payment refund books postings the moment it exists: none means no such id
        raise OpsError(f"no postings for {args.contract}: no such contract or payment refund; nothing written")
    # A whole export is many reads while the refund worker keeps booking payouts: a payout booked
    # between the `treasury` and the `network_fees` reads shows one leg and not the other. Such an
    # imbalance is the read's, not the ledger's: read again (bounded) before calling it one.
    for _ in range(4):
        debit, credit = export.totals(rows)
        if not complete or debit == credit:
            break
        time.sleep(1.0)
        rows, complete = export.collect(client, args.contract, tuple(args.account), progress)
    try:
        export.write(args.csv, rows)
    except OSError as exc:
        raise OpsError(f"cannot write {args.csv}: {exc.strerror or exc}") from None
    debit, credit = export.totals(rows)
    scope = "whole ledger" if complete else ("contract " + args.contract if args.contract else "selected accounts")
    msg = (
        f"{len(rows)} postings ({scope}) written to {args.csv}: debits {debit} = credits {credit} lamports"
        if debit == credit
        else f"{len(rows)} postings ({scope}) written to {args.csv}: debits {debit}, credits {credit} lamports"
    )
    print(msg, file=sys.stderr if args.csv == "-" else sys.stdout)
    if complete and debit != credit:
        raise OpsError(f"the ledger does not balance: debits {debit} ≠ credits {credit} lamports")
    return 0


def cmd_agent(target, args) -> int:
    import asyncio
    import signal
    import time

    from .agent import MetricsReporter

    key = args.key or os.environ.get("SI64_DEVICE_KEY") or target.device_keys.get(args.device)
    if not key:
        known = ", ".join(sorted(target.device_keys)) or "none"
        raise ConfigError(
            f"no device key for {args.device}: pass --key or set SI64_DEVICE_KEY (stack.json has keys for: {known})"
        )
    client = Client(target, timeout=args.timeout)
    view = client.get(f"/api/contracts/{urllib.parse.quote(args.contract, safe='')}")
    if view.get("device_id") != args.device:
        raise OpsError(f"contract {args.contract} is leased on device {view.get('device_id')}, not {args.device}")
    if view.get("status") != "ACTIVE":
        print(f"contract {args.contract} has already ended ({view.get('status')}); nothing to report")
        return 0

    def log(msg):  # progress and retries on stdout; stderr carries only the one error line, if any
        print(f"{time.strftime('%H:%M:%S')} agent: {msg}", flush=True)

    chain = coverage_cmd.agent_chain(args, log)
    coverage_cmd.check_agent_key(client, view, chain, log)
    reporter = MetricsReporter(
        target.api_url,
        args.contract,
        key,
        interval=args.interval,
        batch_seconds=args.batch_seconds,
        max_buffer=args.max_buffer,
        timeout=args.timeout,
        log=log,
        chain=chain,
    )

    async def main():
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, reporter.stop)
        if args.verbose:

            async def tick():
                last = 0
                while True:
                    await asyncio.sleep(args.batch_seconds)
                    if reporter.result.batches_sent != last:
                        last = reporter.result.batches_sent
                        r = reporter.result.last_response or {}
                        log(
                            f"{reporter.result.samples_sent} samples sent in {last} batches; cost so far "
                            f"{fmt.sol(r.get('cost_so_far_lamports'))} SOL"
                        )

            ticker = asyncio.create_task(tick())
        try:
            return await reporter.run()
        finally:
            if args.verbose:
                ticker.cancel()

    log(
        f"reporting {args.contract} as {args.device} to {target.api_url}: a sample every {args.interval:g} s, "
        f"a batch every {args.batch_seconds:g} s (Ctrl-C to stop)"
    )
    result = asyncio.run(main())
    if result.exit_code:
        raise OpsError(result.message)
    print(result.message, flush=True)
    return 0


# ------------------------------------------------------------------ entry point
def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if (args.command, getattr(args, "action", None)) == ("devices", "keygen"):
            return coverage_cmd.cmd_keygen(args)  # local: needs no API
        target = resolve(args.api, args.admin_key)
        if args.command == "agent":
            return cmd_agent(target, args)
        client = Client(target, timeout=args.timeout)
        handler = {
            ("dashboard", None): cmd_dashboard,
            ("devices", "list"): cmd_devices_list,
            ("devices", "issue-key"): cmd_devices_issue_key,
            ("devices", "set-audited"): cmd_devices_set_audited,
            ("contracts", "show"): cmd_contracts_show,
            ("ledger", "export"): cmd_ledger_export,
            **books_cmd.HANDLERS,
            **webhooks_cmd.HANDLERS,
            **coverage_cmd.HANDLERS,
        }[(args.command, getattr(args, "action", None))]
        return handler(client, args)
    except OpsError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0
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
