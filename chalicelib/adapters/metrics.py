"""Metrics table: one item per reported batch, written by ONE conditional PutItem, read newest
first; and the device's last-seen stamp, written at most once per interval
(docs/adr/0007-cheap-metering.md).

A batch is stored compactly (`domain/metering.py`, shared with the fake): the rows as
columns of varints, compressed with raw DEFLATE. A batch of 120 samples of a steady reporter is a
few hundred bytes, so the whole item stays under 1 KB (1 WCU). Values read back are the
exact decimals that were sent (`Decimal`), timestamps `int`. Items written before this
format (`samples`: JSON text) are still read.
"""

from __future__ import annotations

from typing import Any

from pynamodb.exceptions import PynamoDBException

from .. import jsontext
from ..domain.contracts import Contract
from ..domain.devices import Device
from ..domain.errors import Conflict
from ..domain.metering import COVERAGE_KEY, RETENTION_MS, batch_key, compress, encode_rows, unpack_rows
from ..domain.usage_receipts import StoredReceipt, from_view, to_view
from ..domain.usage_receipts import batch_key as receipt_batch_key
from . import contracts as _contracts
from . import coverage as _coverage
from . import devices as _devices
from .dynamo import RawItems, batch_get, guarded, is_conditional_failure
from .models import ContractItem, CoverageItem, DeviceItem, MetricsItem


def batch_item(
    contract_id: str, device_id: str, rows: list[list[Any]], now_ms: int, receipt: StoredReceipt | None = None
) -> MetricsItem:
    encoded = encode_rows(rows)
    return MetricsItem(
        contract_id,
        batch_key(rows, encoded) if receipt is None else receipt_batch_key(receipt.receipt.seq),
        device_id=device_id,
        n=len(rows),
        packed=compress(encoded),
        ttl=(now_ms + RETENTION_MS) // 1000,
        at_ms=now_ms,
        receipt=None if receipt is None else jsontext.dumps(to_view(receipt)),
    )


def stored_receipt(item: MetricsItem) -> StoredReceipt | None:
    return None if item.receipt is None else from_view(jsontext.loads(item.receipt))


def item_rows(item: MetricsItem) -> list[list[Any]]:
    if item.packed is not None:
        return unpack_rows(item.packed)
    return jsontext.loads(item.samples)  # written before the packed format: JSON rows


