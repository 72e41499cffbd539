"""Small records the services hand to storage. Pure Python."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Claim:
    """A transaction signature and what it paid for (the first response is kept for replays)."""

    signature: str
    kind: str
    contract_id: str
    wallet: str
    request: str
    response: dict[str, Any]


@dataclass(frozen=True)
class Replay:
    """The first response to an Idempotency-Key; while that first request is still running,
    `in_progress` (status 0, no response yet)."""

    body_hash: str
    status: int
    response: str
    in_progress: bool = False


def hash_device_key(key: str) -> str:
    """Device keys are random 192-bit secrets: a plain SHA-256 is enough to store them."""
    return hashlib.sha256(key.encode()).hexdigest()
