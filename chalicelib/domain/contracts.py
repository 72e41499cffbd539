"""The contract state machine and its live figures. Pure Python.

ACTIVE --settle (before expiry)--> SETTLED
ACTIVE --settle/sweep (at or after expiry)--> EXPIRED
Every change returns a new Contract with version + 1; the repository writes it
conditionally on the old version, so a lost race never double-applies.

A contract has ended at its expiry, not when the sweep (every minute) books it: every view
shows `as_of(contract, now)` — one past its expiry already EXPIRED, with exactly the figures
the sweep will book — and `booked` says whether the books already hold it. A read never writes.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field, replace
from decimal import Decimal

import si64_protocol as p

from . import coverage, money
from .errors import ContractNotActive, InvalidRequest

ACTIVE, SETTLED, EXPIRED = p.ACTIVE, p.SETTLED, p.EXPIRED
REFUND_NONE, REFUND_QUEUED, REFUND_SENT = p.REFUND_NONE, p.REFUND_QUEUED, p.REFUND_SENT
REFUND_CONFIRMED, REFUND_DUST, REFUND_FAILED = p.REFUND_CONFIRMED, p.REFUND_DUST, p.REFUND_FAILED
MAX_EXTENSIONS = 100  # bounds the contract's version and history; each extension is a paid request


def requested_seconds(hours: Decimal | int, name: str, *, min_seconds: int, max_hours: int) -> int:
    """A requested duration in hours (an exact number) → whole seconds within
    [min_seconds, max_hours h] (docs/api.md "Tiers"); InvalidRequest naming `name` otherwise.

    Both limits apply to the rounded seconds, the duration that is priced and served:
    720.0001 h rounds to exactly 2,592,000 s = 720 h and is accepted; 0.01666666 h
    rounds to 60 s and meets a 60 s minimum."""
    d = Decimal(hours)
    if not d.is_finite() or d <= 0:
        raise InvalidRequest(f"'{name}' must be more than 0 and at most {max_hours} hours.", reason=name)
    try:
        seconds = money.duration_seconds(d)
    except ValueError:  # beyond 10**20 hours: far above any maximum
        seconds = None
    if seconds is None or seconds > max_hours * money.SECONDS_PER_HOUR:
        raise InvalidRequest(f"'{name}' must be more than 0 and at most {max_hours} hours.", reason=name)
    if seconds < max(min_seconds, 1):
        raise InvalidRequest(f"'{name}' must be at least {min_seconds} seconds.", reason=name)
    return seconds


def new_contract_id() -> str:
    return "CTR-" + secrets.token_urlsafe(16)


@dataclass(frozen=True)
class Payment:
    sig: str
    kind: str  # "rent" | "extend"
    seconds: int
    price_lamports: int
    received_lamports: int
    at_ms: int


@dataclass(frozen=True)
class Figures:
    elapsed_ms: int
    used_lamports: int
    refund_available_lamports: int
    remaining_seconds: int
    covered_ms: int | None = None  # None: a contract that does not track coverage (bills elapsed time)
    credit_lamports: int = 0


@dataclass(frozen=True)
class Contract:
    contract_id: str
    wallet: str
    tier: str
    device_id: str
    status: str
    version: int
    lamports_per_hour: int
    duration_seconds: int
    price_lamports: int
    received_lamports: int
    created_at_ms: int
    expires_at_ms: int
    payments: tuple[Payment, ...] = field(default_factory=tuple)
    ended_at_ms: int | None = None
    used_lamports: int | None = None
    refund_lamports: int | None = None
    refund_status: str = REFUND_NONE
    refund_tx: str | None = None
    refund_reason: str | None = None
    # the refund's transaction record (domain/refunds.py drives it)
    refund_lvbh: int | None = None
    refund_attempt: int = 0
    refund_fee: int | None = None
    refund_raw: bytes | None = field(default=None, repr=False)
    refund_confirmed_ms: int | None = None
    # the expiry for which contract.low_time was sent (domain/webhooks.low_time_due); None: not yet
    low_time_for_ms: int | None = None
    # a random id of the write that produced this version: a writer that reads its own token
    # back after a failed condition knows its write landed (an SDK resend of a landed write)
    write_token: str | None = None
    # covered time (domain/coverage.py), kept with each device report; None: bills elapsed time
    covered_ms: int | None = None
    covered_end_ms: int | None = None
    credit_lamports: int | None = None  # downtime credit, fixed when the contract ends

    # --- reading -------------------------------------------------------
    def is_live(self, now_ms: int) -> bool:
        """ACTIVE and not yet at its expiry (the sweep may not have run yet)."""
        return self.status == ACTIVE and now_ms < self.expires_at_ms

    def figures(self, now_ms: int) -> Figures:
        if self.status != ACTIVE:
            end = self.ended_at_ms if self.ended_at_ms is not None else now_ms
            elapsed = max(0, end - self.created_at_ms)
            used = self.used_lamports if self.used_lamports is not None else 0
            return Figures(elapsed, used, 0, 0, self.covered_until(end), self.credit_lamports or 0)
        elapsed = max(0, now_ms - self.created_at_ms)
        used, credit = billed(self, now_ms)
        remaining = max(0, (self.expires_at_ms - now_ms + 999) // 1000)
        return Figures(elapsed, used, self.received_lamports - used, remaining, self.covered_until(now_ms), credit)

    def coverage(self) -> coverage.Coverage | None:
        if self.covered_ms is None or self.covered_end_ms is None:
            return None
        return coverage.Coverage(self.covered_ms, self.covered_end_ms)

    def covered_until(self, end_ms: int) -> int | None:
        """Covered ms of [created, end_ms) (None: a contract that does not track coverage)."""
        cov = self.coverage()
        return None if cov is None else coverage.covered_until(cov, end_ms, self.created_at_ms)

    def payment(self, sig: str) -> Payment | None:
        return next((p for p in self.payments if p.sig == sig), None)


def with_kept_coverage(contract: Contract, kept: coverage.Coverage | None) -> Contract:
    """The contract with the covered time kept apart from it (its coverage item, advanced by
    each device report: docs/adr/0016-covered-time.md): that one while the contract is ACTIVE.
    An ended contract holds its final figures itself; no kept item: the contract's own
    (the start-up allowance, or a contract opened before the item existed)."""
    if kept is None or contract.status != ACTIVE:
        return contract
    return replace(contract, covered_ms=kept.covered_ms, covered_end_ms=kept.end_ms)


def usage(contract: Contract, elapsed_ms: int) -> int:
    """docs/api.md: floor(lamports_per_hour × t / 3,600,000) while t < duration_ms; a contract
    that ran its whole duration used exactly its price (no rounding remainder)."""
    duration_ms = contract.duration_seconds * 1000
    if elapsed_ms >= duration_ms:
        return contract.price_lamports
    return money.usage_lamports(contract.lamports_per_hour, elapsed_ms, duration_ms)


def billed(contract: Contract, end_ms: int) -> tuple[int, int]:
    """(usage, downtime credit) of [created, end_ms): usage on covered time — exactly the price
    when the device covered the whole duration — and the credit = elapsed-time usage − usage.
    A contract that does not track coverage bills elapsed time, credit 0."""
    elapsed = usage(contract, max(0, end_ms - contract.created_at_ms))
    covered = contract.covered_until(end_ms)
    if covered is None:
        return elapsed, 0
    used = usage(contract, covered)
    return used, elapsed - used


def refund_status_for(refund_lamports: int, refund_min_lamports: int) -> str:
    """QUEUED when worth a transfer; DUST below the minimum, and always for 0."""
    return REFUND_QUEUED if refund_lamports > 0 and refund_lamports >= refund_min_lamports else REFUND_DUST


def open_contract(
    *,
    contract_id: str,
    wallet: str,
    tier: str,
    device_id: str,
    seconds: int,
    received_lamports: int,
    sig: str,
    now_ms: int,
    coverage_grace_ms: int | None = None,
) -> Contract:
    lph = money.TIERS[tier].lamports_per_hour
    price = money.price_lamports(lph, seconds)
    if received_lamports < price:
        raise ValueError("payment below price")
    pay = Payment(sig, "rent", seconds, price, received_lamports, now_ms)
    cov = None if coverage_grace_ms is None else coverage.start(now_ms, now_ms + seconds * 1000, coverage_grace_ms)
    return Contract(
        contract_id=contract_id,
        wallet=wallet,
        tier=tier,
        device_id=device_id,
        status=ACTIVE,
        version=1,
        lamports_per_hour=lph,
        duration_seconds=seconds,
        price_lamports=price,
        received_lamports=received_lamports,
        created_at_ms=now_ms,
        expires_at_ms=now_ms + seconds * 1000,
        payments=(pay,),
        covered_ms=None if cov is None else cov.covered_ms,
        covered_end_ms=None if cov is None else cov.end_ms,
    )


def listing_view(contract: Contract) -> Contract:
    """The contract as the ledger page lists it: every field its rows, `figures` and `as_of` use;
    not the payments, the refund's sending state nor the low-time mark (worker and webhooks')."""
    return replace(
        contract,
        payments=(),
        low_time_for_ms=None,
        refund_lvbh=None,
        refund_attempt=0,
        refund_fee=None,
        refund_raw=None,
        refund_confirmed_ms=None,
        write_token=None,
    )


def effective_status(contract: Contract, now_ms: int) -> str:
    """The status at `now_ms`: EXPIRED from the moment an ACTIVE contract reaches its expiry,
    before the sweep books it; else the stored status."""
    return EXPIRED if contract.status == ACTIVE and now_ms >= contract.expires_at_ms else contract.status


def as_of(contract: Contract, now_ms: int, refund_min_lamports: int) -> Contract:
    """The contract as it stands at `now_ms`, for display: one past its expiry that the sweep
    has not ended yet is what the sweep will book (`finalize` at or after the expiry ends it AT
    its expiry: EXPIRED, usage = exactly its price, the rest owed back — the same figures
    whenever the sweep runs). Any other contract is returned as stored. Pure: nothing is written."""
    if effective_status(contract, now_ms) == contract.status:
        return contract
    return finalize(contract, now_ms=now_ms, refund_min_lamports=refund_min_lamports)


def booked(shown: Contract, stored: Contract) -> bool:
    """Whether the status and figures shown (`as_of`) are those the books hold already."""
    return shown.status == stored.status


def extension_price(contract: Contract, seconds: int) -> int:
    return money.price_lamports(contract.lamports_per_hour, seconds)


def extend(
    contract: Contract, *, seconds: int, received_lamports: int, sig: str, now_ms: int, max_seconds: int
) -> Contract:
    if not contract.is_live(now_ms):
        raise ContractNotActive("The contract has ended and cannot be extended.", reason="status")
    if contract.version > MAX_EXTENSIONS:  # version = 1 + extensions while ACTIVE
        raise InvalidRequest(f"A contract can be extended at most {MAX_EXTENSIONS} times.", reason="additional_hours")
    total = contract.duration_seconds + seconds
    if total > max_seconds:
        raise InvalidRequest(
            f"The total duration would exceed the maximum of {max_seconds // 3600} hours.", reason="additional_hours"
        )
    price = extension_price(contract, seconds)
    if received_lamports < price:
        raise ValueError("payment below price")
    pay = Payment(sig, "extend", seconds, price, received_lamports, now_ms)
    return replace(
        contract,
        version=contract.version + 1,
        duration_seconds=total,
        price_lamports=contract.price_lamports + price,
        received_lamports=contract.received_lamports + received_lamports,
        expires_at_ms=contract.expires_at_ms + seconds * 1000,
        payments=contract.payments + (pay,),
    )


def finalize(contract: Contract, *, now_ms: int, refund_min_lamports: int) -> Contract:
    """End an ACTIVE contract: SETTLED before its expiry, EXPIRED at or after it."""
    if contract.status != ACTIVE:
        raise ContractNotActive("The contract has already ended.", reason="status")
    expired = now_ms >= contract.expires_at_ms
    ended = contract.expires_at_ms if expired else now_ms
    used, credit = billed(contract, ended)
    refund = contract.received_lamports - used
    return replace(
        contract,
        version=contract.version + 1,
        status=EXPIRED if expired else SETTLED,
        ended_at_ms=ended,
        used_lamports=used,
        credit_lamports=None if contract.coverage() is None else credit,
        refund_lamports=refund,
        refund_status=refund_status_for(refund, refund_min_lamports),
    )
