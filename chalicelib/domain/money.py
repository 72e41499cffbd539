"""Pricing, durations and usage in integer lamports (API.md, "Tiers").

Pure Python; no float ever touches an amount. Inputs that come from JSON are
`Decimal` (the API parses numbers with `parse_float=Decimal`) or `int`.
"""
from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

LAMPORTS_PER_SOL = 1_000_000_000
MS_PER_HOUR = 3_600_000
SECONDS_PER_HOUR = 3_600


@dataclass(frozen=True)
class Tier:
    name: str
    lamports_per_hour: int
    memory: str


TIERS: dict[str, Tier] = {
    t.name: t
    for t in (
        Tier("M2", 1_000_000, "8-16GB"),
        Tier("ORIN", 4_000_000, "12GB"),
        Tier("M3_ULTRA", 25_000_000, "128GB"),
        Tier("THOR", 35_000_000, "144GB"),
    )
}


def to_decimal(value) -> Decimal:
    """Exact decimal of a JSON number (int or Decimal); refuses bool/float/str."""
    if isinstance(value, bool) or not isinstance(value, (int, Decimal)):
        raise TypeError("not an exact number")
    d = Decimal(value)
    if not d.is_finite():
        raise ValueError("not finite")
    return d


def duration_seconds(hours) -> int:
    """round_half_up(hours × 3600), computed exactly."""
    d = to_decimal(hours) * SECONDS_PER_HOUR
    try:
        return int(d.quantize(Decimal(1), rounding=ROUND_HALF_UP))
    except InvalidOperation as exc:  # absurdly large exponent
        raise ValueError("out of range") from exc


def price_lamports(lamports_per_hour: int, seconds: int) -> int:
    """ceil(lamports_per_hour × seconds / 3600)."""
    if seconds < 0:
        raise ValueError("negative duration")
    return -(-(lamports_per_hour * seconds) // SECONDS_PER_HOUR)


def usage_lamports(lamports_per_hour: int, elapsed_ms: int, duration_ms: int) -> int:
    """floor(lamports_per_hour × min(t, duration_ms) / 3,600,000), t clamped at 0."""
    t = max(0, min(elapsed_ms, duration_ms))
    return (lamports_per_hour * t) // MS_PER_HOUR


def sol(lamports: int) -> float:
    """Display value in SOL of an integer lamport amount (for the `_sol` fields only).

    The decimal is exact; the float is only the JSON rendering of it, and for
    any amount below 2**53 lamports its shortest repr is that exact decimal.
    """
    return float(Decimal(lamports).scaleb(-9))  # display only: derived from lamports


def hours_display(seconds: int) -> float:
    """Hours as a display number, derived from whole seconds."""
    return float((Decimal(seconds) / SECONDS_PER_HOUR).quantize(Decimal("0.000001")))
