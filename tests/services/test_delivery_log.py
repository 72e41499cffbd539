"""The delivery log on fakes: pending when dispatched, failing with its attempts and next try,
delivered, given up after 24 h; what `GET /api/webhooks/{id}/deliveries` serves (the owner's
webhooks only); a log that does not answer never fails or delays a delivery."""

from __future__ import annotations

import pytest

from chalicelib.domain import webhooks as W
from chalicelib.domain.errors import NotFound
from chalicelib.services.webhook_delivery import GIVE_UP_AFTER_MS, WebhookDelivery
from tests.services.conftest import World, make_world
from tests.services.test_webhook_delivery import PRICE, FakeReceiver, FakeWebhookQueue, register


@pytest.fixture
def setup():
    world = make_world()
    queue, receiver = FakeWebhookQueue(), FakeReceiver()
    c = world.c
    delivery = WebhookDelivery(c.outbox, c.webhook_store, queue, receiver, c.clock, c.settings, c.delivery_log)
    return world, queue, receiver, delivery


def statuses(world: World, owner: str, hook: W.Webhook) -> list[tuple[str, int]]:
    return [(d.status, d.attempts) for d in world.c.webhooks.deliveries(owner, hook.webhook_id)]


def test_pending_failing_then_delivered_with_attempts_and_next_try(setup):
    world, queue, receiver, delivery = setup
    hook = register(world, "admin", ["contract.created"])
    world.rent("M2", 3600, PRICE)
    delivery.dispatch()
    assert statuses(world, "admin", hook) == [("pending", 0)]
    receiver.statuses = [500, None]
    msg = queue.take()[0]
    assert delivery.deliver(msg).outcome == "retry"
    [d] = world.c.webhooks.deliveries("admin", hook.webhook_id)
    assert (d.status, d.attempts, d.last_status, d.last_error) == ("failing", 1, 500, "HTTP 500")
    assert d.next_try_ms == world.clock() + 30_000 and d.event_type == "contract.created"
    ((msg, delay),) = queue.messages
    queue.messages.clear()
    world.clock.advance(delay)
    assert delivery.deliver(msg).outcome == "retry"  # a timeout
    [d] = world.c.webhooks.deliveries("admin", hook.webhook_id)
    assert (d.status, d.attempts, d.last_status) == ("failing", 2, None) and "TimeoutError" in (d.last_error or "")
    ((msg, delay),) = queue.messages
    world.clock.advance(delay)
    assert delivery.deliver(msg).outcome == "delivered"
    assert statuses(world, "admin", hook) == [("delivered", 3)]


def test_given_up_after_24_hours(setup):
    world, queue, receiver, delivery = setup
    hook = register(world, "admin", ["contract.created"])
    world.rent("M2", 3600, PRICE)
    delivery.dispatch()
    world.clock.advance(GIVE_UP_AFTER_MS // 1000)
    receiver.statuses = [503]
    assert delivery.deliver(queue.take()[0]).outcome == "gave_up"
    assert statuses(world, "admin", hook) == [("given_up", 1)]


def test_each_owner_reads_only_its_own_webhooks_log(setup):
    world, queue, receiver, delivery = setup
    c = world.rent("M2", 3600, PRICE)
    mine = register(world, W.wallet_owner(c.wallet), ["contract.created"])
    theirs = register(world, "admin", ["contract.created"])
    delivery.dispatch()
    for msg in queue.take():
        delivery.deliver(msg)
    assert statuses(world, W.wallet_owner(c.wallet), mine) == [("delivered", 1)]
    for owner, hook in ((W.wallet_owner("someone-else"), mine), (W.wallet_owner(c.wallet), theirs)):
        with pytest.raises(NotFound):
            world.c.webhooks.deliveries(owner, hook.webhook_id)


def test_a_log_outage_never_fails_or_delays_a_delivery(setup):
    world, queue, receiver, delivery = setup
    hook = register(world, "admin", ["contract.created"])
    world.rent("M2", 3600, PRICE)
    world.db.fail_next("deliveries.record", times=2)
    assert delivery.dispatch().deliveries == 1
    assert delivery.deliver(queue.take()[0]).outcome == "delivered"
    assert len(receiver.got) == 1
    assert world.c.webhooks.deliveries("admin", hook.webhook_id) == []  # not recorded, that is all
