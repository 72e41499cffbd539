"""A process killed at EVERY step boundary of rent, extend, settle, the refund worker, the sweep
(and a payer's refund request), then restarted.

A kill is `Killed` (a BaseException: nothing catches it, as nothing survives a dead Lambda)
raised at port call k — before the call runs, or after it took effect with its answer never
read — for every k of the calls the use case makes (enumerated first from `World.trace`).
The restart is what the platform does next: the client retries its request, SQS delivers the
message again, the next sweep runs; then time passes with everything up (`World.drain`).

After the kill and after recovery: `harness.check` (books balance per contract and as a
whole, legal states, leases = ACTIVE contracts, each payment claimed once, each refund paid
at most once, counters = records, treasury = chain); after recovery also `check_settled`
(no refund stuck QUEUED/SENT, every refund paid exactly once). A kill before the first write
leaves the tables exactly as they were.
"""

from __future__ import annotations

import pytest

from chalicelib.domain import contracts as dc
from chalicelib.domain import refunds as R
from chalicelib.domain.errors import Unavailable

from .harness import Kill, Killed, Scenario, World, check, check_settled

_IDS: dict = {}


# --- the scenarios: setup (deterministic calls), the use case, the restart ----------------
def _rent_setup(w):
    w.req = w.rent_request(3600, overpay=20_000)


def _rent_run(w):
    return w.c.rentals.rent(w.req)


def _rent_restart(w):
    receipt = w.c.rentals.rent(w.req)  # the client retries the very request
    holders = [c for c in w.contracts() if w.req.tx_signature in {p.sig for p in c.payments}]
    assert [c.contract_id for c in holders] == [receipt.body["contract_id"]]
    assert holders[0].status == dc.ACTIVE and holders[0].received_lamports == holders[0].price_lamports + 20_000


def _extend_setup(w):
    w.k = w.rent(3600)
    w.req = w.extend_request(w.k, 1800, overpay=7)
    w.clock.advance(60)


def _extend_run(w):
    return w.c.rentals.extend(w.req)


def _extend_restart(w):
    receipt = w.c.rentals.extend(w.req)
    k = w.c.contracts.get(w.k.contract_id)
    assert receipt.body["contract_id"] == k.contract_id
    assert k.duration_seconds == 3600 + 1800 and len(k.payments) == 2  # extended exactly once
    assert k.expires_at_ms == w.k.expires_at_ms + 1800 * 1000


def _settle_setup(w):
    w.k = w.rent(3600, overpay=50_000)
    w.clock.advance(600)


def _settle_run(w):
    return w.c.rentals.settle(w.k.contract_id, w.k.wallet)


def _settle_restart(w):
    ended = w.c.rentals.settle(w.k.contract_id, w.k.wallet)  # the renter asks again
    assert ended.status == dc.SETTLED and ended.ended_at_ms == w.k.created_at_ms + 600_000


def _after_settle(w):
    k = w.c.contracts.get(w.k.contract_id)
    assert k.refund_status == R.CONFIRMED
    [t] = w.chain.transfers_to(k.wallet)
    assert t.lamports == k.refund_lamports == k.received_lamports - k.used_lamports


def _worker_setup(w):
    _settle_setup(w)
    w.k = w.c.rentals.settle(w.k.contract_id, w.k.wallet)
    w.message = w.collect()[0]


def _worker_run(w):
    return w.deliver([w.message])


def _worker_restart(w):
    w.deliver([w.message])  # SQS delivers it again after the visibility timeout


def _sweep_setup(w):
    w.due = [w.rent(60 + 30 * i, overpay=10_000 * (i + 1)) for i in range(3)]
    w.owed = w.rent(3600, overpay=40_000)
    w.clock.advance(30)
    w.queue.down = True  # its refund is owed but its message was never sent
    w.owed = w.c.rentals.settle(w.owed.contract_id, w.owed.wallet)
    w.queue.down = False
    w.clock.advance(w.settings.refund_requeue_seconds + 100)


def _sweep_run(w):
    return w.c.sweep.run()


def _sweep_restart(w):
    w.c.sweep.run()  # the next scheduled run
    for k in w.due:
        assert w.c.contracts.get(k.contract_id).status == dc.EXPIRED


def _after_sweep(w):
    for k in [*w.due, w.owed]:
        after = w.c.contracts.get(k.contract_id)
        assert after.refund_status == R.CONFIRMED
        assert [t.lamports for t in w.chain.transfers_to(k.wallet)] == [after.refund_lamports]


def _orphan_setup(w):
    from tests.support.fakes import new_wallet

    w.wallet = new_wallet()
    w.sig = w.rpc.pay(w.wallet, 250_000)


def _orphan_run(w):
    return w.c.payment_refunds.request(w.sig, w.wallet)


def _orphan_restart(w):
    out = w.c.payment_refunds.request(w.sig, w.wallet)  # the payer asks again
    assert out.refund.lamports == 250_000


def _after_orphan(w):
    assert [t.lamports for t in w.chain.transfers_to(w.wallet)] == [250_000]


