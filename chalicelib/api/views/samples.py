"""A contract's usage samples, as stored rows named by their fields."""

from __future__ import annotations

from typing import Any

from ..schemas import SAMPLE_FIELDS

SAMPLE_VIEW_FIELDS = ("timestamp_ms", *SAMPLE_FIELDS)  # a stored row [ts_ms, cpu, mem, disk, net], named


def sample_view(row: list[Any]) -> dict[str, Any]:
    return dict(zip(SAMPLE_VIEW_FIELDS, row, strict=True))


def samples_response(contract_id: str, rows: list[list[Any]]) -> dict[str, Any]:
    return {"contract_id": contract_id, "samples": [sample_view(r) for r in rows]}
