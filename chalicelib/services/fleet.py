"""The public, money-free view of the fleet: per tier its devices, slots and free slots.

One read of the devices table (`devices.all`, as the operator's stats do), kept in process
for at most `max_age_ms` (5 s), so a page polling it from many browsers costs the table at
most one Scan per function instance every 5 s. It reads no contract and shows no money moved,
only the tiers' published prices.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ..domain import money

if TYPE_CHECKING:  # types only
    from ..ports import Clock, DeviceStore

FLEET_MAX_AGE_MS = 5_000


@dataclass(frozen=True)
class TierSlots:
    tier: money.Tier
    devices: int
    slots: int
    slots_free: int


@dataclass(frozen=True)
class FleetView:
    tiers: list[TierSlots]
    read_at_ms: int  # when the devices table was read


@dataclass
class Fleet:
    """devices: the whole inventory (`all`); clock: milliseconds. Holds its last answer."""

    devices: DeviceStore
    clock: Clock
    max_age_ms: int = FLEET_MAX_AGE_MS
    _last: FleetView | None = field(default=None, repr=False)

    def view(self) -> FleetView:
        now = self.clock()
        last = self._last
        if last is not None and 0 <= now - last.read_at_ms < self.max_age_ms:
            return last
        counts: dict[str, list[int]] = {name: [0, 0, 0] for name in money.TIERS}
        for d in self.devices.all():
            if d.tier in counts:
                c = counts[d.tier]
                c[0] += 1
                c[1] += d.capacity
                c[2] += d.available
        tiers = [TierSlots(t, *counts[t.name]) for t in money.TIERS.values()]
        self._last = FleetView(tiers, now)
        return self._last
