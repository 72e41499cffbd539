"""services.telemetry on the fakes: who may report, what one report writes and how often the
device is stamped (docs/adr/0007-cheap-metering.md)."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chalicelib.api import schemas
from chalicelib.config import Settings
from chalicelib.domain import contracts as dc
from chalicelib.domain import ledger
from chalicelib.domain.errors import ContractNotActive, Forbidden, InvalidRequest, NotFound, Unauthorized, Unavailable
from chalicelib.domain.records import Claim, hash_device_key
from chalicelib.services.telemetry import LAST_SEEN_EVERY_MS, SAMPLE_CLOCK_SKEW_MS, sample_window
from tests.support.fakes import FakeClock, FakePorts, new_signature, new_wallet

KEY = "dk_dev-1_" + "s" * 32
OTHER_KEY = "dk_dev-2_" + "t" * 32
SAMPLE = {
    "cpu_percent": Decimal("37.5"),
    "memory_mb": 6144,
    "disk_io_mbps": Decimal("12.25"),
    "network_io_mbps": Decimal("3.5"),
}


def spec(device_id: str, tier: str = "M2") -> dict:
    return {
        "device_id": device_id,
        "name": device_id,
        "tier": tier,
        "uri": "u",
        "address": "a",
        "region": "r",
        "ram": "8GB",
    }


class World:
    def __init__(self):
        self.p = FakePorts.build(clock=FakeClock())
        self.clock = self.p.clock
        self.p.devices.upsert(spec("dev-1"), 4)
        self.p.devices.upsert(spec("dev-2"), 4)
        self.p.devices.set_key_hash("dev-1", hash_device_key(KEY))
        self.p.devices.set_key_hash("dev-2", hash_device_key(OTHER_KEY))
        self.t = self.p.container(Settings()).telemetry

    def rent(self, device_id: str = "dev-1", seconds: int = 3600) -> dc.Contract:
        c = dc.open_contract(
            contract_id=f"CTR-{new_signature()[:24]}",
            wallet=new_wallet(),
            tier="M2",
            device_id=device_id,
            seconds=seconds,
            received_lamports=10**9,
            sig=new_signature(),
            now_ms=self.clock(),
        )
        claim = Claim(c.payments[0].sig, "rent", c.contract_id, c.wallet, "fp", {"contract_id": c.contract_id})
        self.p.tx.open_rental(claim, c, ledger.payment_postings(c, c.payments[0]), self.clock())
        return c

    def report(self, cid: str, body: dict, key: str | None = KEY):
        return self.t.record(cid, key, lambda now, lo, hi: schemas.metrics_samples(body, now, lo, hi))

    def writes(self) -> list[str]:
        return [c for c in self.p.db.calls if c.split(".")[1] in ("put_batch", "stamp_device") or c.startswith("tx.")]


@pytest.fixture
def w() -> World:
    return World()


def test_a_report_is_one_read_and_one_write_and_the_stamp_once_a_minute(w):
    c = w.rent()
    w.clock.advance(5)
    w.p.db.calls.clear()
    done = w.report(c.contract_id, SAMPLE)
    assert done.samples == 1 and done.contract.contract_id == c.contract_id
    assert w.p.db.calls == ["metrics.report_context", "metrics.put_batch", "metrics.stamp_device"]
    assert w.p.devices.get("dev-1").last_seen_ms == w.clock()
    stamped = w.clock()
    for _ in range(59):  # one report a second for the next 59 s: no stamp
        w.clock.advance(1)
        w.p.db.calls.clear()
        w.report(c.contract_id, SAMPLE)
        assert w.p.db.calls == ["metrics.report_context", "metrics.put_batch"]
    assert w.p.devices.get("dev-1").last_seen_ms == stamped
    w.clock.advance(1)  # 60 s after the stamp: due again
    w.p.db.calls.clear()
    w.report(c.contract_id, SAMPLE)
    assert w.p.db.calls[-1] == "metrics.stamp_device"
    assert w.p.devices.get("dev-1").last_seen_ms == stamped + LAST_SEEN_EVERY_MS


def test_a_retried_report_is_stored_once_and_answered_again(w):
    c = w.rent()
    body = {"samples": [dict(SAMPLE, timestamp_ms=w.clock() - i) for i in range(120)]}
    w.clock.advance(1)
    first = w.report(c.contract_id, body)
    snap = w.p.db.snapshot()
    again = w.report(c.contract_id, body)
    assert first.samples == again.samples == 120
    assert w.p.db.snapshot() == snap
    assert len(w.t.latest(c.contract_id)) == 100


@pytest.mark.parametrize(
    "key, error",
    [
        (None, Unauthorized),
        ("", Unauthorized),
        ("hello", Unauthorized),
        ("dk_dev-1_" + "x" * 32, Unauthorized),  # forged secret for the right device
        ("dk_dev-9_" + "s" * 32, Unauthorized),  # no such device
        ("dk_dev-2_" + "s" * 32, Unauthorized),  # dev-1's secret under dev-2's id
        (OTHER_KEY, Forbidden),  # a genuine key of a device the contract is not leased on
    ],
)
def test_credentials_are_checked_before_anything_is_written_or_parsed(w, key, error):
    c = w.rent()
    snap = w.p.db.snapshot()
    parsed = []
    with pytest.raises(error):
        w.t.record(c.contract_id, key, lambda *a: parsed.append(a) or [])
    assert parsed == [] and w.p.db.snapshot() == snap


def test_a_forged_key_learns_nothing_about_contracts(w):
    with pytest.raises(Unauthorized):
        w.report("CTR-" + "x" * 20, SAMPLE, key="dk_dev-1_" + "x" * 32)
    with pytest.raises(NotFound):
        w.report("CTR-" + "x" * 20, SAMPLE)


@pytest.mark.parametrize("when", ["expired", "settled"])
def test_an_ended_contract_records_nothing(w, when):
    c = w.rent(seconds=60)
    if when == "expired":
        w.clock.advance(60)
    else:
        w.clock.advance(10)
        after = dc.finalize(c, now_ms=w.clock(), refund_min_lamports=5000)
        w.p.tx.end_rental(c, after, ledger.settlement_postings(after))
    snap = w.p.db.snapshot()
    with pytest.raises(ContractNotActive):
        w.report(c.contract_id, SAMPLE)
    assert w.p.db.snapshot() == snap


def test_sample_times_must_fall_within_the_contracts_lifetime(w):
    c = w.rent()
    w.clock.advance(600)
    lo, hi = sample_window(c, w.clock())
    assert (lo, hi) == (c.created_at_ms - SAMPLE_CLOCK_SKEW_MS, w.clock() + SAMPLE_CLOCK_SKEW_MS)
    snap = w.p.db.snapshot()
    for ts, field in ((946_684_800_000, "timestamp_ms"), (lo - 1, "timestamp_ms"), (hi + 1, "timestamp_ms")):
        with pytest.raises(InvalidRequest) as exc:
            w.report(c.contract_id, dict(SAMPLE, timestamp_ms=ts))
        assert exc.value.reason == field
        with pytest.raises(InvalidRequest) as exc:
            w.report(c.contract_id, {"samples": [dict(SAMPLE, timestamp_ms=lo), dict(SAMPLE, timestamp_ms=ts)]})
        assert exc.value.reason == "samples[1].timestamp_ms"
    assert w.p.db.snapshot() == snap
    assert (
        w.report(c.contract_id, {"samples": [dict(SAMPLE, timestamp_ms=lo), dict(SAMPLE, timestamp_ms=hi)]}).samples
        == 2
    )


def test_the_window_ends_at_the_expiry_once_now_is_near_it(w):
    c = w.rent(seconds=60)
    w.clock.advance(59.9)
    lo, hi = sample_window(c, w.clock())
    assert hi == min(w.clock(), c.expires_at_ms) + SAMPLE_CLOCK_SKEW_MS
    w.report(c.contract_id, dict(SAMPLE, timestamp_ms=hi))
    # an already-expired window (the sweep has not run) would end at the expiry
    assert sample_window(c, c.expires_at_ms + 10**6)[1] == c.expires_at_ms + SAMPLE_CLOCK_SKEW_MS


def test_a_database_outage_writes_nothing_and_is_a_503(w):
    c = w.rent()
    snap = w.p.db.snapshot()
    w.p.db.fail_next("metrics.put_batch")
    with pytest.raises(Unavailable):
        w.report(c.contract_id, SAMPLE)
    assert w.p.db.snapshot() == snap


def test_a_failed_stamp_does_not_fail_a_stored_report(w):
    c = w.rent()
    w.p.db.fail_next("metrics.stamp_device")
    done = w.report(c.contract_id, SAMPLE)
    assert done.samples == 1 and len(w.t.latest(c.contract_id)) == 1
    assert w.p.devices.get("dev-1").last_seen_ms is None
    w.clock.advance(1)
    w.report(c.contract_id, SAMPLE)  # the next report stamps it
    assert w.p.devices.get("dev-1").last_seen_ms == w.clock()


def test_a_concurrent_stamp_is_not_an_error(w):
    c = w.rent()
    w.p.db.before_next(
        "metrics.stamp_device",
        lambda: w.p.metrics.stamp_device("dev-1", hash_device_key(KEY), w.clock(), LAST_SEEN_EVERY_MS),
    )
    assert w.report(c.contract_id, SAMPLE).samples == 1
    assert w.p.devices.get("dev-1").last_seen_ms == w.clock()


@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(0, 180), min_size=1, max_size=40))
def test_stamps_are_at_most_one_per_interval_for_any_report_times(gaps):
    w = World()
    c = w.rent(seconds=720 * 3600)
    stamps = []
    for g in gaps:
        w.clock.advance(g)
        before = w.p.devices.get("dev-1").last_seen_ms
        w.report(c.contract_id, SAMPLE if g else dict(SAMPLE, cpu_percent=len(stamps)))
        now_stamp = w.p.devices.get("dev-1").last_seen_ms
        if now_stamp != before:
            stamps.append(now_stamp)
        # the stamp is never older than the interval after a report
        assert w.clock() - now_stamp < LAST_SEEN_EVERY_MS
    assert all(b - a >= LAST_SEEN_EVERY_MS for a, b in zip(stamps, stamps[1:], strict=False))


def test_latest_of_an_unknown_contract_is_not_found(w):
    with pytest.raises(NotFound):
        w.t.latest("CTR-" + "y" * 20)
    assert w.t.latest(w.rent().contract_id) == []
