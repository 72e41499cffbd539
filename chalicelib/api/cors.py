"""CORS of the edge (ADR 0009).

Exposure of a route to other origins, from its auth mode and method:
  public  (no credentials, GET): any origin, "*";
  renter  (renter credentials, or none on a POST): the origins of SI64_CORS_ORIGINS;
  admin:  the origins of SI64_CORS_ADMIN_ORIGINS (none by default);
  device: never (device agents are not browsers).
Chalice's CORSConfig holds one static origin per route, so preflights are answered here:
every endpoint path gets an OPTIONS view (api/endpoint.py) that calls `preflight`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from chalice import Response

from .errors import OriginNotAllowed

if TYPE_CHECKING:  # types only
    from ..config import Settings

REQUEST_HEADERS = ("content-type", "idempotency-key", "x-wallet", "x-timestamp", "x-signature")
ADMIN_HEADERS = (*REQUEST_HEADERS, "x-admin-key")
EXPOSED = "Retry-After, Idempotent-Replayed"
MAX_AGE = "600"


def exposure(auth: str | None, method: str) -> str:
    if auth == "admin":
        return "admin"
    if auth == "device":
        return "device"
    if auth is None and method in ("GET", "HEAD"):
        return "public"
    return "renter"


def allowed_origin(kind: str, origin: str | None, settings: Settings) -> str | None:
    """The Access-Control-Allow-Origin value for `origin` on a route of this exposure, or None."""
    if not origin or kind == "device":
        return None
    if kind == "public":
        return "*"
    allowed = settings.cors_admin_origins if kind == "admin" else settings.cors_origins
    if "*" in allowed:
        return "*"
    return origin if origin.rstrip("/") in allowed else None


def headers_for(kind: str, origin: str | None, settings: Settings) -> dict[str, str]:
    """The CORS headers of an answer on a route of this exposure."""
    allow = allowed_origin(kind, origin, settings)
    headers = {} if kind == "public" else {"Vary": "Origin"}
    if allow:
        headers.update({"Access-Control-Allow-Origin": allow, "Access-Control-Expose-Headers": EXPOSED})
    return headers


def preflight(settings: Settings, request_headers: Mapping[str, str], routes: dict[str, str]) -> Response:
    """OPTIONS: 204 with the CORS grant when Origin, Access-Control-Request-Method and
    -Headers are allowed for this path (`routes`: METHOD → exposure); OriginNotAllowed (403
    forbidden, reason origin/method/headers) otherwise. Without Origin (not a browser
    preflight): 204 and `Allow`."""
    h = request_headers
    origin, wanted = h.get("origin"), (h.get("access-control-request-method") or "").upper()
    methods = sorted(routes)
    if not origin or not wanted:
        return Response(body="", status_code=204, headers={"Allow": ", ".join([*methods, "OPTIONS"])})
    if wanted not in routes:
        raise OriginNotAllowed(f"{wanted} is not a method of this path.", reason="method")
    kind = routes[wanted]
    allow = allowed_origin(kind, origin, settings)
    if allow is None:
        raise OriginNotAllowed("This origin may not call this route.", reason="origin")
    permitted = ADMIN_HEADERS if kind == "admin" else REQUEST_HEADERS
    asked = [x.strip().lower() for x in (h.get("access-control-request-headers") or "").split(",") if x.strip()]
    if extra := [x for x in asked if x not in permitted]:
        raise OriginNotAllowed(f"Header(s) not allowed cross-origin: {', '.join(extra)}.", reason="headers")
    same = [m for m in methods if allowed_origin(routes[m], origin, settings)]
    return Response(
        body="",
        status_code=204,
        headers={
            "Access-Control-Allow-Origin": allow,
            "Access-Control-Allow-Methods": ", ".join([*same, "OPTIONS"]),
            "Access-Control-Allow-Headers": ", ".join(permitted),
            "Access-Control-Max-Age": MAX_AGE,
            "Vary": "Origin",
            "Cache-Control": "no-store",
        },
    )
