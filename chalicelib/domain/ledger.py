"""Double-entry postings. Pure Python.

Accounts: `treasury` (asset), `escrow:{contract_id}` (liability until earned),
`revenue`, `refunds_payable`, `retained_dust`. Each event's legs sum to zero;
entry ids are deterministic (`{contract_id}#{version:06d}#{event}#{leg}`), so a
retried write is a no-op and a double write is impossible.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .contracts import REFUND_CONFIRMED, REFUND_QUEUED, Contract, Payment

if TYPE_CHECKING:  # types only
    from .refunds import Refund

TREASURY, REVENUE, REFUNDS_PAYABLE, RETAINED_DUST = "treasury", "revenue", "refunds_payable", "retained_dust"
DOWNTIME_CREDIT = "downtime_credit"  # downtime credit, refunded with the rest of a settlement


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


def _legs(
    contract: Contract, version: int, kind: str, at_ms: int, ref: str | None, legs: list[tuple[str, int, int]]
) -> list[Entry]:
    out = []
    for i, (account, debit, credit) in enumerate(legs):
        if debit == 0 and credit == 0:
            continue
        out.append(
            Entry(
                f"{contract.contract_id}#{version:06d}#{kind}#{i}",
                contract.contract_id,
                account,
                debit,
                credit,
                kind,
                at_ms,
                ref,
            )
        )
    return out


def payment_postings(contract: Contract, payment: Payment) -> list[Entry]:
    """Received on chain: the treasury holds it, the contract's escrow owes it."""
    r = payment.received_lamports
    return _legs(
        contract,
        contract.version,
        payment.kind,
        payment.at_ms,
        payment.sig,
        [(TREASURY, r, 0), (escrow(contract.contract_id), 0, r)],
    )


def settlement_postings(ended: Contract) -> list[Entry]:
    """Close the escrow: usage is revenue, the rest is owed back (or retained as dust)."""
    if ended.ended_at_ms is None:
        raise ValueError(f"{ended.contract_id} has not ended")
    used, refund = ended.used_lamports or 0, ended.refund_lamports or 0
    owed = REFUNDS_PAYABLE if ended.refund_status == REFUND_QUEUED else RETAINED_DUST
    kind = ended.status.lower()
    return _legs(
        ended,
        ended.version,
        kind,
        ended.ended_at_ms,
        None,
        [
            (escrow(ended.contract_id), ended.received_lamports, 0),
            (REVENUE, 0, used),
            *_credit_legs(ended, owed),
            (owed, 0, refund - (ended.credit_lamports or 0)),
        ],
    )


def _credit_legs(ended: Contract, owed: str) -> list[tuple[str, int, int]]:
    """The downtime credit (docs/api.md "Proven usage and downtime credit") on its own account:
    credited out of the escrow, then owed back with the rest of the refund. None when 0."""
    credit = ended.credit_lamports or 0
    return [(DOWNTIME_CREDIT, 0, credit), (DOWNTIME_CREDIT, credit, 0), (owed, 0, credit)] if credit else []


def normal_side(account: str) -> str:
    """The side on which `account` grows: "debit" for what the treasury holds (`treasury`) and
    spends (`network_fees`); "credit" for what it owes or has earned (`escrow:*`,
    `refunds_payable`, `revenue`, `retained_dust`)."""
    return "debit" if account in (TREASURY, NETWORK_FEES) else "credit"


def balance(entries: Iterable[Entry], account: str | None = None) -> int:
    """Debits minus credits (of one account, or of all: zero when balanced)."""
    return sum(e.debit_lamports - e.credit_lamports for e in entries if account is None or e.account == account)


# --- refunds paid on chain -----------------------------------------
# Entry ids of a refund do not carry a record version: the payout of a refund is
# booked once ever (`{refund_id}#refund#paid#{leg}`), the network fee once per
# transaction that landed (`{refund_id}#refund#fee{attempt:03d}#{leg}`), and the
# booking of an orphan payment once per payment (`{refund_id}#refund#owed#{leg}`),
# whatever path or retry writes them. They sort after the versioned entries of
# the same contract (digits sort before letters).
NETWORK_FEES = "network_fees"


def _refund_legs(
    refund_id: str, kind: str, suffix: str, at_ms: int, ref: str | None, legs: list[tuple[str, int, int]]
) -> list[Entry]:
    for _, debit, credit in legs:
        if (
            isinstance(debit, bool)
            or isinstance(credit, bool)
            or not isinstance(debit, int)
            or not isinstance(credit, int)
            or debit < 0
            or credit < 0
        ):
            raise ValueError("legs are non-negative int lamports")
    if sum(d - c for _, d, c in legs) != 0:
        raise ValueError("legs do not balance")
    return [
        Entry(f"{refund_id}#refund#{suffix}#{i}", refund_id, account, debit, credit, kind, at_ms, ref)
        for i, (account, debit, credit) in enumerate(legs)
        if debit or credit
    ]


def refund_paid_postings(refund: Refund) -> list[Entry]:
    """A CONFIRMED refund (`domain.refunds.Refund`): the refund owed is paid out of the
    treasury, and the network fee of the transaction that landed is an expense.

    debit refunds_payable / credit treasury (lamports); debit network_fees / credit
    treasury (fee). `ref` is the transaction signature.
    """
    if refund.status != REFUND_CONFIRMED or refund.fee_lamports is None or refund.confirmed_at_ms is None:
        raise ValueError("only a confirmed refund with its fee is booked as paid")
    at, sig = refund.confirmed_at_ms, refund.tx_signature
    return _refund_legs(
        refund.refund_id,
        "refund",
        "paid",
        at,
        sig,
        [(REFUNDS_PAYABLE, refund.lamports, 0), (TREASURY, 0, refund.lamports)],
    ) + network_fee_postings(refund.refund_id, refund.attempt, refund.fee_lamports, sig, at)


def network_fee_postings(
    refund_id: str, attempt: int, fee_lamports: int, tx_signature: str | None, at_ms: int
) -> list[Entry]:
    """The fee a landed refund transaction cost the treasury (also one that landed with an
    error and paid nothing): debit network_fees, credit treasury."""
    if isinstance(attempt, bool) or not isinstance(attempt, int) or attempt < 1:
        raise ValueError("attempt counts from 1")
    return _refund_legs(
        refund_id,
        "network_fee",
        f"fee{attempt:03d}",
        at_ms,
        tx_signature,
        [(NETWORK_FEES, fee_lamports, 0), (TREASURY, 0, fee_lamports)],
    )


def orphan_payment_postings(
    refund_id: str, lamports: int, tx_signature: str, at_ms: int, *, dust: bool = False
) -> list[Entry]:
    """A payment that no contract holds, booked when its payer asks for it back: the
    treasury holds it and owes it (debit treasury, credit refunds_payable), or keeps it as
    retained dust when it is below the minimum worth a transfer (`dust`)."""
    return _refund_legs(
        refund_id,
        "orphan_payment",
        "owed",
        at_ms,
        tx_signature,
        [(TREASURY, lamports, 0), (RETAINED_DUST if dust else REFUNDS_PAYABLE, 0, lamports)],
    )
