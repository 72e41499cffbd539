"""Operator use cases used by local tooling and the (later) operator CLI."""
from __future__ import annotations

import secrets

from ..domain.records import hash_device_key


def seed_devices(c, devices: list[dict], capacity: int) -> None:
    for spec in devices:
        c.devices.upsert(spec, capacity)


def issue_device_key(c, device_id: str) -> str:
    key = f"dk_{device_id}_{secrets.token_urlsafe(24)}"
    c.devices.set_key_hash(device_id, hash_device_key(key))
    return key
