"""Quote routes: a Solana Pay transfer request for a rental or an extension, and its status."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from chalice import Blueprint

from .. import observability
from ..domain.errors import InvalidRequest
from ..domain.money import sol
from .endpoint import Call, endpoint

# `schemas` (the body and query parsers) is imported by the handlers that parse, on first use:
# a cold start, and the status route, do not load it.

if TYPE_CHECKING:  # types only
    from ..domain.quotes import Quote

bp = Blueprint(__name__)


def quote_response(k: Quote) -> dict[str, Any]:
    """A new quote: its terms, price and the Solana Pay transfer request that pays it."""
    return {
        "quote_id": k.quote_id,
        "kind": k.kind,
        "tier": k.tier,
        "contract_id": k.contract_id,
        "duration_seconds": k.seconds,
        "lamports": k.lamports,
        "sol": sol(k.lamports),
        "recipient": k.recipient,
        "reference": k.reference,
        "memo": k.memo,
        "expires_at": k.expires_at_ms // 1000,
        "solana_pay_url": k.url,
    }


def quote_status_response(k: Quote, now_ms: int) -> dict[str, Any]:
    """A quote's status as of `now_ms` (an OPEN quote past its expiry is EXPIRED)."""
    return {
        "quote_id": k.quote_id,
        "status": k.status_at(now_ms),
        "contract_id": k.paid_contract_id or k.contract_id,
        "tx_signature": k.tx_signature,
        "reason": k.reason,
    }


@endpoint(bp, "/api/quotes", methods=["POST"], auth="renter_optional", operation="create_quote")
def create_quote(call: Call) -> object:
    """Anyone may ask (no credentials needed): a quote moves no money and binds nothing until paid."""
    from . import schemas

    body, s = call.body, call.c.settings
    limits = {"min_seconds": s.min_duration_seconds, "max_hours": s.max_duration_hours}
    if "contract_id" in body and "tier" in body:
        raise InvalidRequest("Give either 'tier' and 'duration_hours' or 'contract_id' and 'additional_hours'.", "tier")
    if body.get("contract_id") is not None:
        raw = body["contract_id"]
        cid = schemas.contract_id(raw) if isinstance(raw, str) else schemas.contract_id("")
        seconds = schemas.hours(body.get("additional_hours"), "additional_hours", **limits)
        quote = call.c.quote_service.extend(cid, seconds)
    else:
        tier = schemas.tier(body.get("tier"))
        seconds = schemas.hours(body.get("duration_hours"), "duration_hours", **limits)
        quote = call.c.quote_service.rent(tier, seconds)
    observability.annotate(quote_id=quote.quote_id)
    return 201, quote_response(quote)


@endpoint(bp, "/api/quotes/{quote_id}", operation="quote_status")
def quote_status(call: Call) -> object:
    quote = call.c.quote_service.get(call.params["quote_id"])
    return quote_status_response(quote, call.c.clock())
