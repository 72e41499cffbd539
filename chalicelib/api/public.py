"""Public catalogue routes, and the OpenAPI document of the whole API."""

import functools
from pathlib import Path

from chalice import Blueprint, Response

from . import views
from .endpoint import Call, endpoint
from .errors import json_response

bp = Blueprint(__name__)


@endpoint(bp, "/api/health")
def health(call: Call) -> object:
    call.c.catalog.health()
    return {"status": "ok"}


@endpoint(bp, "/api/pricing")
def pricing(call: Call) -> object:
    return views.pricing_response(call.c.settings, call.c.catalog.tiers())


@endpoint(bp, "/api/fleet")
def fleet(call: Call) -> object:
    from ..services.fleet import FLEET_MAX_AGE_MS  # the service's own module, loaded with it

    body = views.fleet_response(call.c.fleet.view(), call.c.clock())
    return json_response(200, body, {"Cache-Control": f"public, max-age={FLEET_MAX_AGE_MS // 1000}"})


@endpoint(bp, "/api/devices/{tier}")
def devices(call: Call) -> object:
    return [views.device_view(d) for d in call.c.catalog.devices_of(call.params["tier"])]


@functools.lru_cache(maxsize=1)
def _openapi_text() -> str:
    """chalicelib/api/openapi.json, read on the first request that asks (it ships with chalicelib/)."""
    return (Path(__file__).parent / "openapi.json").read_text(encoding="utf-8")


@endpoint(bp, "/api/openapi.json")
def openapi(call: Call) -> object:
    return Response(
        body=_openapi_text(),
        status_code=200,
        headers={"Content-Type": "application/json", "Cache-Control": "public, max-age=300"},
    )
