"""Device-signed receipts in the services, on fakes: a signed report costs the metrics path no
extra call, the coverage rebuilt from the stored batches equals the covered time kept with each
report, a report whose covered time was lost to an outage is counted when the device resends it,
and a replay never counts twice."""

from __future__ import annotations

import json
import random

import pytest

from chalicelib.api import schemas
from chalicelib.domain import contracts as dc
from chalicelib.domain import money, usage_receipts
from chalicelib.domain.errors import Unavailable
from si64_protocol.receipts import chain_problem
from tests.services.conftest import World, make_world
from tests.support.device_receipts import SigningDevice, sample

LPH = money.TIERS["M2"].lamports_per_hour
PRICE_30S = money.price_lamports(LPH, 30)


@pytest.fixture
def cw() -> World:
    return make_world(coverage_grace_seconds=1, min_duration_seconds=1)


def report(w: World, cid: str, key: str, body: dict) -> None:
    """What the edge and the handler do with a body: parse it as the server does, read the device,
    the contract and the receipt before the one sent in ONE read, then record."""
    raw = json.dumps(body).encode()
    parsed = schemas.parse_json(raw)
    seq = parsed.get("receipt", {}).get("seq") if isinstance(parsed.get("receipt"), dict) else None
    context = w.telemetry.read(key, cid, seq)
    w.telemetry.record(
        cid,
        key,
        lambda now, lo, hi: schemas.metrics_samples(parsed, now, lo, hi),
        context=context,
        signed=lambda: usage_receipts.signed_batch(parsed),
    )


def keyed_contract(w: World) -> tuple[dc.Contract, str, SigningDevice]:
    devices = {d.device_id: SigningDevice("") for d in w.p.devices.by_tier("M2")}
    for device_id, dev in devices.items():
        w.operator.register_pubkey(device_id, dev.pubkey)
    c = w.rent("M2", 30, PRICE_30S)
    dev = devices[c.device_id]
    dev.contract_id = c.contract_id
    return c, w.operator.issue_device_key(c.device_id), dev


def batch(w: World, dev: SigningDevice) -> dict:
    return dev.batch([sample(w.clock() - 200), sample(w.clock())])


def test_a_signed_report_is_one_read_and_one_write_like_any_report(cw):
    c, key, dev = keyed_contract(cw)
    for _ in range(3):
        cw.clock.advance(0.5)
        cw.db.calls.clear()
        report(cw, c.contract_id, key, batch(cw, dev))
        calls = [x for x in cw.db.calls if x != "metrics.stamp_device"]
        assert calls[:2] == ["metrics.report_context", "metrics.put_batch"] and "metrics.receipt" not in calls
        assert calls[2:] in ([], ["metrics.cover"])  # the covered time, as any report's
    assert [r.receipt.seq for r in cw.p.metrics.batches(c.contract_id)[1]] == [0, 1, 2]


def test_the_coverage_rebuilt_from_the_batches_equals_the_covered_time_kept_with_each_report(cw):
    """Reports at random moments of a 30 s contract with silences longer than the grace, checked
    while ACTIVE after every report, then once it has expired."""
    rng = random.Random(18)
    c, key, dev = keyed_contract(cw)
    while cw.clock() < c.expires_at_ms - 3_000:
        cw.clock.advance(rng.choice([0.3, 0.5, 0.9, 1.7, 2.5]))
        report(cw, c.contract_id, key, batch(cw, dev))
        proof = cw.c.proofs.coverage(c.contract_id, c.wallet)
        status = cw.p.contracts.get(c.contract_id).figures(cw.clock())
        elapsed = cw.clock() - c.created_at_ms
        assert proof.covered_ms == status.covered_ms == elapsed - sum(hi - lo for lo, hi in proof.gaps)
        assert proof.uncovered_ms == sum(hi - lo for lo, hi in proof.gaps)
    assert proof.gaps, "the schedule has silences longer than the 1 s grace"
    cw.clock.now_ms = c.expires_at_ms + 1
    assert cw.c.sweep.run().expired == 1
    proof = cw.c.proofs.coverage(c.contract_id, None)
    ended = cw.p.contracts.get(c.contract_id)
    assert proof.contract.status == dc.EXPIRED
    assert proof.covered_ms == ended.figures(cw.clock()).covered_ms == 30_000 - sum(hi - lo for lo, hi in proof.gaps)
    views = [usage_receipts.to_view(r) for r in proof.receipts]
    assert chain_problem(c.contract_id, views) is None


def test_the_rebuild_matches_for_a_device_without_a_key_too(cw):
    c = cw.rent("M2", 30, PRICE_30S)
    key = cw.operator.issue_device_key(c.device_id)
    for step in (0.5, 0.5, 3, 0.2, 4, 1):
        cw.clock.advance(step)
        report(cw, c.contract_id, key, {"samples": [sample(cw.clock())]})
    proof = cw.c.proofs.coverage(c.contract_id, c.wallet)
    t0 = c.created_at_ms  # reports at 0.5, 1, 4, 4.2, 8.2 and 9.2 s, each covering the second before it
    assert proof.receipts == [] and proof.gaps == [(t0 + 1_000, t0 + 3_000), (t0 + 4_200, t0 + 7_200)]
    assert proof.covered_ms == cw.clock() - c.created_at_ms - sum(hi - lo for lo, hi in proof.gaps)


def test_a_report_whose_covered_time_was_lost_is_counted_once_when_the_device_resends_it(cw):
    c, key, dev = keyed_contract(cw)
    cw.clock.advance(5)
    body = batch(cw, dev)
    cw.db.fail_next("metrics.cover")  # the batch is stored, then the database stops answering
    with pytest.raises(Unavailable):
        report(cw, c.contract_id, key, body)
    sent_at = cw.clock()
    assert cw.p.contracts.get(c.contract_id).figures(sent_at).covered_ms == 1_000  # the start-up second only
    cw.clock.advance(3)  # the agent retries the same batch later
    report(cw, c.contract_id, key, body)
    proof = cw.c.proofs.coverage(c.contract_id, c.wallet)
    assert proof.covered_ms == 2_000  # counted at its first send, once
    assert proof.gaps == [(c.created_at_ms + 1_000, sent_at - 1_000), (sent_at, cw.clock())]
    cw.clock.advance(1)
    report(cw, c.contract_id, key, body)  # and again: nothing more
    assert cw.c.proofs.coverage(c.contract_id, c.wallet).covered_ms == 2_000
    assert len(cw.p.metrics.batches(c.contract_id)[1]) == 1
