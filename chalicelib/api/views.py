"""The JSON shapes of docs/api.md, built from domain objects and service results. Pure Python.

Every `*_sol` / legacy SOL field is derived from the integer lamport figure
beside it (money.sol: an exact Decimal, written as a plain JSON number by
chalicelib.jsontext) for display only. The answers of rent and extend are
receipts (domain/receipts.py): stored with the payment's claim and sent as is.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..config import Settings
from ..domain import ledger
from ..domain.contracts import ACTIVE, Contract, Figures, as_of, booked
from ..domain.money import Tier, hours_display, sol
from .schemas import SAMPLE_FIELDS

if TYPE_CHECKING:  # types only
    from ..domain.devices import Device
    from ..domain.ledger import Entry
    from ..services.books import EntriesPage, LedgerPage, Stats
    from ..services.fleet import FleetView


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


SAMPLE_VIEW_FIELDS = ("timestamp_ms", *SAMPLE_FIELDS)  # a stored row [ts_ms, cpu, mem, disk, net], named


def sample_view(row: list[Any]) -> dict[str, Any]:
    return dict(zip(SAMPLE_VIEW_FIELDS, row, strict=True))


def samples_response(contract_id: str, rows: list[list[Any]]) -> dict[str, Any]:
    return {"contract_id": contract_id, "samples": [sample_view(r) for r in rows]}


def device_view(d: Device) -> dict[str, Any]:
    return {
        "id": d.device_id,
        "name": d.name,
        "tier": d.tier,
        "uri": d.uri,
        "address": d.address,
        "region": d.region,
        "ram": d.ram,
        "leases": d.leases,
        "capacity": d.capacity,
        "available": d.available,
        "uptime": d.uptime,
        "audited": d.audited,
        "pubkey": d.pubkey,  # ed25519 (base58) that signs its usage receipts; None: it sends none
        "previous_pubkeys": list(d.previous_pubkeys),
    }


def pricing_response(s: Settings, tiers: list[Tier]) -> dict[str, Any]:
    return {
        "treasury": s.treasury,
        "network": s.network,
        "tiers": [
            {
                "tier": t.name,
                "lamports_per_hour": t.lamports_per_hour,
                "sol_per_hour": sol(t.lamports_per_hour),
                "memory": t.memory,
            }
            for t in tiers
        ],
        "min_duration_seconds": s.min_duration_seconds,
        "max_duration_hours": s.max_duration_hours,
        "refund_min_lamports": s.refund_min_lamports,
        "payment_max_age_seconds": s.payment_max_age_seconds,
    }


def fleet_response(f: FleetView, now_ms: int) -> dict[str, Any]:
    """services.fleet.FleetView → the public fleet shape: prices, devices and slots, no money moved."""
    return {
        "tiers": [
            {
                "tier": t.tier.name,
                "lamports_per_hour": t.tier.lamports_per_hour,
                "sol_per_hour": sol(t.tier.lamports_per_hour),
                "memory": t.tier.memory,
                "devices": t.devices,
                "slots": t.slots,
                "slots_free": t.slots_free,
            }
            for t in f.tiers
        ],
        "server_time": now_ms // 1000,
    }


def entry_view(e: Entry) -> dict[str, Any]:
    return {
        "entry_id": e.entry_id,
        "contract_id": e.contract_id,
        "account": e.account,
        "debit_lamports": e.debit_lamports,
        "credit_lamports": e.credit_lamports,
        "kind": e.kind,
        "created_at": _s(e.created_at_ms),
        "created_at_ms": e.created_at_ms,
        "ref": e.ref,
    }


def entries_response(page: EntriesPage, account: str | None = None) -> dict[str, Any]:
    """services.books.EntriesPage → docs/api.md shape. `balance_lamports` (legacy) is debits − credits
    of the page, so a credit account such as `revenue` shows negative there; with `?account=`
    the answer also gives the account's own side (`normal_side`) and the page's balance on it
    (`account_balance_lamports`: revenue earned is positive)."""
    out: dict[str, Any] = {
        "entries": [entry_view(e) for e in page.entries],
        "debit_lamports": page.debit_lamports,
        "credit_lamports": page.credit_lamports,
        "balance_lamports": page.balance_lamports,
        "debit_minus_credit_lamports": page.balance_lamports,
        "next_token": page.next_token,
    }
    if account:
        side = ledger.normal_side(account)
        out["account"] = account
        out["normal_side"] = side
        net = page.debit_lamports - page.credit_lamports
        out["account_balance_lamports"] = net if side == "debit" else -net
    return out


def ledger_response(page: LedgerPage) -> dict[str, Any]:
    """services.books.LedgerPage → docs/api.md shape (totals of the page)."""
    active = [
        _with_sol(
            {
                "contract_id": k.contract_id,
                "wallet": k.wallet,
                "tier": k.tier,
                "status": k.status,
                "device_id": k.device_id,
                "expires_at": k.expires_at_ms // 1000,
            },
            prepaid=k.received_lamports,
            used=f.used_lamports,
            refund=f.refund_available_lamports,
        )
        for k, f in page.active
    ]
    completed = [
        _with_sol(
            {
                "contract_id": k.contract_id,
                "wallet": k.wallet,
                "tier": k.tier,
                "status": k.status,
                "settlement_time": (k.ended_at_ms or 0) // 1000,
                "refund_status": k.refund_status,
                "refund_tx": k.refund_tx,
                "booked": k.contract_id not in page.unbooked,
                "credit_lamports": k.credit_lamports or 0,
            },
            prepaid=k.received_lamports,
            used=k.used_lamports or 0,
            refund=k.refund_lamports or 0,
        )
        for k in page.completed
    ]
    return _with_sol(
        {
            "active_contracts": active,
            "completed_settlements": completed,
            "page_contracts": page.size,
            "totals_scope": page.totals_scope,
            "next_token": page.next_token,
        },
        total_active_value=page.total_active_value,
        total_used=page.total_used,
        total_pending_refunds=page.total_pending_refunds,
    )


def stats_response(st: Stats) -> dict[str, Any]:
    """services.books.Stats → the operator's stats shape."""
    booked = {s: st.contracts_by_status.get(s, 0) for s in ("ACTIVE", "SETTLED", "EXPIRED")}
    due = min(st.expired_unbooked, booked["ACTIVE"])
    return _with_sol(
        {
            # as of now: a contract past its expiry has ended, booked by the sweep or not yet
            "contracts": {**booked, "ACTIVE": booked["ACTIVE"] - due, "EXPIRED": booked["EXPIRED"] + due},
            "contracts_booked": booked,
            "expired_awaiting_sweep": {"count": due, "complete": st.expired_unbooked_complete},
            "devices": {
                "count": st.device_count,
                "slots_leased": st.slots_leased,
                "slots_free": st.capacity - st.slots_leased,
                "capacity": st.capacity,
            },
            "refunds_by_status": st.refunds_by_status,
            "queues": st.queues,
            "treasury": st.treasury,
            "rpc_reachable": st.rpc_reachable,
            "server_time": st.at_ms // 1000,
            "server_time_ms": st.at_ms,
        },
        revenue=st.revenue,
        pending_refunds=st.pending_refunds,
        active_prepaid=st.active_prepaid,
        downtime_credit=st.downtime_credit,
    )
