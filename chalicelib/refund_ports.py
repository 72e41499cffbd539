"""Ports of the refund side (see `chalicelib/ports.py` for the rules every implementation
honours): paying refunds on chain, their records and the book's counters, and the books
read against the chain. `ports` re-exports each one."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:  # pragma: no cover - types only
    from .domain.ledger import Entry


# --- the refund queue ----------------------------------------------
class RefundQueue(Protocol):
    def send_refund(self, contract_id: str, version: int) -> bool:
        """Queue a refund; False (never raises) when the queue did not answer: the refund
        stays owed in the table and the sweep queues it again."""

    def depths(self) -> dict[str, Any]:
        """{"refund_queue": {"visible", "in_flight"} | None, "dead_letter_queue": …}."""


# --- refunds paid on chain -----------------------------------------
if TYPE_CHECKING:  # pragma: no cover - types only
    from .domain.refunds import Blockhash, ChainStatus, PreparedTransfer, Refund


class TreasurySigner(Protocol):
    """The treasury's signing key. The key never leaves the implementation: no accessor,
    no repr, no log line shows it."""

    @property
    def pubkey(self) -> str:
        """The treasury's base58 address."""

    def sign(self, message: bytes) -> bytes:
        """The 64-byte ed25519 signature of a serialized transaction message."""


class RefundChain(Protocol):
    """Refund transfers on chain. Unavailable: no trustworthy answer (retry later);
    domain.refunds.RefundRefused: the chain refuses the transfer (FAILED with its reason)."""

    def latest_blockhash(self) -> Blockhash:
        """A recent blockhash and its lastValidBlockHeight."""

    def prepare(self, refund: Refund, blockhash: Blockhash) -> PreparedTransfer:
        """Build and sign treasury → refund.wallet (refund.lamports) with the memo
        signing.refund_memo(refund.refund_id). Sends nothing: the caller records
        signature and last_valid_block_height before `send`."""

    def send(self, raw: bytes) -> str:
        """Broadcast with preflight; the signature. Resending bytes that already landed
        returns the signature again (never a second transfer)."""

    def status(self, signature: str) -> ChainStatus:
        """getSignatureStatuses (searchTransactionHistory) of `signature` and the block
        height read before it: the inputs of domain.refunds.classify."""

    def fee(self, signature: str) -> int | None:
        """meta.fee of a landed transaction; None when the node does not return it yet."""

    def block_height(self) -> int:
        """The chain's block height at the adapter's commitment."""


# --- refund records, the book's counters ---------------------------
if TYPE_CHECKING:  # pragma: no cover - types only
    from .domain.records import Claim as _Claim


class RefundStore(Protocol):
    """Refund records: a contract's refund lives on its contract item (`CTR-…`), the refund
    of a payment no contract holds on that payment's claim item (`PAY-{sig}`). Every
    write is ONE TransactWriteItems that also adds the change to the book's counters."""

    def get(self, refund_id: str) -> Refund | None:
        """Strongly consistent read (the signed bytes of a SENT record included); None when
        there is no such refund (no contract, an ACTIVE one, or an unclaimed payment)."""

    def advance(self, before: Refund, after: Refund, entries: Iterable[Entry], now_ms: int) -> None:
        """Write `after` only while the stored record is still `before` (same version, status
        and transaction: `refund`), put `entries` (`ledger`: new). Conflict otherwise."""

    def open_payment_refund(self, claim: _Claim, refund: Refund, entries: Iterable[Entry], now_ms: int) -> None:
        """Claim the payment's signature for its refund (`claim`: unclaimed), store the QUEUED
        (or DUST) record on the claim and put its entries (`ledger`: new), in one transaction."""


class BookStore(Protocol):
    def counters(self) -> list[dict[str, Any]]:
        """Every counter item of the book (one per shard; bounded, never the table)."""


# --- the books against the chain, operator refunds -----------------
if TYPE_CHECKING:  # pragma: no cover - types only
    from .domain.reconcile import ChainTx, SignatureInfo


class ChainHistory(Protocol):
    """Read-only history of an address on chain (reconciliation, orphan refunds).
    Unavailable when the node gives no trustworthy answer."""

    def balance(self, address: str) -> tuple[int, int]:
        """(lamports, context slot) of `address` at `confirmed`."""

    def signatures(self, address: str, before: str | None, limit: int) -> list[SignatureInfo]:
        """getSignaturesForAddress: up to `limit` (≤ 1000) transactions touching `address`,
        newest first, older than the signature `before` (None: from the newest)."""

    def transaction(self, signature: str) -> ChainTx | None:
        """The landed transaction at `confirmed` (None when the node does not know it)."""


class RefundListing(Protocol):
    """Refunds by status, newest first, from a sparse index (never a scan of the table)."""

    def by_status(self, status: str, limit: int, token: str | None) -> tuple[list[Refund], str | None]:
        """A page of at most `limit` refunds in `status` (contract refunds, then payment
        refunds), and the opaque token of the next page (None after the last). A token this
        store did not issue → InvalidRequest."""

    def payment_refunds_owed(self, before_ms: int, limit: int) -> list[Refund]:
        """Refunds of payments no contract holds (`PAY-…`) still QUEUED or SENT that were booked
        at or before `before_ms`, oldest first, at most `limit` (the sweep's outbox recovery for
        them; contracts' refunds come from ContractStore.refunds_owed)."""


class DeadLetters(Protocol):
    def redrive(self, limit: int) -> int:
        """Move up to `limit` messages of the refund dead-letter queue back to the refund
        queue (receive, send, then delete each one); the number moved. Unavailable when the
        queue does not answer (what moved before stays moved)."""


class RefundQueues(RefundQueue, DeadLetters, Protocol):
    """The refund queue and its dead-letter queue: one adapter (`adapters/queue.py`) serves
    both ports; the container holds it as this, and hands each service only the port it uses."""


class RefundRecords(RefundStore, RefundListing, Protocol):
    """Refund records and their status index: one adapter (`adapters/refunds.py`) serves both
    ports; the container holds it as this, and hands each service only the port it uses."""
