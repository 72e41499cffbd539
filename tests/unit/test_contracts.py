"""Properties of the contract state machine (chalicelib/domain/contracts.py).

open_contract → extend* → finalize, for any tier, any durations within the
configured bounds (60 s .. 720 h in total), any payment ≥ price and any clock.
Pure logic: no sockets, no AWS.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from fractions import Fraction

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from chalicelib.api.errors import status_of
from chalicelib.domain import contracts as dc
from chalicelib.domain import money
from chalicelib.domain.errors import ContractNotActive, InvalidRequest

MIN_SECONDS = 60
MAX_SECONDS = 720 * 3600
WALLET = "4Nd1mBQtrMJVYVfKf2PJy9NZUZdTAsp7D4xWLs4gDB4T"
T0 = 1_764_070_000_000  # ms

tier_names = st.sampled_from(sorted(money.TIERS))
# Overpayments: none, dust-sized, around refund_min, and large (up to 1,000 SOL).
overpay = st.one_of(st.just(0), st.integers(0, 20_000), st.integers(0, 10**12))
refund_mins = st.one_of(st.just(5_000), st.integers(0, 10**7))


def sig(n: int) -> str:
    return f"sig-{n}"


@dataclass(frozen=True)
class Lifecycle:
    """Every state of one contract, oldest first: states[0] is the rental, the
    others follow one extension each."""

    states: tuple

    @property
    def last(self) -> dc.Contract:
        return self.states[-1]


def sample_contract(tier: str = "M2", seconds: int = 3600, received_lamports: int = 1_000_000) -> dc.Contract:
    """One contract opened at T0 by WALLET on device "d" with the rent payment "s"."""
    return dc.open_contract(
        contract_id="CTR-abcdefghijklmnopqrstuv",
        wallet=WALLET,
        tier=tier,
        device_id="d",
        seconds=seconds,
        received_lamports=received_lamports,
        sig="s",
        now_ms=T0,
    )


@st.composite
def lifecycles(draw, max_extensions: int = 5, max_seconds: int = MAX_SECONDS) -> Lifecycle:
    tier = draw(tier_names)
    created = draw(st.integers(1_500_000_000_000, 2_000_000_000_000))
    seconds = draw(st.integers(MIN_SECONDS, max_seconds))
    lph = money.TIERS[tier].lamports_per_hour
    c = dc.open_contract(
        contract_id="CTR-"
        + draw(st.text("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_", min_size=16, max_size=22)),
        wallet=WALLET,
        tier=tier,
        device_id="dev-1",
        seconds=seconds,
        received_lamports=money.price_lamports(lph, seconds) + draw(overpay),
        sig=sig(0),
        now_ms=created,
    )
    states = [c]
    now = created
    for i in range(draw(st.integers(0, max_extensions))):
        room = max_seconds - c.duration_seconds
        if room < MIN_SECONDS:
            break
        extra = draw(st.integers(MIN_SECONDS, room))
        now = draw(st.integers(now, c.expires_at_ms - 1))  # extensions need a live contract
        c = dc.extend(
            c,
            seconds=extra,
            received_lamports=dc.extension_price(c, extra) + draw(overpay),
            sig=sig(i + 1),
            now_ms=now,
            max_seconds=max_seconds,
        )
        states.append(c)
    return Lifecycle(tuple(states))


@st.composite
def settle_times(draw, c: dc.Contract) -> int:
    """Any clock from the start: early, exactly at and around the expiry, long after."""
    d = c.duration_seconds * 1000
    return draw(
        st.one_of(
            st.integers(c.created_at_ms, c.expires_at_ms + d),
            st.sampled_from(
                [c.created_at_ms, c.created_at_ms + 1, c.expires_at_ms - 1, c.expires_at_ms, c.expires_at_ms + 1]
            ),
            st.integers(c.expires_at_ms, c.expires_at_ms + 10**12),
        )
    )


# --- open ---------------------------------------------------------------------------------


@given(tier_names, st.integers(MIN_SECONDS, MAX_SECONDS), overpay, st.integers(0, 2 * 10**12))
def test_open_contract(tier, seconds, over, now):
    lph = money.TIERS[tier].lamports_per_hour
    price = math.ceil(Fraction(lph * seconds, 3600))
    c = dc.open_contract(
        contract_id="CTR-abcdefghijklmnopqrstuv",
        wallet=WALLET,
        tier=tier,
        device_id="d",
        seconds=seconds,
        received_lamports=price + over,
        sig="s",
        now_ms=now,
    )
    assert c.status == dc.ACTIVE and c.version == 1 and c.refund_status == dc.REFUND_NONE
    assert c.lamports_per_hour == lph
    assert c.price_lamports == price and c.received_lamports == price + over
    assert c.created_at_ms == now and c.expires_at_ms == now + seconds * 1000
    assert c.duration_seconds == seconds
    assert c.payments == (dc.Payment("s", "rent", seconds, price, price + over, now),)
    assert c.ended_at_ms is None and c.used_lamports is None and c.refund_lamports is None


@given(tier_names, st.integers(MIN_SECONDS, MAX_SECONDS), st.integers(1, 10**6))
def test_open_contract_refuses_underpayment(tier, seconds, short):
    price = money.price_lamports(money.TIERS[tier].lamports_per_hour, seconds)
    with pytest.raises(ValueError):
        dc.open_contract(
            contract_id="CTR-abcdefghijklmnopqrstuv",
            wallet=WALLET,
            tier=tier,
            device_id="d",
            seconds=seconds,
            received_lamports=price - short,
            sig="s",
            now_ms=T0,
        )


def test_new_contract_ids_are_random_and_url_safe():
    ids = {dc.new_contract_id() for _ in range(1000)}
    assert len(ids) == 1000
    for cid in ids:
        assert re.fullmatch(r"CTR-[A-Za-z0-9_-]{16,}", cid), cid


# --- extend -------------------------------------------------------------------------------


@given(lifecycles())
def test_extend_adds_up(lc):
    for before, after in zip(lc.states, lc.states[1:], strict=False):
        p = after.payments[-1]
        assert after.payments[:-1] == before.payments and p.kind == "extend"
        assert after.version == before.version + 1
        assert after.status == dc.ACTIVE
        assert after.created_at_ms == before.created_at_ms
        assert after.duration_seconds == before.duration_seconds + p.seconds
        assert after.expires_at_ms == before.expires_at_ms + p.seconds * 1000
        assert after.expires_at_ms == after.created_at_ms + after.duration_seconds * 1000
        assert p.price_lamports == money.price_lamports(before.lamports_per_hour, p.seconds)
        assert after.price_lamports == before.price_lamports + p.price_lamports
        assert after.received_lamports == before.received_lamports + p.received_lamports
        assert p.received_lamports >= p.price_lamports
        assert (after.wallet, after.tier, after.device_id, after.lamports_per_hour) == (
            before.wallet,
            before.tier,
            before.device_id,
            before.lamports_per_hour,
        )
    c = lc.last
    assert c.price_lamports == sum(p.price_lamports for p in c.payments)
    assert c.received_lamports == sum(p.received_lamports for p in c.payments)
    assert c.duration_seconds == sum(p.seconds for p in c.payments) <= MAX_SECONDS
    assert c.version == len(c.payments)
    assert len({p.sig for p in c.payments}) == len(c.payments)
    assert all(c.payment(p.sig) == p for p in c.payments)
    assert c.payment("unknown") is None


@given(lifecycles(), st.integers(0, 10**9), st.integers(MIN_SECONDS, 3600))
def test_extend_at_or_after_expiry_is_refused(lc, late_ms, extra):
    c = lc.last
    assume(c.duration_seconds + extra <= MAX_SECONDS)
    with pytest.raises(ContractNotActive) as exc:
        dc.extend(
            c,
            seconds=extra,
            received_lamports=10**12,
            sig="late",
            now_ms=c.expires_at_ms + late_ms,
            max_seconds=MAX_SECONDS,
        )
    assert status_of(exc.value) == (409, "contract_not_active")


@given(lifecycles(), st.data())
def test_extend_of_an_ended_contract_is_refused(lc, data):
    c = lc.last
    now = data.draw(st.integers(c.created_at_ms, c.expires_at_ms - 1))
    ended = dc.finalize(c, now_ms=now, refund_min_lamports=5_000)
    with pytest.raises(ContractNotActive):
        dc.extend(ended, seconds=MIN_SECONDS, received_lamports=10**12, sig="x", now_ms=now, max_seconds=MAX_SECONDS)


@given(lifecycles(), st.integers(1, MAX_SECONDS), st.data())
def test_extend_beyond_the_maximum_is_refused(lc, over, data):
    c = lc.last
    extra = MAX_SECONDS - c.duration_seconds + over
    now = data.draw(st.integers(c.created_at_ms, c.expires_at_ms - 1))
    with pytest.raises(InvalidRequest) as exc:
        dc.extend(c, seconds=extra, received_lamports=10**13, sig="x", now_ms=now, max_seconds=MAX_SECONDS)
    assert exc.value.reason == "additional_hours" and status_of(exc.value)[0] == 400


@given(lifecycles(max_extensions=2, max_seconds=MAX_SECONDS - MIN_SECONDS), st.data())
def test_extend_up_to_exactly_the_maximum_is_accepted(lc, data):
    c = lc.last
    extra = MAX_SECONDS - c.duration_seconds
    now = data.draw(st.integers(c.created_at_ms, c.expires_at_ms - 1))
    after = dc.extend(
        c, seconds=extra, received_lamports=dc.extension_price(c, extra), sig="max", now_ms=now, max_seconds=MAX_SECONDS
    )
    assert after.duration_seconds == MAX_SECONDS


@given(lifecycles(), st.integers(1, 10**6), st.data())
def test_extend_refuses_underpayment(lc, short, data):
    c = lc.last
    assume(c.duration_seconds + MIN_SECONDS <= MAX_SECONDS)
    price = dc.extension_price(c, MIN_SECONDS)
    now = data.draw(st.integers(c.created_at_ms, c.expires_at_ms - 1))
    with pytest.raises(ValueError):
        dc.extend(c, seconds=MIN_SECONDS, received_lamports=price - short, sig="x", now_ms=now, max_seconds=MAX_SECONDS)


# --- finalize -----------------------------------------------------------------------------


@given(lifecycles(), refund_mins, st.data())
def test_finalize_settles_the_money(lc, refund_min, data):
    c = lc.last
    now = data.draw(settle_times(c))
    e = dc.finalize(c, now_ms=now, refund_min_lamports=refund_min)

    assert 0 <= e.used_lamports <= e.price_lamports <= e.received_lamports
    assert e.refund_lamports == e.received_lamports - e.used_lamports >= 0
    assert e.version == c.version + 1
    if now < c.expires_at_ms:
        assert e.status == dc.SETTLED and e.ended_at_ms == now
    else:
        assert e.status == dc.EXPIRED and e.ended_at_ms == c.expires_at_ms
    # docs/api.md: floor(lamports_per_hour × t / 3,600,000) while t < duration_ms; the whole
    # duration uses exactly the price
    t = e.ended_at_ms - c.created_at_ms
    if t >= c.duration_seconds * 1000:
        assert e.used_lamports == e.price_lamports
    else:
        assert e.used_lamports == math.floor(Fraction(c.lamports_per_hour * max(0, t), 3_600_000))
    # a refund of 0 is DUST whatever the minimum (even 0)
    if e.refund_lamports > 0 and e.refund_lamports >= refund_min:
        assert e.refund_status == dc.REFUND_QUEUED
    else:
        assert e.refund_status == dc.REFUND_DUST
    # nothing else changes
    assert (
        e.contract_id,
        e.wallet,
        e.tier,
        e.device_id,
        e.payments,
        e.duration_seconds,
        e.price_lamports,
        e.received_lamports,
        e.created_at_ms,
        e.expires_at_ms,
    ) == (
        c.contract_id,
        c.wallet,
        c.tier,
        c.device_id,
        c.payments,
        c.duration_seconds,
        c.price_lamports,
        c.received_lamports,
        c.created_at_ms,
        c.expires_at_ms,
    )
    assert e.refund_tx is None and e.refund_reason is None


@given(lifecycles(), st.data())
def test_finalize_at_full_term_uses_exactly_the_price(lc, data):
    """docs/api.md: a contract that ran its whole duration used exactly its price, so an expired
    contract's refund is only what was paid above the price."""
    c = lc.last
    e = dc.finalize(
        c, now_ms=data.draw(st.integers(c.expires_at_ms, c.expires_at_ms + 10**9)), refund_min_lamports=5_000
    )
    assert e.status == dc.EXPIRED
    assert e.used_lamports == e.price_lamports
    assert e.refund_lamports == e.received_lamports - e.price_lamports


