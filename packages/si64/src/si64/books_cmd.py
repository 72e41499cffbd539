"""`si64 refunds …` and `si64 reconcile`: thin clients of the admin routes.

    refunds list [--status FAILED] [--limit N] [--all] [--json]
    refunds retry REFUND_ID
    refunds redrive-dlq [--limit N]
    refunds orphan TX_SIGNATURE [--payer WALLET]
    reconcile [--orphan-age SECONDS] [--baseline-slot SLOT] [--json]

Reconciliation runs on the server (`GET /api/admin/reconcile`): only the backend reads
DynamoDB (claims, refund records, ledger); the CLI prints its verdict and exits 1 on any
mismatch, naming each difference.
"""

from __future__ import annotations

import json
import sys
import urllib.parse

from . import fmt
from .client import Client, OpsError

STATUSES = ("QUEUED", "SENT", "CONFIRMED", "FAILED", "DUST")


class Mismatch(OpsError):
    """Reconciliation found differences (already printed): exit status 1."""


def _q(value: str) -> str:
    return urllib.parse.quote(value, safe="")


def add_parsers(sub, parser_class, positive_int) -> None:
    r = sub.add_parser("refunds", help="refunds: list by status, retry, redrive the DLQ, refund an orphan payment")
    rs = r.add_subparsers(dest="action", metavar="ACTION", parser_class=parser_class)
    rs.required = True
    ls = rs.add_parser("list", help="refunds in one status, newest first")
    ls.add_argument("--status", default="FAILED", type=str.upper, choices=STATUSES, help="(FAILED)")
    ls.add_argument("--limit", type=positive_int, default=50, help="rows shown (50); --all for every one")
    ls.add_argument("--all", action="store_true", help="every refund in the status (paged)")
    ls.add_argument("--json", action="store_true")
    rt = rs.add_parser("retry", help="queue a FAILED refund again (FAILED → QUEUED)")
    rt.add_argument("refund_id", metavar="REFUND_ID", help="a contract id (CTR-…) or PAY-{signature}")
    rd = rs.add_parser("redrive-dlq", help="move the dead-letter queue's messages back to the refund queue")
    rd.add_argument("--limit", type=positive_int, default=100, help="at most this many messages per call (100)")
    rd.add_argument("--all", action="store_true", help="repeat until the dead-letter queue is empty")
    orph = rs.add_parser(
        "orphan", help="refund an orphan payment (a transfer to the treasury no request holds) to its payer"
    )
    orph.add_argument("signature", metavar="TX_SIGNATURE")
    orph.add_argument("--payer", help="whose share, when several payers' shares of the transaction are unclaimed")
    orph.add_argument("--json", action="store_true")

    rc = sub.add_parser("reconcile", help="the books against the chain; exit 1 on any difference")
    rc.add_argument(
        "--orphan-age",
        type=_non_negative_int,
        default=3600,
        metavar="SECONDS",
        help="an unclaimed transfer to the treasury older than this is an orphan (3600)",
    )
    rc.add_argument(
        "--baseline-slot",
        type=_non_negative_int,
        metavar="SLOT",
        help="reconcile the history after this slot (default: from the first booked transaction)",
    )
    rc.add_argument("--json", action="store_true", help="print the server's report as JSON")


def _non_negative_int(text: str) -> int:
    import argparse

    if not text.isascii() or not text.isdigit():
        raise argparse.ArgumentTypeError(f"must be a whole number of seconds ≥ 0: {text!r}")
    return int(text)


def _refund_line(r: dict) -> list[str]:
    """Every id whole (a refund id is pasted into `refunds retry`, a signature into an explorer)."""
    return [
        r["refund_id"],
        r["status"],
        fmt.sol(r.get("lamports")),
        r.get("wallet") or "-",
        r.get("tx_signature") or "-",
        str(r.get("attempt", 0)),
        r.get("reason") or "",
    ]


def cmd_list(client: Client, args) -> int:
    rows, truncated = [], False
    for page in client.pages(
        "/api/admin/refunds", "refunds", {"status": args.status}, limit=min(args.limit, 1000) if not args.all else 1000
    ):
        rows += page.get("refunds") or []
        if not args.all and len(rows) >= args.limit:
            truncated = bool(page.get("next_token")) or len(rows) > args.limit
            rows = rows[: args.limit]
            break
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    from rich import box
    from rich.table import Table

    from .dashboard import make_console

    plain = not sys.stdout.isatty()
    title = f"{len(rows)} {args.status} refund(s)" + (" (more: --all)" if truncated else "")
    t = Table(title=title, title_justify="left", box=box.SIMPLE if plain else box.HEAVY_HEAD)
    lines = [_refund_line(r) for r in rows]
    cols = ("refund", "status", "SOL", "wallet", "tx", "attempt", "reason")
    widths = [max([len(col)] + [len(line[i]) for line in lines]) for i, col in enumerate(cols)]
    for col, widest in zip(cols, widths, strict=True):
        whole = plain or col in ("refund", "wallet", "tx", "SOL")  # ids and amounts are never cut nor wrapped
        t.add_column(
            col,
            justify="right" if col in ("SOL", "attempt") else "left",
            no_wrap=whole,
            min_width=widest if whole else None,
        )
    for line in lines:
        t.add_row(*line)
    # plain output is as wide as its cells need, whatever COLUMNS says (a pipe has no width)
    make_console(plain=plain, width=sum(widths) + 4 * len(cols) + 4).print(t)
    return 0