# --- the repository -------------------------------------------------------------------
class MetricsRepo:
    """ports.MetricsStore on DynamoDB."""

    @guarded
    def report_context(
        self, device_id: str, contract_id: str | None, receipt_seq: int | None = None
    ) -> tuple[Device | None, Contract | None, StoredReceipt | None]:
        """One BatchGetItem: the device (eventually consistent, as `DeviceStore.get`), the
        contract with its coverage item (strongly consistent, as `ContractStore.get`; not asked
        for when None) and the contract's receipt `receipt_seq` (strongly consistent, as
        `receipt`; when not None); unprocessed keys are asked again."""
        devices, contracts, metrics = (m.Meta.table_name for m in (DeviceItem, ContractItem, MetricsItem))
        keys: RawItems = {devices: [{"device_id": {"S": device_id}}], contracts: [], metrics: []}
        if contract_id is not None:
            keys[contracts].append({"contract_id": {"S": contract_id}})
            keys[metrics].append(_coverage.key(contract_id))
            if receipt_seq is not None:
                receipt_key = {"contract_id": {"S": contract_id}, "batch_key": {"S": receipt_batch_key(receipt_seq)}}
                keys[metrics].append(receipt_key)
        found = batch_get(keys, consistent=(contracts, metrics))
        device = _devices.to_domain(DeviceItem.from_raw_data(found[devices][0])) if found[devices] else None
        wanted = receipt_batch_key(receipt_seq) if receipt_seq is not None else None
        receipts = [r for r in found[metrics] if wanted is not None and r["batch_key"]["S"] == wanted]
        receipt = stored_receipt(MetricsItem.from_raw_data(receipts[0])) if receipts else None
        return device, _contracts.read_back(found[contracts], found[metrics]), receipt

    @guarded
    def latest(self, contract_id: str, count: int = 100) -> list[list[Any]]:
        """The newest `count` samples, oldest first (each batch item holds 1..120 samples)."""
        rows: list[list[Any]] = []
        batches = MetricsItem.batch_key < COVERAGE_KEY  # not the coverage item
        for item in MetricsItem.query(contract_id, batches, scan_index_forward=False, page_size=count, limit=count):
            rows.extend(item_rows(item))
            if len(rows) >= count:
                break
        rows.sort(key=lambda r: r[0])
        return rows[-count:]

    @guarded
    def receipt(self, contract_id: str, seq: int) -> StoredReceipt | None:
        """One strongly consistent GetItem of the receipt batch `seq`."""
        try:
            item = MetricsItem.get(contract_id, receipt_batch_key(seq), consistent_read=True)
        except MetricsItem.DoesNotExist:
            return None
        return stored_receipt(item)

    @guarded
    def batches(self, contract_id: str) -> tuple[list[int], list[StoredReceipt]]:
        """Every stored batch's server time (`at_ms`; batches stored before it was kept have none)
        and every receipt in seq order: one Query of the contract's batches, without their samples."""
        times: list[int] = []
        receipts: list[StoredReceipt] = []
        attrs = ["batch_key", "at_ms", "receipt"]
        for item in MetricsItem.query(contract_id, attributes_to_get=attrs, consistent_read=True):
            if item.at_ms is not None:
                times.append(int(item.at_ms))
            r = stored_receipt(item)
            if r is not None:
                receipts.append(r)
        return times, receipts  # receipt keys sort by seq

    @guarded
    def put_batch(
        self, contract_id: str, device_id: str, rows: list[list[Any]], now_ms: int, receipt: StoredReceipt | None = None
    ) -> None:
        """One PutItem, `attribute_not_exists(batch_key)`: Conflict(["batch"]) when stored before."""
        try:
            item = batch_item(contract_id, device_id, rows, now_ms, receipt)
            item.save(condition=MetricsItem.batch_key.does_not_exist())
        except PynamoDBException as exc:
            if is_conditional_failure(exc):
                raise Conflict(["batch"]) from None
            raise

    @guarded
    def cover(self, contract_id: str, before_end_ms: int, covered_ms: int, end_ms: int) -> bool:
        """One conditional UpdateItem of the contract's coverage item (adapters/coverage.py): its
        covered time becomes (`covered_ms`, `end_ms`) when it still ends at `before_end_ms` and is
        not closed. False when the condition failed."""
        try:  # the table connection's UpdateItem: Model.update asks for the whole item back (ALL_NEW)
            CoverageItem._get_connection().update_item(
                contract_id,
                COVERAGE_KEY,
                actions=[CoverageItem.covered_ms.set(covered_ms), CoverageItem.covered_end_ms.set(end_ms)],
                condition=_coverage.cover_condition(before_end_ms),
            )
        except PynamoDBException as exc:
            if is_conditional_failure(exc):
                return False
            raise
        return True

    @guarded
    def stamp_device(self, device_id: str, key_hash: str, now_ms: int, every_ms: int) -> bool:
        """One conditional UpdateItem: last_seen_ms = now_ms when the key hash still matches and
        the stored stamp is absent or at least `every_ms` old. False when it was not due."""
        stale = DeviceItem.last_seen_ms.does_not_exist() | (DeviceItem.last_seen_ms <= now_ms - every_ms)
        try:
            DeviceItem(device_id).update(
                actions=[DeviceItem.last_seen_ms.set(now_ms)], condition=(DeviceItem.key_hash == key_hash) & stale
            )
        except PynamoDBException as exc:
            if is_conditional_failure(exc):
                return False
            raise
        return True
