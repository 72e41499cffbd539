"""Errors of the HTTP edge and their answers: every error is `{"detail", "code", "reason"}`
(+ `request_id` on a 5xx) with a stable code per class (docs/api.md "Errors")."""

from __future__ import annotations

from typing import Any

from chalice import Response

import si64_protocol as codes

from .. import jsontext
from ..domain import errors as e
from ..services.idempotency import IdempotencyInProgress, IdempotencyMismatch
from ..services.ratelimit import RateLimited

JSON_HEADERS = {"Content-Type": "application/json", "Cache-Control": "no-store"}

__all__ = [
    "INTERNAL",
    "STATUS",
    "IdempotencyInProgress",
    "IdempotencyMismatch",
    "OriginNotAllowed",
    "PayloadTooLarge",
    "RateLimited",
    "UnsupportedMediaType",
    "error_response",
    "internal_response",
    "json_response",
    "status_of",
]


class OriginNotAllowed(e.DomainError):
    """A CORS preflight this route does not allow (origin, method or headers)."""


class PayloadTooLarge(e.DomainError):
    """A body over MAX_BODY_BYTES."""


class UnsupportedMediaType(e.DomainError):
    """A Content-Type the API does not read (it reads JSON, sent under any of CONTENT_TYPES)."""


# Error class → (HTTP status, stable code). Looked up along the class's MRO, so a subclass
# answers like its parent unless it is listed itself.
STATUS: dict[type, tuple[int, str]] = {
    e.InvalidRequest: (400, codes.INVALID_REQUEST),
    e.Unauthorized: (401, codes.UNAUTHORIZED),
    e.PaymentInvalid: (402, codes.PAYMENT_INVALID),
    e.Forbidden: (403, codes.FORBIDDEN),
    e.NotFound: (404, codes.NOT_FOUND),
    e.PaymentAlreadyUsed: (409, codes.PAYMENT_ALREADY_USED),
    e.ContractNotActive: (409, codes.CONTRACT_NOT_ACTIVE),
    IdempotencyMismatch: (409, codes.IDEMPOTENCY_MISMATCH),
    IdempotencyInProgress: (409, codes.IDEMPOTENCY_IN_PROGRESS),
    OriginNotAllowed: (403, codes.FORBIDDEN),
    e.NoCapacity: (409, codes.NO_CAPACITY),
    e.ReceiptSequence: (409, codes.RECEIPT_SEQUENCE),
    PayloadTooLarge: (413, codes.PAYLOAD_TOO_LARGE),
    UnsupportedMediaType: (415, codes.UNSUPPORTED_MEDIA_TYPE),
    RateLimited: (429, codes.RATE_LIMITED),
    e.TooManyLookups: (429, codes.RATE_LIMITED),
    e.Unavailable: (503, codes.UNAVAILABLE),
}
INTERNAL = (500, codes.INTERNAL)


def status_of(err: e.DomainError) -> tuple[int, str]:
    """(status, code) of a domain error; an unmapped class is a bug: 500 internal."""
    return next((STATUS[k] for k in type(err).__mro__ if k in STATUS), INTERNAL)


def json_response(status: int, body: Any, headers: dict[str, str] | None = None) -> Response:
    return Response(body=jsontext.dumps(body), status_code=status, headers={**JSON_HEADERS, **(headers or {})})


def error_response(err: e.DomainError, request_id: str) -> Response:
    status, code = status_of(err)
    body = {"detail": err.detail, "code": code, "reason": err.reason}
    if status >= 500:
        body["request_id"] = request_id
    retry = getattr(err, "retry_after", None)
    return json_response(status, body, {"Retry-After": str(retry)} if retry is not None else None)


def internal_response(request_id: str) -> Response:
    """The answer to a bug: no detail of it, only the request id that its log line carries."""
    body = {"detail": "Internal error; it has been logged.", "code": INTERNAL[1], "reason": None}
    return json_response(INTERNAL[0], {**body, "request_id": request_id})
