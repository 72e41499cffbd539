"""Device usage reports: authenticate the device, check the contract, store a batch in ONE
conditional write, stamp the device at most once a minute, answer live figures.

Why this is not a transaction any more, and why that is safe: docs/adr/0007-cheap-metering.md.
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..domain import coverage, usage_receipts
from ..domain.contracts import Contract
from ..domain.errors import (
    Conflict,
    ContractNotActive,
    Forbidden,
    NotFound,
    ReceiptSequence,
    Unauthorized,
    Unavailable,
)
from ..domain.records import hash_device_key

if TYPE_CHECKING:  # types only: importing the Protocols costs cold-start time
    from ..domain.devices import Device
    from ..domain.usage_receipts import SignedBatch, StoredReceipt
    from ..ports import Clock, ContractStore, MetricsStore, SignatureVerifier

log = logging.getLogger("si64.telemetry")
MAX_DEVICE_KEY_CHARS = 256
# A sample's own time must fall within the contract's lifetime, give or take this much
# device clock error: [created_at_ms − skew, min(now, expires_at_ms) + skew].
SAMPLE_CLOCK_SKEW_MS = 30_000
# The device's last-seen stamp is written at most once per this interval (per device).
LAST_SEEN_EVERY_MS = 60_000
LATEST_SAMPLES = 100  # how many samples a contract's metrics read shows
COVER_RETRIES = 5


def device_of_key(key: str | None) -> str:
    """Device keys look like `dk_<device_id>_<secret>`; the id tells which hash to check."""
    if not key or not key.startswith("dk_") or key.count("_") < 2 or len(key) > MAX_DEVICE_KEY_CHARS:
        raise Unauthorized("A valid X-Device-Key header is required.", reason="X-Device-Key")
    device_id, _, secret = key[3:].partition("_")  # device ids have no "_"
    if not device_id or len(secret) < 16:
        raise Unauthorized("A valid X-Device-Key header is required.", reason="X-Device-Key")
    return device_id


def sample_window(contract: Contract, now_ms: int, skew_ms: int = SAMPLE_CLOCK_SKEW_MS) -> tuple[int, int]:
    """[earliest, latest] sample time (ms) accepted for `contract` at `now_ms`."""
    return contract.created_at_ms - skew_ms, min(now_ms, contract.expires_at_ms) + skew_ms


@dataclass(frozen=True)
class Recorded:
    """A stored report: the contract as read, how many samples, and when."""

    contract: Contract
    samples: int
    at_ms: int


@dataclass(frozen=True)
class ReportContext:
    """A device report's device and contract, as read together (with the receipt `prev_seq` of
    the contract when it was asked for: the one a signed report's receipt must follow)."""

    device: Device | None
    contract: Contract | None
    prev_receipt: StoredReceipt | None = None
    prev_seq: int | None = None


