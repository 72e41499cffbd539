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
  `coverage`, `batch`, `ledger`, `refund`), and writes nothing at all (transactions are
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
    from .domain.usage_receipts import StoredReceipt
    from .domain.webhooks import Event


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
        """Strongly consistent read; None when there is no such contract. An ACTIVE contract's
        covered time is the one its device reports keep (`MetricsStore.cover`), read with it;
        `page` and `due` give it too."""

    def page(self, limit: int, token: str | None) -> tuple[list[Contract], str | None]:
        """A page of at most `limit` contracts (any order) and the opaque token of the next
        page (None after the last). A token this store did not issue → InvalidRequest."""

    def listing(self, limit: int, token: str | None) -> tuple[list[Contract], str | None]:
        """`page`, each contract as `domain.contracts.listing_view` shows it: the same
        contracts and tokens, read without what a listing does not show (lighter to read)."""

    def ledger_listing(self, limit: int, token: str | None) -> tuple[list[Contract], list[dict[str, int]], str | None]:
        """`listing` (contracts, next token) with the book's counter items as `BookStore.counters`
        gives them, read together: the ledger page's reads in as few calls as the store can."""

    def due(self, shard: int, now_ms: int, limit: int) -> list[Contract]:
        """ACTIVE contracts of `shard` whose `expires_at_ms <= now_ms`, earliest first,
        at most `limit` (reads only what is due: the sparse active-by-expiry index)."""

    def expiring(self, shard: int, after_ms: int, until_ms: int, limit: int) -> list[Contract]:
        """ACTIVE contracts of `shard` with `after_ms < expires_at_ms <= until_ms`, earliest first,
        at most `limit` (the same sparse index as `due`: contract.low_time's candidates)."""

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

    def set_pubkey(self, device_id: str, pubkey: str, before: str | None) -> Device:
        """Set the device's receipt key to `pubkey` in ONE conditional write, keeping `before` (when
        not None) at the end of `previous_pubkeys`; the device as stored. Conflict(["device"]) and
        nothing written unless the device exists, leases nothing and still holds `before`."""


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

    def report_context(
        self, device_id: str, contract_id: str | None, receipt_seq: int | None = None
    ) -> tuple[Device | None, Contract | None, StoredReceipt | None]:
        """What a report is checked against, in ONE read: the device as `DeviceStore.get` gives it,
        the contract as `ContractStore.get` gives it (strongly consistent, its covered time
        included) and, when `receipt_seq` is given, the contract's receipt of that seq as `receipt`
        gives it; None for any that does not exist (neither contract nor receipt is read when
        `contract_id` is None)."""

    def receipt(self, contract_id: str, seq: int) -> StoredReceipt | None:
        """The accepted receipt `seq` of a contract (strongly consistent), or None."""

    def batches(self, contract_id: str) -> tuple[list[int], list[StoredReceipt]]:
        """The server time (`now_ms` of `put_batch`) of every stored batch of a contract, and its
        receipts in seq order; never the samples."""

    def latest(self, contract_id: str, count: int = 100) -> list[list[Any]]:
        """The newest `count` sample rows `[ts_ms, cpu, mem, disk, net]`, oldest first
        (ts an int, each value the exact number that was stored: int or Decimal)."""

    def put_batch(
        self, contract_id: str, device_id: str, rows: list[list[Any]], now_ms: int, receipt: StoredReceipt | None = None
    ) -> None:
        """Store one batch (rows sorted by ts, 1..120) at server time `now_ms` in one conditional
        write. Its key is derived from its content, or from the seq of its `receipt` (stored with
        it), so the same rows again, or any batch of an accepted seq, raise Conflict(["batch"]) and
        write nothing (a retried report is stored once). Checks nothing else: the caller has read
        the device and the contract and checked the receipt."""

    def cover(self, contract_id: str, before_end_ms: int, covered_ms: int, end_ms: int) -> bool:
        """Set the covered time of a live contract (read by the caller) to (`covered_ms`,
        `end_ms`) in ONE conditional write of a small item kept apart from the contract, in no
        index (docs/adr/0016-covered-time.md): when its end is still `before_end_ms` and the
        contract has not been ended since (`end_rental` closes the item). The contract item is
        not written (its version is kept). A contract opened before the item existed has none:
        the first report creates it. False when the condition failed."""

    def stamp_device(self, device_id: str, key_hash: str, now_ms: int, every_ms: int) -> bool:
        """Set the device's `last_seen_ms` to `now_ms` only if its key hash is `key_hash` and its
        stamp is absent or at least `every_ms` old (one conditional update). True when written,
        False when not due (or the key changed, or no such device); never raises Conflict."""


class Transactions(Protocol):
    """The writes that move money or slots: each one is all-or-nothing and
    conditional; a failed condition raises Conflict naming the roles."""

    def open_rental(self, claim: Claim, contract: Contract, entries: Iterable[Entry], now_ms: int) -> None:
        """Claim the signature (`claim`: unclaimed), take a slot (`device`: exists and
        leases < capacity), put the contract (`contract`: new), its covered time (`coverage`:
        the start-up allowance, new; none for a contract that does not track coverage) and its
        entries (`ledger`: new)."""

    def extend_rental(
        self, claim: Claim, before: Contract, after: Contract, entries: Iterable[Entry], now_ms: int
    ) -> None:
        """Claim the signature; replace the contract if it is still ACTIVE at
        `before.version` and not expired at `now_ms` (`contract`); put the entries."""

    def end_rental(self, before: Contract, after: Contract, entries: Iterable[Entry]) -> None:
        """Move the contract out of ACTIVE at `before.version` (`contract`), close its covered
        time if it still ends where `before` read it (`coverage`: a report since the read makes
        the caller read again and bill it; one after finds it closed), free its slot (`device`:
        leases > 0) and put the settlement entries."""

    def mark_low_time(self, contract: Contract, event: Event) -> None:
        """Set the contract's `low_time_for_ms` to its `expires_at_ms` (its version kept) if it is
        still ACTIVE at `contract.version` with that expiry and not yet marked for it (`contract`),
        and put `event` in the outbox (`outbox`: new): ONE transaction, so of two sweeps racing,
        one writes both and the other nothing."""


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


# the refund side: on chain, its records, the books against the chain (chalicelib/refund_ports.py),
# imported last: those ports extend the core ones above
from .refund_ports import (  # noqa: E402, I001
    BookStore as BookStore,
    ChainHistory as ChainHistory,
    DeadLetters as DeadLetters,
    RefundChain as RefundChain,
    RefundListing as RefundListing,
    RefundQueue as RefundQueue,
    RefundQueues as RefundQueues,
    RefundRecords as RefundRecords,
    RefundStore as RefundStore,
    TreasurySigner as TreasurySigner,
)

# the webhook side (chalicelib/webhook_ports.py)
from .webhook_ports import (  # noqa: E402
    DeliveryLog as DeliveryLog,
    Outbox as Outbox,
    WebhookStore as WebhookStore,
)
from .quote_ports import QuoteStore as QuoteStore  # noqa: E402  (quotes: docs/adr/0015-quotes.md)
