"""The operator's books: ledger entries, the ledger page and the stats."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ...domain import ledger
from .contracts import _s, _with_sol

if TYPE_CHECKING:  # types only
    from ...domain.ledger import Entry
    from ...services.books import EntriesPage, LedgerPage, Stats


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
