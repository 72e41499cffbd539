"""Operator routes, behind X-Admin-Key."""
from chalice import Blueprint

from . import schemas, views
from .http import endpoint

bp = Blueprint(__name__)


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


@endpoint(bp, "/api/refunds/{refund_id}/retry", methods=["POST"], auth="admin")
def retry_refund(call):
    """FAILED → QUEUED and queued again (issue 8); a refund that is not FAILED is returned as is."""
    r = call.c.refund_operations.retry(call.params["refund_id"])
    out = {"refund_id": r.refund_id, "wallet": r.wallet, "status": r.status, "lamports": r.lamports,
           "tx_signature": r.tx_signature, "attempt": r.attempt}
    if r.reason:
        out["reason"] = r.reason
    return out
