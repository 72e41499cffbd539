"""Pricing, durations and usage in integer lamports (docs/api.md, "Tiers").

Pure Python; no float ever touches an amount. Inputs that come from JSON are
`Decimal` (the API parses numbers with `parse_float=Decimal`) or `int`.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal, Inexact, InvalidOperation, localcontext

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


def to_decimal(value: object) -> Decimal:
    """Exact decimal of a JSON number (int or Decimal); refuses bool/float/str."""
    if isinstance(value, bool) or not isinstance(value, (int, Decimal)):
        raise TypeError("not an exact number")
    d = Decimal(value)
    if not d.is_finite():
        raise ValueError("not finite")
    return d


# |hours| beyond 10**MAX_HOURS_EXPONENT is refused (ValueError) before any
# arithmetic, so a JSON number such as 1E+999999 cannot cost time or memory.
MAX_HOURS_EXPONENT = 20


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


def usage_lamports(lamports_per_hour: int, elapsed_ms: int, duration_ms: int) -> int:
    """floor(lamports_per_hour × min(t, duration_ms) / 3,600,000), t clamped at 0."""
    t = max(0, min(elapsed_ms, duration_ms))
    return (lamports_per_hour * t) // MS_PER_HOUR


# Kept for callers that still compare against it: below this many lamports the old float
# display happened to be exact. sol() is exact at every size now (a Decimal).
EXACT_SOL_DISPLAY_LIMIT = 2**23 * LAMPORTS_PER_SOL


def sol(lamports: int) -> Decimal:
    """Display value in SOL of an integer lamport amount (for the `_sol` fields only): the
    exact decimal lamports × 10⁻⁹, without trailing zeros (a whole amount keeps one: `1.0`).

    A Decimal, never a float, so no amount is ever rounded; `chalicelib.jsontext.dumps`
    writes it as a plain JSON number (`0.000000278`, never `2.78e-07`).
    """
    if isinstance(lamports, bool) or not isinstance(lamports, int):
        raise TypeError("lamports must be an int")
    whole, frac = divmod(abs(lamports), LAMPORTS_PER_SOL)
    text = f"{whole}.{frac:09d}".rstrip("0")
    return Decimal(("-" if lamports < 0 else "") + text + ("0" if text.endswith(".") else ""))


def hours_display(seconds: int) -> Decimal:
    """Hours as a display number, derived from whole seconds: rounded to 6 decimal places,
    without trailing zeros (a whole number keeps one: `1.0`). A Decimal, like `sol`, so a
    receipt stored as JSON text reads back equal to the answer first given."""
    d = (Decimal(seconds) / SECONDS_PER_HOUR).quantize(Decimal("0.000001")).normalize()
    exponent = d.as_tuple().exponent  # an int: d is finite
    return d if isinstance(exponent, int) and exponent < 0 else d.quantize(Decimal("0.1"))
