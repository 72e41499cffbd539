"""The books against the chain. Pure Python: no solders, no boto3.

Every lamport the treasury holds came from, or left by, a transaction in its
history (`getSignaturesForAddress(treasury)`). The ledger's `treasury` account
books each money move with the transaction signature as the entry's `ref`
(payments, orphan payments, refund payouts, network fees). So, over the
history after a baseline:

    chain balance = baseline + Σ deltas of booked transactions + Σ deltas of unbooked ones
    ledger        = Σ what the ledger booked for the booked transactions

and the books are right when `chain balance − baseline − unbooked == ledger`.
Unbooked transactions are read one by one (`getTransaction`) and classified:
an inbound transfer that no request claimed (an *orphan* once it is older than
the orphan age), a refund transaction that landed and is not booked yet
(in flight), or anything else the treasury sent (unexplained).

The baseline is the treasury's balance before the first booked transaction
(its initial funding is not in the ledger), or the balance at a slot the
operator names.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .payments import MalformedRpcResult, Transfer, account_keys, memos, signers, system_transfers
from .signing import refund_memo

if TYPE_CHECKING:  # types only
    from .refunds import Refund

REFUND_MEMO_PREFIX = refund_memo("")  # the memo of a refund transfer, before its refund id


@dataclass(frozen=True)
class SignatureInfo:
    """One entry of getSignaturesForAddress (newest first)."""

    signature: str
    slot: int
    block_time: int | None
    failed: bool
    memo: str | None = None


@dataclass(frozen=True)
class ChainTx:
    """What reconciliation needs of one landed transaction."""

    signature: str
    slot: int
    block_time: int | None
    failed: bool
    signers: tuple[str, ...]
    transfers: tuple[Transfer, ...]
    memos: tuple[str, ...]
    fee: int
    balances: dict[str, tuple[int, int]] = field(default_factory=dict)  # address → (pre, post)

    def delta(self, address: str) -> int:
        pre, post = self.balances.get(address, (0, 0))
        return post - pre

    def pre_balance(self, address: str) -> int | None:
        b = self.balances.get(address)
        return None if b is None else b[0]

    def post_balance(self, address: str) -> int | None:
        b = self.balances.get(address)
        return None if b is None else b[1]


def _int(value: object, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise MalformedRpcResult(f"{what} is not an integer")
    return value


def summarize(signature: str, tx: dict[str, Any]) -> ChainTx:
    """A getTransaction result (encoding "json") → ChainTx; MalformedRpcResult when it is not one."""
    try:
        meta = tx["meta"]
        keys = account_keys(tx)
        pre, post = meta["preBalances"], meta["postBalances"]
        balances = {}
        for i, key in enumerate(keys[: min(len(pre), len(post))]):
            balances[key] = (_int(pre[i], "preBalance"), _int(post[i], "postBalance"))
        block_time = tx.get("blockTime")
        return ChainTx(
            signature=signature,
            slot=_int(tx["slot"], "slot"),
            block_time=None if block_time is None else _int(block_time, "blockTime"),
            failed=meta.get("err") is not None,
            signers=tuple(signers(tx)),
            transfers=tuple(system_transfers(tx)),
            memos=memos(tx),
            fee=_int(meta["fee"], "fee"),
            balances=balances,
        )
    except (KeyError, IndexError, TypeError, AttributeError) as exc:
        raise MalformedRpcResult(f"malformed getTransaction result: {exc!r}") from exc


def signature_info(entry: dict[str, Any]) -> SignatureInfo:
    """One getSignaturesForAddress entry → SignatureInfo."""
    try:
        bt = entry.get("blockTime")
        return SignatureInfo(
            str(entry["signature"]),
            _int(entry["slot"], "slot"),
            None if bt is None else _int(bt, "blockTime"),
            entry.get("err") is not None,
            entry.get("memo"),
        )
    except (KeyError, TypeError, AttributeError) as exc:
        raise MalformedRpcResult(f"malformed getSignaturesForAddress entry: {exc!r}") from exc


def inbound(tx: ChainTx, treasury: str) -> dict[str, int]:
    """Lamports each payer sent to the treasury in a transaction that can be a payment: it
    landed without error, the treasury did not sign it, and the source signed the transfer
    (what `domain.payments` counts). Empty for anything else."""
    if tx.failed or treasury in tx.signers:
        return {}
    out: dict[str, int] = {}
    for t in tx.transfers:
        if t.destination == treasury and t.source != treasury and t.source in tx.signers:
            out[t.source] = out.get(t.source, 0) + t.lamports
    return out


class NotAnOrphan(ValueError):
    """The transaction is not a payment to the treasury by any signer."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason


def orphan_payers(tx: ChainTx, treasury: str) -> dict[str, int]:
    """{payer: lamports} of the transfers to the treasury in a transaction the treasury did not
    sign; each payer is a transfer's source, which signed. A co-signed transaction has several
    payers, each share that payer's alone. NotAnOrphan otherwise (reason `failed_on_chain`,
    `treasury_signed`, `wrong_recipient`)."""
    if tx.failed:
        raise NotAnOrphan("failed_on_chain", "The transaction failed on chain: it paid nothing.")
    if treasury in tx.signers:
        raise NotAnOrphan("treasury_signed", "The treasury signed this transaction: it is not a payment.")
    paid = inbound(tx, treasury)
    if not paid:
        raise NotAnOrphan("wrong_recipient", "The transaction has no transfer to the treasury from a signer.")
    return paid


