"""Metrics table: one item per reported batch, read newest first."""
from __future__ import annotations

import hashlib
import json

from .dynamo import guarded
from .models import MetricsItem

RETENTION_MS = 30 * 24 * 3600 * 1000


def _row_json(row: list) -> str:
    """[ts, cpu, mem, disk, net] as JSON text; values are finite Decimals/ints, written exactly."""
    return "[" + ",".join(str(v) for v in row) + "]"


def batch_item(contract_id: str, device_id: str, rows: list[list], now_ms: int) -> MetricsItem:
    """The key is the first timestamp and a digest of the samples, so a retried report
    is the same item (its `attribute_not_exists` write fails, nothing is stored twice)."""
    samples = "[" + ",".join(_row_json(r) for r in rows) + "]"
    digest = hashlib.sha256(samples.encode()).hexdigest()[:16]
    return MetricsItem(contract_id, f"{rows[0][0]:013d}#{digest}", device_id=device_id,
                       n=len(rows), samples=samples, ttl=(now_ms + RETENTION_MS) // 1000)


class MetricsRepo:
    @guarded
    def latest(self, contract_id: str, count: int = 100) -> list[list]:
        """The newest `count` samples, oldest first (each batch item holds 1..120 samples)."""
        rows: list[list] = []
        for item in MetricsItem.query(contract_id, scan_index_forward=False, page_size=count, limit=count):
            rows.extend(json.loads(item.samples))
            if len(rows) >= count:
                break
        rows.sort(key=lambda r: r[0])
        return rows[-count:]
