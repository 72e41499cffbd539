"""Domain errors. Each carries the HTTP status, the stable code of API.md and a reason."""
from __future__ import annotations


class DomainError(Exception):
    status = 500
    code = "internal"

    def __init__(self, detail: str, reason: str | None = None, *, headers: dict | None = None):
        super().__init__(detail)
        self.detail = detail
        self.reason = reason
        self.headers = headers or {}

    def body(self) -> dict:
        return {"detail": self.detail, "code": self.code, "reason": self.reason}


class InvalidRequest(DomainError):
    status, code = 400, "invalid_request"


class Unauthorized(DomainError):
    status, code = 401, "unauthorized"


class PaymentInvalid(DomainError):
    status, code = 402, "payment_invalid"


class Forbidden(DomainError):
    status, code = 403, "forbidden"


class NotFound(DomainError):
    status, code = 404, "not_found"


class PaymentAlreadyUsed(DomainError):
    status, code = 409, "payment_already_used"


class ContractNotActive(DomainError):
    status, code = 409, "contract_not_active"


class IdempotencyMismatch(DomainError):
    status, code = 409, "idempotency_mismatch"


class NoCapacity(DomainError):
    status, code = 409, "no_capacity"


class PayloadTooLarge(DomainError):
    status, code = 413, "payload_too_large"


class RateLimited(DomainError):
    status, code = 429, "rate_limited"


class Unavailable(DomainError):
    status, code = 503, "unavailable"


class Conflict(Exception):
    """A conditional write did not apply. `failed` names the items whose condition
    failed; `contended` those that collided with a concurrent transaction."""

    def __init__(self, failed=(), contended=()):
        super().__init__(f"failed={list(failed)} contended={list(contended)}")
        self.failed = set(failed)
        self.contended = set(contended)
