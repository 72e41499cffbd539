"""DynamoDB faults the fakes cannot represent, on the real adapters over in-process moto:
the wire-level answers of a throttled table (ProvisionedThroughputExceeded /
ThrottlingException on reads and puts, ThrottlingError inside a TransactWriteItems
cancellation), TransactionConflict cancellations, connect timeouts, and a read timeout AFTER
the write landed — answered to the service (no SDK retry) or resent by botocore itself.

Faults are injected where botocore sends the HTTP request (moto's `before-send` stub): the
SDK's own retry, error parsing and PynamoDB's error mapping all run as they do on AWS.
After each: the tables are unchanged when the request failed, or the retry is idempotent;
the books balance; leases equal the ACTIVE contracts.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass

import pytest

from chalicelib.domain import contracts as dc
from chalicelib.domain import ledger
from chalicelib.domain.commands import RentRequest
from chalicelib.domain.errors import Unavailable
from chalicelib.domain.signing import rent_memo
from tests.support.fakes import FakeRefundChain, new_wallet
from tests.support.moto import provisioned_aws

pytestmark = pytest.mark.moto

THROTTLE_CODES = ["ProvisionedThroughputExceededException", "ThrottlingException"]


@dataclass
class Fault:
    operation: str  # GetItem, PutItem, Query, TransactWriteItems, …
    kind: str  # "error" | "cancel" | "connect_timeout" | "lost_answer"
    code: str = ""  # the error code, or the cancellation reason of one item
    times: int = 1
    item: int = 0  # for "cancel": which TransactItems entry carries `code`


class WireFaults:
    """Faults keyed by DynamoDB operation, applied at botocore's before-send (moto's stub)."""

    def __init__(self, stub_call):
        self.stub_call = stub_call
        self.faults: list[Fault] = []
        self.sent: Counter = Counter()  # requests that reached "the network", per operation

    def add(self, *faults: Fault) -> None:
        self.faults.extend(faults)

    def __call__(self, stub, event_name: str, request, **kwargs):
        from botocore.awsrequest import AWSResponse
        from botocore.exceptions import ConnectTimeoutError, ReadTimeoutError
        from moto.core.botocore_stubber import MockRawResponse

        operation = event_name.rsplit(".", 1)[-1]
        if ".dynamodb." in event_name:
            self.sent[operation] += 1
        fault = next((f for f in self.faults if f.operation == operation and f.times > 0), None)
        if fault is None or ".dynamodb." not in event_name:
            return self.stub_call(stub, event_name, request, **kwargs)
        fault.times -= 1
        if fault.kind == "connect_timeout":
            raise ConnectTimeoutError(endpoint_url=request.url)
        if fault.kind == "lost_answer":
            self.stub_call(stub, event_name, request, **kwargs)  # it lands…
            raise ReadTimeoutError(endpoint_url=request.url)  # …and its answer never arrives
        body = {"__type": f"com.amazonaws.dynamodb.v20120810#{fault.code}", "message": "injected"}
        if fault.kind == "cancel":
            n = len(json.loads(request.body)["TransactItems"])
            reasons = [{"Code": "None"} for _ in range(n)]
            reasons[fault.item % n] = {"Code": fault.code, "Message": "injected"}
            body = {
                "__type": "com.amazonaws.dynamodb.v20120810#TransactionCanceledException",
                "message": f"Transaction cancelled, please refer cancellation reasons for specific reasons "
                f"[{', '.join(r['Code'] for r in reasons)}]",
                "CancellationReasons": reasons,
            }
        headers = {"Content-Type": "application/x-amz-json-1.0", "x-amzn-RequestId": "fault"}
        return AWSResponse(request.url, 400, headers, MockRawResponse(json.dumps(body).encode()))


@pytest.fixture
def aws():
    with provisioned_aws("si64-faults") as provisioned:
        yield provisioned


def _sdk_retries(monkeypatch, attempts: int) -> None:
    """Set the SDK's retries (PynamoDB max_retry_attempts) and drop its backoff sleeps."""
    from botocore.retries.standard import ExponentialBackoff

    from chalicelib.adapters import models

    for m in [*models.MODELS.values(), *models.TABLE_OF]:
        monkeypatch.setattr(m.Meta, "max_retry_attempts", attempts)
        monkeypatch.setattr(m, "_connection", None)
    monkeypatch.setattr(ExponentialBackoff, "delay_amount", lambda self, context: 0)


@pytest.fixture
def c(aws, monkeypatch):
    from moto.core.botocore_stubber import BotocoreStubber

    from tests.integration.conftest import make_container

    _sdk_retries(monkeypatch, 0)
    faults = WireFaults(BotocoreStubber.__call__)
    monkeypatch.setattr(
        BotocoreStubber, "__call__", lambda stub, event_name, request, **kw: faults(stub, event_name, request, **kw)
    )
    c = make_container(aws, capacity=2, refund_chain=FakeRefundChain())
    c.faults = faults
    c.aws = aws
    yield c
    from chalicelib.adapters import models

    for m in [*models.MODELS.values(), *models.TABLE_OF]:
        m._connection = None


