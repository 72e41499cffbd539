"""Metrics table: one item per reported batch, written by ONE conditional PutItem, read newest
first; and the device's last-seen stamp, written at most once per interval
(docs/adr/0007-cheap-metering.md).

A batch is stored compactly (`pack_rows`): the rows as columns — timestamps as a first value
and deltas, each metric as its decimal exponents then its integer mantissas, all as
varints — compressed with raw DEFLATE. A batch of 120 samples of a steady reporter is a
few hundred bytes, so the whole item stays under 1 KB (1 WCU). Values read back are the
exact decimals that were sent (`Decimal`), timestamps `int`. Items written before this
format (`samples`: JSON text) are still read.
"""

from __future__ import annotations

import hashlib
import zlib
from decimal import Decimal

from pynamodb.connection.base import BOTOCORE_EXCEPTIONS
from pynamodb.constants import BATCH_GET_ITEM
from pynamodb.exceptions import GetError, PynamoDBException

from .. import jsontext
from ..domain.contracts import Contract
from ..domain.devices import Device
from ..domain.errors import Conflict
from . import contracts as _contracts
from . import devices as _devices
from .dynamo import guarded, is_conditional_failure, transaction_connection
from .models import ContractItem, DeviceItem, MetricsItem

RETENTION_MS = 30 * 24 * 3600 * 1000
FORMAT = 1  # first byte of a packed batch
COLUMNS = 4  # cpu, memory, disk, network (after the timestamp)
_WBITS = -15  # raw DEFLATE: no zlib header or checksum (DynamoDB keeps its own)


# --- the compact batch ----------------------------------------------------------------
def _varint(n: int, out: bytearray) -> None:
    while n > 0x7F:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)


def _zigzag(n: int) -> int:
    return n * 2 if n >= 0 else -n * 2 - 1


def _unzigzag(z: int) -> int:
    return z // 2 if z % 2 == 0 else -(z + 1) // 2


def _read_varint(data: bytes, pos: int) -> tuple[int, int]:
    n = shift = 0
    while True:
        b = data[pos]
        pos += 1
        n |= (b & 0x7F) << shift
        if b < 0x80:
            return n, pos
        shift += 7


def _parts(value) -> tuple[int, int]:
    """(signed integer mantissa, exponent) of an exact number: value = mantissa × 10**exponent."""
    if isinstance(value, bool) or not isinstance(value, (int, Decimal)):
        raise TypeError(f"sample value {value!r} is not an exact number")
    if isinstance(value, int):
        return value, 0
    sign, digits, exponent = value.as_tuple()
    if not isinstance(exponent, int):
        raise ValueError(f"sample value {value!r} is not finite")
    mantissa = int("".join(map(str, digits))) if digits else 0
    return (-mantissa if sign else mantissa), exponent


def encode_rows(rows: list[list]) -> bytes:
    """Rows [ts_ms, cpu, mem, disk, net] (ts int, values int or finite Decimal) → the
    uncompressed columnar bytes. Deterministic: the same rows give the same bytes."""
    out = bytearray([FORMAT])
    _varint(len(rows), out)
    prev = 0
    for i, row in enumerate(rows):
        ts = row[0]
        if isinstance(ts, bool) or not isinstance(ts, int) or ts < 0:
            raise ValueError(f"timestamp {ts!r} is not a non-negative int")
        _varint(ts if i == 0 else _zigzag(ts - prev), out)
        prev = ts
    for col in range(1, COLUMNS + 1):
        parts = [_parts(row[col]) for row in rows]
        for _, exponent in parts:
            _varint(_zigzag(exponent), out)
        for mantissa, _ in parts:
            _varint(_zigzag(mantissa), out)
    return bytes(out)


def compress(encoded: bytes) -> bytes:
    c = zlib.compressobj(9, zlib.DEFLATED, _WBITS)
    return c.compress(encoded) + c.flush()


def pack_rows(rows: list[list]) -> bytes:
    """Rows → the stored bytes (columnar, raw DEFLATE)."""
    return compress(encode_rows(rows))


