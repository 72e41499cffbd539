"""The slot monitor of a load run: ``GET /api/devices/{tier}`` every few seconds, every
reading kept (``checks.evaluate`` judges them: leases never over capacity, all free at the end)."""

from __future__ import annotations

import threading
import time

from dev.load.http import Api


class Monitor(threading.Thread):
    """Reads every tier's devices every `every` seconds until stopped; keeps each reading."""

    def __init__(self, api: Api, tiers: list[str], every: float = 5.0):
        super().__init__(name="slot-monitor", daemon=True)
        self.api, self.tiers, self.every = api, tiers, every
        self.readings: list[dict] = []
        self._stop_evt = threading.Event()

    def read(self, label: str) -> list[dict]:
        out = []
        for tier in self.tiers:
            status, ans, _ = self.api.read("devices", f"/api/devices/{tier}")
            if status == 200:
                out += [
                    {"at": label, "tier": tier, "device_id": d["id"], "leases": d["leases"], "capacity": d["capacity"]}
                    for d in ans
                ]
            else:
                out.append({"at": label, "tier": tier, "error": status})
        self.readings += out
        return out

    def run(self) -> None:
        n, t0 = 0, time.monotonic()
        while not self._stop_evt.wait(self.every) and n < 10_000:
            n += 1
            self.read(f"t+{time.monotonic() - t0:.0f}s")

    def stop(self) -> None:
        self._stop_evt.set()
        self.join(timeout=30)
