"""Operator routes, behind X-Admin-Key: the books, stats, and the device fleet."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from chalice import Blueprint

from .. import observability
from ..domain.errors import InvalidRequest, NotFound
from . import schemas, views
from .endpoint import Call, endpoint

if TYPE_CHECKING:  # types only
    from ..domain.devices import Device
    from ..domain.reconcile import Report, Unbooked
    from ..domain.refunds import Refund

bp = Blueprint(__name__)

# device ids are what dev/seed.py and operators create: no "_" (device keys are dk_<id>_<secret>)
_DEVICE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9.-]{0,63}")
REDRIVE_MAX_MESSAGES = 100  # `?limit=` of a redrive: its default and maximum
ORPHAN_AGE_DEFAULT_SECONDS = 3600


@endpoint(bp, "/api/billing/ledger", auth="admin")
def ledger(call: Call) -> object:
    page = call.c.books.ledger_page(schemas.limit(call.query.get("limit")), call.query.get("next_token"))
    return views.ledger_response(page)


@endpoint(bp, "/api/billing/entries", auth="admin")
def entries(call: Call) -> object:
    query = schemas.entries_query(call.query)
    return views.entries_response(call.c.books.entries(*query), account=query[1])


@endpoint(bp, "/api/stats", auth="admin")
def stats(call: Call) -> object:
    return views.stats_response(call.c.books.stats())


# --- the device fleet -------------------------------------------------------------------
def _device_id(call: Call) -> str:
    device_id: str = call.params["device_id"]
    if not _DEVICE_ID.fullmatch(device_id):
        raise NotFound(f"No such device: {device_id[:80]}.", reason="device_id")
    return device_id


def admin_device_view(d: Device) -> dict[str, Any]:
    """The public device view plus what only operators see: last report, whether a key is set
    (never the key nor its hash)."""
    return {
        **views.device_view(d),
        "last_seen_ms": d.last_seen_ms,
        "last_seen": None if d.last_seen_ms is None else d.last_seen_ms // 1000,
        "key_set": bool(d.key_hash),
    }


@endpoint(bp, "/api/admin/devices", auth="admin")
def admin_devices(call: Call) -> object:
    devices = [admin_device_view(d) for d in call.c.operator.fleet()]
    return {"devices": devices, "count": len(devices), "server_time_ms": call.c.clock()}


@endpoint(bp, "/api/admin/devices/{device_id}/key", methods=["POST"], auth="admin")
def admin_device_key(call: Call) -> object:
    if call.headers.get("idempotency-key") is not None:
        # a replayed answer would have to be stored, and the key must exist only in this response
        raise InvalidRequest(
            "Idempotency-Key is not accepted here: a device key is returned once and never stored. "
            "If the answer was lost, issue another key.",
            reason="Idempotency-Key",
        )
    issued = call.c.operator.rotate_device_key(_device_id(call))
    observability.log_event(
        "device_key_issued", operation="issue_device_key", outcome="issued", device_id=issued.device_id
    )
    return 201, {
        "device_id": issued.device_id,
        "device_key": issued.device_key,
        "detail": "Shown once; only its hash is stored. The previous key of this device no longer works.",
    }


@endpoint(bp, "/api/admin/devices/{device_id}/pubkey", methods=["POST"], auth="admin", operation="register_pubkey")
def admin_device_pubkey(call: Call) -> object:
    device_id = _device_id(call)
    pubkey = schemas.pubkey(call.body.get("pubkey"), "pubkey")
    device = call.c.operator.register_pubkey(device_id, pubkey)
    observability.log_event(
        "device_pubkey_set", operation="register_pubkey", outcome="set", device_id=device_id, pubkey=pubkey
    )
    return admin_device_view(device)


@endpoint(bp, "/api/admin/devices/{device_id}/audited", methods=["POST"], auth="admin")
def admin_device_audited(call: Call) -> object:
    device_id = _device_id(call)
    audited = call.body.get("audited")
    if not isinstance(audited, bool):
        raise InvalidRequest("'audited' must be true or false.", reason="audited")
    device = call.c.operator.set_audited(device_id, audited)
    observability.log_event(
        "device_audited_set", operation="set_audited", outcome="set", device_id=device_id, audited=audited
    )
    return admin_device_view(device)


@endpoint(bp, "/api/refunds/{refund_id}/retry", methods=["POST"], auth="admin")
def retry_refund(call: Call) -> object:
    """FAILED → QUEUED and queued again; a refund that is not FAILED is returned as is."""
    return retried_view(call.c.refund_operations.retry(call.params["refund_id"]))


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


# --- refunds, the dead-letter queue, orphan payments, reconciliation -------
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


@endpoint(bp, "/api/admin/refunds", auth="admin")
def admin_refunds(call: Call) -> object:
    status = call.query.get("status") or "FAILED"
    refunds, token = call.c.refund_admin.list(
        status, schemas.limit(call.query.get("limit")), call.query.get("next_token")
    )
    return {"status": status, "refunds": [refund_view(r) for r in refunds], "count": len(refunds), "next_token": token}


@endpoint(bp, "/api/admin/refunds/redrive", methods=["POST"], auth="admin")
def admin_refunds_redrive(call: Call) -> object:
    limit = schemas.query_integer(call.query, "limit", REDRIVE_MAX_MESSAGES, minimum=1, maximum=REDRIVE_MAX_MESSAGES)
    moved = call.c.refund_admin.redrive(limit)
    observability.log_event("dlq_redriven", operation="redrive_refunds", outcome="moved", moved=moved)
    return {
        "moved": moved,
        "limit": limit,
        "detail": f"{moved} message(s) moved from the refund dead-letter queue to the refund queue.",
    }


@endpoint(bp, "/api/admin/payments/{tx_signature}/refund", methods=["POST"], auth="admin")
def admin_refund_orphan(call: Call) -> object:
    from .payments import payment_refund_response

    sig = schemas.signature(call.params["tx_signature"], "tx_signature")
    payer = call.query.get("payer")
    payer = None if payer is None else schemas.pubkey(payer, "payer")
    pr = call.c.payment_refunds.refund_orphan(sig, call.c.history, payer)
    observability.log_event(
        "orphan_refund_booked",
        operation="refund_orphan",
        outcome=pr.refund.status,
        refund_id=pr.refund.refund_id,
        lamports=pr.refund.lamports,
    )
    return 201, payment_refund_response(pr)


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


@endpoint(bp, "/api/admin/reconcile", auth="admin")
def admin_reconcile(call: Call) -> object:
    age = schemas.query_integer(
        call.query, "orphan_age", ORPHAN_AGE_DEFAULT_SECONDS, minimum=0, maximum=10 * 365 * 86_400
    )
    baseline = schemas.query_integer(call.query, "baseline_slot", None, minimum=0, maximum=10**12)
    return reconcile_response(call.c.reconciler.run(orphan_age_seconds=age, baseline_slot=baseline))
