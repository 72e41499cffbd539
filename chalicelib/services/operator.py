"""Operator use cases: the device inventory (seeding, listing), device keys and the audited flag.

Used by local tooling (dev/seed.py) and by the admin routes (`/api/admin/devices…`)."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..domain import money
from ..domain.errors import Conflict, Forbidden, NotFound, Unavailable
from ..domain.records import hash_device_key

if TYPE_CHECKING:  # types only: importing the Protocols costs cold-start time
    from ..domain.devices import Device
    from ..ports import DeviceStore

_TIER_ORDER = {name: i for i, name in enumerate(money.TIERS)}


def _unknown_device(device_id: str) -> NotFound:
    return NotFound(f"No such device: {device_id}.", reason="device_id")


@dataclass(frozen=True)
class IssuedKey:
    """A freshly issued device key: shown once, only its hash is stored."""

    device_id: str
    device_key: str


@dataclass(frozen=True)
class Operator:
    """Inventory and device keys.

    devices: device reads (`all`) and writes (`upsert`, `set_key_hash`, `set_audited`).
    """

    devices: DeviceStore

    def seed_devices(self, devices: list[dict[str, Any]], capacity: int) -> None:
        """Create or update each device spec (`device_id`, `name`, `tier`, `uri`, `address`,
        `region`, `ram`) with `capacity` slots; leases are never touched."""
        for spec in devices:
            self.devices.upsert(spec, capacity)

    def issue_device_key(self, device_id: str) -> str:
        """A new secret key for the device (only its hash is stored); the old key stops working.
        Conflict(["device"]) for an unknown device."""
        key = f"dk_{device_id}_{secrets.token_urlsafe(24)}"
        self.devices.set_key_hash(device_id, hash_device_key(key))
        return key

    # --- the admin routes ------------------------------------------------------
    def fleet(self) -> list[Device]:
        """Every device with its live leases, capacity, uptime, audited flag and last report,
        by tier (pricing order) then id. One read of the whole devices table (a few dozen items)."""
        return sorted(self.devices.all(), key=lambda d: (_TIER_ORDER.get(d.tier, len(_TIER_ORDER)), d.device_id))

    def rotate_device_key(self, device_id: str) -> IssuedKey:
        """Issue a new key for a known device (NotFound otherwise); the old key stops working at once:
        the metrics write checks the stored hash in the same transaction that stores the samples."""
        try:
            return IssuedKey(device_id, self.issue_device_key(device_id))
        except Conflict:
            raise _unknown_device(device_id) from None

    def register_pubkey(self, device_id: str, pubkey: str) -> Device:
        """Make `pubkey` (base58 ed25519, checked by the edge) the key that signs the device's usage
        receipts; the device as stored. The same key again changes nothing. Another key is set only
        while the device leases no contract (Forbidden, reason `leases`, otherwise), so every receipt
        of a contract is signed with one key, and the key it replaces stays published in
        `previous_pubkeys` (docs/adr/0019-device-receipts.md). NotFound for an unknown device."""
        for _ in range(3):  # a lost race (a lease or another key landed meanwhile) is read again
            d = self.devices.get(device_id)
            if d is None:
                raise _unknown_device(device_id)
            if d.pubkey == pubkey:
                return d
            if d.leases > 0:
                raise Forbidden("A device's receipt key is set only while it leases no contract.", reason="leases")
            try:
                return self.devices.set_pubkey(device_id, pubkey, d.pubkey)
            except Conflict:
                continue
        raise Unavailable("The device changed while its key was set; retry.", reason="device")

    def set_audited(self, device_id: str, audited: bool) -> Device:
        """Mark a device audited (or not); the device as stored. NotFound for an unknown device."""
        try:
            return self.devices.set_audited(device_id, audited)
        except Conflict:
            raise _unknown_device(device_id) from None
