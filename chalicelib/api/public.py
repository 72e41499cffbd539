"""Public catalogue routes."""
from chalice import Blueprint

from ..services import catalog
from .http import endpoint

bp = Blueprint(__name__)


@endpoint(bp, "/api/health")
def health(call):
    return catalog.health(call.c)


@endpoint(bp, "/api/pricing")
def pricing(call):
    return catalog.pricing(call.c)


@endpoint(bp, "/api/devices/{tier}")
def devices(call):
    return catalog.devices(call.c, call.params["tier"])