@given(lifecycles(), st.data())
def test_used_is_monotone_in_settle_time(lc, data):
    c = lc.last
    t1, t2 = sorted((data.draw(settle_times(c)), data.draw(settle_times(c))))
    e1 = dc.finalize(c, now_ms=t1, refund_min_lamports=5_000)
    e2 = dc.finalize(c, now_ms=t2, refund_min_lamports=5_000)
    assert e1.used_lamports <= e2.used_lamports
    assert e1.refund_lamports >= e2.refund_lamports


@given(lifecycles(max_extensions=1), st.integers(-(10**9), 0))
def test_finalize_with_a_clock_before_the_start_uses_nothing(lc, skew):
    c = lc.last
    e = dc.finalize(c, now_ms=c.created_at_ms + skew, refund_min_lamports=5_000)
    assert e.status == dc.SETTLED and e.used_lamports == 0 and e.refund_lamports == e.received_lamports


@given(lifecycles(max_extensions=1), refund_mins, st.data())
def test_finalize_of_an_ended_contract_is_refused(lc, refund_min, data):
    c = lc.last
    e = dc.finalize(c, now_ms=data.draw(settle_times(c)), refund_min_lamports=refund_min)
    for later in (e.ended_at_ms, e.ended_at_ms + 1, c.expires_at_ms + 10**6):
        with pytest.raises(ContractNotActive) as exc:
            dc.finalize(e, now_ms=later, refund_min_lamports=refund_min)
        assert status_of(exc.value) == (409, "contract_not_active")
    for status in (dc.SETTLED, dc.EXPIRED, "SOMETHING"):
        from dataclasses import replace

        with pytest.raises(ContractNotActive):
            dc.finalize(replace(c, status=status), now_ms=c.created_at_ms, refund_min_lamports=0)


