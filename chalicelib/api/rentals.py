"""Renter routes: rent, contract status, extend, settle, and a contract's samples."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from chalice import Blueprint

from .. import observability
from ..domain import usage_receipts
from . import schemas, views
from .endpoint import Call, endpoint

if TYPE_CHECKING:  # types only
    from ..services.rentals import Receipt

bp = Blueprint(__name__)


def _observe(metric: str, receipt: Receipt, **props: Any) -> None:
    """Name the contract on the request's log line; count a committed payment (not a replay)."""
    observability.annotate(
        contract_id=receipt.body.get("contract_id"), outcome="committed" if receipt.first else "replayed"
    )
    if receipt.first:
        observability.emit(metric, 1, contract_id=receipt.body.get("contract_id"), **props)


def _limits(call: Call) -> dict[str, int]:
    s = call.c.settings
    return {"min_seconds": s.min_duration_seconds, "max_hours": s.max_duration_hours}


@endpoint(bp, "/api/rent", methods=["POST"], auth="renter_optional", operation="rent")
def rent(call: Call) -> object:
    receipt = call.c.rentals.rent(
        schemas.rent_request(call.body, **_limits(call)), signed_by=call.wallet, client=call.client
    )
    _observe("Rents", receipt, tier=receipt.body.get("tier"))
    return (201 if receipt.first else 200), receipt.body


@endpoint(bp, "/api/contracts/{contract_id}", operation="contract_status")
def contract(call: Call) -> object:
    snap = call.c.rentals.status(schemas.contract_id(call.params["contract_id"]))
    return views.contract_response(snap.contract, snap.at_ms, call.c.settings.refund_min_lamports)


@endpoint(bp, "/api/contracts/{contract_id}/extend", methods=["POST"], auth="renter_optional", operation="extend")
def extend(call: Call) -> object:
    cid = schemas.contract_id(call.params["contract_id"])
    receipt = call.c.rentals.extend(
        schemas.extend_request(cid, call.body, **_limits(call)), signed_by=call.wallet, client=call.client
    )
    _observe("Extensions", receipt)
    return receipt.body


@endpoint(bp, "/api/contracts/{contract_id}/settle", methods=["POST"], auth="renter", operation="settle")
def settle(call: Call) -> object:
    cid = schemas.contract_id(call.params["contract_id"])
    assert call.wallet is not None  # auth="renter": the credentials checked out
    return views.settle_response(call.c.rentals.settle(cid, call.wallet))


@endpoint(bp, "/api/contracts/{contract_id}/coverage", auth="renter_or_admin", operation="contract_coverage")
def contract_coverage(call: Call) -> object:
    proof = call.c.proofs.coverage(schemas.contract_id(call.params["contract_id"]), call.wallet)
    c = proof.contract
    return {
        "contract_id": c.contract_id,
        "tier": c.tier,
        "device_id": c.device_id,
        "status": c.status,
        "created_at_ms": c.created_at_ms,
        "expires_at_ms": c.expires_at_ms,
        "covered_ms": proof.covered_ms,
        "uncovered_ms": proof.uncovered_ms,
        "grace_ms": proof.grace_ms,
        "gaps": [{"from_ms": lo, "to_ms": hi} for lo, hi in proof.gaps],
        "receipts": [usage_receipts.to_view(r) for r in proof.receipts],
        "server_time_ms": proof.at_ms,
    }


@endpoint(bp, "/api/contracts/{contract_id}/metrics", operation="contract_metrics")
def contract_metrics(call: Call) -> object:
    cid = schemas.contract_id(call.params["contract_id"])
    return views.samples_response(cid, call.c.telemetry.latest(cid))
