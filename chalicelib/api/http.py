"""The HTTP edge shared by every blueprint: body limits, JSON parsing, rate
limiting, credentials, Idempotency-Key replay, and errors in the API.md shape.

Route handlers stay thin: `@endpoint(bp, path, methods, auth=…)` hands them a
`Call` (path params, parsed body, headers, query, container, the authenticated
principal) and shapes whatever they return — a dict/list (200) or
`(status, body)` — into a JSON response.

Credentials are checked here, BEFORE any Idempotency-Key replay, and every key
is scoped to the principal that checked out (a wallet, a device, the operator;
anonymous requests by client IP), so a replay never answers someone who could
not have made the request.
"""
from __future__ import annotations

import hashlib
import logging
import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass
from typing import Any

from chalice import Response

from .. import bootstrap, jsontext
from ..domain import errors as e
from ..domain.records import Replay
from .schemas import MAX_BODY_BYTES, parse_json, renter_credentials

log = logging.getLogger("si64.api")
CONTENT_TYPES = ["application/json", "text/plain", "application/x-www-form-urlencoded",
                 "application/octet-stream"]
JSON_HEADERS = {"Content-Type": "application/json", "Cache-Control": "no-store"}


# --- errors of the edge itself (not domain rules) ------------------------------------
class IdempotencyMismatch(e.DomainError):
    """An Idempotency-Key reused with a different body."""


class PayloadTooLarge(e.DomainError):
    """A body over MAX_BODY_BYTES."""


class RateLimited(e.DomainError):
    def __init__(self, detail: str, reason: str | None = None, *, retry_after: int):
        super().__init__(detail, reason)
        self.retry_after = retry_after


# Error class → (HTTP status, stable code) of API.md "Errors". Looked up along the
# class's MRO, so a subclass answers like its parent unless it is listed itself.
STATUS: dict[type, tuple[int, str]] = {
    e.InvalidRequest: (400, "invalid_request"),
    e.Unauthorized: (401, "unauthorized"),
    e.PaymentInvalid: (402, "payment_invalid"),
    e.Forbidden: (403, "forbidden"),
    e.NotFound: (404, "not_found"),
    e.PaymentAlreadyUsed: (409, "payment_already_used"),
    e.ContractNotActive: (409, "contract_not_active"),
    IdempotencyMismatch: (409, "idempotency_mismatch"),
    e.NoCapacity: (409, "no_capacity"),
    PayloadTooLarge: (413, "payload_too_large"),
    RateLimited: (429, "rate_limited"),
    e.Unavailable: (503, "unavailable"),
}
INTERNAL = (500, "internal")


def status_of(err: e.DomainError) -> tuple[int, str]:
    """(status, code) of a domain error; an unmapped class is a bug: 500 internal."""
    return next((STATUS[k] for k in type(err).__mro__ if k in STATUS), INTERNAL)


def json_response(status: int, body: Any, headers: dict | None = None) -> Response:
    return Response(body=jsontext.dumps(body), status_code=status,
                    headers={**JSON_HEADERS, **(headers or {})})


def error_response(err: e.DomainError, request_id: str) -> Response:
    status, code = status_of(err)
    body = {"detail": err.detail, "code": code, "reason": err.reason}
    if status >= 500:
        body["request_id"] = request_id
    headers = {"Retry-After": str(err.retry_after)} if isinstance(err, RateLimited) else None
    return json_response(status, body, headers)


class RateLimiter:
    """Sliding window per client IP, per function instance. API Gateway's own
    throttling (or a WAF rate rule) bounds the fleet; this keeps one instance fair."""

    def __init__(self):
        self._hits: dict[str, deque] = {}
        self._lock = threading.Lock()

    def check(self, ip: str, limit: int, window_s: int, now: float) -> None:
        with self._lock:
            q = self._hits.setdefault(ip, deque())
            while q and q[0] <= now - window_s:
                q.popleft()
            if len(q) >= limit:
                retry = max(1, int(q[0] + window_s - now + 0.999))
                raise RateLimited(f"More than {limit} requests in {window_s} s from this address.",
                                  reason="ip", retry_after=retry)
            q.append(now)
            if len(self._hits) > 10_000:  # bound memory: forget idle clients
                for k in [k for k, v in self._hits.items() if not v or v[-1] <= now - window_s][:5_000]:
                    del self._hits[k]


limiter = RateLimiter()


@dataclass
class Call:
    """One request as a handler sees it: `c` is the container (`c.rentals`, `c.auth`, …),
    `raw` the body as received, `body` the parsed JSON object (parsed on first use)."""
    c: bootstrap.Container
    params: dict
    headers: Any
    query: dict
    method: str
    route: str
    raw: bytes
    principal: str = ""
    wallet: str | None = None  # the renter whose credentials checked out, if any
    _body: dict | None = None

    @property
    def body(self) -> dict:
        if self._body is None:
            self._body = parse_json(self.raw)
        return self._body


