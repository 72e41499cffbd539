"""Devices table."""

from __future__ import annotations

from typing import Any

from pynamodb.exceptions import PynamoDBException

from ..domain.devices import Device
from ..domain.errors import Conflict
from .dynamo import guarded, is_conditional_failure
from .models import DeviceItem


def to_domain(i: DeviceItem) -> Device:
    return Device(
        i.device_id,
        i.name,
        i.tier,
        i.uri,
        i.address,
        i.region,
        i.ram,
        int(i.capacity),
        int(i.leases or 0),
        i.uptime,
        bool(i.audited),
        i.key_hash,
        None if i.last_seen_ms is None else int(i.last_seen_ms),
        i.pubkey,
        tuple(str(k) for k in i.previous_pubkeys or ()),
    )


class DevicesRepo:
    @guarded
    def by_tier(self, tier: str) -> list[Device]:
        return [to_domain(i) for i in DeviceItem.by_tier.query(tier)]

    @guarded
    def get(self, device_id: str) -> Device | None:
        try:
            return to_domain(DeviceItem.get(device_id))
        except DeviceItem.DoesNotExist:
            return None

    @guarded
    def all(self) -> list[Device]:
        return [to_domain(i) for i in DeviceItem.scan()]

    @guarded
    def upsert(self, spec: dict[str, Any], capacity: int) -> None:
        """Create a device, or update its description and capacity (never its leases)."""
        try:
            item = DeviceItem.get(spec["device_id"], consistent_read=True)
        except DeviceItem.DoesNotExist:
            DeviceItem(
                spec["device_id"],
                capacity=capacity,
                leases=0,
                uptime="100.0%",
                audited=True,
                **{k: spec[k] for k in ("name", "tier", "uri", "address", "region", "ram")},
            ).save(condition=DeviceItem.device_id.does_not_exist())
            return
        item.update(
            actions=[getattr(DeviceItem, k).set(spec[k]) for k in ("name", "tier", "uri", "address", "region", "ram")]
            + [DeviceItem.capacity.set(capacity)]
        )

    @guarded
    def set_key_hash(self, device_id: str, key_hash: str) -> None:
        try:
            DeviceItem(device_id).update(
                actions=[DeviceItem.key_hash.set(key_hash)], condition=DeviceItem.device_id.exists()
            )
        except PynamoDBException as exc:
            if is_conditional_failure(exc):
                raise Conflict(["device"]) from None  # no such device
            raise

    @guarded
    def set_pubkey(self, device_id: str, pubkey: str, before: str | None) -> Device:
        """One conditional UpdateItem: the receipt key becomes `pubkey` (`before`, if any, is kept
        in `previous_pubkeys`) when the device exists, leases nothing and still holds `before`."""
        held = DeviceItem.pubkey.does_not_exist() if before is None else DeviceItem.pubkey == before
        actions: list[Any] = [DeviceItem.pubkey.set(pubkey)]
        if before is not None:  # list_append(if_not_exists(previous_pubkeys, []), [before])
            actions.append(DeviceItem.previous_pubkeys.set((DeviceItem.previous_pubkeys | []).append([before])))
        item = DeviceItem(device_id)
        try:
            item.update(actions=actions, condition=DeviceItem.device_id.exists() & (DeviceItem.leases == 0) & held)
        except PynamoDBException as exc:
            if is_conditional_failure(exc):
                raise Conflict(["device"]) from None
            raise
        return to_domain(item)

    @guarded
    def set_audited(self, device_id: str, audited: bool) -> Device:
        item = DeviceItem(device_id)
        try:
            item.update(actions=[DeviceItem.audited.set(bool(audited))], condition=DeviceItem.device_id.exists())
        except PynamoDBException as exc:
            if is_conditional_failure(exc):
                raise Conflict(["device"]) from None  # no such device
            raise
        return to_domain(item)  # update() refreshes the item with every attribute (ALL_NEW)
