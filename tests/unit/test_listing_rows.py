"""adapters/listing.py without a database: a raw item reads as the model path reads it, the Scan
pages as PynamoDB's own iterator pages, and the raw-answer hook touches only the listing's Scan."""

from __future__ import annotations

import json
from dataclasses import replace
from types import SimpleNamespace
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pynamodb.pagination import ResultIterator

from chalicelib.adapters import contracts as ca
from chalicelib.adapters import listing
from chalicelib.adapters.models import ContractItem
from chalicelib.domain import contracts as dc
from chalicelib.domain import keys

T0 = 1_764_000_000_000
SIG = keys.encode(bytes(range(64)))
maybe_ms = st.none() | st.integers(min_value=T0, max_value=T0 + 10**9)


@st.composite
def contracts(draw: st.DrawFn) -> dc.Contract:
    """Any contract the books can hold: ACTIVE (with or without covered time, extended or not),
    SETTLED or EXPIRED with a refund in any state, its sending state and marks set or not."""
    seconds = draw(st.integers(min_value=60, max_value=720 * 3600))
    tier = draw(st.sampled_from(sorted(dc.money.TIERS)))
    price = dc.money.price_lamports(dc.money.TIERS[tier].lamports_per_hour, seconds)
    c = dc.open_contract(
        contract_id=dc.new_contract_id(),
        wallet=keys.encode(bytes([draw(st.integers(0, 255))]) * 32),
        tier=tier,
        device_id=draw(st.sampled_from(["dev-1", "device-orin-001"])),
        seconds=seconds,
        received_lamports=price + draw(st.integers(min_value=0, max_value=10**9)),
        sig=SIG,
        now_ms=T0,
        coverage_grace_ms=draw(st.none() | st.integers(min_value=0, max_value=120_000)),
    )
    if draw(st.booleans()):
        c = dc.extend(c, seconds=60, received_lamports=10**9, sig=SIG, now_ms=T0 + 1, max_seconds=10**9)
    c = replace(
        c, low_time_for_ms=draw(st.none() | st.just(c.expires_at_ms)), write_token=draw(st.none() | st.just("w"))
    )
    if draw(st.booleans()):
        return c
    end = T0 + draw(st.integers(min_value=0, max_value=2 * seconds * 1000))
    c = dc.finalize(c, now_ms=end, refund_min_lamports=draw(st.sampled_from([1, 5000, 10**15])))
    status = draw(st.sampled_from([c.refund_status, dc.REFUND_SENT, dc.REFUND_CONFIRMED, dc.REFUND_FAILED]))
    return replace(
        c,
        refund_status=status,
        refund_tx=SIG if status in (dc.REFUND_SENT, dc.REFUND_CONFIRMED) else None,
        refund_reason="expired blockhash" if status == dc.REFUND_FAILED else None,
        refund_raw=b"\x01" * 200 if status != c.refund_status else None,
        refund_lvbh=draw(maybe_ms),
        refund_fee=draw(st.none() | st.just(5000)),
        refund_attempt=draw(st.integers(0, 3)),
        refund_confirmed_ms=draw(maybe_ms),
    )


def whole_read(raw: dict[str, Any]) -> dc.Contract:
    """The model path: a PynamoDB object, then `to_domain`, then what a listing shows."""
    return dc.listing_view(ca.to_domain(ContractItem.from_raw_data(raw)))


@settings(max_examples=150)
@given(contracts())
def test_a_raw_item_reads_as_the_model_reads_it(c):
    wire = ca.to_item(c, shards=4).serialize()  # the item as DynamoDB holds it
    projected = {k: v for k, v in wire.items() if k in listing.ATTRIBUTES}  # what the Scan asks for
    assert listing.row(projected) == whole_read(projected) == whole_read(wire) == dc.listing_view(c)
    assert listing.row(wire) == dc.listing_view(c)


def test_the_projection_is_every_attribute_a_listing_reads():
    c = replace(
        dc.finalize(
            dc.open_contract(
                contract_id="CTR-x",
                wallet="W",
                tier="M2",
                device_id="d",
                seconds=3600,
                received_lamports=10**9,
                sig=SIG,
                now_ms=T0,
                coverage_grace_ms=60_000,
            ),
            now_ms=T0 + 1000,
            refund_min_lamports=1,
        ),
        refund_tx=SIG,
        refund_reason="r",
        credit_lamports=7,
    )
    wire = ca.to_item(c, shards=4).serialize()
    read = {k for k in wire if k in listing.ATTRIBUTES}
    assert read == set(listing.ATTRIBUTES)  # each one is a real attribute, written for this contract
    assert sorted(listing._NAMES.values()) == sorted(listing.ATTRIBUTES)  # the Scan asks for each once