def _source_ip(request) -> str:
    ctx = request.context or {}
    return (ctx.get("identity") or {}).get("sourceIp") or "unknown"


RENTER_HEADERS = ("x-wallet", "x-timestamp", "x-signature")
AUTH_MODES = (None, "renter", "renter_optional", "device", "admin")


def _authenticate(c, call: Call, mode: str | None, ip: str) -> None:
    """Check the route's credentials and set `call.principal` (and `call.wallet`).

    renter:          X-Wallet/X-Timestamp/X-Signature required, over the raw body's hash.
    renter_optional: the same when any renter header is present (a bad one is 401, never
                     ignored); none at all is an anonymous request (a memo-bound payment).
    device:          X-Device-Key; fully checked here only when an Idempotency-Key asks for a
                     replay (the metrics path checks the key in its own single write otherwise).
    admin:           X-Admin-Key.
    """
    h = call.headers
    if mode in ("renter", "renter_optional") and (mode == "renter" or any(h.get(k) for k in RENTER_HEADERS)):
        call.wallet = c.auth.renter(renter_credentials(h), call.method, _signed_path(call), call.raw)
        call.principal = f"wallet:{call.wallet}"
    elif mode == "device":
        key = h.get("x-device-key")
        if h.get("idempotency-key") is not None:
            call.principal = f"device:{c.auth.device(key)}"
        else:
            from ..services.telemetry import device_of_key
            call.principal = f"device:{device_of_key(key)}"
    elif mode == "admin":
        c.auth.admin(h.get("x-admin-key"))
        call.principal = "admin"
    else:
        call.principal = f"ip:{ip}"


def _signed_path(call: Call) -> str:
    """The route's path as API.md writes it, with the path parameters of this request."""
    path = call.route
    for name, value in call.params.items():
        path = path.replace("{" + name + "}", value)
    return path


def _idempotency(c, call: Call, handler) -> Response:
    key = call.headers.get("idempotency-key")
    if key is None:
        return _shape(handler(call))
    if not key or len(key) > 255:
        raise e.InvalidRequest("Idempotency-Key must be 1 to 255 characters.", reason="Idempotency-Key")
    body_hash = hashlib.sha256(call.method.encode() + b" " + call.raw).hexdigest()
    scope = f"{call.principal} {call.method} {call.route} {sorted(call.params.items())} {key}"
    scoped = hashlib.sha256(scope.encode()).hexdigest()
    now = c.clock()
    seen = c.claims.get_replay(scoped, now)
    if seen is None:
        resp = _shape(handler(call))
        if resp.status_code >= 500:
            return resp
        seen = c.claims.put_replay(scoped, Replay(body_hash, resp.status_code, resp.body), now)
        if seen is None:
            return resp
    if seen.body_hash != body_hash:
        raise IdempotencyMismatch("This Idempotency-Key was used with a different body.",
                                  reason="Idempotency-Key")
    return Response(body=seen.response, status_code=seen.status,
                    headers={**JSON_HEADERS, "Idempotent-Replayed": "true"})


def _shape(result) -> Response:
    if isinstance(result, Response):
        return result
    if isinstance(result, tuple):
        return json_response(result[0], result[1])
    return json_response(200, result)


def endpoint(bp, path: str, methods=("GET",), auth: str | None = None):
    """Register `fn(call)` on a blueprint with the shared edge behaviour; `auth` is one of
    AUTH_MODES (see `_authenticate`)."""
    if auth not in AUTH_MODES:
        raise ValueError(f"unknown auth mode {auth!r}")

    def register(fn):
        def view(**params):
            request = bp.current_request
            ctx = request.context or {}
            request_id = ctx.get("requestId") or uuid.uuid4().hex
            try:
                c = bootstrap.container()
                limit, window = c.settings.rate_limit
                ip = _source_ip(request)
                limiter.check(ip, limit, window, time.monotonic())
                raw = request.raw_body or b""
                if len(raw) > MAX_BODY_BYTES:
                    raise PayloadTooLarge(f"The body is over {MAX_BODY_BYTES} bytes.", reason="body")
                call = Call(c, params, request.headers, dict(request.query_params or {}), request.method, path, raw)
                _authenticate(c, call, auth, ip)
                if request.method == "POST":
                    return _idempotency(c, call, fn)
                return _shape(fn(call))
            except e.DomainError as err:
                return error_response(err, request_id)
            except Exception:
                log.exception("unhandled error request_id=%s %s %s", request_id, request.method, path)
                return json_response(500, {"detail": "Internal error; it has been logged.", "code": "internal",
                                           "reason": None, "request_id": request_id})
        view.__name__ = fn.__name__
        bp.route(path, methods=list(methods), content_types=CONTENT_TYPES)(view)
        return fn
    return register
