"""A device that signs its metrics batches, as the agent does (docs/api.md "Proven usage and
downtime credit"): solders for the ed25519 key, si64_protocol.receipts for every string signed."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from solders.keypair import Keypair
from solders.pubkey import Pubkey
from solders.signature import Signature

from si64_protocol.receipts import GENESIS_PREV, message_sha256, receipt_message, samples_sha256


def sample(ts_ms: int, cpu: float = 41.5) -> dict[str, Any]:
    """A sample as a device's JSON library holds it (floats)."""
    return {
        "timestamp_ms": ts_ms,
        "cpu_percent": cpu,
        "memory_mb": 2048,
        "disk_io_mbps": 0.1 + 0.2,
        "network_io_mbps": 1e-7,
    }


@dataclass
class SigningDevice:
    """The receipts of one contract: `batch(samples)` is the next body; `prev` the chain head."""

    contract_id: str
    keypair: Keypair = field(default_factory=Keypair)
    seq: int = 0
    prev: str = GENESIS_PREV

    @property
    def pubkey(self) -> str:
        return str(self.keypair.pubkey())

    def receipt(self, samples: list[dict[str, Any]], seq: int | None = None, prev: str | None = None) -> dict[str, Any]:
        seq = self.seq if seq is None else seq
        prev = self.prev if prev is None else prev
        times = sorted(s["timestamp_ms"] for s in samples)
        h = samples_sha256(samples)
        message = receipt_message(self.contract_id, seq, times[0], times[-1], h, prev)
        signature = str(self.keypair.sign_message(message.encode()))
        return {
            "seq": seq,
            "from_ms": times[0],
            "to_ms": times[-1],
            "samples_sha256": h,
            "prev_sha256": prev,
            "signature": signature,
        }

    def batch(self, samples: list[dict[str, Any]]) -> dict[str, Any]:
        """The next signed body; the chain moves on (as the agent does once it is accepted)."""
        r = self.receipt(samples)
        self.seq += 1
        self.prev = message_sha256(
            receipt_message(self.contract_id, r["seq"], r["from_ms"], r["to_ms"], r["samples_sha256"], r["prev_sha256"])
        )
        return {"samples": samples, "receipt": r}


def verifies(pubkey: str, contract_id: str, r: dict[str, Any]) -> bool:
    """A renter's check of one receipt with the published key (solders, no server code)."""
    message = receipt_message(contract_id, r["seq"], r["from_ms"], r["to_ms"], r["samples_sha256"], r["prev_sha256"])
    return Signature.from_string(r["signature"]).verify(Pubkey.from_string(pubkey), message.encode())
