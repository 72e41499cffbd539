"""Webhook routes: register (renter-signed for the wallet's contracts, or admin for every
event), list and delete. The secret is in the registration's answer only."""

from __future__ import annotations

from chalice import Blueprint

from ..domain.errors import InvalidRequest, NotFound
from .endpoint import Call, endpoint

bp = Blueprint(__name__)


def _owner(call: Call) -> str:
    from ..domain import webhooks as W  # on first use: not on the cold path of the other routes

    return W.ADMIN_OWNER if call.principal == "admin" else W.wallet_owner(call.wallet or "")


def _webhook_id(value: str) -> str:
    """A path id that cannot name a webhook is simply not found (404)."""
    if not (4 <= len(value) <= 64) or not value.startswith("WH-") or not value.isascii():
        raise NotFound("No such webhook.", reason="webhook_id")
    if not all(ch.isalnum() or ch in "-_" for ch in value[3:]):
        raise NotFound("No such webhook.", reason="webhook_id")
    return value


@endpoint(bp, "/api/webhooks", methods=["POST"], auth="renter_or_admin", operation="register_webhook")
def register_webhook(call: Call) -> object:
    if call.headers.get("idempotency-key") is not None:
        # a replayed answer would have to be stored, and the secret must exist only in this answer
        raise InvalidRequest(
            "Idempotency-Key is not accepted here: a webhook's secret is shown once and never stored "
            "with a replay. If the answer was lost, delete the webhook and register it again.",
            reason="Idempotency-Key",
        )
    return 201, call.c.webhooks.register(_owner(call), call.body).body()


@endpoint(bp, "/api/webhooks", auth="renter_or_admin", operation="list_webhooks")
def list_webhooks(call: Call) -> object:
    from ..domain import webhooks as W

    hooks = [W.public_view(w) for w in call.c.webhooks.list(_owner(call))]
    return {"webhooks": hooks, "count": len(hooks)}


@endpoint(bp, "/api/webhooks/{webhook_id}", methods=["DELETE"], auth="renter_or_admin", operation="delete_webhook")
def delete_webhook(call: Call) -> object:
    webhook_id = _webhook_id(call.params["webhook_id"])
    call.c.webhooks.remove(_owner(call), webhook_id)
    return {"webhook_id": webhook_id, "deleted": True}


@endpoint(bp, "/api/webhooks/{webhook_id}/deliveries", auth="renter_or_admin", operation="list_webhook_deliveries")
def list_webhook_deliveries(call: Call) -> object:
    from ..domain import webhooks as W

    webhook_id = _webhook_id(call.params["webhook_id"])
    deliveries = [W.delivery_view(d) for d in call.c.webhooks.deliveries(_owner(call), webhook_id)]
    return {"webhook_id": webhook_id, "deliveries": deliveries, "count": len(deliveries)}
