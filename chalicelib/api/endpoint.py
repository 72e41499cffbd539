"""The endpoint decorator: the HTTP edge every route shares.

`@endpoint(bp, path, methods, auth=…)` registers `fn(call)` on a blueprint; for each request
the edge, in this order: verifies a device key (device routes), counts the request (rate
limit: a verified device against its own window, everything else against the client IP),
checks a POST's Content-Type and size, checks the route's credentials, then runs `fn` — under
the Idempotency-Key for a POST with credentials — and shapes what it returns (a dict/list:
200, or `(status, body)`) into a JSON response with the route's CORS headers.

Credentials are checked BEFORE any Idempotency-Key replay, and every key is scoped to the
principal that checked out (a wallet, a device, the operator), so a replay never answers
someone who could not have made the request. A POST with no credentials whose payment makes it
idempotent (a memo-bound rent or extend) is answered from the payment's receipt: its key is
never stored. Rate limit, Idempotency-Key and CORS: docs/adr/0009-rate-limit-and-idempotency.md.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

from chalice import Response

from .. import bootstrap, observability
from ..domain import errors as e
from ..domain.records import Replay
from ..services.idempotency import check_key
from . import cors
from .errors import JSON_HEADERS, PayloadTooLarge, UnsupportedMediaType, error_response, internal_response, status_of
from .errors import json_response as json_response
from .schemas import MAX_BODY_BYTES, contract_id, parse_json, renter_credentials

if TYPE_CHECKING:  # types only
    from chalice import Blueprint
    from chalice.app import Request

    from ..domain.devices import Device
    from ..services.telemetry import ReportContext

log = logging.getLogger("si64.api")
# The bodies are JSON whatever the client calls them; any other Content-Type is 415, answered
# by the edge, so Chalice's own check (which answers in its own shape) is off: "*/*".
CONTENT_TYPES = ("application/json", "text/plain", "application/x-www-form-urlencoded", "application/octet-stream")
ROUTE_CONTENT_TYPES = ["*/*"]
RENTER_HEADERS = ("x-wallet", "x-timestamp", "x-signature")
AUTH_MODES = (None, "renter", "renter_optional", "device", "admin", "renter_or_admin")


@dataclass
class Call:
    """One request as a handler sees it: `c` is the container (`c.rentals`, `c.auth`, …),
    `raw` the body as received, `body` the parsed JSON object (parsed on first use)."""

    c: bootstrap.Container
    params: dict[str, str]
    headers: Mapping[str, str]
    query: dict[str, str]
    method: str
    route: str
    raw: bytes
    principal: str = ""
    wallet: str | None = None  # the renter whose credentials checked out, if any
    client: str = ""  # who asks: `ip:{source IP}` (services budget what it makes us ask the chain)
    device: Device | None = None  # the device whose X-Device-Key verified at the edge, if any
    report: ReportContext | None = None  # that device and the path's contract, as read with it
    device_refusal: e.Unauthorized | None = None  # why the X-Device-Key did not verify
    _body: dict[str, Any] | None = None

    @property
    def body(self) -> dict[str, Any]:
        if self._body is None:
            self._body = parse_json(self.raw)
        return self._body

    def signed_path(self) -> str:
        """The route's path as the renter signs it, with this request's path parameters."""
        path = self.route
        for name, value in self.params.items():
            path = path.replace("{" + name + "}", value)
        return path


# A route's function: what it returns is shaped by `shape` (a dict/list, `(status, body)` or a Response).
Handler = Callable[[Call], object]


def source_ip(request: Request) -> str:
    return ((request.context or {}).get("identity") or {}).get("sourceIp") or "unknown"


def check_content_type(headers: Mapping[str, str]) -> None:
    """UnsupportedMediaType unless a body's Content-Type (absent: JSON) names one of
    CONTENT_TYPES, parameters such as charset allowed."""
    given = headers.get("content-type")
    if given is not None and {p.strip().lower() for p in given.replace(",", ";").split(";")}.isdisjoint(CONTENT_TYPES):
        raise UnsupportedMediaType(f"Content-Type must be one of {', '.join(CONTENT_TYPES)}.", reason="Content-Type")


def verified_device(
    c: bootstrap.Container, auth: str | None, headers: Mapping[str, str], params: dict[str, str], raw: bytes = b""
) -> tuple[ReportContext | None, e.Unauthorized | None]:
    """(report, refusal) of a device route: the device whose X-Device-Key verifies and the
    contract of the path, read together in ONE read (none for a malformed key; the metrics
    path reuses both), or the Unauthorized to answer once the request has been counted
    against its address."""
    if auth != "device":
        return None, None
    key = headers.get("x-device-key")
    try:
        report = c.telemetry.read(key, _contract_param(params), receipt_seq(raw))
        c.auth.key_of(report.device, key)
        return report, None
    except e.Unauthorized as err:
        return None, err


def receipt_seq(raw: bytes) -> int | None:
    """The `receipt.seq` a device report's body names, if any: the receipt before it is read with
    the device and the contract (`Telemetry.read`). Only a hint: the handler parses the body again
    and checks what it names."""
    if b'"receipt"' not in raw or len(raw) > MAX_BODY_BYTES:
        return None
    try:
        r = parse_json(raw).get("receipt")
    except e.InvalidRequest:
        return None
    seq = r.get("seq") if isinstance(r, dict) else None
    return seq if isinstance(seq, int) and not isinstance(seq, bool) and 1 <= seq < 10**10 else None


def _contract_param(params: dict[str, str]) -> str | None:
    try:
        return contract_id(params.get("contract_id", ""))
    except e.NotFound:
        return None


def rate_limit(c: bootstrap.Container, device: Device | None, ip: str) -> None:
    """A device whose key verified counts against its own window; everything else (forged or
    malformed keys included) against the client IP."""
    s = c.settings
    if device is not None:
        c.rate_limit.check(f"dev:{device.device_id}", *s.device_rate_limit, "device", s.rate_limit_shared)
    else:
        c.rate_limit.check(f"ip:{ip}", *s.rate_limit, "address", s.rate_limit_shared)


def authenticate(c: bootstrap.Container, call: Call, mode: str | None, ip: str) -> None:
    """Check the route's credentials and set `call.principal` (and `call.wallet`).

    renter:          X-Wallet/X-Timestamp/X-Signature required, over the raw body's hash.
    renter_optional: the same when any renter header is present (a bad one is 401, never
                     ignored); none at all is an anonymous request (a memo-bound payment).
    device:          X-Device-Key, verified before the rate limit (`verified_device`).
    admin:           X-Admin-Key.
    renter_or_admin: the renter's signature when any renter header is present (a bad one is
                     401, never ignored), else X-Admin-Key.
    """
    h = call.headers
    if mode == "renter_or_admin":
        mode = "renter" if any(h.get(k) for k in RENTER_HEADERS) else "admin"
    if mode in ("renter", "renter_optional") and (mode == "renter" or any(h.get(k) for k in RENTER_HEADERS)):
        call.wallet = c.auth.renter(renter_credentials(h), call.method, call.signed_path(), call.raw)
        call.principal = f"wallet:{call.wallet}"
    elif mode == "device":
        if call.device is None:
            raise call.device_refusal or e.Unauthorized("A valid X-Device-Key header is required.", "X-Device-Key")
        call.principal = f"device:{call.device.device_id}"
    elif mode == "admin":
        c.auth.admin(h.get("x-admin-key"))
        call.principal = "admin"
    else:
        call.principal = f"ip:{ip}"


def shape(result: object) -> Response:
    if isinstance(result, Response):
        return result
    if isinstance(result, tuple):
        return json_response(result[0], result[1])
    return json_response(200, result)


def run_post(c: bootstrap.Container, call: Call, fn: Handler, auth: str | None) -> Response:
    """A POST: under its Idempotency-Key when it has credentials; with none (a payment-bound
    rent or extend), the payment's receipt is its replay and the key is not stored."""
    key = check_key(call.headers.get("idempotency-key"))
    if key is None or (auth == "renter_optional" and call.wallet is None):
        return shape(fn(call))
    scope = f"{call.principal} {call.method} {call.route} {sorted(call.params.items())} {key}"
    out = c.idempotency.run(scope, call.raw, call.method, c.settings.idempotency_lease_seconds, lambda: shape(fn(call)))
    if isinstance(out, Replay):
        return Response(
            body=out.response, status_code=out.status, headers={**JSON_HEADERS, "Idempotent-Replayed": "true"}
        )
    return out


