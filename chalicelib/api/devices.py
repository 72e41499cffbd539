"""Device-signed usage reports."""
from chalice import Blueprint

from ..domain import validation as v
from ..services import telemetry
from .http import endpoint

bp = Blueprint(__name__)


@endpoint(bp, "/api/metrics/{contract_id}", methods=["POST"])
def report(call):
    cid = v.contract_id(call.params["contract_id"])
    return telemetry.record(call.c, cid, call.headers.get("x-device-key"), call.body)