def test_refund_status_threshold_is_inclusive():
    # M2, 1 h, paid 1,000,000; settled after 30 min: used 500,000, refund 500,000.
    c = sample_contract("M2", 3600, 1_000_000)
    half = T0 + 1_800_000
    assert dc.finalize(c, now_ms=half, refund_min_lamports=500_000).refund_status == dc.REFUND_QUEUED
    assert dc.finalize(c, now_ms=half, refund_min_lamports=500_001).refund_status == dc.REFUND_DUST
    full = dc.finalize(c, now_ms=T0 + 3_600_000, refund_min_lamports=5_000)
    assert (full.status, full.used_lamports, full.refund_lamports, full.refund_status) == (
        dc.EXPIRED,
        1_000_000,
        0,
        dc.REFUND_DUST,
    )


def test_worked_example_thor_extended():
    # THOR 35,000,000/h: 90 s costs ceil(875,000) = 875,000; +61 s costs ceil(593,055.5…) = 593,056.
    c = dc.open_contract(
        contract_id="CTR-abcdefghijklmnopqrstuv",
        wallet=WALLET,
        tier="THOR",
        device_id="d",
        seconds=90,
        received_lamports=900_000,
        sig="a",
        now_ms=T0,
    )
    assert c.price_lamports == 875_000
    c = dc.extend(c, seconds=61, received_lamports=593_056, sig="b", now_ms=T0 + 10_000, max_seconds=MAX_SECONDS)
    assert (c.version, c.price_lamports, c.received_lamports, c.expires_at_ms) == (
        2,
        1_468_056,
        1_493_056,
        T0 + 151_000,
    )
    e = dc.finalize(c, now_ms=T0 + 100_001, refund_min_lamports=5_000)
    # floor(35,000,000 × 100,001 / 3,600,000) = floor(972,231.94…) = 972,231
    assert (e.status, e.used_lamports, e.refund_lamports, e.refund_status, e.version) == (
        dc.SETTLED,
        972_231,
        520_825,
        dc.REFUND_QUEUED,
        3,
    )


