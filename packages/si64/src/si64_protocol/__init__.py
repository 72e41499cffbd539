"""The SI64 wire protocol, one source for the server (chalicelib, through vendor/) and the si64 client.

Pure standard library, cheap to import: the strings a renter signs, the memos that bind a
payment (docs/api.md "Credentials" and "Binding a payment"), tier names, contract statuses,
the stable error codes, and the integer-lamport price of a duration.
"""

from __future__ import annotations

import hashlib
from decimal import ROUND_HALF_UP, Decimal, Inexact, InvalidOperation, localcontext

MEMO_PREFIX = "si64"

# ------------------------------------------------------------------ signing strings and memos


def renter_message(method: str, path: str, timestamp: str, body: bytes = b"") -> bytes:
    """`si64:{METHOD} {PATH}:{X-Timestamp}`, plus `:{sha256 hex of the raw body}` when the
    body is not empty. PATH is the route's path as docs/api.md writes it (no stage, no query)."""
    text = f"{MEMO_PREFIX}:{method.upper()} {path}:{timestamp}"
    if body:
        text += ":" + hashlib.sha256(body).hexdigest()
    return text.encode()


def rent_memo(tier: str, duration_seconds: int) -> str:
    """The memo that binds a payment to a rental of `tier` for `duration_seconds`."""
    return f"{MEMO_PREFIX}:rent:{tier}:{duration_seconds}"


def extend_memo(contract_id: str, additional_seconds: int) -> str:
    """The memo that binds a payment to an extension of `contract_id`."""
    return f"{MEMO_PREFIX}:extend:{contract_id}:{additional_seconds}"


def refund_memo(refund_id: str) -> str:
    """The memo the treasury puts on a refund transfer (a contract id, or a payment refund id)."""
    return f"{MEMO_PREFIX}:refund:{refund_id}"


# ------------------------------------------------------------------ tiers and statuses

TIER_NAMES: tuple[str, ...] = ("M2", "ORIN", "M3_ULTRA", "THOR")

ACTIVE, SETTLED, EXPIRED = "ACTIVE", "SETTLED", "EXPIRED"
REFUND_NONE, REFUND_QUEUED, REFUND_SENT = "NONE", "QUEUED", "SENT"
REFUND_CONFIRMED, REFUND_DUST, REFUND_FAILED = "CONFIRMED", "DUST", "FAILED"

# ------------------------------------------------------------------ error codes (`code` of every error body)

INVALID_REQUEST = "invalid_request"
UNAUTHORIZED = "unauthorized"
PAYMENT_INVALID = "payment_invalid"
FORBIDDEN = "forbidden"
NOT_FOUND = "not_found"
PAYMENT_ALREADY_USED = "payment_already_used"
CONTRACT_NOT_ACTIVE = "contract_not_active"
IDEMPOTENCY_MISMATCH = "idempotency_mismatch"
IDEMPOTENCY_IN_PROGRESS = "idempotency_in_progress"
NO_CAPACITY = "no_capacity"
PAYLOAD_TOO_LARGE = "payload_too_large"
UNSUPPORTED_MEDIA_TYPE = "unsupported_media_type"
RATE_LIMITED = "rate_limited"
UNAVAILABLE = "unavailable"
RECEIPT_SEQUENCE = "receipt_sequence"
INTERNAL = "internal"

ERROR_CODES: tuple[str, ...] = (
    INVALID_REQUEST,
    UNAUTHORIZED,
    PAYMENT_INVALID,
    FORBIDDEN,
    NOT_FOUND,
    PAYMENT_ALREADY_USED,
    CONTRACT_NOT_ACTIVE,
    IDEMPOTENCY_MISMATCH,
    IDEMPOTENCY_IN_PROGRESS,
    NO_CAPACITY,
    PAYLOAD_TOO_LARGE,
    UNSUPPORTED_MEDIA_TYPE,
    RATE_LIMITED,
    UNAVAILABLE,
    RECEIPT_SEQUENCE,
    INTERNAL,
)

# ------------------------------------------------------------------ integer lamports

LAMPORTS_PER_SOL = 1_000_000_000
SECONDS_PER_HOUR = 3_600

# |hours| beyond 10**MAX_HOURS_EXPONENT is refused (ValueError) before any
# arithmetic, so a JSON number such as 1E+999999 cannot cost time or memory.
MAX_HOURS_EXPONENT = 20


def to_decimal(value: object) -> Decimal:
    """Exact decimal of a JSON number (int or Decimal); refuses bool/float/str."""
    if isinstance(value, bool) or not isinstance(value, (int, Decimal)):
        raise TypeError("not an exact number")
    d = Decimal(value)
    if not d.is_finite():
        raise ValueError("not finite")
    return d


def duration_seconds(hours: object) -> int:
    """round_half_up(hours × 3600), computed exactly.

    The product is taken in a decimal context wide enough for every digit of
    the input: the default 28-digit context would round an input such as
    0.00013888888888888888888888888888 h (× 3600 = 0.499…968 s) up to 0.5
    before the half-up rounding, and answer 1 s instead of 0 s.
    """
    d = to_decimal(hours)
    if d.is_zero():
        return 0
    if d.adjusted() > MAX_HOURS_EXPONENT:
        raise ValueError("out of range")
    if d.adjusted() < -MAX_HOURS_EXPONENT:
        return 0  # |hours × 3600| < 0.5 s
    with localcontext() as ctx:
        ctx.prec = len(d.as_tuple().digits) + MAX_HOURS_EXPONENT + 10
        try:
            ctx.traps[Inexact] = True  # the product must be exact; any rounding is a bug
            product = d * SECONDS_PER_HOUR
            ctx.traps[Inexact] = False  # ... and now we round, on purpose
            return int(product.quantize(Decimal(1), rounding=ROUND_HALF_UP))
        except (InvalidOperation, Inexact) as exc:  # pragma: no cover - guarded above
            raise ValueError("out of range") from exc


def price_lamports(lamports_per_hour: int, seconds: int) -> int:
    """ceil(lamports_per_hour × seconds / 3600)."""
    if seconds < 0:
        raise ValueError("negative duration")
    return -(-(lamports_per_hour * seconds) // SECONDS_PER_HOUR)


def duration_problem(seconds: int | None, *, min_seconds: int, max_hours: int) -> str | None:
    """Why a rounded duration (None: not a usable number) breaks the published limits, or None."""
    if seconds is None or seconds > max_hours * SECONDS_PER_HOUR:
        return f"must be more than 0 and at most {max_hours} hours."
    if seconds < max(min_seconds, 1):
        return f"must be at least {min_seconds} seconds."
    return None
