"""Ports: what the services need from the outside world, as `typing.Protocol`s.

Services ask only for the ports they use (never the whole container). Each port
has exactly one production adapter (`chalicelib/adapters/`) and one in-memory
fake (`tests/support/fakes.py`); one contract-test suite (`tests/contract/`)
runs both through the same cases, so a fake cannot drift from its adapter.

Rules every implementation honours (the fakes included):

* Reads return domain objects (`domain/`), never PynamoDB items or dicts of
  wire data.
* A conditional write that does not apply raises `domain.errors.Conflict`
  naming the roles whose condition failed (`claim`, `device`, `contract`,
  `batch`, `ledger`, `refund`), and writes nothing at all (transactions are
  all-or-nothing).
* A dependency that does not answer raises `domain.errors.Unavailable`
  (503); any other exception is a bug (500).

No boto3, PynamoDB or Solana import here: this module is imported on every
cold start.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:  # pragma: no cover - types only
    from .domain.contracts import Contract
    from .domain.devices import Device
    from .domain.ledger import Entry
    from .domain.payments import PaymentCheck, PaymentResult
    from .domain.records import Claim, Replay


@runtime_checkable
class Clock(Protocol):
    """Unix time in milliseconds. Injected so tests can move time."""

    def __call__(self) -> int: ...


@runtime_checkable
class SignatureVerifier(Protocol):
    """ed25519: does `signature` (base58) sign `message` for `pubkey` (base58)?
    False for anything that does not verify, malformed input included; never raises.
    The adapter (`adapters/signatures.py`) imports solders on first use only."""

    def __call__(self, pubkey: str, message: bytes, signature: str) -> bool: ...


class ContractStore(Protocol):
    """Reads of the contracts table. Every write goes through `Transactions`.
    A contract read back equals the one written, every payment (rent and each
    extension, up to 1 + MAX_EXTENSIONS) included."""

    shards: int

    def get(self, contract_id: str) -> Contract | None:
        """Strongly consistent read; None when there is no such contract."""

    def page(self, limit: int, token: str | None) -> tuple[list[Contract], str | None]:
        """A page of at most `limit` contracts (any order) and the opaque token of the next
        page (None after the last). A token this store did not issue → InvalidRequest."""

    def due(self, shard: int, now_ms: int, limit: int) -> list[Contract]:
        """ACTIVE contracts of `shard` whose `expires_at_ms <= now_ms`, earliest first,
        at most `limit` (reads only what is due: the sparse active-by-expiry index)."""

    def refunds_owed(self, shard: int, before_ms: int, limit: int) -> list[Contract]:
        """Ended contracts of `shard` whose refund is QUEUED or SENT and that ended at or
        before `before_ms`, oldest first, at most `limit` (the sparse refunds-pending index)."""


class DeviceStore(Protocol):
    def get(self, device_id: str) -> Device | None:
        """The device, or None."""

    def by_tier(self, tier: str) -> list[Device]:
        """Every device of a tier (any order), with its live lease count."""

    def all(self) -> list[Device]:
        """The whole inventory."""

    def upsert(self, spec: dict[str, Any], capacity: int) -> None:
        """Create a device, or update its description and capacity (never its leases)."""

    def set_key_hash(self, device_id: str, key_hash: str) -> None:
        """Store the hash of a device key; Conflict(["device"]) for an unknown device."""

    def set_audited(self, device_id: str, audited: bool) -> Device:
        """Set the device's `audited` flag (nothing else) and return the device as stored;
        Conflict(["device"]) for an unknown device."""


class ClaimStore(Protocol):
    """Payment claims (one per transaction signature), Idempotency-Key records and the
    fleet-wide rate-limit windows, all in the claims table (ADR 0009)."""

    def get_claim(self, signature: str, payer: str) -> Claim | None:
        """The claim of `payer`'s share of the transaction `signature` (one per signature AND
        payer: a co-signer's transfers are claimed apart), or None."""

    def get_replay(self, key: str, now_ms: int) -> Replay | None:
        """The live record of `key`: its stored first answer (for 24 h), or one with
        `in_progress=True` while the request that took the key runs (until its lease ends);
        None when there is none or it has expired."""

    def begin_replay(self, key: str, body_hash: str, now_ms: int, lease_ms: int) -> Replay | None:
        """Take `key` before its request runs: write an in-progress record (held until
        `now_ms + lease_ms`, identified by `now_ms`) unless a live record is there. None when
        taken; otherwise the live record (a stored answer, or one in progress) and nothing is
        written. Of any number of concurrent calls on one key, exactly one takes it."""

    def finish_replay(self, key: str, replay: Replay, started_ms: int, now_ms: int) -> bool:
        """Replace our in-progress record (the one begun at `started_ms`) by the answer, kept
        for 24 h from `now_ms`. False, and nothing written, when the record is no longer ours
        (released, or its lease ran out and another request took the key)."""

    def release_replay(self, key: str, started_ms: int) -> None:
        """Delete our in-progress record (the request failed): the key is free again.
        Nothing happens when the record is no longer ours."""

    def count_request(self, subject: str, window_start_ms: int, window_ms: int, limit: int) -> int | None:
        """Count one request of `subject` (e.g. `ip:203.0.113.9`) in the fixed window that starts
        at `window_start_ms`: the window's count including this request, or None when it
        already held `limit` (nothing counted). One small conditional write; the item expires
        (TTL) after the window."""


