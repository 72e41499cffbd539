"""Quote routes: a Solana Pay transfer request for a rental or an extension, and its status."""

from __future__ import annotations

from chalice import Blueprint

from .. import observability
from ..domain.errors import InvalidRequest
from . import schemas, views
from .endpoint import Call, endpoint

bp = Blueprint(__name__)


@endpoint(bp, "/api/quotes", methods=["POST"], auth="renter_optional", operation="create_quote")
def create_quote(call: Call) -> object:
    """Anyone may ask (no credentials needed): a quote moves no money and binds nothing until paid."""
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
    return 201, views.quote_response(quote)


@endpoint(bp, "/api/quotes/{quote_id}", operation="quote_status")
def quote_status(call: Call) -> object:
    quote = call.c.quote_service.get(call.params["quote_id"])
    return views.quote_status_response(quote, call.c.clock())
