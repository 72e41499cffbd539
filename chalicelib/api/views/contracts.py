"""A contract's shapes: its status, the answer to settle and to a usage report. Pure Python.

Every `*_sol` / legacy SOL field is derived from the integer lamport figure
beside it (money.sol: an exact Decimal, written as a plain JSON number by
chalicelib.jsontext) for display only. The answers of rent and extend are
receipts (domain/receipts.py): stored with the payment's claim and sent as is.
"""

from __future__ import annotations

from typing import Any

from ...domain.contracts import ACTIVE, Contract, Figures, as_of, booked
from ...domain.money import hours_display, sol


def _s(ms: int | None) -> int | None:
    return None if ms is None else ms // 1000


def _with_sol(d: dict[str, Any], **amounts: int) -> dict[str, Any]:
    for name, lamports in amounts.items():
        d[name] = sol(lamports)
        d[f"{name}_lamports"] = lamports
    return d


def _times_ms(c: Contract) -> dict[str, Any]:
    """The server's own milliseconds: usage runs on them, so with these (and the tier's rate) a
    client reproduces `used_lamports` exactly; the whole-second fields round them down."""
    return {"created_at_ms": c.created_at_ms, "expires_at_ms": c.expires_at_ms, "settled_at_ms": c.ended_at_ms}


def refund_view(c: Contract) -> dict[str, Any]:
    out = {
        "status": c.refund_status,
        "lamports": c.refund_lamports if c.status != ACTIVE else 0,
        "tx_signature": c.refund_tx,
    }
    if c.refund_reason:
        out["reason"] = c.refund_reason
    return out


def contract_response(stored: Contract, now_ms: int, refund_min_lamports: int) -> dict[str, Any]:
    """A contract as it stands at `now_ms` (`domain.contracts.as_of`): one past its expiry is
    EXPIRED at once, with the figures the sweep will book; `booked` is false until it has."""
    c = as_of(stored, now_ms, refund_min_lamports)
    f = c.figures(now_ms)
    return {
        "contract_id": c.contract_id,
        "wallet": c.wallet,
        "tier": c.tier,
        "device_id": c.device_id,
        "status": c.status,
        "prepaid_sol": sol(c.received_lamports),
        "prepaid_lamports": c.received_lamports,
        "cost_lamports": c.price_lamports,
        "used_sol": sol(f.used_lamports),
        "used_lamports": f.used_lamports,
        "refund_available": sol(f.refund_available_lamports),
        "refund_available_lamports": f.refund_available_lamports,
        "duration_hours": hours_display(c.duration_seconds),
        "duration_seconds": c.duration_seconds,
        "elapsed_hours": hours_display(f.elapsed_ms // 1000),
        "remaining_seconds": f.remaining_seconds,
        **coverage_view(f),
        "created_at": _s(c.created_at_ms),
        "expires_at": _s(c.expires_at_ms),
        "settled_at": _s(c.ended_at_ms),
        **_times_ms(c),
        "refund": refund_view(c),
        "booked": booked(c, stored),
    }


def coverage_view(f: Figures) -> dict[str, int]:
    """Covered time and downtime credit (docs/api.md "Proven usage and downtime credit"): so far
    for an ACTIVE contract, final for an ended one. A contract that does not track coverage
    counts as covered throughout."""
    covered = f.elapsed_ms if f.covered_ms is None else f.covered_ms
    return {
        "covered_ms": covered,
        "uncovered_ms": f.elapsed_ms - covered,
        "credit_lamports": f.credit_lamports,
    }


def settle_response(c: Contract) -> dict[str, Any]:
    return {
        "contract_id": c.contract_id,
        "status": c.status,
        "prepaid_sol": sol(c.received_lamports),
        "prepaid_lamports": c.received_lamports,
        "cost_lamports": c.price_lamports,
        "used_sol": sol(c.used_lamports or 0),
        "used_lamports": c.used_lamports or 0,
        "refund_sol": sol(c.refund_lamports or 0),
        "refund_lamports": c.refund_lamports or 0,
        "refund_status": c.refund_status,
        **coverage_view(c.figures(c.ended_at_ms or c.created_at_ms)),
        "tx_signature": c.refund_tx,  # legacy name (the original clients read it): the REFUND's
        "refund_tx_signature": c.refund_tx,
        "settled_at": _s(c.ended_at_ms),
        **_times_ms(c),
    }


def metrics_response(c: Contract, recorded: int, now_ms: int) -> dict[str, Any]:
    f = c.figures(now_ms)
    return {
        "contract_id": c.contract_id,
        "metrics_recorded": True,
        "samples_recorded": recorded,
        "elapsed_hours": hours_display(f.elapsed_ms // 1000),
        "cost_so_far": sol(f.used_lamports),
        "cost_so_far_lamports": f.used_lamports,
        "refund_available": sol(f.refund_available_lamports),
        "refund_available_lamports": f.refund_available_lamports,
    }
