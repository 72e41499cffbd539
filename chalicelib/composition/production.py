"""The production adapters: `build()` gives a container whose every port is built on first
use, so a request imports only the adapters (and their domain modules) it touches: a
contract's status loads the contracts and claims adapters, not the refund, webhook, quote,
queue or Solana ones. PynamoDB's models are bound to the settings' tables at `build()`."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import MISSING, fields
from typing import TYPE_CHECKING, Any, Generic, TypeVar, overload

from ..bootstrap import Container
from ..config import Settings
from ..config import settings as load_settings
from .ports import Ports

if TYPE_CHECKING:  # types only
    from ..ports import (
        BookStore,
        ClaimStore,
        ContractStore,
        DeliveryLog,
        DeviceStore,
        LedgerStore,
        MetricsStore,
        Outbox,
        PaymentVerifier,
        QuoteStore,
        RefundChain,
        RefundQueues,
        RefundRecords,
        Secrets,
        Transactions,
        WebhookStore,
    )

T = TypeVar("T")


class Port(Generic[T]):
    """A port built from the settings on first read, then an ordinary attribute (like
    `functools.cached_property`, which the services use; this one may also be assigned)."""

    def __init__(self, make: Callable[[Settings], T]) -> None:
        self.make = make
        self.name = ""

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    @overload
    def __get__(self, obj: None, owner: type | None = None) -> Port[T]: ...
    @overload
    def __get__(self, obj: Ports, owner: type | None = None) -> T: ...
    def __get__(self, obj: Ports | None, owner: type | None = None) -> Port[T] | T:
        if obj is None:
            return self
        value = obj.__dict__[self.name] = self.make(obj.settings)  # later reads find it there
        return value

    if TYPE_CHECKING:  # at run time an assignment lands in the instance's __dict__, which wins

        def __set__(self, obj: Ports, value: T) -> None: ...


def _contracts(s: Settings) -> ContractStore:
    from ..adapters.contracts import ContractsRepo

    return ContractsRepo(s.active_shards)


def _devices(s: Settings) -> DeviceStore:
    from ..adapters.devices import DevicesRepo

    return DevicesRepo()


def _ledger(s: Settings) -> LedgerStore:
    from ..adapters.ledger import LedgerRepo

    return LedgerRepo()


def _claims(s: Settings) -> ClaimStore:
    from ..adapters.claims import ClaimsRepo

    return ClaimsRepo()


def _metrics(s: Settings) -> MetricsStore:
    from ..adapters.metrics import MetricsRepo

    return MetricsRepo()


def _tx(s: Settings) -> Transactions:
    from ..adapters.transactions import Transactions as DynamoTransactions

    return DynamoTransactions(s.active_shards)


def _queue(s: Settings) -> RefundQueues:
    from ..adapters.queue import RefundQueue

    return RefundQueue(
        s.refund_queue_url, s.refund_queue_name, s.region, s.aws_endpoint_url, s.refund_dlq_url, s.refund_dlq_name
    )


def _rpc(s: Settings) -> PaymentVerifier:
    from ..adapters.solana_rpc import SolanaRpc

    return SolanaRpc(s.solana_rpc_url, s.rpc_timeout_seconds)


def _secrets(s: Settings) -> Secrets:
    from ..adapters.secrets import Secrets as AdminKey

    return AdminKey(s)


def _refunds(s: Settings) -> RefundRecords:
    from ..adapters.refunds import RefundsRepo

    return RefundsRepo(s.active_shards)


def _book(s: Settings) -> BookStore:
    from ..adapters.refunds import BooksRepo

    return BooksRepo(s.active_shards)


def _webhook_store(s: Settings) -> WebhookStore | None:
    from ..adapters.webhooks import WebhooksRepo

    return WebhooksRepo()


def _outbox(s: Settings) -> Outbox | None:
    from ..adapters.outbox import OutboxRepo

    return OutboxRepo()


def _delivery_log(s: Settings) -> DeliveryLog | None:
    from ..adapters.delivery_log import DeliveryLogRepo

    return DeliveryLogRepo()


def _quotes(s: Settings) -> QuoteStore | None:
    from ..adapters.quotes import QuotesRepo

    return QuotesRepo(s.active_shards)


class Production(Container):
    """`bootstrap.Container` with each adapter a `Port`: nothing is built before it is read."""

    contracts = Port(_contracts)
    devices = Port(_devices)
    ledger = Port(_ledger)
    claims = Port(_claims)
    metrics = Port(_metrics)
    tx = Port(_tx)
    queue = Port(_queue)
    rpc = Port(_rpc)
    secrets = Port(_secrets)
    refunds = Port(_refunds)
    book = Port(_book)
    webhook_store = Port(_webhook_store)
    outbox = Port(_outbox)
    delivery_log = Port(_delivery_log)
    quotes = Port(_quotes)

    def __init__(self, settings: Settings, **given: Any) -> None:
        """The settings, the ports `given` (tests), the other fields' defaults; no adapter yet."""
        names = {f.name for f in fields(Ports)}
        if unknown := set(given) - names:
            raise TypeError(f"not ports of a container: {sorted(unknown)}")
        self.settings = settings
        for f in fields(Ports):
            if f.name in given:
                setattr(self, f.name, given[f.name])
            elif f.default is not MISSING and not isinstance(vars(Production).get(f.name), Port):
                setattr(self, f.name, f.default)


def build(s: Settings | None = None, **overrides: Any) -> Container:
    """The production adapters for `s` (default: from the environment), any of them
    replaced by `overrides` (e.g. `rpc=FakeRpc(), clock=FakeClock()`); each adapter is
    built when first read. The tables are bound now, as every adapter expects."""
    from ..adapters import models

    s = s or load_settings()
    models.bind(s.table_prefix, s.region, s.dynamodb_endpoint_url or s.aws_endpoint_url)
    return Production(s, **overrides)


def production_refund_chain(s: Settings) -> RefundChain:
    """RefundChainRpc over the configured RPC, signing with the treasury key read (once per
    cold start) from the one source the settings name. Only the refund function calls this."""
    from ..adapters.refund_chain import RefundChainRpc
    from ..adapters.solana_rpc import SolanaRpc
    from ..adapters.treasury import treasury_from_settings

    return RefundChainRpc(
        SolanaRpc(s.solana_rpc_url, s.rpc_timeout_seconds), treasury_from_settings(s), commitment=s.refund_commitment
    )
