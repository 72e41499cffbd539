"""Property tests of the money formulas (docs/api.md "Tiers")."""

from __future__ import annotations

import json
import math
import re
import time
from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from chalicelib import jsontext
from chalicelib.domain import money
from chalicelib.domain.money import (
    EXACT_SOL_DISPLAY_LIMIT,
    MS_PER_HOUR,
    TIERS,
    duration_seconds,
    price_lamports,
    sol,
    to_decimal,
    usage_lamports,
)

MAX_SECONDS = 720 * 3600

tiers = st.sampled_from(sorted(TIERS.values(), key=lambda t: t.name))
lph = st.one_of(tiers.map(lambda t: t.lamports_per_hour), st.integers(1, 10**12))
seconds = st.integers(1, MAX_SECONDS)
elapsed_ms = st.integers(-(10**12), 10**12)


def exact_decimals(max_digits: int = 40):
    """Finite decimals with up to `max_digits` digits and exponents from -45 to +5."""
    return st.builds(
        lambda sign, n, exp: Decimal(f"{'-' if sign else ''}{n}E{exp}"),
        st.booleans(),
        st.integers(0, 10**max_digits - 1),
        st.integers(-45, 5),
    )


def reference_half_up(hours: Decimal) -> int:
    """round_half_up(hours × 3600) in exact rational arithmetic (half away from zero)."""
    x = Fraction(hours) * 3600
    magnitude = math.floor(abs(x) + Fraction(1, 2))
    return magnitude if x >= 0 else -magnitude


# --- usage vs price --------------------------------------------------------------------


@given(tiers, seconds, elapsed_ms)
def test_usage_never_exceeds_price_at_full_duration(tier, secs, t):
    lph_ = tier.lamports_per_hour
    assert 0 <= usage_lamports(lph_, t, secs * 1000) <= price_lamports(lph_, secs)


@given(lph, seconds, elapsed_ms)
def test_usage_never_exceeds_price_any_rate(rate, secs, t):
    assert 0 <= usage_lamports(rate, t, secs * 1000) <= price_lamports(rate, secs)


@given(tiers, seconds, elapsed_ms, elapsed_ms)
def test_usage_is_monotone_in_elapsed_time(tier, secs, t1, t2):
    lo, hi = sorted((t1, t2))
    d = secs * 1000
    assert usage_lamports(tier.lamports_per_hour, lo, d) <= usage_lamports(tier.lamports_per_hour, hi, d)


@given(tiers, seconds, st.integers(0, 10**12))
def test_usage_at_or_after_expiry_is_the_full_floor(tier, secs, extra_ms):
    rate, d = tier.lamports_per_hour, secs * 1000
    full = (rate * d) // MS_PER_HOUR
    assert full == math.floor(Fraction(rate * d, 3_600_000))
    assert usage_lamports(rate, d + extra_ms, d) == full
    price = price_lamports(rate, secs)
    assert full <= price <= full + 1  # floor vs ceil of the same rational


@given(tiers, seconds)
def test_usage_before_start_is_zero(tier, secs):
    assert usage_lamports(tier.lamports_per_hour, -1, secs * 1000) == 0
    assert usage_lamports(tier.lamports_per_hour, 0, secs * 1000) == 0


@given(lph, st.integers(0, MAX_SECONDS), st.integers(0, 10**7))
def test_usage_matches_formula(rate, secs, t):
    d = secs * 1000
    assert usage_lamports(rate, t, d) == math.floor(Fraction(rate * min(t, d), 3_600_000))


# --- price ---------------------------------------------------------------------------


@given(lph, st.integers(0, MAX_SECONDS))
def test_price_is_exact_ceiling(rate, secs):
    assert price_lamports(rate, secs) == math.ceil(Fraction(rate * secs, 3600))


