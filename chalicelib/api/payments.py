"""Payments that no contract holds: the payer-signed refund.

POST /api/payments/{tx_signature}/refund — renter credentials of the payer
(X-Wallet, X-Timestamp, X-Signature over `si64:POST /api/payments/{sig}/refund:{ts}`,
plus the body hash when there is a body). 201 when this request booked the
refund, 200 with the same refund afterwards. GET `?payer=` shows it (no credentials:
the same figures as the chain shows anyone). A refund is one payer's share of the
payment: a co-signed transaction has one per payer (docs/api.md).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from chalice import Blueprint

from ..domain.money import sol
from .endpoint import Call, endpoint

# `schemas` (the body and query parsers) is imported by the handlers that parse, on first use:
# a cold start, and the status route, do not load it.

if TYPE_CHECKING:  # types only
    from ..services.payment_refunds import PaymentRefund

bp = Blueprint(__name__)


def payment_refund_response(pr: PaymentRefund) -> dict[str, Any]:
    r = pr.refund
    refund = {"status": r.status, "lamports": r.lamports, "tx_signature": r.tx_signature}
    if r.reason:
        refund["reason"] = r.reason
    return {
        "payment": pr.payment_signature,
        "refund_id": r.refund_id,
        "wallet": r.wallet,
        "refund_lamports": r.lamports,
        "refund_sol": sol(r.lamports),
        "refund": refund,
    }


@endpoint(bp, "/api/payments/{tx_signature}/refund", methods=["POST"], auth="renter")
def refund_payment(call: Call) -> object:
    from . import schemas

    assert call.wallet is not None  # auth="renter": the credentials checked out
    sig = schemas.signature(call.params["tx_signature"], "tx_signature")
    pr = call.c.payment_refunds.request(sig, call.wallet, client=call.client)
    return (201 if pr.first else 200), payment_refund_response(pr)


@endpoint(bp, "/api/payments/{tx_signature}/refund")
def payment_refund(call: Call) -> object:
    from . import schemas

    sig = schemas.signature(call.params["tx_signature"], "tx_signature")
    payer = schemas.pubkey(call.query.get("payer"), "payer")
    return payment_refund_response(call.c.payment_refunds.status(sig, payer))