def refund_id_of(memos_: tuple[str, ...]) -> str | None:
    """The refund id a refund transaction names in its memo (`signing.refund_memo`)."""
    for m in memos_:
        if m.startswith(REFUND_MEMO_PREFIX) and len(m) > len(REFUND_MEMO_PREFIX):
            return m[len(REFUND_MEMO_PREFIX) :]
    return None


# ------------------------------------------------------------------ the verdict
@dataclass(frozen=True)
class Unbooked:
    """A transaction of the treasury's history that the ledger does not book (yet)."""

    signature: str
    kind: str  # "orphan" | "recent_payment" | "claimed_unbooked" | "refund_in_flight" | "unexplained"
    lamports: int  # the treasury's balance change (+ in, − out)
    slot: int
    block_time: int | None
    payer: str | None = None
    refund_id: str | None = None
    note: str = ""


@dataclass(frozen=True)
class RefundCheck:
    refund_id: str
    tx_signature: str | None
    ok: bool
    problems: tuple[str, ...] = ()


@dataclass
class Report:
    treasury: str
    chain_lamports: int
    chain_slot: int
    baseline_lamports: int
    baseline_slot: int | None
    baseline_source: str
    ledger_lamports: int
    unbooked: list[Unbooked]
    refunds_checked: int
    refund_problems: list[RefundCheck]
    orphan_age_seconds: int
    signatures_read: int
    transactions_read: int
    complete: bool = True
    notes: list[str] = field(default_factory=list)
    phantom_refs: list[str] = field(default_factory=list)  # booked signatures not in the treasury's history

    @property
    def unbooked_lamports(self) -> int:
        return sum(u.lamports for u in self.unbooked)

    @property
    def difference_lamports(self) -> int:
        """chain − (baseline + ledger + unbooked): zero when every booked lamport is on chain."""
        return self.chain_lamports - self.baseline_lamports - self.ledger_lamports - self.unbooked_lamports

    @property
    def orphans(self) -> list[Unbooked]:
        return [u for u in self.unbooked if u.kind == "orphan"]

    @property
    def mismatches(self) -> list[str]:
        """One line per difference; empty when the books and the chain agree."""
        out = []
        if self.difference_lamports:
            out.append(
                f"treasury balance: the chain holds {self.chain_lamports} lamports, the books explain "
                f"{self.chain_lamports - self.difference_lamports} (baseline {self.baseline_lamports} + "
                f"ledger {self.ledger_lamports} + unbooked {self.unbooked_lamports}): "
                f"difference {self.difference_lamports:+d}"
            )
        for u in self.unbooked:
            if u.kind == "orphan":
                out.append(
                    f"orphan payment {u.signature}: {u.lamports} lamports from {u.payer}, claimed by no "
                    f"contract or refund"
                )
            elif u.kind in ("unexplained", "claimed_unbooked"):
                out.append(f"unbooked treasury transaction {u.signature}: {u.lamports:+d} lamports ({u.note})")
        for ref in self.phantom_refs:
            out.append(f"ledger entry refers to {ref}, which is not in the treasury's history")
        for p in self.refund_problems:
            out.append(f"refund {p.refund_id} (tx {p.tx_signature}): {'; '.join(p.problems)}")
        if not self.complete:
            out.append("incomplete: " + "; ".join(self.notes))
        return out

    @property
    def ok(self) -> bool:
        return not self.mismatches


def check_refund(refund: Refund, tx: ChainTx | None, treasury: str, memo: str) -> RefundCheck:
    """A CONFIRMED refund (`domain.refunds.Refund`) against its transaction on chain: landed
    without error, a transfer treasury → wallet of exactly its lamports, its memo, its fee."""
    problems = []
    if not refund.tx_signature:
        problems.append("no transaction recorded")
    elif tx is None:
        problems.append("transaction not found on chain")
    else:
        if tx.failed:
            problems.append("transaction failed on chain")
        paid = sum(t.lamports for t in tx.transfers if t.source == treasury and t.destination == refund.wallet)
        if paid != refund.lamports:
            problems.append(f"paid {paid} lamports to {refund.wallet}, the record says {refund.lamports}")
        others = [t for t in tx.transfers if t.source == treasury and t.destination != refund.wallet]
        if others:
            problems.append(f"also pays {', '.join(t.destination for t in others)}")
        if memo not in tx.memos:
            problems.append(f"memo {list(tx.memos)!r}, expected {memo!r}")
        if treasury not in tx.signers:
            problems.append("not signed by the treasury")
        if refund.fee_lamports is not None and tx.fee != refund.fee_lamports:
            problems.append(f"fee {tx.fee}, the record says {refund.fee_lamports}")
    return RefundCheck(refund.refund_id, refund.tx_signature, not problems, tuple(problems))