class Engine:
    """A Scan that answers scripted page sizes over `n` items (a short page: DynamoDB's 1 MB)."""

    def __init__(self, n: int, sizes: list[int]) -> None:
        self.items = [{"contract_id": {"S": f"CTR-{i:03d}"}, "n": {"N": str(i)}} for i in range(n)]
        self.sizes = list(sizes)
        self.requests: list[dict[str, Any]] = []

    def answer(self, limit: int, start: dict[str, Any] | None) -> dict[str, Any]:
        at = 0 if not start else int(start["contract_id"]["S"][4:]) + 1
        size = min(self.sizes.pop(0) if self.sizes else limit, limit)
        page = self.items[at : at + size]
        out: dict[str, Any] = {"Items": page, "Count": len(page), "ScannedCount": len(page)}
        if at + size < len(self.items) or (page and size == limit):  # DynamoDB may name a last key
            out["LastEvaluatedKey"] = {"contract_id": page[-1]["contract_id"]} if page else start
        return out

    # ports of the low-level connection the listing uses
    def dispatch(self, operation: str, request: dict[str, Any]) -> dict[str, Any]:
        assert operation == "Scan"
        self.requests.append(request)
        return self.answer(request["Limit"], request.get("ExclusiveStartKey"))

    class Client:  # the botocore client the listing arms its raw-answer hook on
        meta = SimpleNamespace(events=SimpleNamespace(register=lambda *_, **__: None))

    client = Client()


@pytest.mark.parametrize(
    ("n", "limit", "sizes"),
    [
        (10, 4, []),  # whole pages
        (10, 4, [1, 2, 4]),  # short pages, then one cut at the limit
        (10, 5, [3, 4]),  # a short page, then a page cut mid-way
        (10, 10, []),  # the last page, with a last key
        (3, 5, [1, 0, 1]),  # an empty page that still names a key
        (0, 5, []),
    ],
)
def test_the_scan_pages_as_pynamodbs_iterator(monkeypatch, n, limit, sizes):
    ours, theirs = Engine(n, sizes), Engine(n, sizes)
    monkeypatch.setattr(listing, "transaction_connection", lambda: ours)
    start = None
    for _ in range(12):
        items, key = listing.scan(limit, start)
        it = ResultIterator(
            lambda **kw: theirs.answer(kw["limit"], kw["exclusive_start_key"]),
            (),
            {"limit": limit, "exclusive_start_key": start},
            limit=limit,
        )
        assert (items, key) == (list(it), it.last_evaluated_key)
        assert all(r["Limit"] == limit and r["ProjectionExpression"] for r in ours.requests)
        if not key:
            return
        start = key
    pytest.fail("the scan never ended")


def test_the_raw_answer_hook_only_answers_the_listings_own_scan():
    body = json.dumps({"Items": [{"contract_id": {"S": "CTR-1"}}], "Count": 1}).encode()

    def parse(status: int, on: bool) -> tuple[dict[str, Any], dict[str, Any]]:
        response, custom = {"status_code": status, "body": body}, {}
        listing._RAW_SCAN.on = on
        try:
            listing._keep_raw(response_dict=response, customized_response_dict=custom)
        finally:
            listing._RAW_SCAN.on = False
        return response, custom

    assert parse(200, False) == ({"status_code": 200, "body": body}, {})  # any other Scan: botocore parses
    assert parse(400, True) == ({"status_code": 400, "body": body}, {})  # an error: botocore parses it
    older = {"status_code": 200, "body": body}
    listing._RAW_SCAN.on = True
    try:
        listing._keep_raw(response_dict=older)  # a botocore that does not offer the argument
    finally:
        listing._RAW_SCAN.on = False
    assert older == {"status_code": 200, "body": body}
    response, custom = parse(200, True)
    assert response["body"] == b"{}" and custom == json.loads(body)


def test_the_hook_is_on_a_real_clients_scan_answers_only():
    """On botocore's own event system (a client that never sends): armed, the listing's Scan
    answer is kept raw; a Query answer, or a Scan outside the listing, is left to the parser."""
    import boto3

    client = boto3.client("dynamodb", region_name="us-east-1", aws_access_key_id="a", aws_secret_access_key="b")
    listing._arm(client)
    listing._arm(client)  # once only
    body = json.dumps({"Items": [], "Count": 0}).encode()

    def emit(event: str, on: bool) -> dict[str, Any]:
        custom: dict[str, Any] = {}
        listing._RAW_SCAN.on = on
        try:
            client.meta.events.emit(
                event,
                operation_model=None,
                response_dict={"status_code": 200, "body": body},
                customized_response_dict=custom,
            )
        finally:
            listing._RAW_SCAN.on = False
        return custom

    assert emit("before-parse.dynamodb.Scan", True) == {"Items": [], "Count": 0}
    assert emit("before-parse.dynamodb.Query", True) == {}
    assert emit("before-parse.dynamodb.Scan", False) == {}
