"""Device-signed usage reports."""

from chalice import Blueprint

from ..domain import usage_receipts
from . import schemas, views
from .endpoint import Call, endpoint

bp = Blueprint(__name__)


@endpoint(bp, "/api/metrics/{contract_id}", methods=["POST"], auth="device", operation="report_metrics")
def report(call: Call) -> object:
    cid = schemas.contract_id(call.params["contract_id"])
    body = call.body
    done = call.c.telemetry.record(
        cid,
        call.headers.get("x-device-key"),
        lambda now_ms, lo, hi: schemas.metrics_samples(body, now_ms, lo, hi),
        context=call.report,
        signed=lambda: usage_receipts.signed_batch(body),
    )
    return views.metrics_response(done.contract, done.samples, done.at_ms)
