"""Pricing, durations and usage in integer lamports (docs/api.md, "Tiers").

Pure Python; no float ever touches an amount. Inputs that come from JSON are
`Decimal` (the API parses numbers with `parse_float=Decimal`) or `int`.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

# One source with the si64 client: the tier names and the exact price of a duration.
from si64_protocol import (
    LAMPORTS_PER_SOL as LAMPORTS_PER_SOL,
)
from si64_protocol import (
    MAX_HOURS_EXPONENT as MAX_HOURS_EXPONENT,
)
from si64_protocol import (
    SECONDS_PER_HOUR as SECONDS_PER_HOUR,
)
from si64_protocol import (
    TIER_NAMES,
)
from si64_protocol import (
    duration_seconds as duration_seconds,
)
from si64_protocol import (
    price_lamports as price_lamports,
)
from si64_protocol import (
    to_decimal as to_decimal,
)

MS_PER_HOUR = 3_600_000


@dataclass(frozen=True)
class Tier:
    name: str
    lamports_per_hour: int
    memory: str


_M2, _ORIN, _M3_ULTRA, _THOR = TIER_NAMES
TIERS: dict[str, Tier] = {
    t.name: t
    for t in (
        Tier(_M2, 1_000_000, "8-16GB"),
        Tier(_ORIN, 4_000_000, "12GB"),
        Tier(_M3_ULTRA, 25_000_000, "128GB"),
        Tier(_THOR, 35_000_000, "144GB"),
    )
}


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
