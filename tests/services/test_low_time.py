"""contract.low_time on fakes: the sweep writes it once per contract and expiry (the marker and
the event in one transaction), never twice under two concurrent sweeps, again after an extension
(a new expiry), never for a contract settled meanwhile; a delivery carries it, HMAC-signed."""

from __future__ import annotations

import json

import pytest

from chalicelib.domain import webhooks as W
from chalicelib.services.webhook_delivery import WebhookDelivery
from tests.services.conftest import World, make_world
from tests.services.test_webhook_delivery import FakeReceiver, FakeWebhookQueue

PRICE = 1_000_000  # an hour of M2


@pytest.fixture
def world() -> World:
    return make_world()


def low_time_events(world: World) -> list[W.Event]:
    events = [r["event"] for r in world.db.tables["outbox"].values()]
    return [e for e in events if e.event_type == "contract.low_time"]


@pytest.mark.parametrize(
    ("seconds", "threshold_s"),
    [(60, 60), (300, 60), (600, 60), (1200, 120), (3600, 360), (6000, 600), (36_000, 600), (2_592_000, 600)],
)
def test_the_threshold_is_10_percent_at_most_10_min_at_least_the_sweep_period(seconds, threshold_s):
    assert W.low_time_threshold_ms(seconds) == threshold_s * 1000
    assert W.low_time_threshold_ms(seconds) <= W.LOW_TIME_HORIZON_MS


def test_an_hour_is_told_once_at_6_min_left_and_the_event_is_delivered_signed(world: World):
    c = world.rent("M2", 3600, PRICE)
    world.clock.advance(3600 - 361)  # 6 min 1 s left
    assert world.c.sweep.run().low_time_sent == 0 and low_time_events(world) == []
    world.clock.advance(1)  # exactly 6 min left
    before_version = world.p.contracts.get(c.contract_id).version
    assert world.c.sweep.run().low_time_sent == 1
    [event] = low_time_events(world)
    assert event.contract_id == c.contract_id and event.wallet == c.wallet
    assert event.data["remaining_ms"] == 360_000 and event.data["threshold_ms"] == 360_000
    stored = world.p.contracts.get(c.contract_id)
    assert stored.low_time_for_ms == c.expires_at_ms and stored.version == before_version  # version kept
    for _ in range(3):
        world.clock.advance(60)
        assert world.c.sweep.run().low_time_sent == 0  # once
    assert len(low_time_events(world)) == 1

    hook = world.c.webhooks.register(
        W.wallet_owner(c.wallet), {"url": "https://hooks.example.com/x", "events": ["contract.low_time"]}
    ).webhook
    queue, receiver = FakeWebhookQueue(), FakeReceiver()
    delivery = WebhookDelivery(world.c.outbox, world.c.webhook_store, queue, receiver, world.clock, world.settings)
    assert delivery.dispatch().deliveries == 1
    [msg] = queue.take()
    assert delivery.deliver(msg).outcome == "delivered"
    [(_, body, headers)] = receiver.got
    assert W.verify_signature(hook.secret, headers["SI64-Signature"], body, world.clock() // 1000)
    sent = json.loads(body)
    assert sent["type"] == "contract.low_time" and sent["id"] == event.event_id


def test_two_sweeps_at_once_write_one_event(world: World):
    c = world.rent("M2", 3600, PRICE)
    world.clock.advance(3600 - 300)
    second = []
    # the second sweep runs between the first's read and its write: it wins, the first loses
    world.db.before_next("tx.mark_low_time", lambda: second.append(world.c.sweep.run()))
    first = world.c.sweep.run()
    assert first.low_time_sent + second[0].low_time_sent == 1
    assert len(low_time_events(world)) == 1
    assert world.p.contracts.get(c.contract_id).low_time_for_ms == c.expires_at_ms


def test_a_lost_answer_sent_again_writes_nothing_more(world: World):
    world.rent("M2", 3600, PRICE)
    world.clock.advance(3600 - 300)
    world.db.repeat_next("tx.mark_low_time")  # it landed, the SDK sends it again: a Conflict
    world.c.sweep.run()
    assert len(low_time_events(world)) == 1


def test_an_extension_is_a_new_expiry_told_once_again(world: World):
    c = world.rent("M2", 3600, PRICE)
    world.clock.advance(3600 - 300)
    world.c.sweep.run()
    world.rentals.extend(world.extend_request(c, 600, PRICE // 6 + 1))  # 5 min left + 10 min: 15 min left
    after = world.p.contracts.get(c.contract_id)
    assert after.expires_at_ms == c.expires_at_ms + 600_000
    assert world.c.sweep.run().low_time_sent == 0  # 15 min left > 7 min (10 % of 70 min)
    world.clock.advance(15 * 60 - 420)  # 7 min left
    assert world.c.sweep.run().low_time_sent == 1
    world.clock.advance(60)
    assert world.c.sweep.run().low_time_sent == 0
    events = low_time_events(world)
    assert len(events) == 2 and len({e.event_id for e in events}) == 2
    assert sorted(e.data["expires_at_ms"] for e in events) == [c.expires_at_ms, after.expires_at_ms]


def test_a_contract_settled_before_or_during_the_sweep_is_not_told(world: World):
    c = world.rent("M2", 3600, PRICE)
    world.clock.advance(3600 - 300)
    world.db.before_next("tx.mark_low_time", lambda: world.rentals.settle(c.contract_id, c.wallet))
    report = world.c.sweep.run()
    assert report.low_time_sent == 0 and low_time_events(world) == []
    assert world.c.sweep.run().low_time_sent == 0  # ended: out of the index


def test_a_short_contract_is_told_at_its_first_sweep_and_an_expired_one_never(world: World):
    short = world.rent("M2", 60, PRICE // 60 + 1)
    assert world.c.sweep.run().low_time_sent == 1
    missed = world.rent("M2", 60, PRICE // 60 + 1)
    world.clock.advance(61)  # the sweep did not run before its expiry: it is expired, not told
    report = world.c.sweep.run()
    assert report.expired == 2 and report.low_time_sent == 0
    assert [e.contract_id for e in low_time_events(world)] == [short.contract_id]
    assert missed.contract_id not in {e.contract_id for e in low_time_events(world)}


def test_an_outage_on_the_low_time_read_is_reported_and_expiries_still_happen(world: World):
    world.rent("M2", 60, PRICE // 60 + 1)
    world.db.fail_next("contracts.expiring")
    report = world.c.sweep.run()
    assert report.low_time_sent == 0 and any("low time" in e for e in report.errors)
    assert low_time_events(world) == []
    assert world.c.sweep.run().low_time_sent == 1  # the next run tells it
