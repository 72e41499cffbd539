"""Refunds paid on chain: the record, its state machine and the reading of the chain's answer.

Pure Python (no solders, no boto3). The worker that drives it, and where the
record is stored, live elsewhere; every function here returns a new record
(version + 1) that the store writes conditionally on the old version, so a lost
race or a redelivered message never applies a step twice.

    QUEUED --mark_sent--> SENT --confirm--> CONFIRMED
       |                   |  \\--replace_expired (blockhash expired, never landed)--> SENT (attempt + 1)
       |                   \\--fail--> FAILED --retry (operator)--> QUEUED
       \\--fail--> FAILED
    DUST: terminal from the start (below the minimum worth a transfer)

At most one transaction per refund is ever live: `mark_sent` records the signed
transaction's signature and last valid block height BEFORE it is broadcast,
and a second one (`replace_expired`) is allowed only on proof that the first
can never land: the chain's block height is past its last valid block height
and the signature has no status (`classify` → EXPIRED).

Refund ids: a contract's refund is the contract id (`CTR-…`); the refund of a
payment share that no contract holds is `PAY-{tx_signature}-{payer}` (`payment_refund_id`:
one per signature and payer; base58 has no `-`).
The memo on the transfer is `signing.refund_memo(refund_id)`.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from .chain_answer import (
    COMMITMENTS as COMMITMENTS,
)
from .chain_answer import (
    EXPIRED as EXPIRED,
)
from .chain_answer import (  # the chain's answer, read by the state machine below
    LANDED as LANDED,
)
from .chain_answer import (
    LANDED_WITH_ERROR as LANDED_WITH_ERROR,
)
from .chain_answer import (
    PENDING as PENDING,
)
from .chain_answer import (
    Blockhash as Blockhash,
)
from .chain_answer import (
    ChainStatus as ChainStatus,
)
from .chain_answer import (
    MalformedStatus as MalformedStatus,
)
from .chain_answer import (
    PreparedTransfer as PreparedTransfer,
)
from .chain_answer import (
    Verdict as Verdict,
)
from .chain_answer import (
    checked_lvbh as _lvbh,
)
from .chain_answer import (
    classify as classify,
)
from .chain_answer import (
    describe_err as describe_err,
)
from .contracts import REFUND_CONFIRMED, REFUND_DUST, REFUND_FAILED, REFUND_QUEUED, REFUND_SENT, Contract
from .errors import DomainError

# the statuses of a refund are those a contract records (`contracts.REFUND_*`)
QUEUED, SENT, CONFIRMED, FAILED, DUST = REFUND_QUEUED, REFUND_SENT, REFUND_CONFIRMED, REFUND_FAILED, REFUND_DUST
CONTRACT_PREFIX = "CTR-"
PAYMENT_PREFIX = "PAY-"
STATUSES = (QUEUED, SENT, CONFIRMED, FAILED, DUST)
TERMINAL = (CONFIRMED, DUST)
MAX_REASON_CHARS = 300


# what the worker does next (see `next_step`)
SEND, RESEND, CONFIRM, FAIL, REPLACE, WAIT, DONE = "SEND", "RESEND", "CONFIRM", "FAIL", "REPLACE", "WAIT", "DONE"


class RefundRefused(DomainError):
    """The chain refused the refund transfer (preflight failure, or a landed transaction
    that failed): e.g. `InsufficientFundsForRent` for a fresh recipient. Retrying the same
    transfer would be refused again: the refund becomes FAILED with `reason`."""

    status, code = 422, "refund_refused"
    reason: str  # always given: the chain's reason

    def __init__(self, reason: str, err: object = None) -> None:
        super().__init__(f"The chain refused the refund transfer: {reason}", reason=reason)
        self.err = err  # the node's JSON error, when there is one


class InvalidTransition(DomainError):
    """A step the state machine does not allow from the record's status (a bug, or a
    stale record: re-read and decide again)."""

    status, code = 409, "invalid_refund_transition"


def payment_refund_id(tx_signature: str, payer: str) -> str:
    """The refund id of one payer's share of a payment that no contract holds."""
    if not tx_signature or not payer or "-" in tx_signature or "-" in payer:
        raise ValueError("a payment refund needs a signature and a payer")
    return f"{PAYMENT_PREFIX}{tx_signature}-{payer}"


def payment_of(refund_id: str) -> tuple[str, str]:
    """(tx_signature, payer) of a payment refund id; ValueError for any other id."""
    sig, sep, payer = refund_id[len(PAYMENT_PREFIX) :].partition("-")
    if not refund_id.startswith(PAYMENT_PREFIX) or not sep or not sig or not payer or "-" in payer:
        raise ValueError(f"not a payment refund id: {refund_id!r}")
    return sig, payer


def refund_kind(refund_id: str) -> str:
    """`"contract"` or `"payment"`; ValueError for any other id."""
    if refund_id.startswith(CONTRACT_PREFIX) and len(refund_id) > len(CONTRACT_PREFIX):
        return "contract"
    if refund_id.startswith(PAYMENT_PREFIX):
        payment_of(refund_id)
        return "payment"
    raise ValueError(f"not a refund id: {refund_id!r}")