def tables(c) -> dict:
    """Every item of every table of the stack (a snapshot to compare)."""
    import boto3

    client = boto3.client("dynamodb", region_name="us-east-1")
    out = {}
    for name in client.list_tables()["TableNames"]:
        if name.startswith(c.aws.prefix):
            items = client.scan(TableName=name, ConsistentRead=True)["Items"]
            out[name] = sorted(json.dumps(i, sort_keys=True, default=repr) for i in items)
    return out


def rent_request(c, seconds: int = 3600, overpay: int = 0) -> RentRequest:
    wallet = new_wallet()
    from chalicelib.domain import money

    price = money.price_lamports(money.TIERS["M2"].lamports_per_hour, seconds)
    return RentRequest(wallet, "M2", seconds, c.rpc.pay(wallet, price + overpay, memo=rent_memo("M2", seconds)))


def check_books(c) -> None:
    """Per contract: entries balance, received = used + refund once ended; leases = ACTIVE."""
    contracts, token = [], None
    while True:
        page, token = c.contracts.page(100, token)
        contracts += page
        if not token:
            break
    active = Counter(k.device_id for k in contracts if k.status == dc.ACTIVE)
    for d in c.devices.all():
        assert d.leases == active.get(d.device_id, 0) <= d.capacity
    for k in contracts:
        rows, _ = c.ledger.by_contract(k.contract_id, 1000, None)
        assert ledger.balance(rows) == 0
        assert (
            ledger.balance(rows, ledger.TREASURY)
            + sum(
                e.credit_lamports
                for e in rows
                if e.account == ledger.TREASURY and e.kind != "rent" and e.kind != "extend"
            )
            == k.received_lamports
        )
        if k.status != dc.ACTIVE:
            assert k.received_lamports == k.used_lamports + k.refund_lamports


# --- throttling -----------------------------------------------------------------------------
@pytest.mark.parametrize("code", THROTTLE_CODES)
def test_a_throttled_read_is_503_and_writes_nothing(c, code):
    req = rent_request(c)
    c.faults.add(Fault("Query", "error", code))  # devices.by_tier
    before = tables(c)
    with pytest.raises(Unavailable) as exc:
        c.rentals.rent(req)
    assert exc.value.reason == "database" and tables(c) == before
    assert c.rentals.rent(req).first
    check_books(c)


@pytest.mark.parametrize("code", THROTTLE_CODES)
def test_a_throttled_put_is_503_and_stores_no_sample(c, code):
    k = c.contracts.get(c.rentals.rent(rent_request(c)).body["contract_id"])
    key = c.operator.issue_device_key(k.device_id)
    c.faults.add(Fault("PutItem", "error", code))
    rows = lambda now, lo, hi: [[now, 1, 2, 3, 4]]
    before = tables(c)
    with pytest.raises(Unavailable):
        c.telemetry.record(k.contract_id, key, rows)
    assert tables(c) == before
    c.telemetry.record(k.contract_id, key, rows)
    assert len(c.metrics.latest(k.contract_id)) == 1


@pytest.mark.parametrize("reason", ["ThrottlingError", "ProvisionedThroughputExceeded"])
@pytest.mark.parametrize("item", [0, 1, 3])
def test_throttling_inside_a_transaction_is_503_and_the_payment_stays_unclaimed(c, reason, item):
    req = rent_request(c, overpay=1234)
    c.faults.add(Fault("TransactWriteItems", "cancel", reason, item=item))
    before = tables(c)
    with pytest.raises(Unavailable) as exc:
        c.rentals.rent(req)
    assert exc.value.reason == "database" and tables(c) == before
    assert c.claims.get_claim(req.tx_signature, req.wallet) is None
    receipt = c.rentals.rent(req)  # the same payment, once the table answers
    assert receipt.first
    check_books(c)


def test_a_throttled_sdk_retry_that_then_passes_is_invisible(c, monkeypatch):
    _sdk_retries(monkeypatch, 2)
    c.faults.add(
        Fault("Query", "error", "ThrottlingException"), Fault("TransactWriteItems", "error", "ThrottlingException")
    )
    receipt = c.rentals.rent(rent_request(c))
    assert receipt.first and c.faults.sent["TransactWriteItems"] == 2  # once throttled, once through
    check_books(c)


# --- transaction conflicts ------------------------------------------------------------------
def test_a_transaction_conflict_is_retried_by_the_service(c):
    req = rent_request(c)
    c.faults.add(Fault("TransactWriteItems", "cancel", "TransactionConflict", times=2, item=1))
    receipt = c.rentals.rent(req)
    assert receipt.first and c.faults.sent["TransactWriteItems"] == 3
    k = c.contracts.get(receipt.body["contract_id"])
    assert k.status == dc.ACTIVE
    check_books(c)