# --- live figures -------------------------------------------------------------------------


@given(lifecycles(), st.data())
def test_figures_of_an_active_contract(lc, data):
    c = lc.last
    times = sorted(data.draw(st.lists(settle_times(c), min_size=2, max_size=6)))
    prev = None
    for now in times:
        f = c.figures(now)
        assert f.used_lamports + f.refund_available_lamports == c.received_lamports
        assert 0 <= f.used_lamports <= c.price_lamports
        assert f.refund_available_lamports >= 0
        assert f.elapsed_ms == now - c.created_at_ms
        assert f.remaining_seconds == max(0, math.ceil(Fraction(c.expires_at_ms - now, 1000)))
        if now >= c.expires_at_ms:
            assert f.remaining_seconds == 0
        else:
            assert f.remaining_seconds >= 1
        # the live figure is what settling now would book
        assert f.used_lamports == dc.finalize(c, now_ms=now, refund_min_lamports=0).used_lamports
        if prev is not None:
            assert f.remaining_seconds <= prev.remaining_seconds
            assert f.used_lamports >= prev.used_lamports
        prev = f


@given(lifecycles(max_extensions=1), st.data())
def test_figures_of_an_ended_contract_are_frozen(lc, data):
    c = lc.last
    e = dc.finalize(c, now_ms=data.draw(settle_times(c)), refund_min_lamports=5_000)
    for later in (e.ended_at_ms, e.ended_at_ms + 1, e.ended_at_ms + 10**10):
        f = e.figures(later)
        assert f.used_lamports == e.used_lamports
        assert f.refund_available_lamports == 0 and f.remaining_seconds == 0
        assert f.elapsed_ms == e.ended_at_ms - e.created_at_ms