@given(tiers, st.lists(seconds, min_size=1, max_size=10))
def test_price_of_sum_at_most_sum_of_prices(tier, parts):
    """An extension never costs less in total than renting it all at once,
    and never more than one lamport per extension above it."""
    rate = tier.lamports_per_hour
    whole = price_lamports(rate, sum(parts))
    pieces = sum(price_lamports(rate, s) for s in parts)
    assert whole <= pieces <= whole + len(parts) - 1


@given(lph, st.integers(0, MAX_SECONDS), st.integers(0, MAX_SECONDS))
def test_price_monotone_in_duration(rate, a, b):
    lo, hi = sorted((a, b))
    assert price_lamports(rate, lo) <= price_lamports(rate, hi)


@pytest.mark.parametrize("tier", sorted(TIERS))
def test_tier_prices(tier):
    rate = TIERS[tier].lamports_per_hour
    assert price_lamports(rate, 3600) == rate
    assert price_lamports(rate, MAX_SECONDS) == rate * 720
    assert price_lamports(rate, 60) == math.ceil(Fraction(rate, 60))


def test_price_refuses_negative_duration():
    with pytest.raises(ValueError):
        price_lamports(1_000_000, -1)


# --- duration rounding ------------------------------------------------------------------


@pytest.mark.parametrize(
    "hours, expected",
    [
        (Decimal("0.1"), 360),
        (Decimal("0.10"), 360),
        (Decimal("1"), 3600),
        (1, 3600),
        (720, 2_592_000),
        (Decimal("720"), 2_592_000),
        (Decimal("0.5"), 1800),
        (Decimal("0.0001388888"), 0),  # 0.49999968 s
        (Decimal("0.000138888889"), 1),  # 0.5000000004 s
        (Decimal("0.00013888888888888888888888888888"), 0),  # 0.499…968: needs > 28 digits
        (Decimal("1.0001388888888888888888888888888"), 3600),  # 3600.499…968
        (Decimal("0.000138888888888888888888888888889"), 1),  # 0.500…0004
        (Decimal("0.00125"), 5),  # exactly 4.5 s: half UP, not half even
        (Decimal("0.000625"), 2),  # 2.25 s
        (Decimal("0.0125"), 45),
        (Decimal("0.016666666666666666666666666666666"), 60),  # 59.99…98 s
        (Decimal("1E-9999"), 0),
        (Decimal("0E+10"), 0),
        (Decimal("-0"), 0),
        (Decimal("2.5E-4"), 1),  # 0.9 s
        (Decimal("1E+20"), 360_000_000_000_000_000_000_000),
        (Decimal("-0.00125"), -5),  # half away from zero, like ROUND_HALF_UP
    ],
)
def test_duration_rounding_examples(hours, expected):
    assert duration_seconds(hours) == expected


@given(exact_decimals())
@example(Decimal("0.00013888888888888888888888888888"))
@example(Decimal("719.99986111111111111111111111111"))
def test_duration_rounding_is_exact_half_up(hours):
    if not hours.is_zero() and hours.adjusted() > money.MAX_HOURS_EXPONENT:
        with pytest.raises(ValueError):  # beyond 10**20 h: refused, never rounded
            duration_seconds(hours)
    else:
        assert duration_seconds(hours) == reference_half_up(hours)


@given(st.integers(0, 720 * 3600 * 10**6))
def test_duration_of_micro_hours(micro):
    hours = Decimal(micro).scaleb(-6)
    assert duration_seconds(hours) == reference_half_up(hours)


@given(st.integers(-(10**9), 10**9))
def test_duration_of_integer_hours(h):
    assert duration_seconds(h) == h * 3600 == duration_seconds(Decimal(h))


@pytest.mark.parametrize("hours", [Decimal("1E+21"), Decimal("1E+999999"), Decimal("-1E+25"), 10**30])
def test_duration_out_of_range_refused_quickly(hours):
    start = time.perf_counter()
    with pytest.raises(ValueError):
        duration_seconds(hours)
    assert time.perf_counter() - start < 0.1