def unpack_rows(blob: bytes) -> list[list]:
    data = zlib.decompress(blob, _WBITS)
    if data[0] != FORMAT:
        raise ValueError(f"unknown metrics batch format {data[0]}")
    n, pos = _read_varint(data, 1)
    ts: list[int] = []
    for i in range(n):
        v, pos = _read_varint(data, pos)
        ts.append(v if i == 0 else ts[-1] + _unzigzag(v))
    columns = []
    for _ in range(COLUMNS):
        exponents = []
        for _ in range(n):
            v, pos = _read_varint(data, pos)
            exponents.append(_unzigzag(v))
        values = []
        for e in exponents:
            v, pos = _read_varint(data, pos)
            values.append(Decimal(f"{_unzigzag(v)}E{e}"))  # exact: no context rounding on parse
        columns.append(values)
    return [[t, *(col[i] for col in columns)] for i, t in enumerate(ts)]


def batch_key(rows: list[list], encoded: bytes) -> str:
    """The first timestamp and a digest of the whole batch: a retried report is the same key
    (its `attribute_not_exists` put fails, nothing is stored twice), other samples another."""
    return f"{rows[0][0]:013d}#{hashlib.sha256(encoded).hexdigest()[:16]}"


def batch_item(contract_id: str, device_id: str, rows: list[list], now_ms: int) -> MetricsItem:
    encoded = encode_rows(rows)
    return MetricsItem(
        contract_id,
        batch_key(rows, encoded),
        device_id=device_id,
        n=len(rows),
        packed=compress(encoded),
        ttl=(now_ms + RETENTION_MS) // 1000,
    )


def item_rows(item: MetricsItem) -> list[list]:
    if item.packed is not None:
        return unpack_rows(item.packed)
    return jsontext.loads(item.samples)  # written before the packed format: JSON rows


# --- the repository -------------------------------------------------------------------
class MetricsRepo:
    """ports.MetricsStore on DynamoDB."""

    @guarded
    def report_context(self, device_id: str, contract_id: str) -> tuple[Device | None, Contract | None]:
        """One BatchGetItem: the device (eventually consistent, as `DeviceStore.get`) and the
        contract (strongly consistent, as `ContractStore.get`); unprocessed keys are asked again."""
        devices, contracts = DeviceItem.Meta.table_name, ContractItem.Meta.table_name
        request: dict = {
            devices: {"Keys": [{"device_id": {"S": device_id}}], "ConsistentRead": False},
            contracts: {"Keys": [{"contract_id": {"S": contract_id}}], "ConsistentRead": True},
        }
        found: dict[str, list] = {devices: [], contracts: []}
        conn = transaction_connection()
        for _ in range(8):
            try:
                answer = conn.dispatch(BATCH_GET_ITEM, {"RequestItems": request})
            except BOTOCORE_EXCEPTIONS as exc:  # wrapped as PynamoDB's own calls do: @guarded maps outages
                raise GetError(f"Failed to batch get a report's device and contract: {exc}", exc) from exc
            for table, items in answer.get("Responses", {}).items():
                found[table].extend(items)
            request = answer.get("UnprocessedKeys") or {}
            if not request:
                break
        else:
            raise GetError("BatchGetItem left keys unprocessed after 8 attempts")
        device = _devices.to_domain(DeviceItem.from_raw_data(found[devices][0])) if found[devices] else None
        contract = _contracts.to_domain(ContractItem.from_raw_data(found[contracts][0])) if found[contracts] else None
        return device, contract

    @guarded
    def latest(self, contract_id: str, count: int = 100) -> list[list]:
        """The newest `count` samples, oldest first (each batch item holds 1..120 samples)."""
        rows: list[list] = []
        for item in MetricsItem.query(contract_id, scan_index_forward=False, page_size=count, limit=count):
            rows.extend(item_rows(item))
            if len(rows) >= count:
                break
        rows.sort(key=lambda r: r[0])
        return rows[-count:]

    @guarded
    def put_batch(self, contract_id: str, device_id: str, rows: list[list], now_ms: int) -> None:
        """One PutItem, `attribute_not_exists(batch_key)`: Conflict(["batch"]) when stored before."""
        try:
            batch_item(contract_id, device_id, rows, now_ms).save(condition=MetricsItem.batch_key.does_not_exist())
        except PynamoDBException as exc:
            if is_conditional_failure(exc):
                raise Conflict(["batch"]) from None
            raise

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