@given(lifecycles(max_extensions=1), st.integers(-(10**6), 10**6))
def test_is_live(lc, delta):
    c = lc.last
    now = c.expires_at_ms + delta
    assert c.is_live(now) == (now < c.expires_at_ms)
    assert not dc.finalize(c, now_ms=c.created_at_ms, refund_min_lamports=0).is_live(c.created_at_ms)


# --- the status shown at a given time (as_of): ended at the expiry, before the sweep books it ----


@given(lifecycles(), st.data())
def test_as_of_shows_at_expiry_exactly_what_the_sweep_will_book(lc, data):
    c = lc.last
    now = data.draw(settle_times(c))
    shown = dc.as_of(c, now, 5_000)
    assert dc.effective_status(c, now) == shown.status
    if now < c.expires_at_ms:
        assert shown is c and dc.booked(shown, c)
        return
    assert shown.status == dc.EXPIRED and not dc.booked(shown, c)
    sweep_at = data.draw(st.integers(now, now + 10**9))  # whenever the sweep runs after
    assert shown == dc.finalize(c, now_ms=sweep_at, refund_min_lamports=5_000)
    assert shown.ended_at_ms == c.expires_at_ms and shown.used_lamports == c.price_lamports
    assert shown.refund_lamports == c.received_lamports - c.price_lamports
    assert c.status == dc.ACTIVE  # nothing changed: a view, not a write


@given(lifecycles(), st.data())
def test_as_of_leaves_an_ended_contract_as_booked(lc, data):
    c = lc.last
    e = dc.finalize(c, now_ms=data.draw(settle_times(c)), refund_min_lamports=5_000)
    for now in (e.ended_at_ms, e.expires_at_ms, e.expires_at_ms + 10**9):
        assert dc.as_of(e, now, 5_000) is e and dc.effective_status(e, now) == e.status
