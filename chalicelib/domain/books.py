"""Whole-book figures as sharded counters. Pure Python.

Every write that changes what `/api/stats` and the ledger's totals show (open,
extend and end a rental, each refund step, booking an orphan payment) adds the
difference of its records' *contributions* to one counter item of
`shards` (the contract's shard), inside the same transaction: so the
counters are exactly the sum of the contributions of every record, and a
reader adds up `shards` small items instead of reading the table.
docs/adr/0006-whole-book-counters.md records the choice and its cost.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .contracts import ACTIVE, EXPIRED, REFUND_CONFIRMED, SETTLED, Contract

if TYPE_CHECKING:  # types only
    from .refunds import Refund

CONTRACT_STATUSES = (ACTIVE, SETTLED, EXPIRED)
REFUND_STATUSES = ("QUEUED", "SENT", "CONFIRMED", "FAILED", "DUST")
OWED = ("QUEUED", "SENT", "FAILED")  # booked to refunds_payable and not yet paid

COUNTERS = (
    *(f"contracts_{s}" for s in CONTRACT_STATUSES),
    "active_prepaid_lamports",  # received on chain by ACTIVE contracts
    "revenue_lamports",  # usage of ended contracts
    "downtime_credit_lamports",  # downtime credits of ended contracts (refunded with the rest)
    "refund_fees_lamports",  # network fees of confirmed refunds
    *(f"refunds_{s}_n" for s in REFUND_STATUSES),
    *(f"refunds_{s}_lamports" for s in REFUND_STATUSES),
)


def _refund_part(out: dict[str, Any], status: str, lamports: int, fee: int | None) -> None:
    out[f"refunds_{status}_n"] = out.get(f"refunds_{status}_n", 0) + 1
    out[f"refunds_{status}_lamports"] = out.get(f"refunds_{status}_lamports", 0) + lamports
    if status == REFUND_CONFIRMED and fee:
        out["refund_fees_lamports"] = out.get("refund_fees_lamports", 0) + fee


def contract_contribution(c: Contract | None) -> dict[str, int]:
    """What one contract adds to the counters (None: nothing)."""
    if c is None:
        return {}
    out = {f"contracts_{c.status}": 1}
    if c.status == ACTIVE:
        out["active_prepaid_lamports"] = c.received_lamports
    else:
        out["revenue_lamports"] = c.used_lamports or 0
        if c.credit_lamports:
            out["downtime_credit_lamports"] = c.credit_lamports
        _refund_part(out, c.refund_status, c.refund_lamports or 0, c.refund_fee)
    return out


def refund_contribution(r: Refund | None) -> dict[str, int]:
    """What one refund record (`domain.refunds.Refund`) adds to the refund counters; for a
    contract's refund this equals the refund part of `contract_contribution`."""
    if r is None:
        return {}
    out: dict[str, int] = {}
    _refund_part(out, r.status, r.lamports, r.fee_lamports)
    return out


def delta(before: dict[str, int], after: dict[str, int]) -> dict[str, int]:
    """after − before, without zeros."""
    names = set(before) | set(after)
    out = {n: after.get(n, 0) - before.get(n, 0) for n in names}
    return {n: v for n, v in sorted(out.items()) if v}


def total(shards: list[dict[str, int]]) -> dict[str, int]:
    """The sum of the counter items."""
    out = dict.fromkeys(COUNTERS, 0)
    for s in shards:
        for n in COUNTERS:
            out[n] += int(s.get(n) or 0)
    return out
