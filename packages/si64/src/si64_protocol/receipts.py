"""Device-signed usage receipts: the exact strings a device signs and a renter checks.

docs/api.md "Proven usage and downtime credit": a device with a registered ed25519 key sends,
with each metrics batch of a contract, a receipt

    {"seq", "from_ms", "to_ms", "samples_sha256", "prev_sha256", "signature"}

signed (base58 ed25519) over `receipt_message(...)`. `seq` counts from 0 per contract;
`prev_sha256` is `message_sha256` of the previous receipt's message (`GENESIS_PREV` for seq 0),
so the receipts of a contract form a chain a renter can check end to end with the device's
public key alone. Pure standard library: the signature itself is checked by the caller
(the server with its ed25519 verifier, the client with solders).
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

GENESIS_PREV = "0" * 64
RECEIPT_FIELDS: tuple[str, ...] = ("seq", "from_ms", "to_ms", "samples_sha256", "prev_sha256", "signature")


def samples_sha256(samples: list[Any]) -> str:
    """sha256 hex of the samples exactly as sent: `json.dumps(samples, sort_keys=True, separators=(",", ":"))`."""
    text = json.dumps(samples, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def receipt_message(contract_id: str, seq: int, from_ms: int, to_ms: int, samples_hash: str, prev_sha256: str) -> str:
    """`si64:receipt:{contract_id}:{seq}:{from_ms}:{to_ms}:{samples_sha256}:{prev_sha256}`."""
    return f"si64:receipt:{contract_id}:{seq}:{from_ms}:{to_ms}:{samples_hash}:{prev_sha256}"


def message_sha256(message: str) -> str:
    """sha256 hex of a receipt's message: the next receipt's `prev_sha256`."""
    return hashlib.sha256(message.encode()).hexdigest()


def chain_problem(contract_id: str, receipts: list[dict[str, Any]]) -> str | None:
    """Why `receipts` (in seq order) are not one unbroken chain from seq 0, or None.
    Checks the numbering and the `prev_sha256` links only; each signature is the caller's."""
    prev = GENESIS_PREV
    for i, r in enumerate(receipts):
        if r.get("seq") != i:
            return f"receipt {i}: seq is {r.get('seq')!r}, expected {i}"
        if r.get("prev_sha256") != prev:
            return f"receipt {i}: prev_sha256 does not match the previous receipt"
        prev = message_sha256(
            receipt_message(contract_id, i, r["from_ms"], r["to_ms"], r["samples_sha256"], r["prev_sha256"])
        )
    return None
