"""Operator routes, behind X-Admin-Key."""
from chalice import Blueprint

from ..domain import validation as v
from ..services import auth, books
from .http import endpoint

bp = Blueprint(__name__)


@endpoint(bp, "/api/billing/ledger")
def ledger(call):
    auth.admin(call.c, call.headers)
    return books.ledger_page(call.c, v.limit(call.query.get("limit")), call.query.get("next_token"))


@endpoint(bp, "/api/billing/entries")
def entries(call):
    auth.admin(call.c, call.headers)
    q = call.query
    return books.entries(call.c, q.get("contract_id"), q.get("account"), v.limit(q.get("limit")),
                         q.get("next_token"))


@endpoint(bp, "/api/stats")
def stats(call):
    auth.admin(call.c, call.headers)
    return books.stats(call.c)
