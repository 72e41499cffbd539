"""Public catalogue routes."""
from chalice import Blueprint

from . import views
from .http import endpoint

bp = Blueprint(__name__)


@endpoint(bp, "/api/health")
def health(call):
    call.c.catalog.health()
    return {"status": "ok"}


@endpoint(bp, "/api/pricing")
def pricing(call):
    return views.pricing_response(call.c.settings, call.c.catalog.tiers())


@endpoint(bp, "/api/devices/{tier}")
def devices(call):
    return [views.device_view(d) for d in call.c.catalog.devices_of(call.params["tier"])]
