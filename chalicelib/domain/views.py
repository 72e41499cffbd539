"""The JSON shapes of API.md, built from domain objects. Pure Python.

Every `*_sol` / legacy SOL field is derived from the integer lamport figure
beside it (money.sol) for display only.
"""
from __future__ import annotations

from .contracts import ACTIVE, Contract
from .money import hours_display, sol


def _s(ms: int | None) -> int | None:
    return None if ms is None else ms // 1000


def rent_response(c: Contract) -> dict:
    rent = c.payments[0]
    return {
        "contract_id": c.contract_id, "status": c.status, "tier": c.tier, "device_id": c.device_id,
        "duration_hours": hours_display(rent.seconds), "duration_seconds": rent.seconds,
        "cost_sol": sol(rent.price_lamports), "cost_lamports": rent.price_lamports,
        "prepaid_sol": sol(rent.received_lamports), "prepaid_lamports": rent.received_lamports,
        "created_at": _s(c.created_at_ms), "expires_at": _s(c.created_at_ms + rent.seconds * 1000),
    }


def extend_response(after: Contract, sig: str) -> dict:
    p = after.payment(sig)
    return {
        "contract_id": after.contract_id, "extended_hours": hours_display(p.seconds),
        "extended_seconds": p.seconds,
        "additional_cost_sol": sol(p.price_lamports), "additional_cost_lamports": p.price_lamports,
        "prepaid_lamports": p.received_lamports,
        "new_total_cost": sol(after.price_lamports), "new_total_cost_lamports": after.price_lamports,
        "new_expiration": _s(after.expires_at_ms), "duration_seconds": after.duration_seconds,
    }


def refund_view(c: Contract) -> dict:
    out = {"status": c.refund_status, "lamports": c.refund_lamports if c.status != ACTIVE else 0,
           "tx_signature": c.refund_tx}
    if c.refund_reason:
        out["reason"] = c.refund_reason
    return out


def contract_response(c: Contract, now_ms: int) -> dict:
    f = c.figures(now_ms)
    return {
        "contract_id": c.contract_id, "wallet": c.wallet, "tier": c.tier, "device_id": c.device_id,
        "status": c.status,
        "prepaid_sol": sol(c.received_lamports), "prepaid_lamports": c.received_lamports,
        "cost_lamports": c.price_lamports,
        "used_sol": sol(f.used_lamports), "used_lamports": f.used_lamports,
        "refund_available": sol(f.refund_available_lamports),
        "refund_available_lamports": f.refund_available_lamports,
        "duration_hours": hours_display(c.duration_seconds), "duration_seconds": c.duration_seconds,
        "elapsed_hours": hours_display(f.elapsed_ms // 1000), "remaining_seconds": f.remaining_seconds,
        "created_at": _s(c.created_at_ms), "expires_at": _s(c.expires_at_ms),
        "settled_at": _s(c.ended_at_ms), "refund": refund_view(c),
    }


def settle_response(c: Contract) -> dict:
    return {
        "contract_id": c.contract_id, "status": c.status,
        "prepaid_sol": sol(c.received_lamports), "prepaid_lamports": c.received_lamports,
        "used_sol": sol(c.used_lamports or 0), "used_lamports": c.used_lamports or 0,
        "refund_sol": sol(c.refund_lamports or 0), "refund_lamports": c.refund_lamports or 0,
        "refund_status": c.refund_status, "tx_signature": c.refund_tx, "settled_at": _s(c.ended_at_ms),
    }


def metrics_response(c: Contract, recorded: int, now_ms: int) -> dict:
    f = c.figures(now_ms)
    return {
        "contract_id": c.contract_id, "metrics_recorded": True, "samples_recorded": recorded,
        "elapsed_hours": hours_display(f.elapsed_ms // 1000),
        "cost_so_far": sol(f.used_lamports), "cost_so_far_lamports": f.used_lamports,
        "refund_available": sol(f.refund_available_lamports),
        "refund_available_lamports": f.refund_available_lamports,
    }


def sample_view(row: list) -> dict:
    ts, cpu, mem, disk, net = row
    return {"timestamp_ms": ts, "cpu_percent": cpu, "memory_mb": mem, "disk_io_mbps": disk,
            "network_io_mbps": net}


def device_view(d) -> dict:
    return {"id": d.device_id, "name": d.name, "tier": d.tier, "uri": d.uri, "address": d.address,
            "region": d.region, "ram": d.ram, "leases": d.leases, "capacity": d.capacity,
            "available": d.available, "uptime": d.uptime, "audited": d.audited}


def entry_view(e) -> dict:
    return {"entry_id": e.entry_id, "contract_id": e.contract_id, "account": e.account,
            "debit_lamports": e.debit_lamports, "credit_lamports": e.credit_lamports, "kind": e.kind,
            "created_at": _s(e.created_at_ms), "created_at_ms": e.created_at_ms, "ref": e.ref}