def _guarded(request: Request, request_id: str, what: str, answer: Callable[[], Response]) -> Response:
    """`answer()`, with a domain error in the error shape and a bug as the 500 body; the error's
    code is handed to the request's log line."""
    try:
        return answer()
    except e.DomainError as err:
        observability.annotate(code=status_of(err)[1])
        return error_response(err, request_id)
    except Exception:
        log.exception("unhandled error request_id=%s %s %s", request_id, request.method, what)
        observability.annotate(code="internal")
        return internal_response(request_id)


def _request_id(request: Request) -> str:
    """The id of the request's log line (API Gateway's), which its 5xx body names."""
    return observability.current_request_id() or (request.context or {}).get("requestId") or uuid.uuid4().hex


def _register_preflight(bp: Blueprint, path: str, routes: dict[str, str]) -> None:
    def preflight(**params: str) -> Response:
        request = bp.current_request

        def answer() -> Response:
            c = bootstrap.container()
            limit, window = c.settings.rate_limit
            c.rate_limit.check_instance(f"ip:{source_ip(request)}", limit, window, "address")
            return cors.preflight(c.settings, request.headers, routes)

        resp = _guarded(request, _request_id(request), path, answer)
        resp.headers["Vary"] = "Origin"  # a refused preflight carries no grant
        return resp

    preflight.__name__ = "preflight_" + "".join(ch if ch.isalnum() else "_" for ch in path)
    bp.route(path, methods=["OPTIONS"], content_types=ROUTE_CONTENT_TYPES)(preflight)


