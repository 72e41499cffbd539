"""Receipts: what a payment bought, as the first answer to the request that spent it. Pure Python.

A receipt is stored with its payment claim (`domain.records.Claim.response`) in
the same transaction that opens or extends the contract, and a replay of the
request returns it verbatim, however the contract changed since. So it is
stored data, written by the service at commit time, and its shape is the
docs/api.md answer of `POST /api/rent` and `POST /api/contracts/{id}/extend`: the
edge sends it as it is. Every `*_sol` figure derives from the lamports beside it.
"""

from __future__ import annotations

from typing import Any

from .contracts import Contract
from .money import hours_display, sol


def _s(ms: int | None) -> int | None:
    return None if ms is None else ms // 1000


def rent_receipt(c: Contract) -> dict[str, Any]:
    """The answer to the rent that opened `c` (its first payment)."""
    rent = c.payments[0]
    return {
        "contract_id": c.contract_id,
        "status": c.status,
        "tier": c.tier,
        "device_id": c.device_id,
        "duration_hours": hours_display(rent.seconds),
        "duration_seconds": rent.seconds,
        "cost_sol": sol(rent.price_lamports),
        "cost_lamports": rent.price_lamports,
        "prepaid_sol": sol(rent.received_lamports),
        "prepaid_lamports": rent.received_lamports,
        "created_at": _s(c.created_at_ms),
        "expires_at": _s(c.created_at_ms + rent.seconds * 1000),
        # the server's milliseconds, as the status answer gives them: usage runs on these
        "created_at_ms": c.created_at_ms,
        "expires_at_ms": c.created_at_ms + rent.seconds * 1000,
        "payment_tx_signature": rent.sig,
    }


def extend_receipt(after: Contract, sig: str) -> dict[str, Any]:
    """The answer to the extension paid by `sig`, from the contract right after it."""
    p = after.payment(sig)
    if p is None:
        raise ValueError(f"{sig} paid nothing of {after.contract_id}")
    return {
        "contract_id": after.contract_id,
        "extended_hours": hours_display(p.seconds),
        "extended_seconds": p.seconds,
        "additional_cost_sol": sol(p.price_lamports),
        "additional_cost_lamports": p.price_lamports,
        "prepaid_lamports": p.received_lamports,  # legacy name: what THIS payment brought
        "payment_received_lamports": p.received_lamports,
        "new_total_cost": sol(after.price_lamports),
        "new_total_cost_lamports": after.price_lamports,
        "new_expiration": _s(after.expires_at_ms),
        "new_expiration_ms": after.expires_at_ms,
        "duration_seconds": after.duration_seconds,
        "payment_tx_signature": p.sig,
    }
