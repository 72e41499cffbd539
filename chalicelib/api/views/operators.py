"""The operator's shapes of refunds: a refund record, a retried refund, the reconciliation
(loaded by the operator routes that answer with them, on first use)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # types only
    from ...domain.reconcile import Report, Unbooked
    from ...domain.refunds import Refund


def refund_view(r: Refund) -> dict[str, Any]:
    """An operator's view of a refund record (never its signed bytes)."""
    out = {
        "refund_id": r.refund_id,
        "kind": "payment" if r.refund_id.startswith("PAY-") else "contract",
        "wallet": r.wallet,
        "status": r.status,
        "lamports": r.lamports,
        "tx_signature": r.tx_signature,
        "attempt": r.attempt,
        "fee_lamports": r.fee_lamports,
        "confirmed_at_ms": r.confirmed_at_ms,
        "reason": r.reason,
    }
    return out


def retried_view(r: Refund) -> dict[str, Any]:
    """The answer of a retry: the refund as it now stands."""
    out: dict[str, Any] = {
        "refund_id": r.refund_id,
        "wallet": r.wallet,
        "status": r.status,
        "lamports": r.lamports,
        "tx_signature": r.tx_signature,
        "attempt": r.attempt,
    }
    if r.reason:
        out["reason"] = r.reason
    return out


def reconcile_response(rep: Report) -> dict[str, Any]:
    def unbooked(u: Unbooked) -> dict[str, Any]:
        return {
            "signature": u.signature,
            "kind": u.kind,
            "lamports": u.lamports,
            "slot": u.slot,
            "block_time": u.block_time,
            "payer": u.payer,
            "refund_id": u.refund_id,
            "note": u.note,
        }

    return {
        "ok": rep.ok,
        "mismatches": rep.mismatches,
        "treasury": {
            "address": rep.treasury,
            "chain_lamports": rep.chain_lamports,
            "chain_slot": rep.chain_slot,
            "baseline_lamports": rep.baseline_lamports,
            "baseline_slot": rep.baseline_slot,
            "baseline_source": rep.baseline_source,
            "ledger_lamports": rep.ledger_lamports,
            "unbooked_lamports": rep.unbooked_lamports,
            "difference_lamports": rep.difference_lamports,
        },
        "orphans": [unbooked(u) for u in rep.orphans],
        "unbooked": [unbooked(u) for u in rep.unbooked],
        "refunds": {
            "confirmed_checked": rep.refunds_checked,
            "problems": [
                {"refund_id": p.refund_id, "tx_signature": p.tx_signature, "problems": list(p.problems)}
                for p in rep.refund_problems
            ],
        },
        "phantom_refs": rep.phantom_refs,
        "orphan_age_seconds": rep.orphan_age_seconds,
        "complete": rep.complete,
        "notes": rep.notes,
        "reads": {"signatures": rep.signatures_read, "transactions": rep.transactions_read},
    }
