"""`si64 ledger export --csv FILE`: the double-entry postings as CSV (integer lamports).

The API has no whole-ledger route yet, so a full export is assembled from the
routes that exist (``GET /api/billing/entries`` takes exactly one of
``contract_id`` or ``account``):

1. every contract id, from ``GET /api/billing/ledger`` (all pages);
2. the postings of each contract (``?contract_id=``) -- every leg of a contract's
   events, whatever its account (``treasury``, ``escrow:…``, ``revenue``,
   ``refunds_payable``, ``retained_dust``, and accounts added later);
3. the postings of the shared accounts (``?account=`` for ``treasury``,
   ``revenue``, ``refunds_payable``, ``retained_dust`` plus any ``--account``),
   which also catches postings that belong to no contract;

deduplicated by ``entry_id``, ordered by (created_at_ms, entry_id). That is
1 + N + 4 requests for N contracts: fine for thousands, not for millions; a
paged ``GET /api/billing/entries?all=true`` (or an export to S3) is the route
a whole-ledger export wants.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

from .client import Client

# every account that is not a contract's escrow (chalicelib/domain/ledger.py); `network_fees` carries the
# fee legs of refunds, incl. those of payment refunds (`PAY-…`), which no contract lists
SHARED_ACCOUNTS = ("treasury", "revenue", "refunds_payable", "retained_dust", "network_fees")
COLUMNS = (
    "entry_id",
    "contract_id",
    "account",
    "debit_lamports",
    "credit_lamports",
    "kind",
    "created_at",
    "created_at_ms",
    "ref",
)


def known_account(name: str) -> bool:
    """A shared account, or a contract's escrow (``escrow:CTR-…``)."""
    return name in SHARED_ACCOUNTS or (name.startswith("escrow:") and len(name) > len("escrow:"))


def _entries(client: Client, params: dict) -> list[dict]:
    out: list[dict] = []
    for page in client.pages("/api/billing/entries", "entries", params):
        out.extend(page.get("entries") or [])
    return out


def contract_ids(client: Client) -> list[str]:
    ids: list[str] = []
    for page in client.pages("/api/billing/ledger", "contracts"):
        for key in ("active_contracts", "completed_settlements"):
            ids.extend(r["contract_id"] for r in page.get(key) or [])
    return ids


def collect(
    client: Client, contract: str | None = None, accounts: tuple[str, ...] = (), progress=None
) -> tuple[list[dict], bool]:
    """(entries, complete): complete is True when this is meant to be the whole ledger."""
    seen: dict[str, dict] = {}

    def add(rows):
        for e in rows:
            seen.setdefault(e["entry_id"], e)

    if contract:
        add(_entries(client, {"contract_id": contract}))
        for acc in accounts:
            add(_entries(client, {"account": acc}))
        complete = False
    elif accounts:
        for acc in accounts:
            add(_entries(client, {"account": acc}))
        complete = False
    else:
        ids = contract_ids(client)
        for i, cid in enumerate(ids, 1):
            add(_entries(client, {"contract_id": cid}))
            if progress and i % 100 == 0:
                progress(f"{i}/{len(ids)} contracts read")
        for acc in SHARED_ACCOUNTS:
            add(_entries(client, {"account": acc}))
        complete = True
    rows = sorted(seen.values(), key=lambda e: (e.get("created_at_ms") or 0, e["entry_id"]))
    return rows, complete


def totals(rows: list[dict]) -> tuple[int, int]:
    debit = sum(int(e.get("debit_lamports") or 0) for e in rows)
    credit = sum(int(e.get("credit_lamports") or 0) for e in rows)
    return debit, credit


def to_csv(rows: list[dict]) -> str:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=COLUMNS, extrasaction="ignore", lineterminator="\n")
    w.writeheader()
    for e in rows:
        w.writerow({k: ("" if e.get(k) is None else e.get(k)) for k in COLUMNS})
    return buf.getvalue()


def write(path: str, rows: list[dict]) -> None:
    text = to_csv(rows)
    if path == "-":
        import sys

        sys.stdout.write(text)
        return
    p = Path(path)
    tmp = p.with_name(p.name + ".tmp")
    tmp.write_text(text)
    tmp.replace(p)
