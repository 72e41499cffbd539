"""A device of the inventory and its free slots. Pure Python."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Device:
    device_id: str
    name: str
    tier: str
    uri: str
    address: str
    region: str
    ram: str
    capacity: int
    leases: int
    uptime: str
    audited: bool
    key_hash: str | None
    last_seen_ms: int | None
    pubkey: str | None = None  # the device's ed25519 key (base58) that signs its usage receipts
    previous_pubkeys: tuple[str, ...] = ()  # keys it held before, oldest first (still published)

    @property
    def available(self) -> int:
        return max(0, self.capacity - self.leases)