def cmd_retry(client: Client, args) -> int:
    r = client.request("POST", f"/api/refunds/{_q(args.refund_id)}/retry", admin=True)
    what = "queued again" if r["status"] == "QUEUED" else f"not FAILED, left as it is ({r['status']})"
    print(f"{r['refund_id']}: {what}; {fmt.sol(r['lamports'])} SOL to {r['wallet']} (attempt {r['attempt']})")
    return 0


def cmd_redrive(client: Client, args) -> int:
    total = 0
    while True:
        out = client.request("POST", "/api/admin/refunds/redrive", params={"limit": min(args.limit, 100)}, admin=True)
        total += int(out["moved"])
        if not args.all or out["moved"] < out["limit"]:
            break
    print(f"moved {total} message(s) from the refund dead-letter queue to the refund queue")
    return 0


def cmd_orphan(client: Client, args) -> int:
    query = f"?payer={_q(args.payer)}" if args.payer else ""
    out = client.request("POST", f"/api/admin/payments/{_q(args.signature)}/refund{query}", admin=True)
    if args.json:
        print(json.dumps(out, indent=2))
        return 0
    r = out["refund"]
    print(
        f"{out['refund_id']}: {fmt.sol(out['refund_lamports'])} SOL back to {out['wallet']}, {r['status']}"
        + (" (the refund worker sends it)" if r["status"] == "QUEUED" else "")
    )
    return 0


def render_report(rep: dict) -> list[str]:
    t = rep["treasury"]
    lines = [
        f"treasury {t['address']} at slot {t['chain_slot']}",
        f"  on chain          {fmt.sol(t['chain_lamports']):>22} SOL",
        f"  baseline          {fmt.sol(t['baseline_lamports']):>22} SOL   {t['baseline_source']}",
        f"  ledger (treasury) {fmt.sol(t['ledger_lamports']):>22} SOL",
        f"  unbooked          {fmt.sol(t['unbooked_lamports']):>22} SOL   {len(rep['unbooked'])} transaction(s)",
        f"  difference        {t['difference_lamports']:>+22d} lamports",
        f"confirmed refunds checked on chain: {rep['refunds']['confirmed_checked']}, "
        f"problems: {len(rep['refunds']['problems'])}",
        f"orphan payments (older than {rep['orphan_age_seconds']} s): {len(rep['orphans'])}",
    ]
    for u in rep["unbooked"]:
        who = f" from {u['payer']}" if u.get("payer") else (f" ({u['refund_id']})" if u.get("refund_id") else "")
        lines.append(
            f"  {u['kind']:<17} {u['signature']}  {u['lamports']:+d} lamports{who}"
            + (f"  — {u['note']}" if u.get("note") else "")
        )
    lines.append(
        f"read {rep['reads']['signatures']} signatures, {rep['reads']['transactions']} transactions"
        + ("" if rep["complete"] else " (INCOMPLETE)")
    )
    return lines


def cmd_reconcile(client: Client, args) -> int:
    params = {"orphan_age": args.orphan_age}
    if args.baseline_slot is not None:
        params["baseline_slot"] = args.baseline_slot
    rep = client.get("/api/admin/reconcile", params=params, admin=True)
    if args.json:
        print(json.dumps(rep, indent=2))
    else:
        print("\n".join(render_report(rep)))
    if rep["ok"]:
        if not args.json:
            print("OK: the books agree with the chain")
        return 0
    for m in rep["mismatches"]:
        print(f"MISMATCH: {m}", file=sys.stderr if args.json else sys.stdout)
    raise Mismatch(f"reconciliation failed: {len(rep['mismatches'])} difference(s)")


HANDLERS = {
    ("refunds", "list"): cmd_list,
    ("refunds", "retry"): cmd_retry,
    ("refunds", "redrive-dlq"): cmd_redrive,
    ("refunds", "orphan"): cmd_orphan,
    ("reconcile", None): cmd_reconcile,
}
