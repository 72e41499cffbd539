"""Small records the services hand to storage. Pure Python."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any


def claim_key(signature: str, payer: str) -> str:
    """The storage key of a payment claim: one per transaction signature AND payer, so each
    payer's transfers in a co-signed transaction are claimed (rented, extended or refunded)
    apart from every other payer's (docs/data-model.md)."""
    if not signature or not payer:
        raise ValueError("a claim needs a signature and a payer")
    return f"sig#{signature}#{payer}"


@dataclass(frozen=True)
class Claim:
    """One payer's share of a transaction (`signature`, `wallet`) and what it paid for (the
    first response is kept for replays)."""

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
