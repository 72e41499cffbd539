"""contract.low_time, found by the billing sweep (services/sweep.py calls `LowTime.run`).

Per shard it pages the sparse `active-by-expiry` index over the contracts expiring in
(now, now + 10 min] (the largest threshold, domain.webhooks.LOW_TIME_HORIZON_MS) and keeps
those `domain.webhooks.low_time_due` picks: at or under their own threshold and not yet told for
their current expiry. Each is ONE transaction (`Transactions.mark_low_time`): the marker on the
contract and the event in the outbox, conditioned on the contract's version, expiry and marker,
so two sweeps at once emit one event, and a settle or an extension in between makes it write
nothing (an extension is a new expiry: a later sweep decides again).

Reads: the ACTIVE contracts expiring within 10 min, once per run (a contract is read by at most
~10 runs before its expiry, never while it has more than 10 min left); writes: one transaction
per contract and expiry.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..domain import webhooks as W
from ..domain.errors import Conflict

if TYPE_CHECKING:  # types only
    from ..domain.contracts import Contract
    from ..ports import ContractStore, Transactions


@dataclass
class LowTimeReport:
    read: int = 0  # candidates the index returned
    sent: int = 0  # events written by this run
    lost_races: int = 0  # told, settled or extended meanwhile
    queries: int = 0


@dataclass(frozen=True)
class LowTime:
    contracts: ContractStore
    tx: Transactions
    page_size: int = 100
    max_pages: int = 50  # per shard and run

    def run(self, now_ms: int) -> LowTimeReport:
        report = LowTimeReport()
        until = now_ms + W.LOW_TIME_HORIZON_MS
        for shard in range(self.contracts.shards):
            self._shard(shard, now_ms, until, report)
        return report

    def _shard(self, shard: int, now_ms: int, until: int, report: LowTimeReport) -> None:
        seen: set[str] = set()
        after = now_ms
        for _ in range(self.max_pages):
            page = self.contracts.expiring(shard, after, until, self.page_size)
            report.queries += 1
            report.read += len(page)
            fresh = [c for c in page if c.contract_id not in seen]
            for c in fresh:
                seen.add(c.contract_id)
                if W.low_time_due(c, now_ms):
                    self._tell(c, now_ms, report)
            if len(page) < self.page_size or not fresh:
                return
            after = page[-1].expires_at_ms - 1  # ties at one millisecond are read again, skipped by `seen`

    def _tell(self, c: Contract, now_ms: int, report: LowTimeReport) -> None:
        try:
            self.tx.mark_low_time(c, W.low_time_event(c, now_ms))
        except Conflict:
            report.lost_races += 1  # another sweep told it, or it was settled or extended meanwhile
            return
        report.sent += 1
