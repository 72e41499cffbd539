"""The HTTP edge shared by every blueprint: body limits, JSON parsing, rate
limiting, credentials, Idempotency-Key replay, CORS, and errors in the API.md shape.

Route handlers stay thin: `@endpoint(bp, path, methods, auth=…)` hands them a
`Call` (path params, parsed body, headers, query, container, the authenticated
principal) and shapes whatever they return — a dict/list (200) or
`(status, body)` — into a JSON response.

Credentials are checked here, BEFORE any Idempotency-Key replay, and every key
is scoped to the principal that checked out (a wallet, a device, the operator;
anonymous requests by client IP), so a replay never answers someone who could
not have made the request.

Rate limit, Idempotency-Key and CORS: docs/adr/0009-rate-limit-and-idempotency.md.
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

from .. import bootstrap, jsontext, observability
from ..domain import errors as e
from ..domain.records import Replay
from .schemas import MAX_BODY_BYTES, parse_json, renter_credentials

log = logging.getLogger("si64.api")
CONTENT_TYPES = ["application/json", "text/plain", "application/x-www-form-urlencoded", "application/octet-stream"]
JSON_HEADERS = {"Content-Type": "application/json", "Cache-Control": "no-store"}


# --- errors of the edge itself (not domain rules) ------------------------------------
class IdempotencyMismatch(e.DomainError):
    """An Idempotency-Key reused with a different body."""


class IdempotencyInProgress(e.DomainError):
    """The first request with this Idempotency-Key is still running: retry shortly."""

    retry_after = 1


class OriginNotAllowed(e.DomainError):
    """A CORS preflight this route does not allow (origin, method or headers)."""


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
    IdempotencyInProgress: (409, "idempotency_in_progress"),
    OriginNotAllowed: (403, "forbidden"),
    e.NoCapacity: (409, "no_capacity"),
    PayloadTooLarge: (413, "payload_too_large"),
    RateLimited: (429, "rate_limited"),
    e.TooManyLookups: (429, "rate_limited"),
    e.Unavailable: (503, "unavailable"),
}
INTERNAL = (500, "internal")


def status_of(err: e.DomainError) -> tuple[int, str]:
    """(status, code) of a domain error; an unmapped class is a bug: 500 internal."""
    return next((STATUS[k] for k in type(err).__mro__ if k in STATUS), INTERNAL)


def json_response(status: int, body: Any, headers: dict | None = None) -> Response:
    return Response(body=jsontext.dumps(body), status_code=status, headers={**JSON_HEADERS, **(headers or {})})


def error_response(err: e.DomainError, request_id: str) -> Response:
    status, code = status_of(err)
    body = {"detail": err.detail, "code": code, "reason": err.reason}
    if status >= 500:
        body["request_id"] = request_id
    retry = getattr(err, "retry_after", None)
    return json_response(status, body, {"Retry-After": str(retry)} if retry is not None else None)


class RateLimiter:
    """The first line, per function instance: a sliding window per subject (an IP, a device
    key) in this instance's memory, and the windows of the shared counter this instance
    already saw full (refused without a write until the window ends). The fleet-wide limit
    is the shared counter (`_rate_limit`); see ADR 0009."""

    def __init__(self):
        self._hits: dict[str, deque] = {}
        self._full: dict[str, int] = {}  # subject -> start (ms) of a shared window known full
        self._lock = threading.Lock()

    def check(self, subject: str, limit: int, window_s: int, now: float, what: str = "address") -> None:
        with self._lock:
            q = self._hits.setdefault(subject, deque())
            while q and q[0] <= now - window_s:
                q.popleft()
            if len(q) >= limit:
                retry = max(1, int(q[0] + window_s - now + 0.999))
                raise RateLimited(
                    f"More than {limit} requests in {window_s} s from this {what}.",
                    reason=_REASON.get(what, "ip"),
                    retry_after=retry,
                )
            q.append(now)
            if len(self._hits) > 10_000:  # bound memory: forget idle clients
                for k in [k for k, v in self._hits.items() if not v or v[-1] <= now - window_s][:5_000]:
                    del self._hits[k]

    def known_full(self, subject: str, window_start_ms: int) -> bool:
        with self._lock:
            return self._full.get(subject) == window_start_ms

    def mark_full(self, subject: str, window_start_ms: int) -> None:
        with self._lock:
            if len(self._full) > 10_000:
                self._full = {k: v for k, v in self._full.items() if v >= window_start_ms}
            self._full[subject] = window_start_ms


_REASON = {"address": "ip", "device": "device"}
limiter = RateLimiter()
_last_fail_open = [0.0]  # monotonic time of the last "limiter unavailable" log line


def _rate_subject(c, auth: str | None, headers, ip: str) -> tuple[str, tuple[int, int], str]:
    """(subject, (limit, window_s), what): a well-formed X-Device-Key on a device route counts
    against that key (its hash: no read, and nobody without the key can spend its budget);
    everything else against the client IP."""
    if auth == "device":
        from ..services.telemetry import device_of_key

        key = headers.get("x-device-key")
        try:
            device_of_key(key)  # the key's shape only (no read): a malformed one counts per IP
        except e.Unauthorized:
            pass
        else:
            digest = hashlib.sha256(key.encode()).hexdigest()[:32]
            return f"dev:{digest}", c.settings.device_rate_limit, "device"
    return f"ip:{ip}", c.settings.rate_limit, "address"


def _rate_limit(c, subject: str, limit: int, window_s: int, what: str, shared: bool = True) -> None:
    """RateLimited unless `subject` is within `limit` per `window_s`: first this instance's
    window (no I/O), then the fleet-wide fixed window in the claims table (one conditional
    UpdateItem). When that write does not answer, the request passes (fail open, logged at
    most every 10 s) with the instance's window still enforced."""
    limiter.check(subject, limit, window_s, time.monotonic(), what)
    if not (shared and c.settings.rate_limit_shared):
        return
    now = c.clock()
    window_ms = window_s * 1000
    start = now - now % window_ms
    retry = max(1, -(-(start + window_ms - now) // 1000))
    refused = RateLimited(
        f"More than {limit} requests in {window_s} s from this {what}.", reason=_REASON[what], retry_after=retry
    )
    if limiter.known_full(subject, start):
        raise refused
    try:
        count = c.claims.count_request(subject, start, window_ms, limit)
    except e.Unavailable:
        mono = time.monotonic()
        if mono - _last_fail_open[0] >= 10:
            _last_fail_open[0] = mono
            log.warning(
                "rate limiter: the claims table did not answer; failing open (the per-instance limit still applies)"
            )
        return
    if count is None or count >= limit:
        limiter.mark_full(subject, start)
    if count is None:
        raise refused


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
    client: str = ""  # who asks: `ip:{source IP}` (services budget what it makes us ask the chain)
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
ANONYMOUS_POSTS: frozenset[str] = frozenset()  # none today: every POST names its credentials


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
    """Stripe semantics without check-then-act (as Powertools' idempotency utility): the key
    is taken by ONE conditional write of an in-progress record BEFORE the handler runs; a
    concurrent duplicate meets that record and gets 409 idempotency_in_progress (it never
    runs); the answer replaces the record and is replayed for 24 h (same body) or refused
    with 409 idempotency_mismatch (another body). A failed request (an error answer, a 5xx,
    an exception) deletes the record: a retry runs again. A crash leaves the record until its
    lease ends (SI64_IDEMPOTENCY_LEASE_SECONDS, above the Lambda timeout); then it may be taken."""
    key = call.headers.get("idempotency-key")
    if key is None:
        return _shape(handler(call))
    if not key or len(key) > 255:
        raise e.InvalidRequest("Idempotency-Key must be 1 to 255 characters.", reason="Idempotency-Key")
    body_hash = hashlib.sha256(call.method.encode() + b" " + call.raw).hexdigest()
    scope = f"{call.principal} {call.method} {call.route} {sorted(call.params.items())} {key}"
    scoped = hashlib.sha256(scope.encode()).hexdigest()
    started = c.clock()
    seen = c.claims.begin_replay(scoped, body_hash, started, c.settings.idempotency_lease_seconds * 1000)
    if seen is not None:
        return _replayed(seen, body_hash)
    try:
        resp = _shape(handler(call))
    except Exception:
        _release(c, scoped, started)
        raise
    if resp.status_code >= 400:
        _release(c, scoped, started)
        return resp
    try:
        stored = c.claims.finish_replay(scoped, Replay(body_hash, resp.status_code, resp.body), started, c.clock())
    except Exception:  # the request committed: its client gets its answer whatever the record does
        log.exception("idempotency: storing the answer failed")
        stored = False
    if not stored:  # committed, answered; the key stays in progress until its lease ends
        log.warning("idempotency: the answer of a request was not stored (lease lost or table down)")
    return resp


def _replayed(seen: Replay, body_hash: str) -> Response:
    if seen.body_hash != body_hash:
        raise IdempotencyMismatch("This Idempotency-Key was used with a different body.", reason="Idempotency-Key")
    if seen.in_progress:
        raise IdempotencyInProgress(
            "A request with this Idempotency-Key is still in progress; retry shortly.", reason="Idempotency-Key"
        )
    return Response(
        body=seen.response, status_code=seen.status, headers={**JSON_HEADERS, "Idempotent-Replayed": "true"}
    )


def _release(c, scoped: str, started: int) -> None:
    try:
        c.claims.release_replay(scoped, started)
    except Exception:  # the lease ends on its own; never mask the answer
        log.warning("idempotency: could not release a key; it frees itself when its lease ends", exc_info=True)


def _shape(result) -> Response:
    if isinstance(result, Response):
        return result
    if isinstance(result, tuple):
        return json_response(result[0], result[1])
    return json_response(200, result)


# --- CORS (ADR 0009) ---------------------------------------------------------------------
# Exposure of a route to other origins, from its auth mode and method:
#   public  (no credentials, GET): any origin, "*";
#   renter  (renter credentials, or none on a POST): the origins of SI64_CORS_ORIGINS;
#   admin:  the origins of SI64_CORS_ADMIN_ORIGINS (none by default);
#   device: never (device agents are not browsers).
# Chalice's CORSConfig holds one static origin per route, so preflights are answered here:
# every endpoint path gets an OPTIONS view that checks Origin, method and headers.
CORS_REQUEST_HEADERS = ("content-type", "idempotency-key", "x-wallet", "x-timestamp", "x-signature")
CORS_ADMIN_HEADERS = (*CORS_REQUEST_HEADERS, "x-admin-key")
CORS_EXPOSED = "Retry-After, Idempotent-Replayed"
CORS_MAX_AGE = "600"
_cors_routes: dict[tuple[int, str], dict[str, str]] = {}  # (id(bp), path) -> {METHOD: exposure}


def exposure(auth: str | None, method: str) -> str:
    if auth == "admin":
        return "admin"
    if auth == "device":
        return "device"
    if auth is None and method in ("GET", "HEAD"):
        return "public"
    return "renter"


def allowed_origin(kind: str, origin: str | None, settings) -> str | None:
    """The Access-Control-Allow-Origin value for `origin` on a route of this exposure, or None."""
    if not origin or kind == "device":
        return None
    if kind == "public":
        return "*"
    allowed = settings.cors_admin_origins if kind == "admin" else settings.cors_origins
    if "*" in allowed:
        return "*"
    return origin if origin.rstrip("/") in allowed else None


def _cors_headers(kind: str, origin: str | None, settings) -> dict:
    allow = allowed_origin(kind, origin, settings)
    headers = {} if kind == "public" else {"Vary": "Origin"}
    if allow:
        headers.update({"Access-Control-Allow-Origin": allow, "Access-Control-Expose-Headers": CORS_EXPOSED})
    return headers


def _preflight(c, request, routes: dict[str, str]) -> Response:
    """OPTIONS: 204 with the CORS grant when Origin, Access-Control-Request-Method and
    -Headers are allowed for this path; 403 forbidden (reason origin/method/headers) otherwise.
    Without Origin (not a browser preflight): 204 and `Allow`."""
    h = request.headers
    origin, wanted = h.get("origin"), (h.get("access-control-request-method") or "").upper()
    methods = sorted(routes)
    if not origin or not wanted:
        return Response(body="", status_code=204, headers={"Allow": ", ".join([*methods, "OPTIONS"])})
    if wanted not in routes:
        raise OriginNotAllowed(f"{wanted} is not a method of this path.", reason="method")
    kind = routes[wanted]
    allow = allowed_origin(kind, origin, c.settings)
    if allow is None:
        raise OriginNotAllowed("This origin may not call this route.", reason="origin")
    permitted = CORS_ADMIN_HEADERS if kind == "admin" else CORS_REQUEST_HEADERS
    asked = [x.strip().lower() for x in (h.get("access-control-request-headers") or "").split(",") if x.strip()]
    if extra := [x for x in asked if x not in permitted]:
        raise OriginNotAllowed(f"Header(s) not allowed cross-origin: {', '.join(extra)}.", reason="headers")
    same = [m for m in methods if allowed_origin(routes[m], origin, c.settings)]
    return Response(
        body="",
        status_code=204,
        headers={
            "Access-Control-Allow-Origin": allow,
            "Access-Control-Allow-Methods": ", ".join([*same, "OPTIONS"]),
            "Access-Control-Allow-Headers": ", ".join(permitted),
            "Access-Control-Max-Age": CORS_MAX_AGE,
            "Vary": "Origin",
            "Cache-Control": "no-store",
        },
    )


def _register_preflight(bp, path: str, routes: dict[str, str]) -> None:
    def preflight(**params):
        request = bp.current_request
        ctx = request.context or {}
        request_id = ctx.get("requestId") or uuid.uuid4().hex
        try:
            c = bootstrap.container()
            limit, window = c.settings.rate_limit
            _rate_limit(c, f"ip:{_source_ip(request)}", limit, window, "address", shared=False)
            return _preflight(c, request, routes)
        except e.DomainError as err:
            resp = error_response(err, request_id)
        except Exception:
            log.exception("unhandled error request_id=%s OPTIONS %s", request_id, path)
            resp = json_response(
                500,
                {
                    "detail": "Internal error; it has been logged.",
                    "code": "internal",
                    "reason": None,
                    "request_id": request_id,
                },
            )
        resp.headers["Vary"] = "Origin"  # a refused preflight carries no grant
        return resp

    preflight.__name__ = "preflight_" + "".join(ch if ch.isalnum() else "_" for ch in path)
    bp.route(path, methods=["OPTIONS"], content_types=CONTENT_TYPES)(preflight)


def endpoint(bp, path: str, methods=("GET",), auth: str | None = None):
    """Register `fn(call)` on a blueprint with the shared edge behaviour; `auth` is one of
    AUTH_MODES (see `_authenticate`). The path also answers CORS preflights (OPTIONS)."""
    if auth not in AUTH_MODES:
        raise ValueError(f"unknown auth mode {auth!r}")
    if "POST" in methods and auth is None and path not in ANONYMOUS_POSTS:
        # a POST changes something: its credentials must be checked here, before any
        # Idempotency-Key replay, never left to the handler (which a replay skips)
        raise ValueError(f"POST {path} must name its credentials (auth=...)")

    def register(fn):
        def view(**params):
            request = bp.current_request
            ctx = request.context or {}
            request_id = ctx.get("requestId") or uuid.uuid4().hex
            kind = exposure(auth, request.method)
            c = None
            try:
                c = bootstrap.container()
                ip = _source_ip(request)
                subject, (limit, window), what = _rate_subject(c, auth, request.headers, ip)
                _rate_limit(c, subject, limit, window, what)
                raw = request.raw_body or b""
                if len(raw) > MAX_BODY_BYTES:
                    raise PayloadTooLarge(f"The body is over {MAX_BODY_BYTES} bytes.", reason="body")
                call = Call(c, params, request.headers, dict(request.query_params or {}), request.method, path, raw)
                call.client = f"ip:{ip}"
                _authenticate(c, call, auth, ip)
                if request.method == "POST":
                    resp = _idempotency(c, call, fn)
                else:
                    resp = _shape(fn(call))
            except e.DomainError as err:
                resp = error_response(err, request_id)
            except Exception:
                log.exception("unhandled error request_id=%s %s %s", request_id, request.method, path)
                resp = json_response(
                    500,
                    {
                        "detail": "Internal error; it has been logged.",
                        "code": "internal",
                        "reason": None,
                        "request_id": request_id,
                    },
                )
            if c is not None:
                resp.headers.update(_cors_headers(kind, request.headers.get("origin"), c.settings))
            return resp

        view.__name__ = fn.__name__
        logged = observability.observed(path, lambda: bp.current_request)(view)  # one JSON log line a request
        bp.route(path, methods=list(methods), content_types=CONTENT_TYPES)(logged)
        key = (id(bp), path)
        first = key not in _cors_routes
        routes = _cors_routes.setdefault(key, {})
        routes.update({m.upper(): exposure(auth, m.upper()) for m in methods})
        if first:
            _register_preflight(bp, path, routes)
        return fn

    return register
