"""A contract's covered time with its proof: the gaps and the device-signed receipts
(`GET /api/contracts/{id}/coverage`, docs/api.md "Proven usage and downtime credit").

The covered and uncovered figures are the contract status's (kept incrementally with each
report, domain/coverage.py). The gaps are rebuilt here from the stored batches: the start-up
allowance and `[t − grace, t]` for the server time `t` of each batch, clipped to the life so far,
and their complement. This reads every batch of the contract (without its samples): fine for a
renter's query; settlement never does it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..domain import contracts as dc
from ..domain import coverage
from ..domain.errors import Forbidden, NotFound

if TYPE_CHECKING:  # types only
    from ..domain.contracts import Contract
    from ..domain.usage_receipts import StoredReceipt
    from ..ports import Clock, ContractStore, MetricsStore


@dataclass(frozen=True)
class CoverageProof:
    contract: Contract  # as it stands now (`domain.contracts.as_of`)
    covered_ms: int
    uncovered_ms: int
    gaps: list[tuple[int, int]]
    receipts: list[StoredReceipt]
    grace_ms: int
    at_ms: int


def rebuilt_gaps(c: Contract, times: list[int], end_ms: int, grace_ms: int) -> list[tuple[int, int]]:
    """The parts of `[created, end_ms)` that neither the start-up allowance nor any `[t − grace, t]`
    (t a stored batch's server time) covers, everything clipped to the contract's life."""
    start = coverage.start(c.created_at_ms, c.expires_at_ms, grace_ms)
    intervals = [(c.created_at_ms, c.created_at_ms + start.covered_ms)]
    intervals += [(t - grace_ms, min(t, c.expires_at_ms)) for t in times]
    return coverage.gaps(intervals, c.created_at_ms, end_ms)


@dataclass(frozen=True)
class Proofs:
    """contracts: `get`; metrics: `batches` (server times and receipts); clock: now (ms)."""

    contracts: ContractStore
    metrics: MetricsStore
    clock: Clock
    coverage_grace_ms: int
    refund_min_lamports: int

    def coverage(self, contract_id: str, wallet: str | None) -> CoverageProof:
        """The coverage of a contract for its renter (`wallet`; None: the operator). NotFound for
        no contract, Forbidden (reason `wallet`) for another wallet's."""
        stored = self.contracts.get(contract_id)
        if stored is None:
            raise NotFound("No such contract.", reason="contract_id")
        if wallet is not None and wallet != stored.wallet:
            raise Forbidden("This contract belongs to another wallet.", reason="wallet")
        now = self.clock()
        c = dc.as_of(stored, now, self.refund_min_lamports)
        f = c.figures(now)
        times, receipts = self.metrics.batches(contract_id)
        end = c.created_at_ms + f.elapsed_ms
        if f.covered_ms is None:  # a contract that does not track coverage counts as covered throughout
            return CoverageProof(c, f.elapsed_ms, 0, [], receipts, self.coverage_grace_ms, now)
        gaps = rebuilt_gaps(c, times, end, self.coverage_grace_ms)
        return CoverageProof(c, f.covered_ms, f.elapsed_ms - f.covered_ms, gaps, receipts, self.coverage_grace_ms, now)
