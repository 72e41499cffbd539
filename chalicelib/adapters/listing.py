"""The listing of contracts (the operator's ledger page): a Scan projected to what a listing
shows, its raw items read straight into domain Contracts.

`ContractStore.listing` reads 100 contracts a page. Through `ContractItem.scan` each item cost
a PynamoDB model object (its attributes set and deserialized one by one) and then `to_domain`:
~9 of the page's ~27 ms of API CPU. Here PynamoDB's low-level connection makes the same Scan
(the same `Limit`, pages and token as the model's iterator) and `row` reads each projected
item's few strings and integers directly: the same Contracts as
`domain.contracts.listing_view(to_domain(item))` (tests/unit/test_listing_rows.py, and the
contract cases on DynamoDB Local).
"""

from __future__ import annotations

import json
import threading
import weakref
from typing import Any

from pynamodb.connection.base import BOTOCORE_EXCEPTIONS
from pynamodb.constants import SCAN
from pynamodb.exceptions import ScanError

from ..domain import books
from ..domain.contracts import ACTIVE, REFUND_NONE, Contract, with_kept_coverage
from . import coverage
from .dynamo import RawItems, batch_get, transaction_connection
from .models import BookItem, ContractItem, CoverageItem

# the string and number attributes a listing shows (`domain.contracts.listing_view`): every
# field the ledger page's rows, `Contract.figures` and `domain.contracts.as_of` use
STRINGS = ("contract_id", "wallet", "tier", "device_id", "status", "refund_status", "refund_tx", "refund_reason")
NUMBERS = (
    "version",
    "lamports_per_hour",
    "duration_seconds",
    "price_lamports",
    "received_lamports",
    "created_at_ms",
    "expires_at_ms",
    "ended_at_ms",
    "used_lamports",
    "refund_lamports",
    "covered_ms",
    "covered_end_ms",
    "credit_lamports",
)
ATTRIBUTES = STRINGS + NUMBERS
_NAMES = {f"#a{i}": name for i, name in enumerate(ATTRIBUTES)}
_PROJECTION = ", ".join(_NAMES)


_ARMED: weakref.WeakSet[Any] = weakref.WeakSet()  # the botocore clients `_keep_raw` is registered on
_RAW_SCAN = threading.local()  # set while this thread's listing Scan is answered (`_keep_raw`)


def _keep_raw(response_dict: dict[str, Any], customized_response_dict: dict[str, Any] | None = None, **_: Any) -> None:
    """botocore's `before-parse` hook: the listing's Scan answer as DynamoDB sent it. botocore
    would walk every attribute value through its shape model (~7 ms of a page's CPU), to give
    the same dicts: a projection of strings and numbers has no binary value to decode. Any
    other answer (another call, another thread, an error) is parsed as usual."""
    if customized_response_dict is None:  # a botocore without the hook's argument: it parses
        return
    if getattr(_RAW_SCAN, "on", False) and response_dict.get("status_code") == 200:
        customized_response_dict.update(json.loads(response_dict["body"]))
        response_dict["body"] = b"{}"


def _arm(client: Any) -> None:
    """Register `_keep_raw` on a botocore client's Scan answers, once per client (registering
    inspects the handler each time)."""
    if client not in _ARMED:
        client.meta.events.register("before-parse.dynamodb.Scan", _keep_raw, unique_id="si64-listing-raw")
        _ARMED.add(client)


def _n(raw: dict[str, Any], name: str) -> int | None:
    value = raw.get(name)
    return None if value is None or "N" not in value else int(value["N"])


def _s(raw: dict[str, Any], name: str) -> str | None:
    value = raw.get(name)
    return None if value is None else value.get("S")