class LedgerStore(Protocol):
    """Reads of the immutable ledger. Entries are written only inside `Transactions`.
    Tokens are opaque; one issued for another contract/account → InvalidRequest."""

    def by_contract(self, contract_id: str, limit: int, token: str | None) -> tuple[list[Entry], str | None]:
        """Entries of one contract, oldest first (entry-id order)."""

    def by_account(self, account: str, limit: int, token: str | None) -> tuple[list[Entry], str | None]:
        """Entries of one account, oldest first (created_at_ms, then entry id)."""


class MetricsStore(Protocol):
    """Usage samples (one item per reported batch) and the devices' last-seen stamps.
    Cheap by design (docs/adr/0007-cheap-metering.md): a report is ONE conditional put,
    the stamp at most one conditional update per device per interval."""

    def report_context(self, device_id: str, contract_id: str | None) -> tuple[Device | None, Contract | None]:
        """What a report is checked against, in ONE read: the device as `DeviceStore.get` gives it
        and the contract as `ContractStore.get` gives it (strongly consistent); None for either
        that does not exist (the contract is not read when `contract_id` is None)."""

    def latest(self, contract_id: str, count: int = 100) -> list[list[Any]]:
        """The newest `count` sample rows `[ts_ms, cpu, mem, disk, net]`, oldest first
        (ts an int, each value the exact number that was stored: int or Decimal)."""

    def put_batch(self, contract_id: str, device_id: str, rows: list[list[Any]], now_ms: int) -> None:
        """Store one batch (rows sorted by ts, 1..120) in one conditional write. Its key is derived
        from its content, so the same rows again raise Conflict(["batch"]) and write nothing (a
        retried report is stored once). Checks nothing else: the caller has read the device and
        the contract."""

    def stamp_device(self, device_id: str, key_hash: str, now_ms: int, every_ms: int) -> bool:
        """Set the device's `last_seen_ms` to `now_ms` only if its key hash is `key_hash` and its
        stamp is absent or at least `every_ms` old (one conditional update). True when written,
        False when not due (or the key changed, or no such device); never raises Conflict."""


class Transactions(Protocol):
    """The writes that move money or slots: each one is all-or-nothing and
    conditional; a failed condition raises Conflict naming the roles."""

    def open_rental(self, claim: Claim, contract: Contract, entries: Iterable[Entry], now_ms: int) -> None:
        """Claim the signature (`claim`: unclaimed), take a slot (`device`: exists and
        leases < capacity), put the contract (`contract`: new) and its entries (`ledger`: new)."""

    def extend_rental(
        self, claim: Claim, before: Contract, after: Contract, entries: Iterable[Entry], now_ms: int
    ) -> None:
        """Claim the signature; replace the contract if it is still ACTIVE at
        `before.version` and not expired at `now_ms` (`contract`); put the entries."""

    def end_rental(self, before: Contract, after: Contract, entries: Iterable[Entry]) -> None:
        """Move the contract out of ACTIVE at `before.version` (`contract`), free its slot
        (`device`: leases > 0) and put the settlement entries."""


class RefundQueue(Protocol):
    def send_refund(self, contract_id: str, version: int) -> bool:
        """Queue a refund; False (never raises) when the queue did not answer: the refund
        stays owed in the table and the sweep queues it again."""

    def depths(self) -> dict[str, Any]:
        """{"refund_queue": {"visible", "in_flight"} | None, "dead_letter_queue": …}."""


class PaymentVerifier(Protocol):
    """Read-only access to the chain for payments."""

    def verify_payment(self, check: PaymentCheck) -> PaymentResult:
        """Classify a payment (domain.payments.decide); Unavailable when the RPC fails."""

    def health(self) -> bool:
        """True when the node answers; never raises."""


class Secrets(Protocol):
    """The operator key (a file locally, an SSM parameter when deployed)."""

    def is_admin(self, presented: str | None) -> bool:
        """Constant-time comparison with the operator key; False when none is configured."""


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


# --- webhooks --------------------------------------------------------
if TYPE_CHECKING:  # pragma: no cover - types only
    from .domain.webhooks import Event, Webhook


class WebhookStore(Protocol):
    """Webhook registrations, one small item per owner (`admin` or `wallet:{address}`) holding
    at most `limit` webhooks: listing an owner's, and finding who to tell of an event (the
    admin's and the contract wallet's), is one read each."""

    def of(self, owner: str) -> list[Webhook]:
        """The owner's webhooks (strongly consistent), oldest first; [] when none."""

    def add(self, webhook: Webhook, limit: int) -> None:
        """Add `webhook` to its owner's list in one conditional write; Conflict(["webhooks"]) and
        nothing written when the owner already has `limit`. A lost race is retried inside."""

    def remove(self, owner: str, webhook_id: str) -> bool:
        """Remove one of the owner's webhooks in one conditional write; False (nothing written)
        when the owner has no such webhook."""


class Outbox(Protocol):
    """Webhook events written inside the money transactions (`Transactions` writes them:
    contract.created with `open_rental`, contract.settled/expired with `end_rental`), read
    back by a dispatcher from a sparse index: never a scan."""

    def pending(self, shard: int, limit: int) -> list[Event]:
        """Events of `shard` (domain.webhooks.OUTBOX_SHARDS) not yet dispatched, oldest first."""

    def get(self, event_id: str) -> Event | None:
        """One event (dispatched or not), or None."""

    def mark_dispatched(self, event_id: str, now_ms: int) -> bool:
        """Take the event out of the pending index (one conditional update); False when it was
        not pending (another dispatcher did it, or no such event)."""
