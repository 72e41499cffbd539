"""A contract as anyone reads it (the status route): one strongly consistent read, no other
port. Kept apart from `services/rentals.py`, whose use cases move money, so that a status
request builds (and imports) nothing but the contracts store."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..domain.errors import NotFound

if TYPE_CHECKING:  # types only: importing the Protocols costs cold-start time
    from ..domain.contracts import Contract
    from ..ports import Clock, ContractStore


@dataclass(frozen=True)
class Snapshot:
    """A contract as read at `at_ms` (its live figures are computed for that instant)."""

    contract: Contract
    at_ms: int


def load_contract(contracts: ContractStore, contract_id: str) -> Contract:
    """The contract, or NotFound."""
    contract = contracts.get(contract_id)
    if contract is None:
        raise NotFound("No such contract.", reason="contract_id")
    return contract


class ContractReads:
    """contracts: strongly consistent reads (`get`); clock: now, in Unix milliseconds.
    (A plain class: a dataclass costs ~1 ms of every cold start to build.)"""

    __slots__ = ("contracts", "clock")

    def __init__(self, contracts: ContractStore, clock: Clock) -> None:
        self.contracts = contracts
        self.clock = clock

    def status(self, contract_id: str) -> Snapshot:
        return Snapshot(load_contract(self.contracts, contract_id), self.clock())
