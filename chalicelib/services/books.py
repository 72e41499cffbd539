"""Operator views of the books: ledger page, postings, system stats."""
from __future__ import annotations

from ..domain import ledger, views
from ..domain.contracts import ACTIVE, REFUND_QUEUED, REFUND_SENT
from ..domain.errors import InvalidRequest
from ..domain.money import sol

PENDING = (REFUND_QUEUED, REFUND_SENT)


def _with_sol(d: dict, **amounts: int) -> dict:
    for name, lamports in amounts.items():
        d[name] = sol(lamports)
        d[f"{name}_lamports"] = lamports
    return d


def ledger_page(c, limit: int, token: str | None) -> dict:
    """One Scan call per page; totals are over the contracts of this page."""
    now = c.clock()
    contracts, next_token = c.contracts.page(limit, token)
    active, completed = [], []
    total_active = total_used = total_pending = 0
    for k in contracts:
        f = k.figures(now)
        if k.status == ACTIVE:
            total_active += k.received_lamports
            total_used += f.used_lamports
            active.append(_with_sol({"contract_id": k.contract_id, "wallet": k.wallet, "tier": k.tier,
                                     "status": k.status, "device_id": k.device_id,
                                     "expires_at": k.expires_at_ms // 1000},
                                    prepaid=k.received_lamports, used=f.used_lamports,
                                    refund=f.refund_available_lamports))
        else:
            total_used += k.used_lamports or 0
            if k.refund_status in PENDING:
                total_pending += k.refund_lamports or 0
            completed.append(_with_sol({"contract_id": k.contract_id, "wallet": k.wallet, "tier": k.tier,
                                        "status": k.status, "settlement_time": (k.ended_at_ms or 0) // 1000,
                                        "refund_status": k.refund_status, "refund_tx": k.refund_tx},
                                       prepaid=k.received_lamports, used=k.used_lamports or 0,
                                       refund=k.refund_lamports or 0))
    return _with_sol({"active_contracts": active, "completed_settlements": completed,
                      "page_contracts": len(contracts), "totals_scope": "page", "next_token": next_token},
                     total_active_value=total_active, total_used=total_used, total_pending_refunds=total_pending)


def entries(c, contract_id: str | None, account: str | None, limit: int, token: str | None) -> dict:
    if bool(contract_id) == bool(account):
        raise InvalidRequest("Give exactly one of 'contract_id' or 'account'.", reason="contract_id")
    if contract_id:
        rows, next_token = c.ledger.by_contract(contract_id, limit, token)
    else:
        rows, next_token = c.ledger.by_account(account, limit, token)
    return {"entries": [views.entry_view(e) for e in rows],
            "debit_lamports": sum(e.debit_lamports for e in rows),
            "credit_lamports": sum(e.credit_lamports for e in rows),
            "balance_lamports": ledger.balance(rows), "next_token": next_token}


def stats(c) -> dict:
    """Whole-system figures for operators. Reads every contract (O(table)): an
    operator call, not a hot path; the sweep will keep a summary (next issue)."""
    now = c.clock()
    by_status: dict[str, int] = {}
    refunds: dict[str, int] = {}
    revenue = pending = active_value = 0
    for k in c.contracts.scan_all():
        by_status[k.status] = by_status.get(k.status, 0) + 1
        if k.status == ACTIVE:
            active_value += k.received_lamports
            continue
        refunds[k.refund_status] = refunds.get(k.refund_status, 0) + 1
        revenue += k.used_lamports or 0
        if k.refund_status in PENDING:
            pending += k.refund_lamports or 0
    devices = c.devices.all()
    leased = sum(d.leases for d in devices)
    capacity = sum(d.capacity for d in devices)
    try:
        rpc_ok = bool(c.rpc.health())
    except Exception:  # noqa: BLE001 - reported, not raised
        rpc_ok = False
    return _with_sol({
        "contracts": {s: by_status.get(s, 0) for s in ("ACTIVE", "SETTLED", "EXPIRED")},
        "devices": {"count": len(devices), "slots_leased": leased, "slots_free": capacity - leased,
                    "capacity": capacity},
        "refunds_by_status": refunds,
        "queues": c.queue.depths(),
        "treasury": c.settings.treasury,
        "rpc_reachable": rpc_ok,
        "server_time": now // 1000, "server_time_ms": now,
    }, revenue=revenue, pending_refunds=pending, active_prepaid=active_value)
