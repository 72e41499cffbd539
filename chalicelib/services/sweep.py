"""The billing sweep: ends due ACTIVE contracts at their expiry and re-queues refunds
that are owed but not moving (the outbox recovery of docs/refunds.md).

Its reads grow with the number of due items, not with the table: per shard it
pages the sparse `active-by-expiry` index up to now, and the sparse
`refunds-pending` index up to now − grace. Each expiry is the same ONE
conditional transaction as a settle (`Transactions.end_rental`, on status and
version), so a sweep racing a renter's settle, or another sweep, settles a
contract exactly once: the loser's condition fails, it re-reads, finds the
contract ended and moves on.
"""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

from ..config import Settings
from ..domain import contracts as dc
from ..domain import ledger
from ..domain.errors import Conflict, Unavailable

if TYPE_CHECKING:  # types only
    from ..ports import Clock, ContractStore, RefundListing, RefundQueue, Transactions

log = logging.getLogger(__name__)
MAX_RETRIES = 8


@dataclass
class SweepReport:
    at_ms: int
    due: int = 0  # due ACTIVE contracts found
    expired: int = 0  # ended by this run
    lost_races: int = 0  # ended meanwhile by a settle or another sweep
    refunds_queued: int = 0  # refunds of contracts this run ended
    refunds_requeued: int = 0  # owed refunds queued again
    items_read: int = 0  # index items returned to this run
    queries: int = 0
    lag_seconds: int = 0  # the oldest due contract: seconds past its expiry (0 when none)
    errors: list[str] = field(default_factory=list)
    low_time_sent: int = 0  # contract.low_time events written by this run (services/low_time.py)


@dataclass(frozen=True)
class Sweep:
    """One sweep run.

    contracts: due contracts and owed refunds per shard (`due`, `refunds_owed`, `get`, `shards`).
    tx:        the expiry (`end_rental`).
    queue:     the refund queue (`send_refund`).
    clock:     now, in Unix milliseconds.
    settings:  `refund_min_lamports`, `refund_requeue_seconds`.
    """

    contracts: ContractStore
    tx: Transactions
    queue: RefundQueue
    clock: Clock
    settings: Settings
    refund_listing: RefundListing  # payment refunds owed (claims index)
    page_size: int = 100
    max_pages: int = 50  # per shard and run: a backlog is worked off over several runs

    def run(self) -> SweepReport:
        now = self.clock()
        report = SweepReport(at_ms=now)
        for shard in range(self.contracts.shards):
            # owed refunds first: a refund this run queues (an expiry ends at its expiry time,
            # which may be long past) is not queued twice by the same run
            try:
                self._requeue_shard(shard, now, report)
            except Unavailable as exc:
                report.errors.append(f"requeue shard {shard}: {exc.detail}")
            try:
                self._expire_shard(shard, now, report)
            except Unavailable as exc:
                report.errors.append(f"expire shard {shard}: {exc.detail}")
        try:
            self._requeue_payments(now, report)
        except Unavailable as exc:
            report.errors.append(f"requeue payment refunds: {exc.detail}")
        self._low_time(now, report)
        return report

    def _low_time(self, now: int, report: SweepReport) -> None:
        """contract.low_time, after the expiries (services/low_time.py)."""
        from .low_time import LowTime

        try:
            lt = LowTime(self.contracts, self.tx, self.page_size).run(now)
        except Unavailable as exc:
            report.errors.append(f"low time: {exc.detail}")
            return
        report.low_time_sent = lt.sent
        report.queries += lt.queries
        report.items_read += lt.read

    def _expire_shard(self, shard: int, now: int, report: SweepReport) -> None:
        seen: set[str] = set()
        for _ in range(self.max_pages):
            due = self.contracts.due(shard, now, self.page_size)
            report.queries += 1
            report.items_read += len(due)
            fresh = [c for c in due if c.contract_id not in seen]
            if fresh:
                report.lag_seconds = max(report.lag_seconds, (now - fresh[0].expires_at_ms) // 1000)
            for c in fresh:
                seen.add(c.contract_id)
                report.due += 1
                self._expire(c, now, report)
            if len(due) < self.page_size or not fresh:
                return

    def _expire(self, contract: dc.Contract | None, now: int, report: SweepReport) -> None:
        for _ in range(MAX_RETRIES):
            if contract is None or contract.status != dc.ACTIVE or contract.expires_at_ms > now:
                report.lost_races += 1  # settled, expired or extended meanwhile
                return
            after = replace(
                dc.finalize(contract, now_ms=now, refund_min_lamports=self.settings.refund_min_lamports),
                write_token=secrets.token_hex(8),
            )
            try:
                self.tx.end_rental(contract, after, ledger.settlement_postings(after))
            except Conflict:
                contract = self.contracts.get(contract.contract_id)
                if contract is None or contract.write_token != after.write_token:
                    continue  # settled, expired or extended meanwhile: decide again
                after = contract  # our own write landed and the SDK sent it again: finish it
            report.expired += 1
            if after.refund_status == dc.REFUND_QUEUED:
                self.queue.send_refund(after.contract_id, after.version)
                report.refunds_queued += 1
            return
        report.errors.append(f"{after.contract_id}: too many concurrent changes")  # contract may be None here

    def _requeue_payments(self, now: int, report: SweepReport) -> None:
        """Refunds of payments no contract holds live on their claims, not in the contracts'
        refunds-pending index: the same recovery, from the claims' sparse refunds-by-status index."""
        before = now - self.settings.refund_requeue_seconds * 1000
        owed = self.refund_listing.payment_refunds_owed(before, self.page_size)
        report.queries += 2
        report.items_read += len(owed)
        for r in owed:
            if self.queue.send_refund(r.refund_id, r.version):
                report.refunds_requeued += 1

    def _requeue_shard(self, shard: int, now: int, report: SweepReport) -> None:
        before = now - self.settings.refund_requeue_seconds * 1000
        owed = self.contracts.refunds_owed(shard, before, self.page_size)
        report.queries += 1
        report.items_read += len(owed)
        for c in owed:
            if self.queue.send_refund(c.contract_id, c.version):
                report.refunds_requeued += 1
