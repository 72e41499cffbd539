"""SQS redelivery storms: the same refund messages delivered many times, in any order, in
batches holding duplicates, stale and old-format bodies, interleaved with sweeps that queue
them again, with the chain failing now and then, and from several workers at once.

Whatever the order: every refund is paid exactly once, to the lamport, and the books
balance after every delivery (harness.check).
"""

from __future__ import annotations

import json
import random
import threading

import pytest

from chalicelib.domain import refunds as R

from .harness import Message, World, check, check_settled


def _settled(w: World, n: int) -> list:
    ks = [w.rent(3600, overpay=10_000 * (i + 1)) for i in range(n)]
    w.clock.advance(600)
    return [w.c.rentals.settle(k.contract_id, k.wallet) for k in ks]


def _assert_paid_once(w: World, ended) -> None:
    for k in ended:
        r = w.c.contracts.get(k.contract_id)
        assert r.refund_status == R.CONFIRMED
        assert [t.lamports for t in w.chain.transfers_to(k.wallet)] == [k.refund_lamports]


@pytest.mark.parametrize("seed", range(6))
def test_a_storm_of_duplicated_reordered_messages_pays_each_refund_once(seed):
    rng = random.Random(seed)
    w = World(capacity=4)
    ended = _settled(w, 6)
    base = list(w.collect())
    # every message 15 times, old-format and stale-version copies among them
    storm: list[Message] = []
    for m in base:
        rid = json.loads(m.body)["refund_id"]
        for i in range(15):
            body = m.body if i % 3 else json.dumps({"contract_id": rid, "version": rng.randint(1, 9)})
            storm.append(Message(f"{m.message_id}-{i}", body))
    rng.shuffle(storm)
    for step in range(0, len(storm), 7):
        batch = storm[step : step + rng.randint(1, 10)]
        if rng.random() < 0.2:
            w.chain.fail_next_calls = rng.randint(1, 3)  # the node drops a few calls
        if rng.random() < 0.1:
            w.chain.pending = not w.chain.pending  # finality slows down / catches up
        if rng.random() < 0.15:
            w.clock.advance(w.settings.refund_requeue_seconds + 1)
            w.c.sweep.run()  # requeues what is still owed: more copies in the storm
            storm.extend(w.collect())
            w.inbox.clear()
        if rng.random() < 0.1:
            w.chain.advance()
        w.deliver(batch)
        check(w)
    w.drain()
    check_settled(w)
    _assert_paid_once(w, ended)
    assert len(w.chain.transfers) == len(ended)


def test_one_batch_holding_the_same_refund_ten_times_handles_it_once():
    w = World()
    [k] = _settled(w, 1)
    [m] = w.collect()
    copies = [Message(f"c-{i}", m.body) for i in range(10)]
    assert w.deliver(copies) == []
    assert w.chain.calls.count("send") == 1
    _assert_paid_once(w, [k])
    check_settled(w)


def test_four_workers_delivering_the_same_messages_at_once_pay_each_refund_once():
    w = World(capacity=4)
    ended = _settled(w, 4)
    msgs = list(w.collect())
    errors: list[BaseException] = []

    def worker(i: int) -> None:
        rng = random.Random(i)
        try:
            for _ in range(10):
                w.deliver([rng.choice(msgs)])
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert errors == []
    check(w)
    w.drain()
    check_settled(w)
    _assert_paid_once(w, ended)


def test_messages_delivered_long_after_the_refund_confirmed_do_nothing():
    w = World()
    ended = _settled(w, 3)
    msgs = list(w.collect())
    w.drain()
    sent = list(w.chain.sent)
    before = w.db.snapshot()
    w.clock.advance(86_400)
    w.chain.advance(10_000)
    for _ in range(5):
        assert w.deliver(msgs) == []
    assert w.chain.sent == sent and w.db.snapshot() == before
    _assert_paid_once(w, ended)
    check_settled(w)
