"""Device-signed usage receipts, as the server checks and stores them. Pure Python.

docs/api.md "Proven usage and downtime credit", docs/adr/0019-device-receipts.md. The strings a
device signs (the message, the samples hash, the chain link) are `si64_protocol.receipts`, shared
with the agent and the verifier; this module adds what only the server decides:

* a receipt of a batch proves THAT batch: `samples_sha256` is the hash of its `samples` exactly as
  sent, `from_ms` / `to_ms` are the first and last sample timestamps, and the signature verifies
  with the device's registered key over the message of THIS contract (`check`);
* it continues the contract's chain: seq 0 links to GENESIS_PREV, seq n to the stored seq n − 1
  (`check_chain`); the batch is stored under a key derived from its seq (`batch_key`), so a
  conditional put makes a replay (same message) and a fork (another message) collide.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from si64_protocol.receipts import GENESIS_PREV, message_sha256, receipt_message, samples_sha256

from .errors import ReceiptSequence, Unauthorized

MAX_SEQ = 10**10 - 1  # the batch key holds 10 digits
MAX_MS = 10**13 - 1
MAX_SIGNATURE_CHARS = 88
_HEX64 = re.compile(r"[0-9a-f]{64}")
KEY_PREFIX = "R#"
Verify = Callable[[str, bytes, str], bool]  # ports.SignatureVerifier: (pubkey, message, signature)


@dataclass(frozen=True)
class Receipt:
    """What a device sends with a batch (`si64_protocol.receipts.RECEIPT_FIELDS`)."""

    seq: int
    from_ms: int
    to_ms: int
    samples_sha256: str
    prev_sha256: str
    signature: str

    def message(self, contract_id: str) -> str:
        return receipt_message(contract_id, self.seq, self.from_ms, self.to_ms, self.samples_sha256, self.prev_sha256)

    def sha256(self, contract_id: str) -> str:
        """The hash the next receipt's `prev_sha256` must carry."""
        return message_sha256(self.message(contract_id))


@dataclass(frozen=True)
class StoredReceipt:
    """An accepted receipt, the key it was checked with and the server time its batch counted at."""

    receipt: Receipt
    pubkey: str
    at_ms: int


@dataclass(frozen=True)
class SignedBatch:
    """A report's receipt and the hash of its samples as sent (None: the body has no receipt)."""

    receipt: Receipt
    samples_sha256: str


def batch_key(seq: int) -> str:
    """The metrics batch key of the receipt `seq` (sorts after every content-derived key)."""
    return f"{KEY_PREFIX}{seq:010d}"


def refused(detail: str) -> Unauthorized:
    return Unauthorized(detail, reason="receipt")


def as_sent(value: Any) -> Any:
    """The JSON value as a device's own `json.loads` gives it: the server parses numbers as exact
    Decimals, a device's JSON library as floats; float(Decimal(text)) is float(text) (both are
    the correctly rounded value of the same digits), so the hash is over what the device hashed.
    Only for hashing a batch's telemetry samples (cpu, memory, io): no amount of money is ever
    passed through here; lamports stay integers end to end."""
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, list):
        return [as_sent(v) for v in value]
    if isinstance(value, dict):
        return {k: as_sent(v) for k, v in value.items()}
    return value


def _int(raw: dict[str, Any], name: str, maximum: int) -> int:
    v = raw.get(name)
    if isinstance(v, bool) or not isinstance(v, int) or not 0 <= v <= maximum:
        raise refused(f"'receipt.{name}' must be an integer from 0 to {maximum}.")
    return v


def _hex(raw: dict[str, Any], name: str) -> str:
    v = raw.get(name)
    if not isinstance(v, str) or not _HEX64.fullmatch(v):
        raise refused(f"'receipt.{name}' must be 64 lowercase hex digits (sha256).")
    return v


def signed_batch(body: dict[str, Any]) -> SignedBatch | None:
    """The receipt of a metrics body and the hash of its `samples` as sent; None without
    `receipt`. Unauthorized (reason `receipt`) for a receipt that cannot be one."""
    raw = body.get("receipt")
    if raw is None:
        return None
    if not isinstance(raw, dict):
        raise refused("'receipt' must be an object.")
    samples = body.get("samples")
    if not isinstance(samples, list):
        raise refused("A signed report sends its samples as 'samples' (a list), the list its receipt hashes.")
    sig = raw.get("signature")
    if not isinstance(sig, str) or not 1 <= len(sig) <= MAX_SIGNATURE_CHARS:
        raise refused("'receipt.signature' must be a base58 ed25519 signature.")
    receipt = Receipt(
        _int(raw, "seq", MAX_SEQ),
        _int(raw, "from_ms", MAX_MS),
        _int(raw, "to_ms", MAX_MS),
        _hex(raw, "samples_sha256"),
        _hex(raw, "prev_sha256"),
        sig,
    )
    return SignedBatch(receipt, samples_sha256(as_sent(samples)))


def check(contract_id: str, signed: SignedBatch, rows: list[list[Any]], pubkey: str, verify: Verify) -> None:
    """Unauthorized (reason `receipt`) unless the receipt proves these rows (sorted by time) for
    this contract under `pubkey`."""
    r = signed.receipt
    if r.samples_sha256 != signed.samples_sha256:
        raise refused("'receipt.samples_sha256' is not the sha256 of the samples sent.")
    if (r.from_ms, r.to_ms) != (rows[0][0], rows[-1][0]):
        raise refused("'receipt.from_ms' and 'receipt.to_ms' must be the first and last sample timestamps.")
    if not verify(pubkey, r.message(contract_id).encode(), r.signature):
        raise refused("'receipt.signature' does not verify with the device's registered key.")


def check_chain(contract_id: str, r: Receipt, prev: StoredReceipt | None) -> None:
    """ReceiptSequence unless `r` continues the chain: seq 0 from GENESIS_PREV, seq n from the
    stored receipt n − 1 (`prev`, None when there is none: a gap)."""
    if r.seq == 0:
        if r.prev_sha256 != GENESIS_PREV:
            raise ReceiptSequence("Receipt 0 must have prev_sha256 of 64 zeros.", reason="receipt.prev_sha256")
        return
    if prev is None or prev.receipt.seq != r.seq - 1:
        raise ReceiptSequence(f"Receipt {r.seq - 1} has not been accepted: receipts come in order.", "receipt.seq")
    if prev.receipt.sha256(contract_id) != r.prev_sha256:
        raise ReceiptSequence(
            f"'receipt.prev_sha256' is not the hash of receipt {r.seq - 1} as accepted.", "receipt.prev_sha256"
        )


def to_view(s: StoredReceipt) -> dict[str, Any]:
    """A receipt as `/coverage` gives it: every field its message needs, its signature, the key
    it was checked with and the server time its batch counted at."""
    r = s.receipt
    return {
        "seq": r.seq,
        "from_ms": r.from_ms,
        "to_ms": r.to_ms,
        "samples_sha256": r.samples_sha256,
        "prev_sha256": r.prev_sha256,
        "signature": r.signature,
        "pubkey": s.pubkey,
        "received_at_ms": s.at_ms,
    }


def from_view(v: dict[str, Any]) -> StoredReceipt:
    """`to_view` back (what the metrics item stores)."""
    r = Receipt(
        int(v["seq"]), int(v["from_ms"]), int(v["to_ms"]), v["samples_sha256"], v["prev_sha256"], v["signature"]
    )
    return StoredReceipt(r, v["pubkey"], int(v["received_at_ms"]))
