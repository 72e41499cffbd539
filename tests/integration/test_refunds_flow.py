"""Refunds and expiry end to end in one process: DynamoDB and SQS on in-process moto, the
real local chain (LiteSVM) for payments and refunds, the Chalice app's own handlers
(HTTP routes, `refund_worker` on SQS records received from the queue, `billing_sweep`
on a schedule event), the treasury key read from a file as the local stack does."""

from __future__ import annotations

import json
import time

import pytest
from solders.keypair import Keypair
from solders.pubkey import Pubkey

from chalicelib import bootstrap
from chalicelib.adapters.solana_rpc import SolanaRpc
from chalicelib.adapters.treasury import forget_cached_keys
from chalicelib.config import Settings
from chalicelib.domain import ledger, money
from chalicelib.domain.signing import refund_memo
from si64.renter import Renter, renter_headers
from tests.integration.conftest import ADMIN_KEY, TEST_DEVICES
from tests.support.fakes import FakeClock

M2 = money.TIERS["M2"].lamports_per_hour


@pytest.fixture
def world(aws, chain_controls, tmp_path):
    chain = chain_controls
    kp = Keypair()
    chain.fund(kp.pubkey(), 50 * 10**9)
    key_file = tmp_path / "treasury.json"
    key_file.write_text(json.dumps(list(bytes(kp))))
    s = Settings(
        stage="test",
        region="us-east-1",
        table_prefix=aws.prefix,
        refund_queue_url=aws.queue_url,
        refund_dlq_url=aws.dlq_url,
        treasury=str(kp.pubkey()),
        admin_key=ADMIN_KEY,
        rate_limit=(100_000, 10),
        solana_rpc_url=chain.rpc_url,
        treasury_key_file=str(key_file),
        min_duration_seconds=1,
    )
    clock = FakeClock(int(time.time() * 1000))
    c = bootstrap.build(s, rpc=SolanaRpc(chain.rpc_url, 5.0), clock=clock)
    c.operator.seed_devices(TEST_DEVICES, 4)
    bootstrap.set_container(c)
    from chalice.test import Client

    from app import app

    with Client(app) as client, Renter(chain.rpc_url) as renter:
        yield World(c, client, renter, chain, aws, kp)
    bootstrap.set_container(None)
    forget_cached_keys()