def test_endless_transaction_conflicts_are_503_contention_and_write_nothing(c):
    k = c.contracts.get(c.rentals.rent(rent_request(c)).body["contract_id"])
    c.clock.advance(60)
    c.faults.add(Fault("TransactWriteItems", "cancel", "TransactionConflict", times=100))
    before = tables(c)
    with pytest.raises(Unavailable) as exc:
        c.rentals.settle(k.contract_id, k.wallet)
    assert exc.value.reason == "contention" and tables(c) == before
    c.faults.faults.clear()
    assert c.rentals.settle(k.contract_id, k.wallet).status == dc.SETTLED
    check_books(c)


# --- timeouts -------------------------------------------------------------------------------
@pytest.mark.parametrize("operation", ["BatchGetItem", "Query", "TransactWriteItems"])
def test_a_connect_timeout_is_503_and_writes_nothing(c, operation):
    k = c.contracts.get(c.rentals.rent(rent_request(c)).body["contract_id"])
    c.clock.advance(120)
    c.faults.add(Fault(operation, "connect_timeout"))
    before = tables(c)
    if operation == "Query":  # the sweep reads its indexes: it reports, it does not crash
        report = c.sweep.run()
        assert report.errors and tables(c) == before
        return
    with pytest.raises(Unavailable):
        c.rentals.settle(k.contract_id, k.wallet)
    assert tables(c) == before


def test_a_landed_rent_whose_answer_timed_out_is_replayed_to_the_retry(c):
    req = rent_request(c)
    c.faults.add(Fault("TransactWriteItems", "lost_answer"))
    first = c.rentals.rent(req)  # the claim read after the timeout shows it landed: 201, not 503
    landed = c.claims.get_claim(req.tx_signature, req.wallet)
    assert first.first and first.body == landed.response
    again = c.rentals.rent(req)
    assert again.body["contract_id"] == landed.contract_id
    assert sum(d.leases for d in c.devices.all()) == 1
    check_books(c)


@pytest.mark.parametrize("use_case", ["rent", "settle"])
def test_a_landed_write_resent_by_the_sdk_is_read_back_as_its_own(c, monkeypatch, use_case):
    """botocore resends the TransactWriteItems whose answer timed out; the resend meets the
    first's writes (ConditionalCheckFailed) and the service recognizes its own write."""
    _sdk_retries(monkeypatch, 2)
    req = rent_request(c, overpay=50_000)
    if use_case == "rent":
        c.faults.add(Fault("TransactWriteItems", "lost_answer"))
        receipt = c.rentals.rent(req)
        assert receipt.first and c.faults.sent["TransactWriteItems"] == 2
        assert sum(d.leases for d in c.devices.all()) == 1
    else:
        k = c.contracts.get(c.rentals.rent(req).body["contract_id"])
        c.clock.advance(600)
        c.faults.add(Fault("TransactWriteItems", "lost_answer"))
        ended = c.rentals.settle(k.contract_id, k.wallet)
        assert ended.status == dc.SETTLED and c.faults.sent["TransactWriteItems"] == 3
        # its refund is owed in the table, where the sweep's refunds-pending read finds it
        c.clock.advance(c.settings.refund_requeue_seconds + 1)
        assert c.sweep.run().refunds_requeued == 1
    check_books(c)


def test_a_throttled_refund_step_is_redelivered_and_pays_once(c):
    from chalicelib.jobs.refunds import handle_records

    k = c.contracts.get(c.rentals.rent(rent_request(c, overpay=70_000)).body["contract_id"])
    c.clock.advance(600)
    ended = c.rentals.settle(k.contract_id, k.wallet)
    record = [{"messageId": "m-1", "body": json.dumps({"refund_id": k.contract_id, "version": ended.version})}]
    c.faults.add(Fault("TransactWriteItems", "cancel", "ThrottlingError", item=0))
    before = tables(c)
    assert handle_records(record, c.refund_worker) == {"batchItemFailures": [{"itemIdentifier": "m-1"}]}
    assert tables(c) == before and c.refund_chain.sent == []  # nothing recorded, nothing broadcast
    c.faults.add(Fault("TransactWriteItems", "lost_answer"))  # the SENT record lands, its answer is lost
    handle_records(record, c.refund_worker)
    for _ in range(3):
        handle_records(record, c.refund_worker)
    after = c.contracts.get(k.contract_id)
    assert after.refund_status == "CONFIRMED"
    assert [t.lamports for t in c.refund_chain.transfers_to(k.wallet)] == [ended.refund_lamports]
    check_books(c)


def test_a_throttled_read_answers_the_api_error_shape(c):
    """Over HTTP (the Chalice app): a throttled GetItem is 503 `unavailable`, reason database."""
    from chalice.test import Client

    from app import app
    from chalicelib import bootstrap

    k = c.rentals.rent(rent_request(c)).body["contract_id"]
    bootstrap.set_container(c)
    try:
        with Client(app) as client:
            c.faults.add(Fault("BatchGetItem", "error", "ProvisionedThroughputExceededException"))
            r = client.http.get(f"/api/contracts/{k}")
            body = json.loads(r.body)
            assert (r.status_code, body["code"], body["reason"]) == (503, "unavailable", "database")
            assert client.http.get(f"/api/contracts/{k}").status_code == 200
    finally:
        bootstrap.set_container(None)