def endpoint(
    bp: Blueprint, path: str, methods: Sequence[str] = ("GET",), auth: str | None = None, operation: str | None = None
) -> Callable[[Handler], Handler]:
    """Register `fn(call)` on a blueprint with the shared edge behaviour; `auth` is one of
    AUTH_MODES (see `authenticate`); `operation` names it on the request's log line (default:
    the generic name of method and path). The path also answers CORS preflights (OPTIONS)."""
    if auth not in AUTH_MODES:
        raise ValueError(f"unknown auth mode {auth!r}")
    if "POST" in methods and auth is None:
        # a POST changes something: its credentials must be checked here, before any
        # Idempotency-Key replay, never left to the handler (which a replay skips)
        raise ValueError(f"POST {path} must name its credentials (auth=...)")

    def register(fn: Handler) -> Handler:
        def view(**params: str) -> Response:
            request = bp.current_request
            holder: dict[str, bootstrap.Container] = {}

            def answer() -> Response:
                c = holder["c"] = bootstrap.container()
                ip = source_ip(request)
                # chalice annotates raw_body `str | bytes`; the property always returns bytes
                raw = cast(bytes, request.raw_body or b"")
                report, refusal = verified_device(c, auth, request.headers, params, raw)
                device = report.device if report else None
                rate_limit(c, device, ip)
                if request.method == "POST":
                    check_content_type(request.headers)
                if len(raw) > MAX_BODY_BYTES:
                    raise PayloadTooLarge(f"The body is over {MAX_BODY_BYTES} bytes.", reason="body")
                call = Call(c, params, request.headers, dict(request.query_params or {}), request.method, path, raw)
                call.device, call.report, call.device_refusal = device, report, refusal
                call.client = f"ip:{ip}"
                authenticate(c, call, auth, ip)
                return run_post(c, call, fn, auth) if request.method == "POST" else shape(fn(call))

            resp = _guarded(request, _request_id(request), path, answer)
            if "c" in holder:
                kind = cors.exposure(auth, request.method)
                resp.headers.update(cors.headers_for(kind, request.headers.get("origin"), holder["c"].settings))
            return resp

        view.__name__ = fn.__name__
        name = operation or observability.operation_of(methods[0].upper(), path)
        logged = observability.observed(path, lambda: bp.current_request, name)(view)  # one JSON line a request
        logged.operation = name  # type: ignore[attr-defined]  # what the log line calls it
        logged.auth = auth  # type: ignore[attr-defined]  # the credentials it checks (the OpenAPI security)
        bp.route(path, methods=list(methods), content_types=ROUTE_CONTENT_TYPES)(logged)
        routes = bp.__dict__.setdefault("_si64_cors_routes", {})  # path -> {METHOD: exposure}
        first = path not in routes
        routes.setdefault(path, {}).update({m.upper(): cors.exposure(auth, m.upper()) for m in methods})
        if first:
            _register_preflight(bp, path, routes[path])
        return fn

    return register
