"""Double-entry postings. Pure Python.

Accounts: `treasury` (asset), `escrow:{contract_id}` (liability until earned),
`revenue`, `refunds_payable`, `retained_dust`. Each event's legs sum to zero;
entry ids are deterministic (`{contract_id}#{version:06d}#{event}#{leg}`), so a
retried write is a no-op and a double write is impossible.
"""
from __future__ import annotations

from dataclasses import dataclass

from .contracts import REFUND_QUEUED, Contract, Payment

TREASURY, REVENUE, REFUNDS_PAYABLE, RETAINED_DUST = "treasury", "revenue", "refunds_payable", "retained_dust"


def escrow(contract_id: str) -> str:
    return f"escrow:{contract_id}"


@dataclass(frozen=True)
class Entry:
    entry_id: str
    contract_id: str
    account: str
    debit_lamports: int
    credit_lamports: int
    kind: str
    created_at_ms: int
    ref: str | None


def _legs(contract: Contract, version: int, kind: str, at_ms: int, ref: str | None,
          legs: list[tuple[str, int, int]]) -> list[Entry]:
    out = []
    for i, (account, debit, credit) in enumerate(legs):
        if debit == 0 and credit == 0:
            continue
        out.append(Entry(f"{contract.contract_id}#{version:06d}#{kind}#{i}", contract.contract_id,
                         account, debit, credit, kind, at_ms, ref))
    return out


def payment_postings(contract: Contract, payment: Payment) -> list[Entry]:
    """Received on chain: the treasury holds it, the contract's escrow owes it."""
    r = payment.received_lamports
    return _legs(contract, contract.version, payment.kind, payment.at_ms, payment.sig,
                 [(TREASURY, r, 0), (escrow(contract.contract_id), 0, r)])


def settlement_postings(ended: Contract) -> list[Entry]:
    """Close the escrow: usage is revenue, the rest is owed back (or retained as dust)."""
    used, refund = ended.used_lamports or 0, ended.refund_lamports or 0
    owed = REFUNDS_PAYABLE if ended.refund_status == REFUND_QUEUED else RETAINED_DUST
    kind = ended.status.lower()
    return _legs(ended, ended.version, kind, ended.ended_at_ms, None, [
        (escrow(ended.contract_id), ended.received_lamports, 0),
        (REVENUE, 0, used),
        (owed, 0, refund),
    ])


def balance(entries, account: str | None = None) -> int:
    """Debits minus credits (of one account, or of all: zero when balanced)."""
    return sum(e.debit_lamports - e.credit_lamports for e in entries
               if account is None or e.account == account)
