"""A device's signing key and its per-contract receipt chain (the device agent's side of receipts).

docs/api.md "Proven usage and downtime credit": a device with a registered ed25519 key sends, with
each metrics batch, a receipt signed over ``si64_protocol.receipts.receipt_message``; ``seq``
counts from 0 per contract and ``prev_sha256`` links each receipt to the previous one.

* ``load_or_create_device_key(path)``: the device's keypair, a solana-keygen JSON file (mode 0600),
  created on first use. ``device_key_path(device_id)`` is where ``si64 devices keygen`` and
  ``si64 agent --sign`` keep it: ``$SI64_STATE_DIR/devices/{device_id}/keypair.json``.
* ``ReceiptChain``: the chain head of one contract (next ``seq``, ``prev_sha256``) and the one
  batch signed but not yet acknowledged (``pending``), persisted atomically in a small JSON file
  BEFORE the batch is first sent. So a batch resent after a timeout, or after an agent restart,
  goes out with the SAME receipt (the server answers a replay), and a restarted agent continues
  the chain where it stopped: no fork, no gap.
"""

from __future__ import annotations

import json
import urllib.parse
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from si64_protocol.receipts import GENESIS_PREV, message_sha256, receipt_message, samples_sha256

from .client import OpsError, state_dir, write_private


def _safe(name: str) -> str:
    return urllib.parse.quote(name, safe="")


def device_key_path(device_id: str, base: Path | None = None) -> Path:
    """Where the device's keypair lives: ``$SI64_STATE_DIR/devices/{device_id}/keypair.json``."""
    return (base or state_dir()) / "devices" / _safe(device_id) / "keypair.json"


def chain_path(key_path: Path, contract_id: str) -> Path:
    """The chain state of one contract, beside the key that signs it."""
    return key_path.parent / "receipts" / f"{_safe(contract_id)}.json"


def load_or_create_device_key(path: Path) -> tuple[Any, bool]:
    """(keypair, created): the ed25519 keypair at ``path`` (solana-keygen JSON), created (0600) if missing."""
    from solders.keypair import Keypair

    if path.exists():
        try:
            return Keypair.from_bytes(bytes(json.loads(path.read_text()))), False
        except (OSError, ValueError, TypeError) as exc:
            raise OpsError(f"cannot read the device key {path}: {exc}") from None
    kp = Keypair()
    write_private(path, json.dumps(list(bytes(kp))))
    return kp, True


@dataclass(frozen=True)
class Pending:
    """A signed batch not yet acknowledged by the API: resent as it is, never re-signed."""

    receipt: dict[str, Any]
    samples: list[dict[str, Any]]


class ReceiptChain:
    """The receipt chain of one contract, signed with ``keypair``; persisted at ``path`` (None: in memory)."""

    def __init__(self, contract_id: str, keypair: Any, path: Path | None = None) -> None:
        self.contract_id, self.keypair, self.path = contract_id, keypair, path
        self.next_seq = 0
        self.prev_sha256 = GENESIS_PREV
        self.pending: Pending | None = None
        if path is not None and path.exists():
            self._load(path)

    @property
    def pubkey(self) -> str:
        return str(self.keypair.pubkey())

    def _load(self, path: Path) -> None:
        try:
            state = json.loads(path.read_text())
            if state["contract_id"] != self.contract_id or state["pubkey"] != self.pubkey:
                raise ValueError("it belongs to another contract or key")
            self.next_seq, self.prev_sha256 = int(state["next_seq"]), str(state["prev_sha256"])
            p = state.get("pending")
            self.pending = None if p is None else Pending(dict(p["receipt"]), list(p["samples"]))
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise OpsError(f"cannot use the receipt chain state {path}: {exc}") from None

    def _save(self) -> None:
        if self.path is None:
            return
        pending = None if self.pending is None else {"receipt": self.pending.receipt, "samples": self.pending.samples}
        state = {
            "contract_id": self.contract_id,
            "pubkey": self.pubkey,
            "next_seq": self.next_seq,
            "prev_sha256": self.prev_sha256,
            "pending": pending,
        }
        write_private(self.path, json.dumps(state, separators=(",", ":")))

    def sign(self, samples: list[dict[str, Any]]) -> Pending:
        """Sign ``samples`` as the next receipt and persist it as pending (before it is ever sent).
        Only one batch is pending at a time: while one is, it is the batch to send."""
        if self.pending is not None:
            return self.pending
        if not samples:
            raise ValueError("a receipt covers at least one sample")
        stamps = [int(s["timestamp_ms"]) for s in samples]
        seq, prev = self.next_seq, self.prev_sha256
        digest = samples_sha256(samples)
        message = receipt_message(self.contract_id, seq, min(stamps), max(stamps), digest, prev)
        receipt = {
            "seq": seq,
            "from_ms": min(stamps),
            "to_ms": max(stamps),
            "samples_sha256": digest,
            "prev_sha256": prev,
            "signature": str(self.keypair.sign_message(message.encode())),
        }
        self.pending = Pending(receipt, [dict(s) for s in samples])
        self.next_seq, self.prev_sha256 = seq + 1, message_sha256(message)
        self._save()
        return self.pending

    def acknowledged(self) -> None:
        """The API stored (or replayed) the pending batch: the next batch is the next receipt."""
        self.pending = None
        self._save()

    def refused(self) -> None:
        """The API refused the pending batch as malformed (400): its seq was not used; sign the next
        batch with it again."""
        if self.pending is None:
            return
        self.next_seq, self.prev_sha256 = int(self.pending.receipt["seq"]), str(self.pending.receipt["prev_sha256"])
        self.pending = None
        self._save()
