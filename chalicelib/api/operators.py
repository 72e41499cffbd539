"""Operator routes, behind X-Admin-Key: the books, stats, and the device fleet."""

import re

from chalice import Blueprint

from .. import observability
from ..domain.errors import InvalidRequest, NotFound
from . import schemas, views
from .http import endpoint

bp = Blueprint(__name__)

# device ids are what local/seed.py and operators create: no "_" (device keys are dk_<id>_<secret>)
_DEVICE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9.-]{0,63}")


@endpoint(bp, "/api/billing/ledger", auth="admin")
def ledger(call):
    page = call.c.books.ledger_page(schemas.limit(call.query.get("limit")), call.query.get("next_token"))
    return views.ledger_response(page)


@endpoint(bp, "/api/billing/entries", auth="admin")
def entries(call):
    return views.entries_response(call.c.books.entries(*schemas.entries_query(call.query)))


@endpoint(bp, "/api/stats", auth="admin")
def stats(call):
    return views.stats_response(call.c.books.stats())


# --- the device fleet -------------------------------------------------------------------
def _device_id(call) -> str:
    device_id = call.params["device_id"]
    if not _DEVICE_ID.fullmatch(device_id):
        raise NotFound(f"No such device: {device_id[:80]}.", reason="device_id")
    return device_id


def admin_device_view(d) -> dict:
    """The public device view plus what only operators see: last report, whether a key is set
    (never the key nor its hash)."""
    return {
        **views.device_view(d),
        "last_seen_ms": d.last_seen_ms,
        "last_seen": None if d.last_seen_ms is None else d.last_seen_ms // 1000,
        "key_set": bool(d.key_hash),
    }


@endpoint(bp, "/api/admin/devices", auth="admin")
def admin_devices(call):
    devices = [admin_device_view(d) for d in call.c.operator.fleet()]
    return {"devices": devices, "count": len(devices), "server_time_ms": call.c.clock()}


@endpoint(bp, "/api/admin/devices/{device_id}/key", methods=["POST"], auth="admin")
def admin_device_key(call):
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


@endpoint(bp, "/api/admin/devices/{device_id}/audited", methods=["POST"], auth="admin")
def admin_device_audited(call):
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
def retry_refund(call):
    """FAILED → QUEUED and queued again (issue 8); a refund that is not FAILED is returned as is."""
    r = call.c.refund_operations.retry(call.params["refund_id"])
    out = {"refund_id": r.refund_id, "wallet": r.wallet, "status": r.status, "lamports": r.lamports,
           "tx_signature": r.tx_signature, "attempt": r.attempt}
    if r.reason:
        out["reason"] = r.reason
    return out
