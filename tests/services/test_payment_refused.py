"""payment.refused on fakes: a refused rent still writes nothing; the refusal job (the reconciler's
orphan shares) writes one event per share once it is older than the orphan age, never twice
(a second run, or two runs at once), never for a share refunded or claimed since; the payer's
webhook gets it, HMAC-signed."""

from __future__ import annotations

import json

import pytest

from chalicelib.domain import money
from chalicelib.domain import webhooks as W
from chalicelib.domain.commands import RentRequest
from chalicelib.domain.errors import PaymentInvalid
from chalicelib.domain.signing import rent_memo
from chalicelib.services.webhook_delivery import WebhookDelivery
from tests.services.refund_support import M2
from tests.services.test_reconcile import busy, world
from tests.services.test_webhook_delivery import FakeReceiver, FakeWebhookQueue
from tests.support.fakes import new_wallet

AGE = 3600


def refused(w) -> list[W.Event]:
    return [r["event"] for r in w.db.tables["outbox"].values() if r["event"].event_type == "payment.refused"]


def refused_rent(w) -> tuple[str, str, int]:
    """A rent the API refuses (paid one lamport short): (payer, signature, lamports)."""
    payer = new_wallet()
    lamports = money.price_lamports(M2, 3600) - 1
    sig = w.rpc.pay(payer, lamports, memo=rent_memo("M2", 3600))
    before = w.db.snapshot()
    with pytest.raises(PaymentInvalid):
        w.c.rentals.rent(RentRequest(payer, "M2", 3600, sig))
    assert w.db.snapshot() == before  # the refusal writes nothing, no event included
    return payer, sig, lamports


def test_a_refused_payment_is_told_once_after_the_orphan_age_to_the_payer_signed():
    w = world()
    busy(w)
    payer, sig, lamports = refused_rent(w)
    hook = w.c.webhooks.register(
        W.wallet_owner(payer), {"url": "https://hooks.example.com/x", "events": ["payment.refused"]}
    ).webhook
    first = w.c.payment_refusals.run(AGE)
    assert (first.orphans, first.sent) == (0, 0) and refused(w) == []  # may still be rented
    w.clock.advance(AGE)
    report = w.c.payment_refusals.run(AGE)
    assert (report.orphans, report.sent, report.already) == (1, 1, 0)
    [event] = refused(w)
    assert event.wallet == payer and event.data["tx_signature"] == sig and event.data["lamports"] == lamports
    assert event.data["payer"] == payer and event.data["refund_path"] == f"/api/payments/{sig}/refund"
    before = w.db.snapshot()
    again = w.c.payment_refusals.run(AGE)
    assert (again.sent, again.already) == (0, 1) and w.db.snapshot() == before

    queue, receiver = FakeWebhookQueue(), FakeReceiver()
    delivery = WebhookDelivery(w.c.outbox, w.c.webhook_store, queue, receiver, w.clock, w.settings)
    assert delivery.dispatch().deliveries == 1
    [msg] = queue.take()
    assert delivery.deliver(msg).outcome == "delivered"
    [(_, body, headers)] = receiver.got
    assert W.verify_signature(hook.secret, headers["SI64-Signature"], body, w.clock() // 1000)
    assert json.loads(body)["type"] == "payment.refused" and json.loads(body)["id"] == event.event_id


def test_two_runs_at_once_write_one_event():
    w = world()
    busy(w)
    refused_rent(w)
    w.clock.advance(AGE)
    second = []
    w.db.before_next("outbox.add", lambda: second.append(w.c.payment_refusals.run(AGE)))
    first = w.c.payment_refusals.run(AGE)
    assert first.sent + second[0].sent == 1 and first.already + second[0].already == 1
    assert len(refused(w)) == 1


def test_a_share_refunded_before_the_job_is_not_told():
    w = world()
    busy(w)
    _, sig, _ = refused_rent(w)
    w.clock.advance(AGE)
    w.c.payment_refunds.refund_orphan(sig, w.history)  # the operator refunds it: now it is claimed
    report = w.c.payment_refusals.run(AGE)
    assert (report.orphans, report.sent) == (0, 0) and refused(w) == []


def test_an_outbox_outage_writes_nothing_and_the_next_run_tells_it():
    from chalicelib.domain.errors import Unavailable

    w = world()
    busy(w)
    refused_rent(w)
    w.clock.advance(AGE)
    w.db.fail_next("outbox.add")
    with pytest.raises(Unavailable):
        w.c.payment_refusals.run(AGE)
    assert refused(w) == []
    assert w.c.payment_refusals.run(AGE).sent == 1
