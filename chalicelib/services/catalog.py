"""Public catalogue: health, pricing, devices of a tier."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..config import Settings
from ..domain import money
from ..domain.devices import Device
from ..domain.errors import NotFound

if TYPE_CHECKING:  # types only: importing the Protocols costs cold-start time
    from ..ports import DeviceStore


@dataclass(frozen=True)
class Catalog:
    """What anyone may read without credentials.

    devices:  device reads (`get` for the health probe, `by_tier`).
    settings: the published terms (`treasury`, `network`, duration limits, refund minimum, payment age).
    """

    devices: DeviceStore
    settings: Settings

    def health(self) -> None:
        """One read of the devices table; Unavailable when it does not answer."""
        self.devices.get("__health__")

    def tiers(self) -> list[money.Tier]:
        return list(money.TIERS.values())

    def devices_of(self, tier: str) -> list[Device]:
        """The devices of `tier` by id; NotFound for an unknown tier."""
        if tier not in money.TIERS:
            raise NotFound(f"No such tier; tiers are {', '.join(money.TIERS)}.", reason="tier")
        return sorted(self.devices.by_tier(tier), key=lambda d: d.device_id)
