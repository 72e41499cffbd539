"""Renter routes: rent, contract status, extend, settle, and a contract's samples."""
from chalice import Blueprint

from ..domain import validation as v
from ..services import auth, rentals, telemetry
from .http import endpoint

bp = Blueprint(__name__)


def _limits(call):
    s = call.c.settings
    return {"min_seconds": s.min_duration_seconds, "max_hours": s.max_duration_hours}


@endpoint(bp, "/api/rent", methods=["POST"])
def rent(call):
    return rentals.rent(call.c, v.rent_request(call.body, **_limits(call)))


@endpoint(bp, "/api/contracts/{contract_id}")
def contract(call):
    return rentals.status(call.c, v.contract_id(call.params["contract_id"]))


@endpoint(bp, "/api/contracts/{contract_id}/extend", methods=["POST"])
def extend(call):
    cid = v.contract_id(call.params["contract_id"])
    return rentals.extend(call.c, v.extend_request(cid, call.body, **_limits(call)))


@endpoint(bp, "/api/contracts/{contract_id}/settle", methods=["POST"])
def settle(call):
    cid = call.params["contract_id"]
    wallet = auth.renter(call.c, call.headers, "POST", f"/api/contracts/{cid}/settle")
    return rentals.settle(call.c, v.contract_id(cid), wallet)


@endpoint(bp, "/api/contracts/{contract_id}/metrics")
def contract_metrics(call):
    return telemetry.latest(call.c, v.contract_id(call.params["contract_id"]))
