"""The compact form of a batch of usage samples, shared by the metrics adapter and its fake.

A batch is stored as its rows in columns — timestamps as a first value and deltas, each
metric as its decimal exponents then its integer mantissas, all as varints — compressed
with raw DEFLATE (`pack_rows`). Values read back are the exact decimals that were sent
(`Decimal`), timestamps `int`. `batch_key` derives a batch's key from its content, so the
same rows again are the same key. Pure Python, standard library only.
"""

from __future__ import annotations

import hashlib
import zlib
from decimal import Decimal
from typing import Any

FORMAT = 1  # first byte of a packed batch
# The sort key of a contract's coverage item in the metrics table (docs/adr/0016-covered-time.md).
# Every batch key starts with a digit (`batch_key`), so all of them sort before it.
COVERAGE_KEY = "coverage"
RETENTION_MS = 30 * 24 * 3600 * 1000  # a batch is kept this long, a closed coverage item this long after the end
COLUMNS = 4  # cpu, memory, disk, network (after the timestamp)
_WBITS = -15  # raw DEFLATE: no zlib header or checksum (DynamoDB keeps its own)


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


def _parts(value: object) -> tuple[int, int]:
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


def encode_rows(rows: list[list[Any]]) -> bytes:
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


def pack_rows(rows: list[list[Any]]) -> bytes:
    """Rows → the stored bytes (columnar, raw DEFLATE)."""
    return compress(encode_rows(rows))


def unpack_rows(blob: bytes) -> list[list[Any]]:
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


def batch_key(rows: list[list[Any]], encoded: bytes) -> str:
    """The first timestamp and a digest of the whole batch: a retried report is the same key
    (its `attribute_not_exists` put fails, nothing is stored twice), other samples another."""
    return f"{rows[0][0]:013d}#{hashlib.sha256(encoded).hexdigest()[:16]}"
