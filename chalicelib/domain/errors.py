"""Domain errors: what went wrong, in words (`detail`) and which field or check (`reason`).

They carry no HTTP status and no wire code: the edge (`chalicelib/api/errors.py`)
maps each class to the status and stable code of docs/api.md.
"""

from __future__ import annotations

from collections.abc import Iterable


class DomainError(Exception):
    """A refusal a caller can act on. Subclasses name the kind; the edge maps it."""

    def __init__(self, detail: str, reason: str | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.reason = reason


class InvalidRequest(DomainError):
    """Input that breaks a rule (a field missing, of the wrong type or out of range)."""


class Unauthorized(DomainError):
    """Credentials missing, malformed, expired or wrong."""


class PaymentInvalid(DomainError):
    """The payment does not prove what it must; `reason` is a domain.payments reason."""


class Forbidden(DomainError):
    """Valid credentials, but not for this resource."""


class NotFound(DomainError):
    """No such contract, tier or device."""


class PaymentAlreadyUsed(DomainError):
    """The transaction signature already paid for something else."""


class ContractNotActive(DomainError):
    """The operation needs an ACTIVE (and unexpired) contract."""


class NoCapacity(DomainError):
    """No device of the tier has a free slot; the payment was not consumed."""


class TooManyLookups(DomainError):
    """This client used up its budget of requests that make the backend ask the chain
    (services.payment_checks); `retry_after` seconds until the window ends."""

    def __init__(self, detail: str, reason: str | None = None, *, retry_after: int = 1):
        super().__init__(detail, reason)
        self.retry_after = retry_after


class ReceiptSequence(DomainError):
    """A device receipt out of sequence: a gap in the chain, or a seq already used by another message."""


class Unavailable(DomainError):
    """A dependency (the database, the chain RPC, the configuration) did not answer; nothing changed."""


class Conflict(Exception):
    """A conditional write did not apply and wrote nothing. `failed` names the roles
    whose condition failed; `contended` those that collided with a concurrent transaction."""

    def __init__(self, failed: Iterable[str] = (), contended: Iterable[str] = ()) -> None:
        super().__init__(f"failed={sorted(failed)} contended={sorted(contended)}")
        self.failed = set(failed)
        self.contended = set(contended)