def _lamports(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError("lamports must be an int")
    if value < 0:
        raise ValueError("lamports must not be negative")
    return value


@dataclass(frozen=True)
class Refund:
    refund_id: str
    wallet: str
    lamports: int
    status: str = QUEUED
    tx_signature: str | None = None
    last_valid_block_height: int | None = None
    attempt: int = 0  # transactions signed so far (mark_sent and each replacement add one)
    reason: str | None = None
    version: int = 1
    fee_lamports: int | None = None  # network fee of the transaction that landed
    confirmed_at_ms: int | None = None
    # the signed bytes of the recorded transaction (SENT only): resending the very same
    # bytes can land at most once, so a pending transaction is pushed again (RESEND)
    raw: bytes | None = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        refund_kind(self.refund_id)
        _lamports(self.lamports)
        if self.status not in STATUSES:
            raise ValueError(f"unknown refund status {self.status!r}")
        if not self.wallet:
            raise ValueError("a refund needs a wallet")

    @property
    def is_terminal(self) -> bool:
        return self.status in TERMINAL

    @property
    def in_flight(self) -> bool:
        """A signed transaction is recorded and may still land."""
        return self.status == SENT


def new_refund(refund_id: str, wallet: str, lamports: int, *, min_lamports: int) -> Refund:
    """A refund owed: QUEUED, or DUST when it is not worth a transfer (0, or below
    `min_lamports`, the same rule as `contracts.finalize`)."""
    lamports = _lamports(lamports)
    status = QUEUED if lamports > 0 and lamports >= min_lamports else DUST
    return Refund(refund_id=refund_id, wallet=wallet, lamports=lamports, status=status)


def _next(r: Refund, **changes: Any) -> Refund:
    return replace(r, version=r.version + 1, **changes)


def _require(r: Refund, *allowed: str, step: str) -> None:
    if r.status not in allowed:
        raise InvalidTransition(f"refund {r.refund_id}: cannot {step} from {r.status}", reason="status")


def mark_sent(r: Refund, signature: str, last_valid_block_height: int, raw: bytes | None = None) -> Refund:
    """QUEUED → SENT: the first signed transaction, recorded before it is broadcast."""
    _require(r, QUEUED, step="mark sent")
    if not signature:
        raise ValueError("empty signature")
    return _next(
        r,
        status=SENT,
        tx_signature=signature,
        last_valid_block_height=_lvbh(last_valid_block_height),
        attempt=r.attempt + 1,
        reason=None,
        raw=raw,
    )


def replace_expired(
    r: Refund, verdict: Verdict, signature: str, last_valid_block_height: int, raw: bytes | None = None
) -> Refund:
    """SENT → SENT with a new transaction, only on proof that the recorded one expired
    without landing (`verdict` from `classify` of the recorded transaction)."""
    _require(r, SENT, step="replace the transaction")
    if verdict.state != EXPIRED or verdict.last_valid_block_height != r.last_valid_block_height:
        raise InvalidTransition(
            f"refund {r.refund_id}: the recorded transaction has not expired ({verdict.state})", reason="not_expired"
        )
    if not signature or signature == r.tx_signature:
        raise ValueError("a replacement needs a new signature")
    return _next(
        r,
        tx_signature=signature,
        last_valid_block_height=_lvbh(last_valid_block_height),
        attempt=r.attempt + 1,
        raw=raw,
    )


def confirm(r: Refund, fee_lamports: int, at_ms: int) -> Refund:
    """SENT → CONFIRMED: the recorded transaction landed without error."""
    _require(r, SENT, step="confirm")
    return _next(
        r, status=CONFIRMED, fee_lamports=_lamports(fee_lamports), confirmed_at_ms=int(at_ms), reason=None, raw=None
    )


def fail(r: Refund, reason: str) -> Refund:
    """QUEUED/SENT → FAILED with a reason. From SENT only once the recorded transaction
    can no longer pay (it landed with an error, or it expired and its replacement was
    refused). The refund stays payable in the ledger."""
    _require(r, QUEUED, SENT, step="fail")
    reason = (reason or "").strip()
    if not reason:
        raise ValueError("a failure needs a reason")
    return _next(r, status=FAILED, reason=reason[:MAX_REASON_CHARS], raw=None)


def retry(r: Refund) -> Refund:
    """FAILED → QUEUED (an operator's decision). The failed transaction is forgotten; the
    attempt count is kept, so the next transaction is attempt + 1."""
    _require(r, FAILED, step="retry")
    return _next(r, status=QUEUED, tx_signature=None, last_valid_block_height=None, reason=None, raw=None)


def next_step(r: Refund, verdict: Verdict | None = None, *, has_raw: bool = False) -> str:
    """What the worker does with this record and (for SENT) the verdict on its transaction.

    QUEUED → SEND; SENT → CONFIRM / FAIL (landed with an error) / REPLACE (expired) /
    RESEND (pending and the signed bytes were kept: resending the same signature can land
    at most once) / WAIT; FAILED waits for an operator and CONFIRMED/DUST are done: DONE.
    """
    if r.status == QUEUED:
        return SEND
    if r.status != SENT:
        return DONE
    if verdict is None:
        raise ValueError("a SENT refund needs the verdict on its transaction")
    if verdict.last_valid_block_height != r.last_valid_block_height:
        raise ValueError("the verdict is about another transaction")
    if verdict.state == LANDED:
        return CONFIRM
    if verdict.state == LANDED_WITH_ERROR:
        return FAIL
    if verdict.state == EXPIRED:
        return REPLACE
    return RESEND if has_raw else WAIT


# ------------------------------------------------------------ a contract's refund
def refund_of(contract: Contract) -> Refund | None:
    """The refund record a contract item carries (None while the contract is ACTIVE).
    Its version is the contract's: every step is written on the contract's version."""
    if contract.refund_status not in STATUSES:
        return None
    return Refund(
        refund_id=contract.contract_id,
        wallet=contract.wallet,
        lamports=contract.refund_lamports or 0,
        status=contract.refund_status,
        tx_signature=contract.refund_tx,
        last_valid_block_height=contract.refund_lvbh,
        attempt=contract.refund_attempt or 0,
        reason=contract.refund_reason,
        version=contract.version,
        fee_lamports=contract.refund_fee,
        confirmed_at_ms=contract.refund_confirmed_ms,
        raw=contract.refund_raw,
    )