@dataclass(frozen=True)
class Telemetry:
    """Usage reports of devices and the latest samples of a contract.

    contracts: contract reads (`get`, strongly consistent).
    metrics:   the device + contract read of a report (`report_context`), the batch write
               (`put_batch`), the stamp (`stamp_device`), reads (`latest`).
    clock:     now, in Unix milliseconds.

    AWS calls of one report: one BatchGetItem (device + contract) + PutItem batch + one
    conditional UpdateItem of the contract's covered time (`cover`; a lost race reads the
    contract again and retries), and an UpdateItem of the device only when its stamp is
    LAST_SEEN_EVERY_MS old.
    """

    contracts: ContractStore
    metrics: MetricsStore
    clock: Clock
    coverage_grace_ms: int = 60_000
    verify: SignatureVerifier | None = None  # checks device receipts; None: no device may hold a key

    def read(self, key: str | None, contract_id: str | None, receipt_seq: int | None = None) -> ReportContext:
        """The device whose key this is and the contract reported on, in ONE read
        (`report_context`); Unauthorized for a malformed key, before any read. `contract_id`
        None (not a contract id) reads the device only. `receipt_seq` (≥ 1, what the body's
        receipt says) also reads the receipt before it, which that receipt must follow."""
        prev = receipt_seq - 1 if receipt_seq is not None and receipt_seq >= 1 and contract_id else None
        device, contract, receipt = self.metrics.report_context(device_of_key(key), contract_id, prev)
        return ReportContext(device, contract, receipt, prev)

    def record(
        self,
        contract_id: str,
        key: str | None,
        samples: Callable[[int, int, int], list[list[Any]]],
        context: ReportContext | None = None,
        signed: Callable[[], SignedBatch | None] = lambda: None,
    ) -> Recorded:
        """Store one report of the device holding `key` on a live contract leased to it.

        `samples(now_ms, earliest_ms, latest_ms)` turns the report into rows
        `[ts_ms, cpu, mem, disk, net]`, every ts within [earliest_ms, latest_ms] (the edge's
        schema; it raises InvalidRequest). It is called only once the key and the contract
        check out, so a forged key or an ended contract is refused before the body is looked
        at. A retried report (the same batch) is stored once and answered again. `context` is
        what the edge already read (`read`) to verify `key` before counting the request: the
        device's hash is checked again here, without a second read.

        A device with a registered `pubkey` must send a receipt (`signed()`, docs/adr/0019): it is
        checked against the rows, the key and the contract's chain before anything is written,
        the batch is stored under its seq, and the same receipt again is a replay (answered,
        nothing stored, its coverage counted at the first send's time). A device without a key
        is not asked for one.
        """
        device_id = device_of_key(key)
        assert key is not None  # device_of_key refused a missing key
        key_hash = hash_device_key(key)
        if context is None or context.device is None or context.device.device_id != device_id:
            context = self.read(key, contract_id)
        device, contract = context.device, context.contract
        if device is None or not device.key_hash or not hmac.compare_digest(device.key_hash, key_hash):
            raise Unauthorized("The device key is not valid.", reason="X-Device-Key")
        if contract is None:
            raise NotFound("No such contract.", reason="contract_id")
        if contract.device_id != device_id:
            raise Forbidden("This contract is not leased on that device.", reason="device")
        now = self.clock()
        if not contract.is_live(now):
            raise ContractNotActive("The contract has ended; usage is no longer recorded.", reason="status")
        rows = samples(now, *sample_window(contract, now))
        cov = contract.coverage()
        at = now if cov is None else coverage.report_time(cov, now)  # the time this report counts at
        if device.pubkey is not None:
            at = self._signed(contract, device.pubkey, rows, at, context, signed())
        else:
            try:
                self.metrics.put_batch(contract_id, device_id, rows, at)
            except Conflict:  # the batch already exists: this exact report was stored before (a retry)
                pass
        self._cover(contract, at)  # a resent report proves the device as much as its first send
        if device.last_seen_ms is None or device.last_seen_ms <= now - LAST_SEEN_EVERY_MS:
            try:
                self.metrics.stamp_device(device_id, key_hash, now, LAST_SEEN_EVERY_MS)
            except Unavailable:  # the samples are stored; a stale stamp is retried by the next report
                log.warning("last-seen stamp of %s not written (database unavailable)", device_id)
        return Recorded(contract, len(rows), now)

    def _signed(
        self,
        contract: Contract,
        pubkey: str,
        rows: list[list[Any]],
        at: int,
        context: ReportContext,
        signed: SignedBatch | None,
    ) -> int:
        """Check and store a keyed device's batch with its receipt; the time it counts at (the
        first send's, for a replay). Unauthorized / ReceiptSequence, nothing written, otherwise."""
        cid = contract.contract_id
        if signed is None:
            raise usage_receipts.refused("This device signs its reports: a 'receipt' is required.")
        if self.verify is None:
            raise Unavailable("Receipts cannot be checked here.", reason="receipt")
        usage_receipts.check(cid, signed, rows, pubkey, self.verify)
        r = signed.receipt
        prev = None
        if r.seq > 0:
            asked = context.prev_seq == r.seq - 1 and context.contract is not None
            prev = context.prev_receipt if asked else self.metrics.receipt(cid, r.seq - 1)
        usage_receipts.check_chain(cid, r, prev)
        try:
            self.metrics.put_batch(cid, contract.device_id, rows, at, usage_receipts.StoredReceipt(r, pubkey, at))
            return at
        except Conflict:  # this seq was accepted before: the same message is a replay, another a fork
            first = self.metrics.receipt(cid, r.seq)
            if first is None or first.receipt.message(cid) != r.message(cid):
                raise ReceiptSequence(f"Receipt {r.seq} was accepted with another message.", "receipt.seq") from None
            return first.at_ms

    def _cover(self, contract: Contract, now: int) -> None:
        """Add [t − grace, t] to the contract's covered time (domain/coverage.py) in one
        conditional write; a report racing another reads the contract again and retries. A
        contract that has ended meanwhile keeps its final figures."""
        c: Contract | None = contract
        for _ in range(COVER_RETRIES):
            if c is None or not c.is_live(now):
                return
            cov = c.coverage()
            if cov is None:  # opened before coverage was tracked: it bills elapsed time
                return
            after = coverage.add(
                cov,
                coverage.report_time(cov, now),
                created_ms=c.created_at_ms,
                expires_ms=c.expires_at_ms,
                grace_ms=self.coverage_grace_ms,
            )
            if after == cov or self.metrics.cover(c.contract_id, cov.end_ms, after.covered_ms, after.end_ms):
                return
            c = self.contracts.get(c.contract_id)
        log.warning("covered time of %s not extended: too many concurrent changes", contract.contract_id)

    def latest(self, contract_id: str) -> list[list[Any]]:
        """The newest ≤ LATEST_SAMPLES sample rows of a contract, oldest first; NotFound for no contract."""
        rows = self.metrics.latest(contract_id, LATEST_SAMPLES)
        if not rows and self.contracts.get(contract_id) is None:  # only an empty answer needs the check
            raise NotFound("No such contract.", reason="contract_id")
        return rows