SCENARIOS = {
    "rent": Scenario("rent", _rent_setup, _rent_run, _rent_restart),
    "extend": Scenario("extend", _extend_setup, _extend_run, _extend_restart),
    "settle": Scenario("settle", _settle_setup, _settle_run, _settle_restart, [_after_settle]),
    "refund_worker": Scenario("refund_worker", _worker_setup, _worker_run, _worker_restart, [_after_settle]),
    "sweep": Scenario("sweep", _sweep_setup, _sweep_run, _sweep_restart, [_after_sweep]),
    "payment_refund": Scenario("payment_refund", _orphan_setup, _orphan_run, _orphan_restart, [_after_orphan]),
}


@pytest.fixture(autouse=True)
def same_ids(monkeypatch):
    """Contract ids drawn in the same order every run: the same shards, so the same calls."""
    import itertools

    _IDS["n"] = itertools.count()
    monkeypatch.setattr(dc, "new_contract_id", lambda: f"CTR-k{next(_IDS['n']):021d}")
    yield


def _fresh(s: Scenario) -> World:
    import itertools

    _IDS["n"] = itertools.count()
    w = World(capacity=4)
    s.setup(w)
    w.collect()
    w.reset_trace()
    return w


def calls_of(s: Scenario) -> list[str]:
    """The port calls the use case makes when nothing fails."""
    w = _fresh(s)
    s.run(w)
    calls = list(w.trace)
    w.drain()
    check_settled(w)
    for after in s.checks:
        after(w)
    return calls


def test_each_use_case_makes_the_calls_its_docstring_promises():
    """The enumeration itself: a failing kill suite must not be a suite of zero kills."""
    calls = {name: calls_of(s) for name, s in SCENARIOS.items()}
    assert calls["rent"] == ["rpc.verify_payment", "devices.by_tier", "tx.open_rental"]
    assert calls["extend"] == ["contracts.get", "rpc.verify_payment", "tx.extend_rental"]
    assert calls["settle"] == ["contracts.get", "tx.end_rental", "queue.send_refund"]
    assert calls["refund_worker"][:5] == [
        "refunds.get",
        "chain.latest_blockhash",
        "chain.prepare",
        "refunds.advance",
        "chain.send",
    ]
    assert calls["refund_worker"].count("refunds.advance") == 2  # SENT, CONFIRMED
    assert calls["sweep"].count("tx.end_rental") == 3 and calls["sweep"].count("queue.send_refund") == 4
    assert "refunds.open_payment_refund" in calls["payment_refund"]


@pytest.mark.parametrize("when", ["before", "after"])
@pytest.mark.parametrize("name", list(SCENARIOS))
def test_killed_at_every_port_call_then_restarted(name, when):
    s = SCENARIOS[name]
    calls = calls_of(s)
    assert calls
    for k, call in enumerate(calls):
        w = _fresh(s)
        before = w.db.snapshot()
        w.kill = Kill(k, when)
        with pytest.raises(Killed):
            s.run(w)
        assert w.trace[k] == call, (k, w.trace)  # the same call sequence as the enumeration
        if not w.wrote():
            assert w.db.snapshot() == before, f"killed {when} {call} (#{k}) and something was written"
        check(w)  # the state a dead process left behind is legal
        try:
            s.restart(w)
        except Unavailable:  # a retry may meet a moving world (e.g. contention): retried by drain
            pass
        check(w)
        w.drain()
        check_settled(w)
        for after in s.checks:
            after(w)


def test_killed_while_the_queue_is_down_the_sweep_still_pays_the_refund():
    """The worst settle: the transaction lands, the queue does not answer, and the process dies.
    The refund is owed in the table only; the sweep's refunds-pending read finds it."""
    w = World()
    k = w.rent(3600, overpay=9_999)
    w.clock.advance(300)
    w.queue.down = True
    w.kill = Kill(2, "after")  # contracts.get, tx.end_rental, queue.send_refund (answers False)
    w.reset_trace()
    with pytest.raises(Killed):
        w.c.rentals.settle(k.contract_id, k.wallet)
    assert w.queue.messages == [] and w.c.contracts.get(k.contract_id).refund_status == R.QUEUED
    check(w)
    w.queue.down = False
    w.clock.advance(w.settings.refund_requeue_seconds - 1)
    assert w.c.sweep.run().refunds_requeued == 0  # not yet: a queued message may still be on its way
    w.clock.advance(2)
    assert w.c.sweep.run().refunds_requeued == 1
    w.drain()
    check_settled(w)
    assert len(w.chain.transfers_to(k.wallet)) == 1


@pytest.mark.parametrize("how", ["queue_down", "killed"])
def test_a_payment_refund_whose_enqueue_is_lost_is_recovered_without_the_payer(how):
    w = World()
    from tests.support.fakes import new_wallet

    wallet = new_wallet()
    sig = w.rpc.pay(wallet, 300_000)
    if how == "queue_down":
        w.queue.down = True
        w.c.payment_refunds.request(sig, wallet)
    else:
        w.kill = Kill(3, "before")  # claims.get_claim, rpc.verify_payment, refunds.open_payment_refund, queue…
        w.reset_trace()
        with pytest.raises(Killed):
            w.c.payment_refunds.request(sig, wallet)
    check(w)  # owed and booked: visible in the books, not lost from them
    w.drain()
    check_settled(w)
