"""Webhook delivery on fakes: the outbox is written with the money transaction (not on a
failure), dispatch queues one delivery per subscribed webhook, a delivery is HMAC-signed and
verifies, a failed one comes back with the same event id after a growing delay, a private
address is refused at delivery time in production, and a dead receiver never fails a rent."""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from typing import Any

import pytest

from chalicelib.domain import webhooks as W
from chalicelib.domain.errors import Unavailable
from chalicelib.services.webhook_delivery import GIVE_UP_AFTER_MS, WebhookDelivery
from tests.services.conftest import World, make_world

PRICE = 1_000_000  # an hour of M2


@dataclass
class FakeWebhookQueue:
    messages: list[tuple[dict[str, Any], int]] = field(default_factory=list)
    down: bool = False

    def send_delivery(self, message: dict[str, Any], delay_seconds: int) -> bool:
        if self.down:
            return False
        self.messages.append((json.loads(json.dumps(message)), delay_seconds))
        return True

    def take(self) -> list[dict[str, Any]]:
        out = [m for m, _ in self.messages]
        self.messages.clear()
        return out


@dataclass
class FakeReceiver:
    """Resolves every host to `addresses`; answers `statuses` in turn (then 200)."""

    addresses: list[str] = field(default_factory=lambda: ["93.184.216.34"])
    statuses: list[int | None] = field(default_factory=list)  # None: a timeout
    got: list[tuple[str, bytes, dict[str, str]]] = field(default_factory=list)

    def resolve(self, host: str, port: int) -> list[str]:
        return list(self.addresses)

    def post(self, url: str, address: str, body: bytes, headers: dict[str, str], timeout: float) -> int:
        assert timeout == 5.0
        self.got.append((url, body, headers))
        status = self.statuses.pop(0) if self.statuses else 200
        if status is None:
            raise TimeoutError("timed out")
        return status


@pytest.fixture
def setup(world: World):
    queue, receiver = FakeWebhookQueue(), FakeReceiver()
    c = world.c
    delivery = WebhookDelivery(c.outbox, c.webhook_store, queue, receiver, c.clock, c.settings)
    return world, queue, receiver, delivery


@pytest.fixture
def world() -> World:
    return make_world()


def register(world: World, owner: str, events: list[str]) -> W.Webhook:
    reg = world.c.webhooks.register(owner, {"url": "https://hooks.example.com/x", "events": events})
    return reg.webhook


def test_a_rent_writes_its_event_in_the_transaction_and_a_refused_one_writes_none(setup):
    world, queue, receiver, delivery = setup
    c = world.rent("M2", 3600, PRICE)
    events = [r["event"] for r in world.db.tables["outbox"].values()]
    assert [(e.event_type, e.contract_id) for e in events] == [("contract.created", c.contract_id)]
    before = world.db.snapshot()
    world.db.fail_next("tx.open_rental")
    with pytest.raises(Unavailable):
        world.rent("M2", 3600, PRICE)
    assert world.db.snapshot()["outbox"] == before["outbox"]


def test_dispatch_then_deliver_signed_and_verified_to_admin_and_the_wallet_only(setup):
    world, queue, receiver, delivery = setup
    admin = register(world, "admin", ["contract.created", "contract.settled"])
    c = world.rent("M2", 3600, PRICE)
    wallet = c.wallet
    mine = register(world, W.wallet_owner(wallet), ["contract.created"])
    register(world, W.wallet_owner("someone-else"), ["contract.created"])  # not told
    register(world, "admin", ["refund.failed"])  # not subscribed

    report = delivery.dispatch()
    assert (report.events, report.deliveries) == (1, 2)
    assert delivery.dispatch().deliveries == 0  # dispatched once: out of the index
    for msg in queue.take():
        assert delivery.deliver(msg).outcome == "delivered"
    now_s = world.c.clock() // 1000
    by_hook = {}
    for _, body, headers in receiver.got:
        for hook in (admin, mine):
            if W.verify_signature(hook.secret, headers["SI64-Signature"], body, now_s):
                by_hook[hook.webhook_id] = json.loads(body)
    assert set(by_hook) == {admin.webhook_id, mine.webhook_id}
    sent = by_hook[admin.webhook_id]
    assert sent["type"] == "contract.created" and sent["id"].startswith("evt_")
    assert sent["data"]["contract_id"] == c.contract_id
    assert set(sent) == {"id", "type", "created", "data"}


