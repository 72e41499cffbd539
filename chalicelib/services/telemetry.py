"""Device usage reports: authenticate the device, store a batch in one write, answer live figures."""
from __future__ import annotations

import hmac
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..domain.contracts import Contract
from ..domain.errors import Conflict, ContractNotActive, Forbidden, NotFound, Unauthorized, Unavailable
from ..domain.records import hash_device_key

if TYPE_CHECKING:  # types only: importing the Protocols costs cold-start time
    from ..ports import Clock, ContractStore, DeviceStore, MetricsStore, Transactions

MAX_DEVICE_KEY_CHARS = 256


def device_of_key(key: str | None) -> str:
    """Device keys look like `dk_<device_id>_<secret>`; the id tells which hash to check."""
    if not key or not key.startswith("dk_") or key.count("_") < 2 or len(key) > MAX_DEVICE_KEY_CHARS:
        raise Unauthorized("A valid X-Device-Key header is required.", reason="X-Device-Key")
    device_id, _, secret = key[3:].partition("_")  # device ids have no "_"
    if not device_id or len(secret) < 16:
        raise Unauthorized("A valid X-Device-Key header is required.", reason="X-Device-Key")
    return device_id


def _not_active() -> ContractNotActive:
    return ContractNotActive("The contract has ended; usage is no longer recorded.", reason="status")


@dataclass(frozen=True)
class Recorded:
    """A stored report: the contract as read, how many samples, and when."""
    contract: Contract
    samples: int
    at_ms: int


@dataclass(frozen=True)
class Telemetry:
    """Usage reports of devices and the latest samples of a contract.

    contracts: contract reads (`get`).
    devices:   device reads (`get`), only on failure paths, to tell a forged key from a genuine one.
    metrics:   the latest samples of a contract (`latest`).
    tx:        the conditional batch write (`record_metrics`).
    clock:     now, in Unix milliseconds.
    """
    contracts: ContractStore
    devices: DeviceStore
    metrics: MetricsStore
    tx: Transactions
    clock: Clock

    def _key_is_valid(self, device_id: str, key: str) -> bool:
        device = self.devices.get(device_id)
        return bool(device and device.key_hash and hmac.compare_digest(device.key_hash, hash_device_key(key)))

    def record(self, contract_id: str, key: str | None, samples: Callable[[int], list[list]]) -> Recorded:
        """Store one report of the device holding `key` on a live contract leased to it.

        `samples(now_ms)` turns the report into rows `[ts_ms, cpu, mem, disk, net]` (the
        edge's schema; it raises InvalidRequest). It is called only once the key and the
        contract check out, so a forged key or an ended contract is refused before the
        body is looked at. A retried report (the same batch) is stored once and answered again.
        """
        device_id = device_of_key(key)
        contract = self.contracts.get(contract_id)
        if contract is None:
            raise NotFound("No such contract.", reason="contract_id")
        now = self.clock()
        if contract.device_id != device_id or not contract.is_live(now):
            # failure paths only: one extra read tells a forged key from a genuine one
            if not self._key_is_valid(device_id, key):
                raise Unauthorized("The device key is not valid.", reason="X-Device-Key")
            if contract.device_id != device_id:
                raise Forbidden("This contract is not leased on that device.", reason="device")
            raise _not_active()
        rows = samples(now)
        try:
            self.tx.record_metrics(contract_id, device_id, rows, hash_device_key(key), now)
        except Conflict as exc:
            if "device" in exc.failed:
                raise Unauthorized("The device key is not valid.", reason="X-Device-Key") from None
            if "contract" in exc.failed:
                raise _not_active() from None
            if exc.failed != {"batch"}:
                raise Unavailable("A concurrent write collided; nothing was recorded. Retry.",
                                  reason="contention") from None
            # only the batch already exists: this exact report was stored before (a retry)
        return Recorded(contract, len(rows), now)

    def latest(self, contract_id: str) -> list[list]:
        """The newest ≤ 100 sample rows of a contract, oldest first; NotFound for no contract."""
        rows = self.metrics.latest(contract_id)
        if not rows and self.contracts.get(contract_id) is None:  # only an empty answer needs the check
            raise NotFound("No such contract.", reason="contract_id")
        return rows
