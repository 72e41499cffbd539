"""Telemetry.record / .latest on fakes: device keys, the contract's device, ended contracts,
retried reports, races with a settle or a key rotation, outages."""

from __future__ import annotations

from decimal import Decimal

import pytest

from chalicelib.domain import contracts as dc
from chalicelib.domain.errors import (
    ContractNotActive,
    Forbidden,
    InvalidRequest,
    NotFound,
    Unauthorized,
    Unavailable,
)


class Samples:
    """The edge's parser stand-in: rows for `now`, and whether it was asked at all."""

    def __init__(self, n: int = 1, cpu: Decimal = Decimal("41.5")):
        self.n, self.cpu, self.asked = n, cpu, 0

    def __call__(self, now_ms: int, earliest_ms: int | None = None, latest_ms: int | None = None) -> list[list]:
        self.asked += 1
        return [
            [now_ms - (self.n - 1 - i) * 1000, self.cpu, 2048, Decimal("3.2"), Decimal("0.7")] for i in range(self.n)
        ]


@pytest.fixture
def k(w) -> dc.Contract:
    return w.rent("M2", 3600, 1_000_000)  # on dev-m2-a


@pytest.fixture
def keys(w) -> dict[str, str]:
    return {d: w.operator.issue_device_key(d) for d in ("dev-m2-a", "dev-m2-b")}


def test_a_report_is_stored_and_answered_with_the_contract(w, k, keys):
    w.clock.advance(60)
    rec = w.telemetry.record(k.contract_id, keys["dev-m2-a"], Samples(3))
    assert (rec.contract, rec.samples, rec.at_ms) == (k, 3, w.clock())
    assert w.telemetry.latest(k.contract_id) == Samples(3)(w.clock())
    assert w.p.devices.get("dev-m2-a").last_seen_ms == w.clock()


def test_a_retried_report_is_stored_once_and_answered_again(w, k, keys):
    first = w.telemetry.record(k.contract_id, keys["dev-m2-a"], Samples(2))
    again = w.telemetry.record(k.contract_id, keys["dev-m2-a"], Samples(2))
    assert again == first and len(w.db.tables["metrics"]) == 1
    assert len(w.telemetry.latest(k.contract_id)) == 2


def _refused(w, contract_id, key, exc_type, reason=None):
    samples = Samples()
    before = w.db.snapshot()
    with pytest.raises(exc_type) as exc:
        w.telemetry.record(contract_id, key, samples)
    assert samples.asked == 0, "the body is looked at only once the key and the contract check out"
    assert w.db.snapshot() == before
    if reason:
        assert exc.value.reason == reason


def test_a_genuine_key_of_another_device_is_forbidden(w, k, keys):
    _refused(w, k.contract_id, keys["dev-m2-b"], Forbidden, "device")


def test_a_forged_key_of_another_device_is_unauthorized(w, k, keys):
    _refused(w, k.contract_id, "dk_dev-m2-b_" + "x" * 32, Unauthorized, "X-Device-Key")


def test_a_forged_key_of_the_right_device_is_unauthorized_and_nothing_stored(w, k, keys):
    before = w.db.snapshot()
    with pytest.raises(Unauthorized):
        w.telemetry.record(k.contract_id, "dk_dev-m2-a_" + "x" * 32, Samples())
    assert w.db.snapshot() == before


def test_a_dead_key_stops_working_once_a_new_one_is_issued(w, k, keys):
    w.operator.issue_device_key("dev-m2-a")
    with pytest.raises(Unauthorized):
        w.telemetry.record(k.contract_id, keys["dev-m2-a"], Samples())
    assert w.db.tables["metrics"] == {}


@pytest.mark.parametrize(
    "key", [None, "", "abc", "dk_dev-m2-a", "dk_dev-m2-a_short", "dk__" + "x" * 32, "dk_dev-m2-a_" + "x" * 300]
)
def test_a_malformed_key_is_unauthorized_without_a_read(w, k, key):
    w.db.calls.clear()
    with pytest.raises(Unauthorized):
        w.telemetry.record(k.contract_id, key, Samples())
    assert w.db.calls == []


def test_no_such_contract(w, keys):
    _refused(w, "CTR-nosuchcontract000000", keys["dev-m2-a"], NotFound)


def test_a_settled_contract_records_nothing(w, k, keys):
    w.rentals.settle(k.contract_id, k.wallet)
    _refused(w, k.contract_id, keys["dev-m2-a"], ContractNotActive, "status")
    _refused(w, k.contract_id, "dk_dev-m2-a_" + "y" * 32, Unauthorized)  # a forged key learns nothing


def test_a_contract_past_its_expiry_records_nothing_before_the_sweep(w, k, keys):
    w.clock.advance(3600)
    _refused(w, k.contract_id, keys["dev-m2-a"], ContractNotActive)


def test_a_body_the_edge_refuses_writes_nothing(w, k, keys):
    def bad(now_ms, earliest_ms=None, latest_ms=None):
        raise InvalidRequest("cpu_percent must be a number", reason="cpu_percent")

    before = w.db.snapshot()
    with pytest.raises(InvalidRequest):
        w.telemetry.record(k.contract_id, keys["dev-m2-a"], bad)
    assert w.db.snapshot() == before


# --- races and outages ----------------------------------------------------------------------------


# A settle or a key rotation between the reads and the single put may let one batch land
# (docs/adr/0007-cheap-metering.md: usage is billed from server time, never from samples).


def test_an_sdk_retry_of_a_landed_report_is_answered_as_stored(w, k, keys):
    w.db.repeat_next("metrics.put_batch")
    rec = w.telemetry.record(k.contract_id, keys["dev-m2-a"], Samples(2))
    assert rec.samples == 2 and len(w.db.tables["metrics"]) == 1


@pytest.mark.parametrize("down", ["database", "metrics"])  # a report reads and writes through metrics only
def test_an_outage_is_unavailable_and_writes_nothing(w, k, keys, down):
    before = w.db.snapshot()
    if down == "database":
        w.db.down = True
    else:
        getattr(w.p, down).down = True
    with pytest.raises(Unavailable):
        w.telemetry.record(k.contract_id, keys["dev-m2-a"], Samples())
    assert w.db.snapshot() == before


# --- latest -----------------------------------------------------------------------------------------


def test_latest_is_the_newest_hundred_oldest_first(w, k, keys):
    key = keys["dev-m2-a"]
    for i in range(3):
        w.clock.advance(60)
        w.telemetry.record(k.contract_id, key, Samples(40, cpu=Decimal(i)))  # 120 rows in 3 batches
    rows = w.telemetry.latest(k.contract_id)
    assert len(rows) == 100
    assert [r[0] for r in rows] == sorted(r[0] for r in rows)
    assert rows[-1][0] == w.clock() and rows[0][1] == 0.0 and rows[-1][1] == 2.0
    assert sum(1 for r in rows if r[1] == 0.0) == 20  # only the oldest batch is cut


def test_latest_of_a_contract_without_samples_is_empty(w, k):
    assert w.telemetry.latest(k.contract_id) == []


def test_latest_of_no_contract_is_not_found(w):
    with pytest.raises(NotFound):
        w.telemetry.latest("CTR-nosuchcontract000000")


def test_latest_in_an_outage_is_unavailable(w, k):
    w.p.metrics.down = True
    with pytest.raises(Unavailable):
        w.telemetry.latest(k.contract_id)