def row(raw: dict[str, Any]) -> Contract:
    """A raw contracts item, projected to ATTRIBUTES (or whole), as a listing shows it: what
    `listing_view(to_domain(ContractItem.from_raw_data(raw)))` gives, without the model."""
    return Contract(
        contract_id=raw["contract_id"]["S"],
        wallet=raw["wallet"]["S"],
        tier=raw["tier"]["S"],
        device_id=raw["device_id"]["S"],
        status=raw["status"]["S"],
        version=int(raw["version"]["N"]),
        lamports_per_hour=int(raw["lamports_per_hour"]["N"]),
        duration_seconds=int(raw["duration_seconds"]["N"]),
        price_lamports=int(raw["price_lamports"]["N"]),
        received_lamports=int(raw["received_lamports"]["N"]),
        created_at_ms=int(raw["created_at_ms"]["N"]),
        expires_at_ms=int(raw["expires_at_ms"]["N"]),
        ended_at_ms=_n(raw, "ended_at_ms"),
        used_lamports=_n(raw, "used_lamports"),
        refund_lamports=_n(raw, "refund_lamports"),
        refund_status=_s(raw, "refund_status") or REFUND_NONE,
        refund_tx=_s(raw, "refund_tx"),
        refund_reason=_s(raw, "refund_reason"),
        covered_ms=_n(raw, "covered_ms"),
        covered_end_ms=_n(raw, "covered_end_ms"),
        credit_lamports=_n(raw, "credit_lamports"),
    )


def scan(limit: int, start: dict[str, Any] | None) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
    """Up to `limit` raw items from `start` and the key to go on from, as `ContractItem.scan(limit=
    limit, page_size=limit)` reads them: one Scan with `Limit=limit`, another only when DynamoDB
    stopped short of it (its 1 MB page) with more to read; a page cut at `limit` goes on after
    its last item, one read whole from DynamoDB's own key."""
    conn = transaction_connection()
    _arm(conn.client)
    items: list[dict[str, Any]] = []
    key = start
    while True:
        request: dict[str, Any] = {
            "TableName": ContractItem.Meta.table_name,
            "Limit": limit,
            "ProjectionExpression": _PROJECTION,
            "ExpressionAttributeNames": _NAMES,
        }
        if key:
            request["ExclusiveStartKey"] = key
        _RAW_SCAN.on = True
        try:
            answer = conn.dispatch(SCAN, request)
        except BOTOCORE_EXCEPTIONS as exc:  # wrapped as PynamoDB's own scan does: @guarded maps outages
            raise ScanError(f"Failed to scan table: {exc}", exc) from exc
        finally:
            _RAW_SCAN.on = False
        page: list[dict[str, Any]] = answer.get("Items", [])
        key = answer.get("LastEvaluatedKey")
        room = limit - len(items)
        if len(page) > room:  # cut mid-page: go on after the last item taken
            items += page[:room]
            return items, {"contract_id": items[-1]["contract_id"]}
        items += page
        if len(items) == limit or not key:
            return items, key


def with_book(contracts: list[Contract], shards: int) -> tuple[list[Contract], list[dict[str, int]]]:
    """`contracts` with the kept covered time of the ACTIVE ones (`coverage.with_coverage`, read
    eventually consistent as `listing` reads it) and the book's counter items (`BookStore.counters`,
    strongly consistent), in ONE BatchGetItem (one more per 100 keys past the first 100)."""
    book, metrics = BookItem.Meta.table_name, CoverageItem.Meta.table_name
    keys = [(book, {"pk": {"S": f"book#{n}"}}) for n in range(shards)]
    keys += [
        (metrics, coverage.key(c.contract_id)) for c in contracts if c.status == ACTIVE and c.covered_end_ms is not None
    ]
    found: RawItems = {book: [], metrics: []}
    for i in range(0, len(keys), coverage.BATCH_GET_MAX_KEYS):
        chunk: RawItems = {book: [], metrics: []}
        for table, key in keys[i : i + coverage.BATCH_GET_MAX_KEYS]:
            chunk[table].append(key)
        for table, items in batch_get(chunk, consistent=(book,)).items():
            found[table] += items
    kept = coverage.kept(found[metrics])
    counters = [{name: int(raw.get(name, {}).get("N", 0)) for name in books.COUNTERS} for raw in found[book]]
    return [with_kept_coverage(c, kept.get(c.contract_id)) for c in contracts], counters
