"""The cross-table writes that move money or slots. Each is ONE TransactWriteItems:
either every item is written or none is, and each carries the condition that
makes a replay or a lost race a no-op (docs/data-model.md).

A failed condition surfaces as `Conflict(failed={role, ...})` naming the items
whose condition failed (`claim`, `device`, `contract`, `coverage`, `ledger`), so a
service can tell a replayed payment from a full device from a lost race.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from pynamodb.exceptions import TransactWriteError
from pynamodb.expressions.condition import Condition
from pynamodb.expressions.update import Action
from pynamodb.models import Model
from pynamodb.transactions import TransactWrite

from ..domain import books
from ..domain.contracts import ACTIVE, Contract
from ..domain.errors import Conflict, Unavailable
from ..domain.ledger import Entry
from ..domain.records import Claim
from ..domain.storage import shard_of
from ..domain.webhooks import Event, ended_event, opened_event
from . import contracts as contracts_adapter
from . import coverage
from . import ledger as ledger_adapter
from .claims import claim_item
from .dynamo import cancellation_codes, guarded, transaction_connection
from .models import BookItem, ClaimItem, ContractItem, DeviceItem, LedgerItem
from .outbox import outbox_put

# Cancellation reasons that mean "try again later", not "your condition failed".
THROTTLED = frozenset({"ThrottlingError", "ProvisionedThroughputExceeded"})


class _Tx:
    """TransactWrite that remembers a role per item. PynamoDB sends condition
    checks, then puts, then updates (not call order); cancellation reasons come
    back in that order, so roles are kept per kind and joined the same way."""

    def __init__(self, t: TransactWrite) -> None:
        self.t = t
        self.checks: list[str] = []
        self.puts: list[str] = []
        self.updates: list[str] = []
        self.keys: set[tuple[str, object]] = set()

    def _once(self, table: str, key: object) -> None:
        """AWS (and moto) refuse a transaction that names one item twice (ValidationException); DynamoDB
        Local instead applies the first write and fails the second's condition. Refuse it
        here, the same way on every engine: it is a bug, never a lost race."""
        if (table, key) in self.keys:
            raise ValueError(f"one transaction names the item {key!r} of {table} twice")
        self.keys.add((table, key))

    def save(self, role: str, item: Model, condition: Condition | None) -> None:
        self._once(item.Meta.table_name, item._get_serialized_keys())
        self.t.save(item, condition=condition)
        self.puts.append(role)

    def update(self, role: str, item: Model, actions: Sequence[Action], condition: Condition | None = None) -> None:
        self._once(item.Meta.table_name, item._get_serialized_keys())
        self.t.update(item, actions=list(actions), condition=condition)
        self.updates.append(role)

    def check(self, role: str, model: type[Model], key: Any, condition: Condition) -> None:
        self._once(model.Meta.table_name, model._serialize_keys(key))
        self.t.condition_check(model, key, condition=condition)
        self.checks.append(role)

    def roles(self) -> list[str]:
        return self.checks + self.puts + self.updates


@contextmanager
def _transaction() -> Iterator[_Tx]:
    t = TransactWrite(connection=transaction_connection())
    tx = _Tx(t)
    try:
        with t:
            yield tx
    except TransactWriteError as exc:
        codes = cancellation_codes(exc)
        if not codes:  # not a cancellation: an outage (translated by @guarded) or a bug
            raise
        # one reason per item, in the order the items were sent: a length mismatch is a bug
        reasons = list(zip(tx.roles(), codes, strict=True))
        failed = {r for r, code in reasons if code == "ConditionalCheckFailed"}
        contended = {r for r, code in reasons if code == "TransactionConflict"}
        if failed or contended:
            raise Conflict(sorted(failed), contended=sorted(contended)) from exc
        if any(code in THROTTLED for _, code in reasons):
            raise Unavailable(
                "The database is throttling writes; nothing was changed. Retry later.", reason="database"
            ) from exc
        raise


class Transactions:
    """ports.Transactions on DynamoDB (TransactWriteItems)."""

    def __init__(self, shards: int) -> None:
        self.shards = shards

    @staticmethod
    def _entries(tx: _Tx, entries: Iterable[Entry]) -> None:
        for e in entries:
            tx.save("ledger", ledger_adapter.to_item(e), LedgerItem.entry_id.does_not_exist())

    def _book(self, tx: _Tx, key: str, deltas: dict[str, int]) -> None:
        """Add `deltas` to the book's counter item of `key`'s shard (domain/books.py)."""
        book_update(tx, shard_of(key, self.shards), deltas)

    @guarded
    def open_rental(self, claim: Claim, contract: Contract, entries: Iterable[Entry], now_ms: int) -> None:
        """Claim the signature, take a device slot, put the contract and its postings."""
        with _transaction() as tx:
            tx.save("claim", claim_item(claim, now_ms), ClaimItem.pk.does_not_exist())
            tx.update(
                "device",
                DeviceItem(contract.device_id),
                [DeviceItem.leases.add(1)],
                DeviceItem.device_id.exists() & (DeviceItem.leases < DeviceItem.capacity),
            )
            tx.save(
                "contract",
                contracts_adapter.to_item(contract, shards=self.shards),
                ContractItem.contract_id.does_not_exist(),
            )
            coverage.open_item(tx, contract)
            self._entries(tx, entries)
            self._book(tx, contract.contract_id, books.delta({}, books.contract_contribution(contract)))
            outbox_put(tx, opened_event(contract))

    @guarded
    def extend_rental(
        self, claim: Claim, before: Contract, after: Contract, entries: Iterable[Entry], now_ms: int
    ) -> None:
        """Claim the signature, replace the contract if still ACTIVE at `before.version`, post."""
        with _transaction() as tx:
            tx.save("claim", claim_item(claim, now_ms), ClaimItem.pk.does_not_exist())
            tx.save(
                "contract",
                contracts_adapter.to_item(after, shards=self.shards),
                (ContractItem.version == before.version)
                & (ContractItem.status == ACTIVE)
                & (ContractItem.expires_at_ms > now_ms),
            )
            self._entries(tx, entries)
            self._book(
                tx,
                after.contract_id,
                books.delta(books.contract_contribution(before), books.contract_contribution(after)),
            )

    @guarded
    def end_rental(self, before: Contract, after: Contract, entries: Iterable[Entry]) -> None:
        """Move the contract out of ACTIVE at `before.version`, free its slot, post the settlement."""
        with _transaction() as tx:
            tx.save(
                "contract",
                contracts_adapter.to_item(after, shards=self.shards),
                (ContractItem.version == before.version) & (ContractItem.status == ACTIVE),
            )
            coverage.close_item(tx, before, after)
            tx.update("device", DeviceItem(before.device_id), [DeviceItem.leases.add(-1)], DeviceItem.leases > 0)
            self._entries(tx, entries)
            self._book(
                tx,
                after.contract_id,
                books.delta(books.contract_contribution(before), books.contract_contribution(after)),
            )
            outbox_put(tx, ended_event(after))

    @guarded
    def mark_low_time(self, contract: Contract, event: Event) -> None:
        """Mark the contract told of its low time for this expiry (an update that keeps the version,
        so no renter's settle or extend loses a race to it) and put the event: one transaction."""
        expiry = contract.expires_at_ms
        with _transaction() as tx:
            tx.update(
                "contract",
                ContractItem(contract.contract_id),
                [ContractItem.low_time_for_ms.set(expiry)],
                (ContractItem.version == contract.version)
                & (ContractItem.status == ACTIVE)
                & (ContractItem.expires_at_ms == expiry)
                & (ContractItem.low_time_for_ms.does_not_exist() | (ContractItem.low_time_for_ms != expiry)),
            )
            outbox_put(tx, event)


def book_update(tx: _Tx, shard: int, deltas: dict[str, int]) -> None:
    """ADD each delta to the counter item `book#{shard}` (created by the first ADD)."""
    if deltas:
        tx.update("book", BookItem(f"book#{shard}"), [getattr(BookItem, n).add(v) for n, v in deltas.items()])
