"""Operator use cases used by local tooling and the (later) operator CLI."""
from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..domain.records import hash_device_key

if TYPE_CHECKING:  # types only: importing the Protocols costs cold-start time
    from ..ports import DeviceStore


@dataclass(frozen=True)
class Operator:
    """Inventory and device keys.

    devices: device writes (`upsert`, `set_key_hash`).
    """
    devices: DeviceStore

    def seed_devices(self, devices: list[dict], capacity: int) -> None:
        """Create or update each device spec (`device_id`, `name`, `tier`, `uri`, `address`,
        `region`, `ram`) with `capacity` slots; leases are never touched."""
        for spec in devices:
            self.devices.upsert(spec, capacity)

    def issue_device_key(self, device_id: str) -> str:
        """A new secret key for the device (only its hash is stored); the old key stops working."""
        key = f"dk_{device_id}_{secrets.token_urlsafe(24)}"
        self.devices.set_key_hash(device_id, hash_device_key(key))
        return key
