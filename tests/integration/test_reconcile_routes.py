"""The reconciliation and refund operator routes through the Chalice app: DynamoDB and SQS on in-process
moto, payments and refunds on the real local chain (the `world` of test_refunds_flow)."""

from __future__ import annotations

import json

from chalicelib.domain import money
from tests.integration.test_refunds_flow import M2, World, world  # noqa: F401  (the fixture)

ROUTES = [
    ("GET", "/api/admin/refunds"),
    ("POST", "/api/admin/refunds/redrive"),
    ("GET", "/api/admin/reconcile"),
    ("POST", "/api/admin/payments/{sig}/refund"),
]


def anonymous(w: World, method: str, path: str):
    r = (
        w.client.http.post(path, body="", headers={"X-Admin-Key": "wrong"})
        if method == "POST"
        else w.client.http.get(path)
    )
    return r.status_code, json.loads(r.body)


def rented_and_settled(w: World):
    kp = w.renter.new_wallet()
    sig = w.renter.pay(kp, w.treasury, money.price_lamports(M2, 3600) + 1_500_000)
    status, rented = w.request(
        "POST", "/api/rent", {"wallet": str(kp.pubkey()), "tier": "M2", "duration_hours": 1, "tx_signature": sig}, kp
    )
    assert status == 201, rented
    rented["tx_signature"] = sig
    w.c.clock.advance(300)
    status, settled = w.request("POST", f"/api/contracts/{rented['contract_id']}/settle", None, kp)
    assert status == 200 and settled["refund_status"] == "QUEUED"
    return kp, rented


def test_every_route_needs_the_admin_key(world):  # noqa: F811
    sig = "1" * 64
    for method, path in ROUTES:
        status, err = anonymous(world, method, path.format(sig=sig))
        assert status == 401 and err["code"] == "unauthorized", (method, path, err)


def test_reconcile_passes_then_names_an_orphan_the_operator_refunds_it_and_it_passes_again(world):  # noqa: F811
    w = world
    kp, rented = rented_and_settled(w)
    assert w.run_refund_worker() == []
    status, rep = w.request("GET", "/api/admin/reconcile?orphan_age=3600")
    assert status == 200 and rep["ok"], rep["mismatches"]
    t = rep["treasury"]
    assert t["chain_lamports"] == w.balance(w.treasury) and t["difference_lamports"] == 0
    assert t["baseline_lamports"] == w.treasury0  # the funding, before the first booked payment
    assert rep["refunds"]["confirmed_checked"] == 1 and rep["orphans"] == []

    stranger = w.renter.new_wallet()
    orphan = w.renter.pay(stranger, w.treasury, 2_345_678)  # outside the API: no request will bind it
    status, rep = w.request("GET", "/api/admin/reconcile?orphan_age=0")
    assert status == 200 and not rep["ok"]
    [o] = rep["orphans"]
    assert (o["signature"], o["payer"], o["lamports"]) == (orphan, str(stranger.pubkey()), 2_345_678)
    assert any(orphan in m for m in rep["mismatches"])

    status, booked = w.request("POST", f"/api/admin/payments/{orphan}/refund")
    assert status == 201, booked
    assert booked["refund_id"] == f"PAY-{orphan}-{stranger.pubkey()}" and booked["wallet"] == str(stranger.pubkey())
    assert booked["refund"]["status"] == "QUEUED" and booked["refund_lamports"] == 2_345_678
    status, again = w.request("POST", f"/api/admin/payments/{orphan}/refund")
    assert status == 409 and again["code"] == "payment_already_used"
    status, held = w.request("POST", f"/api/admin/payments/{rented['tx_signature']}/refund")
    assert status == 409 and held["code"] == "payment_already_used"
    before = w.balance(stranger.pubkey())
    assert w.run_refund_worker() == []
    assert w.balance(stranger.pubkey()) - before == 2_345_678

    status, rep = w.request("GET", "/api/admin/reconcile?orphan_age=0")
    assert status == 200 and rep["ok"], rep["mismatches"]
    assert rep["refunds"]["confirmed_checked"] == 2
    w.assert_books()

    status, listed = w.request("GET", "/api/admin/refunds?status=CONFIRMED")
    assert status == 200 and [r["refund_id"] for r in listed["refunds"]] == [rented["contract_id"], booked["refund_id"]]
    assert listed["refunds"][1]["kind"] == "payment" and listed["next_token"] is None
    status, failed = w.request("GET", "/api/admin/refunds")  # FAILED by default
    assert status == 200 and failed["status"] == "FAILED" and failed["refunds"] == []
    status, err = w.request("GET", "/api/admin/refunds?status=PAID")
    assert status == 400 and err["reason"] == "status"
    status, err = w.request("GET", "/api/admin/reconcile?orphan_age=-1")
    assert status == 400 and err["reason"] == "orphan_age"


def test_the_treasurys_own_transfer_is_not_an_orphan_to_refund(world):  # noqa: F811
    w = world
    _, rented = rented_and_settled(w)
    assert w.run_refund_worker() == []
    status, got = w.request("GET", f"/api/contracts/{rented['contract_id']}")
    refund_tx = got["refund"]["tx_signature"]
    status, err = w.request("POST", f"/api/admin/payments/{refund_tx}/refund")
    assert status == 402 and err["reason"] == "treasury_signed"
    status, err = w.request("POST", "/api/admin/payments/not-a-signature/refund")
    assert status == 400


def test_redrive_moves_the_dead_letters_back_to_the_refund_queue(world):  # noqa: F811
    import boto3

    w = world
    sqs = boto3.client("sqs", region_name="us-east-1")
    for i in range(3):
        sqs.send_message(
            QueueUrl=w.aws.dlq_url,
            MessageBody=json.dumps({"refund_id": f"CTR-gone{i}", "contract_id": f"CTR-gone{i}", "version": 1}),
        )
    status, out = w.request("POST", "/api/admin/refunds/redrive?limit=2")
    assert status == 200 and out["moved"] == 2
    status, out = w.request("POST", "/api/admin/refunds/redrive")
    assert status == 200 and out["moved"] == 1
    got = sqs.receive_message(QueueUrl=w.aws.queue_url, MaxNumberOfMessages=10, VisibilityTimeout=0).get("Messages", [])
    assert sorted(json.loads(m["Body"])["refund_id"] for m in got) == ["CTR-gone0", "CTR-gone1", "CTR-gone2"]
    assert w.run_refund_worker() == []  # unknown refunds: done, deleted