def test_duration_of_long_input_is_exact_and_fast():
    hours = Decimal("0." + "1" * 60_000)  # a 64 KiB body is the most a client can send
    start = time.perf_counter()
    assert duration_seconds(hours) == 400  # 399.999…6 s
    assert time.perf_counter() - start < 1


# --- to_decimal -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "bad, exc",
    [
        (0.1, TypeError),
        (1.0, TypeError),
        (float("nan"), TypeError),
        (float("inf"), TypeError),
        (True, TypeError),
        (False, TypeError),
        ("0.1", TypeError),
        (None, TypeError),
        ([1], TypeError),
        (Decimal("NaN"), ValueError),
        (Decimal("sNaN"), ValueError),
        (Decimal("-NaN"), ValueError),
        (Decimal("Infinity"), ValueError),
        (Decimal("-Infinity"), ValueError),
    ],
)
def test_to_decimal_refuses(bad, exc):
    with pytest.raises(exc):
        to_decimal(bad)
    with pytest.raises(exc):
        duration_seconds(bad)


@given(st.floats(allow_nan=True, allow_infinity=True))
def test_to_decimal_refuses_every_float(f):
    with pytest.raises(TypeError):
        to_decimal(f)


@given(exact_decimals())
def test_to_decimal_keeps_decimals_exactly(d):
    assert to_decimal(d).as_tuple() == d.as_tuple()


@given(st.integers())
def test_to_decimal_keeps_ints_exactly(n):
    assert to_decimal(n) == n


def test_json_numbers_parsed_as_decimal_round_trip():
    body = json.loads('{"duration_hours": 0.1}', parse_float=Decimal)
    assert duration_seconds(body["duration_hours"]) == 360


# --- sol() display ----------------------------------------------------------------------


def exact_sol(x: int) -> Decimal:
    return Decimal(x).scaleb(-9)


@given(st.integers(-(2**70), 2**70))
@example(0)
@example(1)
@example(278)
@example(999_999_999)
@example(1_000_000_000)
@example(123_456_789_123_456)
@example(EXACT_SOL_DISPLAY_LIMIT - 1)
@example(2**53 - 1)
def test_sol_is_the_exact_decimal_at_any_size(x):
    d = sol(x)
    assert isinstance(d, Decimal) and d == exact_sol(x)


@given(st.integers(-(2**70), 2**70))
@example(278)  # 2.78e-07 as a float
@example(1)
@example(10**9)
@example(2**53 - 1)
def test_sol_on_the_wire_is_a_plain_decimal_a_client_reads_exactly(x):
    text = jsontext.dumps({"v": sol(x)})
    number = text[len('{"v":') : -1]
    assert "e" not in number.lower() and re.fullmatch(r"-?\d+\.\d+", number), number
    assert json.loads(text, parse_float=Decimal)["v"] == exact_sol(x)
    # no trailing zeros beyond the lamport digits; a whole amount keeps one (1.0)
    assert not number.endswith("00") and len(number.split(".")[1]) <= 9


def test_sol_renders_the_smallest_amounts_without_exponent():
    assert (
        jsontext.dumps([sol(278), sol(1), sol(0), sol(10**9), sol(1_500_000_000)])
        == "[0.000000278,0.000000001,0.0,1.0,1.5]"
    )


@given(st.integers(0, 2**70))
def test_sol_negative_mirrors_positive(x):
    assert sol(-x) == -sol(x)


@pytest.mark.parametrize("bad", [1.0, True, "1", Decimal(1), None])
def test_sol_takes_integer_lamports_only(bad):
    with pytest.raises(TypeError):
        sol(bad)


def test_money_module_has_no_float_arithmetic_on_amounts():
    """Only display helpers produce floats; price/usage/duration return ints."""
    assert isinstance(price_lamports(1_000_000, 1), int)
    assert isinstance(usage_lamports(1_000_000, 1, 1000), int)
    assert isinstance(duration_seconds(Decimal("0.1")), int)
    assert money.LAMPORTS_PER_SOL == 10**9