class World:
    def __init__(self, c, client, renter, chain, aws, treasury_kp):
        self.c, self.client, self.renter, self.chain, self.aws = c, client, renter, chain, aws
        self.treasury = str(treasury_kp.pubkey())
        self.treasury0 = self.balance(self.treasury)

    def balance(self, address) -> int:
        return self.chain.chain.get_balance(Pubkey.from_string(str(address)))

    def request(self, method, path, body=None, kp=None):
        raw = json.dumps(body) if body is not None else ""
        headers = {"Content-Type": "application/json", "X-Admin-Key": ADMIN_KEY}
        if kp is not None:
            headers.update(renter_headers(kp, method, path, raw.encode(), self.c.clock() // 1000))
        r = (
            getattr(self.client.http, method.lower())(path, body=raw, headers=headers)
            if method == "POST"
            else self.client.http.get(path, headers=headers)
        )
        return r.status_code, json.loads(r.body or b"null")

    def rent(self, kp, seconds: int, lamports: int):
        sig = self.renter.pay(kp, self.treasury, lamports)
        body = {"wallet": str(kp.pubkey()), "tier": "M2", "duration_hours": seconds / 3600, "tx_signature": sig}
        return self.request("POST", "/api/rent", body, kp)

    def run_refund_worker(self) -> list:
        """Receive what the queue holds and hand it to the app's SQS handler, as Lambda's
        event source mapping does; delete what succeeded. The ids it asked to keep."""
        import boto3

        sqs = boto3.client("sqs", region_name="us-east-1")
        msgs = sqs.receive_message(QueueUrl=self.aws.queue_url, MaxNumberOfMessages=10, AttributeNames=["All"]).get(
            "Messages", []
        )
        from dev.events import sqs_record

        arn = sqs.get_queue_attributes(QueueUrl=self.aws.queue_url, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"
        ]
        records = [sqs_record(m, arn) for m in msgs]
        out = (
            self.client.lambda_.invoke("refund_worker", {"Records": records}).payload
            if records
            else {"batchItemFailures": []}
        )
        failed = {f["itemIdentifier"] for f in out["batchItemFailures"]}
        for m in msgs:
            if m["MessageId"] not in failed:
                sqs.delete_message(QueueUrl=self.aws.queue_url, ReceiptHandle=m["ReceiptHandle"])
        return sorted(failed)

    def entries(self, account=None, contract_id=None) -> list:
        q = f"account={account}" if account else f"contract_id={contract_id}"
        status, body = self.request("GET", f"/api/billing/entries?{q}&limit=1000")
        assert status == 200
        return body["entries"]

    def assert_books(self):
        status, page = self.request("GET", "/api/billing/ledger?limit=1000")
        assert status == 200
        ids = [k["contract_id"] for k in page["active_contracts"] + page["completed_settlements"]]
        for cid in ids:
            rows = self.entries(contract_id=cid)
            assert sum(e["debit_lamports"] - e["credit_lamports"] for e in rows) == 0, cid
        treasury_rows = self.entries(account=ledger.TREASURY)
        booked = sum(e["debit_lamports"] - e["credit_lamports"] for e in treasury_rows)
        assert booked == self.balance(self.treasury) - self.treasury0  # the ledger matches the chain


def admin():
    return {"X-Admin-Key": ADMIN_KEY}


def test_settle_then_the_refund_lands_with_exact_lamports_and_shows_confirmed(world):
    w = world
    kp = w.renter.new_wallet()
    price = money.price_lamports(M2, 3600)
    status, rented = w.rent(kp, 3600, price + 2_000_000)
    assert status == 201, rented
    cid = rented["contract_id"]
    w.c.clock.advance(600)
    status, settled = w.request("POST", f"/api/contracts/{cid}/settle", None, kp)
    assert status == 200 and settled["refund_status"] == "QUEUED"
    owed = settled["refund_lamports"]
    before = w.balance(kp.pubkey())

    assert w.run_refund_worker() == []

    assert w.balance(kp.pubkey()) - before == owed  # exactly the refund
    status, got = w.request("GET", f"/api/contracts/{cid}")
    assert got["refund"]["status"] == "CONFIRMED" and got["refund"]["lamports"] == owed
    sig = got["refund"]["tx_signature"]
    assert w.chain.chain.get_record(sig).memo.endswith(refund_memo(cid))
    kinds = sorted(e["kind"] for e in w.entries(contract_id=cid))
    assert kinds.count("refund") == 2 and kinds.count("network_fee") == 2
    r = w.client.http.get("/api/stats", headers=admin())
    stats = json.loads(r.body)
    assert r.status_code == 200 and stats["refunds_by_status"]["CONFIRMED"] == 1
    w.assert_books()


def test_a_contract_left_alone_expires_by_the_sweep_and_its_overpayment_comes_back(world):
    w = world
    kp = w.renter.new_wallet()
    price = money.price_lamports(M2, 5)
    status, rented = w.rent(kp, 5, price + 1_000_000)
    assert status == 201, rented
    cid = rented["contract_id"]
    w.c.clock.advance(6)
    out = w.client.lambda_.invoke(
        "billing_sweep",
        w.client.events.generate_cw_event(source="aws.events", detail_type="Scheduled Event", detail={}, resources=[]),
    ).payload
    assert out["expired"] == 1
    _, got = w.request("GET", f"/api/contracts/{cid}")
    assert got["status"] == "EXPIRED" and got["used_lamports"] == price == got["cost_lamports"]
    before = w.balance(kp.pubkey())
    assert w.run_refund_worker() == []
    assert w.balance(kp.pubkey()) - before == 1_000_000
    _, got = w.request("GET", f"/api/contracts/{cid}")
    assert got["refund"]["status"] == "CONFIRMED"
    w.assert_books()


def test_a_refused_recipient_is_failed_and_still_owed(world):
    w = world
    kp = w.renter.new_wallet()
    status, rented = w.rent(kp, 3600, money.price_lamports(M2, 3600) + 3_000_000)
    cid = rented["contract_id"]
    w.request("POST", f"/api/contracts/{cid}/settle", None, kp)
    w.chain.refuse_account(kp.pubkey())
    assert w.run_refund_worker() == []
    _, got = w.request("GET", f"/api/contracts/{cid}")
    assert got["refund"]["status"] == "FAILED" and "InsufficientFundsForRent" in got["refund"]["reason"]
    rows = w.entries(contract_id=cid)
    owed = -sum(e["debit_lamports"] - e["credit_lamports"] for e in rows if e["account"] == ledger.REFUNDS_PAYABLE)
    assert owed == got["refund"]["lamports"] > 0
    w.assert_books()


def test_rpc_down_then_back_confirms_and_loses_nothing(world):
    w = world
    kp = w.renter.new_wallet()
    _, rented = w.rent(kp, 3600, money.price_lamports(M2, 3600) + 4_000_000)
    cid = rented["contract_id"]
    w.request("POST", f"/api/contracts/{cid}/settle", None, kp)
    w.chain.fail_rpc("error")
    try:
        assert len(w.run_refund_worker()) == 1  # left for redelivery
    finally:
        w.chain.clear_faults()
    import boto3

    sqs = boto3.client("sqs", region_name="us-east-1")
    attrs = sqs.get_queue_attributes(QueueUrl=w.aws.queue_url, AttributeNames=["All"])["Attributes"]
    assert int(attrs["ApproximateNumberOfMessagesNotVisible"]) + int(attrs["ApproximateNumberOfMessages"]) == 1
    # the sweep's outbox recovery would queue it again too; here the message itself returns
    from chalicelib.jobs.refunds import handle_records

    out = handle_records([{"messageId": "again", "body": json.dumps({"refund_id": cid})}], w.c.refund_worker)
    assert out == {"batchItemFailures": []}
    _, got = w.request("GET", f"/api/contracts/{cid}")
    assert got["refund"]["status"] == "CONFIRMED"
    w.assert_books()


def test_a_payment_refused_as_one_lamport_short_comes_back_to_its_payer(world):
    w = world
    kp = w.renter.new_wallet()
    price = money.price_lamports(M2, 3600)
    status, body = w.rent(kp, 3600, price - 1)
    assert status == 402 and body["reason"] == "insufficient_amount"
    # the payment's signature: the renter's last transfer
    sigs = [r.signature for r in w.chain.chain.signatures_for_address(str(kp.pubkey()))]
    paid = [s for s in sigs if w.chain.chain.get_record(s).keys[0] == str(kp.pubkey())]
    sig = str(paid[-1])
    before = w.balance(kp.pubkey())
    path = f"/api/payments/{sig}/refund"
    status, first = w.request("POST", path, None, kp)
    assert status == 201, first
    assert first["refund_id"] == f"PAY-{sig}-{kp.pubkey()}" and first["refund"]["status"] == "QUEUED"
    assert first["refund_lamports"] == price - 1
    assert w.run_refund_worker() == []
    assert w.balance(kp.pubkey()) - before == price - 1  # in full
    status, again = w.request("POST", path, None, kp)
    assert status == 200 and again["refund"]["status"] == "CONFIRMED" and again["refund"]["tx_signature"]
    assert w.run_refund_worker() == [] and w.balance(kp.pubkey()) - before == price - 1
    body = {"wallet": str(kp.pubkey()), "tier": "M2", "duration_hours": 0.001, "tx_signature": sig}
    status, refused = w.request("POST", "/api/rent", body, kp)  # a rent with that payment afterwards
    assert status in (402, 409) and refused["code"] in ("payment_already_used", "payment_invalid")
    status, other = w.request("POST", path, None, Keypair())
    assert status in (402, 403)
    w.assert_books()
