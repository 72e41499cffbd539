"""The HTTP edge shared by every blueprint: body limits, JSON parsing, rate
limiting, Idempotency-Key replay, and errors in the API.md shape.

Route handlers stay thin: `@endpoint(bp, path, methods)` hands them a `Call`
(path params, parsed body, headers, query, container) and shapes whatever they
return — a dict/list (200) or `(status, body)` — into a JSON response.
"""
from __future__ import annotations

import hashlib
import json
import logging
import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass
from typing import Any

from chalice import Response

from .. import bootstrap
from ..domain.records import Replay
from ..domain.errors import DomainError, IdempotencyMismatch, InvalidRequest, PayloadTooLarge, RateLimited
from ..domain.validation import MAX_BODY_BYTES, parse_json

log = logging.getLogger("si64.api")
CONTENT_TYPES = ["application/json", "text/plain", "application/x-www-form-urlencoded",
                 "application/octet-stream"]
JSON_HEADERS = {"Content-Type": "application/json", "Cache-Control": "no-store"}


def json_response(status: int, body: Any, headers: dict | None = None) -> Response:
    return Response(body=json.dumps(body, separators=(",", ":")), status_code=status,
                    headers={**JSON_HEADERS, **(headers or {})})


def error_response(err: DomainError, request_id: str) -> Response:
    body = err.body()
    if err.status >= 500:
        body["request_id"] = request_id
    return json_response(err.status, body, err.headers)


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
                                  reason="ip", headers={"Retry-After": str(retry)})
            q.append(now)
            if len(self._hits) > 10_000:  # bound memory: forget idle clients
                for k in [k for k, v in self._hits.items() if not v or v[-1] <= now - window_s][:5_000]:
                    del self._hits[k]


limiter = RateLimiter()


@dataclass
class Call:
    c: Any
    params: dict
    headers: Any
    query: dict
    method: str
    route: str
    raw: bytes
    _body: dict | None = None

    @property
    def body(self) -> dict:
        if self._body is None:
            self._body = parse_json(self.raw)
        return self._body


def _source_ip(request) -> str:
    ctx = request.context or {}
    return (ctx.get("identity") or {}).get("sourceIp") or "unknown"


def _idempotency(c, call: Call, handler) -> Response:
    key = call.headers.get("idempotency-key")
    if key is None:
        return _shape(handler(call))
    if not key or len(key) > 255:
        raise InvalidRequest("Idempotency-Key must be 1 to 255 characters.", reason="Idempotency-Key")
    body_hash = hashlib.sha256(call.method.encode() + b" " + call.raw).hexdigest()
    scoped = hashlib.sha256(f"{call.method} {call.route} {sorted(call.params.items())} {key}".encode()).hexdigest()
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


def endpoint(bp, path: str, methods=("GET",)):
    """Register `fn(call)` on a blueprint with the shared edge behaviour."""
    def register(fn):
        def view(**params):
            request = bp.current_request
            ctx = request.context or {}
            request_id = ctx.get("requestId") or uuid.uuid4().hex
            try:
                c = bootstrap.container()
                limit, window = c.settings.rate_limit
                limiter.check(_source_ip(request), limit, window, time.monotonic())
                raw = request.raw_body or b""
                if len(raw) > MAX_BODY_BYTES:
                    raise PayloadTooLarge(f"The body is over {MAX_BODY_BYTES} bytes.", reason="body")
                call = Call(c, params, request.headers, dict(request.query_params or {}), request.method, path, raw)
                if request.method == "POST":
                    return _idempotency(c, call, fn)
                return _shape(fn(call))
            except DomainError as err:
                return error_response(err, request_id)
            except Exception:  # noqa: BLE001 - a bug: log it, never leak a stack trace
                log.exception("unhandled error request_id=%s %s %s", request_id, request.method, path)
                return json_response(500, {"detail": "Internal error; it has been logged.", "code": "internal",
                                           "reason": None, "request_id": request_id})
        view.__name__ = fn.__name__
        bp.route(path, methods=list(methods), content_types=CONTENT_TYPES)(view)
        return fn
    return register