def test_one_dispatch_run_reads_each_owners_webhooks_once_and_still_sends_each_event_to_its_hooks(setup):
    world, queue, receiver, delivery = setup
    admin = register(world, "admin", ["contract.created"])
    a, b = "wallet-a", "wallet-b"
    mine = register(world, W.wallet_owner(a), ["contract.created"])
    rented = [world.rent("M2", 3600, PRICE, wallet=w) for w in (a, a, b)]
    world.p.db.calls.clear()

    report = delivery.dispatch()
    # the admin's, a's and b's webhooks: one read each, not two per event
    assert world.p.db.calls.count("webhooks.of") == 3
    assert (report.events, report.deliveries) == (3, 5)
    sent = sorted(
        (m["webhook_id"], world.c.outbox.get(m["event_id"]).body()["data"]["contract_id"]) for m in queue.take()
    )
    assert sent == sorted(
        [(admin.webhook_id, c.contract_id) for c in rented]
        + [(mine.webhook_id, c.contract_id) for c in rented if c.wallet == a]
    )


def test_a_failed_delivery_comes_again_with_the_same_id_after_growing_delays(setup):
    world, queue, receiver, delivery = setup
    hook = register(world, "admin", ["contract.created"])
    world.rent("M2", 3600, PRICE)
    delivery.dispatch()
    receiver.statuses = [500, None, 503]  # an error, a timeout, an error, then 200
    msg = queue.take()[0]
    delays = []
    for _ in range(3):
        assert delivery.deliver(msg).outcome == "retry"
        ((msg, delay),) = queue.messages
        queue.messages.clear()
        delays.append(delay)
        world.clock.advance(delay)  # SQS holds it this long
    assert delivery.deliver(msg).outcome == "delivered"
    assert delays == [30, 60, 120]
    ids = {json.loads(body)["id"] for _, body, _ in receiver.got}
    assert len(receiver.got) == 4 and len(ids) == 1
    now_s = world.clock() // 1000
    assert all(
        W.verify_signature(hook.secret, h["SI64-Signature"], b, now_s, tolerance_s=3600) for _, b, h in receiver.got
    )


def test_retries_stop_24_hours_after_the_event(setup):
    world, queue, receiver, delivery = setup
    register(world, "admin", ["contract.created"])
    world.rent("M2", 3600, PRICE)
    delivery.dispatch()
    msg = queue.take()[0]
    world.clock.advance(GIVE_UP_AFTER_MS // 1000)
    receiver.statuses = [500]
    assert delivery.deliver(msg).outcome == "gave_up"
    assert queue.messages == []


def test_a_private_address_is_refused_at_delivery_time_in_production_not_locally(setup):
    world, queue, receiver, delivery = setup
    register(world, "admin", ["contract.created"])
    world.rent("M2", 3600, PRICE)
    delivery.dispatch()
    msg = queue.take()[0]
    receiver.addresses = ["93.184.216.34", "169.254.169.254"]  # DNS now points inside too
    out = delivery.deliver(msg)
    assert out.outcome == "retry" and "refused" in out.detail and receiver.got == []
    delivery.settings = replace(delivery.settings, webhook_allow_local=True)
    assert delivery.deliver(queue.take()[0]).outcome == "retry"  # still waiting its backoff
    world.clock.advance(3600)
    assert delivery.deliver(queue.take()[0]).outcome == "delivered"


def test_a_queue_outage_leaves_the_event_pending_and_a_rent_never_waits_on_delivery(setup):
    world, queue, receiver, delivery = setup
    register(world, "admin", ["contract.created"])
    queue.down = True
    world.rent("M2", 3600, PRICE)  # the money path calls no receiver and no queue
    assert receiver.got == [] and queue.messages == []
    assert delivery.dispatch().unsent == 1
    queue.down = False
    assert delivery.dispatch().deliveries == 1


def test_settle_and_expiry_write_their_events(setup):
    world, queue, receiver, delivery = setup
    a = world.rent("M2", 3600, PRICE)
    b = world.rent("M2", 60, PRICE)
    world.clock.advance(30)
    world.rentals.settle(a.contract_id, a.wallet)
    world.clock.advance(120)
    world.c.sweep.run()
    got = sorted((r["event"].contract_id, r["event"].event_type) for r in world.db.tables["outbox"].values())
    assert got == sorted(
        [
            (a.contract_id, "contract.created"),
            (a.contract_id, "contract.settled"),
            (b.contract_id, "contract.created"),
            (b.contract_id, "contract.expired"),
        ]
    )
