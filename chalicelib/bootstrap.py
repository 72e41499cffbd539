"""Composition root: the one place that wires adapters to services.

`container()` builds the production wiring lazily, once per cold start (the
adapters' modules, PynamoDB and botocore load then, not at `import app`);
tests build their own with `build(settings, **overrides)` (moto, a local
chain) or construct `Container(...)` directly from fakes. Services are built
from the container's ports on first use (`c.rentals`, `c.telemetry`, …; a
service's module is imported then, so a handler pays only for the services it
uses) and kept: replace a port before the first request, or build a new container.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from functools import cached_property
from typing import TYPE_CHECKING, Any

from .config import Settings
from .config import settings as load_settings

if TYPE_CHECKING:  # types only; each service module is imported when its service is first built
    from .ports import (
        BookStore,
        ChainHistory,
        ClaimStore,
        Clock,
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
        SignatureVerifier,
        Transactions,
        WebhookStore,
    )
    from .services.auth import Auth
    from .services.books import Books
    from .services.catalog import Catalog
    from .services.fleet import Fleet
    from .services.idempotency import Idempotency
    from .services.operator import Operator
    from .services.payment_checks import PaymentChecks
    from .services.payment_refunds import PaymentRefunds
    from .services.payment_refused import PaymentRefusals
    from .services.proofs import Proofs
    from .services.quote_watch import QuoteWatcher
    from .services.quotes import Quotes
    from .services.ratelimit import RateLimit
    from .services.reconcile import Reconciler
    from .services.refunds import RefundAdmin, RefundOperations, RefundWorker
    from .services.rentals import Rentals
    from .services.sweep import Sweep
    from .services.telemetry import Telemetry
    from .services.webhook_delivery import WebhookDelivery, WebhookQueue, WebhookSender
    from .services.webhooks import Webhooks


def wall_clock_ms() -> int:
    return time.time_ns() // 1_000_000


def verify_ed25519(pubkey: str, message: bytes, signature: str) -> bool:
    """The production SignatureVerifier; its adapter (and solders) load on first use."""
    from .adapters.signatures import verify_ed25519 as verify

    return verify(pubkey, message, signature)


@dataclass
class Container:
    """The ports, and the services built from them (each asks only for what it uses)."""

    settings: Settings
    contracts: ContractStore
    devices: DeviceStore
    ledger: LedgerStore
    claims: ClaimStore
    metrics: MetricsStore
    tx: Transactions
    queue: RefundQueues
    rpc: PaymentVerifier
    secrets: Secrets
    refunds: RefundRecords
    book: BookStore
    clock: Clock = wall_clock_ms
    verify_signature: SignatureVerifier = verify_ed25519
    # the chain ports are built on first use, like the services (`history`, `chain_for_refunds`);
    # a port given here (tests) is used instead
    refund_chain: RefundChain | None = None  # the production one reads the treasury key
    chain_history: ChainHistory | None = None  # the production one reads the configured RPC
    webhook_store: WebhookStore | None = None  # built with the others by build(); None: no webhooks
    outbox: Outbox | None = None  # the events Transactions write; None: nothing reads them
    webhook_queue: WebhookQueue | None = None  # None: the SQS queue of the settings
    webhook_sender: WebhookSender | None = None  # None: HTTP(S) from this process
    delivery_log: DeliveryLog | None = None  # each webhook's newest deliveries; None: not recorded

    @cached_property
    def webhook_delivery(self) -> WebhookDelivery:
        from .services.webhook_delivery import WebhookDelivery

        if self.outbox is None or self.webhook_store is None:
            raise RuntimeError("this container has no outbox or webhook store")
        queue = self.webhook_queue
        if queue is None:
            from .adapters.webhook_queue import SqsWebhookQueue

            s = self.settings
            queue = SqsWebhookQueue(s.webhook_queue_url, s.webhook_queue_name, s.region, s.aws_endpoint_url)
        sender = self.webhook_sender
        if sender is None:
            from .adapters.webhook_http import HttpWebhookSender

            sender = HttpWebhookSender()
        return WebhookDelivery(
            self.outbox, self.webhook_store, queue, sender, self.clock, self.settings, self.delivery_log
        )

    @cached_property
    def webhooks(self) -> Webhooks:
        from .services.webhooks import Webhooks

        if self.webhook_store is None:
            raise RuntimeError("this container has no webhook store")
        return Webhooks(store=self.webhook_store, clock=self.clock, settings=self.settings, log=self.delivery_log)

    @cached_property
    def payment_refusals(self) -> PaymentRefusals:
        from .services.payment_refused import PaymentRefusals

        if self.outbox is None:
            raise RuntimeError("this container has no outbox")
        return PaymentRefusals(reconciler=self.reconciler, outbox=self.outbox, clock=self.clock)

    quotes: QuoteStore | None = None  # quotes (Solana Pay transfer requests); built by `build`

    @cached_property
    def history(self) -> ChainHistory:
        if self.chain_history is not None:
            return self.chain_history
        from .adapters.chain_history import ChainHistoryRpc
        from .adapters.solana_rpc import SolanaRpc

        return ChainHistoryRpc(SolanaRpc(self.settings.solana_rpc_url, self.settings.rpc_timeout_seconds))

    @cached_property
    def refund_admin(self) -> RefundAdmin:
        from .services.refunds import RefundAdmin

        return RefundAdmin(listing=self.refunds, dead_letters=self.queue)

    @cached_property
    def reconciler(self) -> Reconciler:
        from .services.reconcile import Reconciler

        return Reconciler(
            history=self.history,
            ledger=self.ledger,
            claims=self.claims,
            refunds=self.refunds,
            listing=self.refunds,
            clock=self.clock,
            settings=self.settings,
        )

    @cached_property
    def chain_for_refunds(self) -> RefundChain:
        """The refund chain port; the production one (and the treasury key) only on first use,
        so a function that never refunds never reads the key."""
        if self.refund_chain is not None:
            return self.refund_chain
        return production_refund_chain(self.settings)

    @cached_property
    def refund_worker(self) -> RefundWorker:
        from .services.refunds import RefundWorker

        return RefundWorker(
            refunds=self.refunds,
            chain=self.chain_for_refunds,
            clock=self.clock,
            commitment=self.settings.refund_commitment,
        )

    @cached_property
    def payment_refunds(self) -> PaymentRefunds:
        from .services.payment_refunds import PaymentRefunds

        return PaymentRefunds(
            refunds=self.refunds,
            claims=self.claims,
            rpc=self.rpc,
            queue=self.queue,
            clock=self.clock,
            settings=self.settings,
            checks=self.payment_checks,
        )

    @cached_property
    def payment_checks(self) -> PaymentChecks:
        """One per instance: its negative cache and lookup windows live in this process."""
        from .services.payment_checks import PaymentChecks

        return PaymentChecks(claims=self.claims, clock=self.clock, settings=self.settings)

    @cached_property
    def refund_operations(self) -> RefundOperations:
        from .services.refunds import RefundOperations

        return RefundOperations(refunds=self.refunds, queue=self.queue, clock=self.clock)

    @cached_property
    def sweep(self) -> Sweep:
        from .services.sweep import Sweep

        return Sweep(
            contracts=self.contracts,
            tx=self.tx,
            queue=self.queue,
            clock=self.clock,
            settings=self.settings,
            refund_listing=self.refunds,
        )

    @cached_property
    def rentals(self) -> Rentals:
        from .services.rentals import Rentals

        return Rentals(
            contracts=self.contracts,
            devices=self.devices,
            claims=self.claims,
            tx=self.tx,
            rpc=self.rpc,
            queue=self.queue,
            clock=self.clock,
            settings=self.settings,
            checks=self.payment_checks,
        )

    @cached_property
    def telemetry(self) -> Telemetry:
        from .services.telemetry import Telemetry

        return Telemetry(
            contracts=self.contracts,
            metrics=self.metrics,
            clock=self.clock,
            coverage_grace_ms=self.settings.coverage_grace_seconds * 1000,
            verify=self.verify_signature,
        )

    @cached_property
    def proofs(self) -> Proofs:
        from .services.proofs import Proofs

        s = self.settings
        return Proofs(self.contracts, self.metrics, self.clock, s.coverage_grace_seconds * 1000, s.refund_min_lamports)

    @cached_property
    def books(self) -> Books:
        from .services.books import Books

        return Books(
            contracts=self.contracts,
            ledger=self.ledger,
            devices=self.devices,
            queue=self.queue,
            rpc=self.rpc,
            clock=self.clock,
            settings=self.settings,
            book=self.book,
        )

    @cached_property
    def catalog(self) -> Catalog:
        from .services.catalog import Catalog

        return Catalog(devices=self.devices, settings=self.settings)

    @cached_property
    def quote_service(self) -> Quotes:
        from .services.quotes import Quotes

        if self.quotes is None:
            raise RuntimeError("this container has no quote store")
        return Quotes(quotes=self.quotes, contracts=self.contracts, clock=self.clock, settings=self.settings)

    @cached_property
    def quote_watcher(self) -> QuoteWatcher:
        from .services.quote_watch import QuoteWatcher

        if self.quotes is None:
            raise RuntimeError("this container has no quote store")
        return QuoteWatcher(
            quotes=self.quotes,
            history=self.history,
            rentals=self.rentals,
            clock=self.clock,
            shards=self.settings.active_shards,
            treasury=self.settings.treasury,
        )

    @cached_property
    def fleet(self) -> Fleet:  # one per function instance: it holds the last answer (<= 5 s)
        from .services.fleet import Fleet

        return Fleet(devices=self.devices, clock=self.clock)

    @cached_property
    def auth(self) -> Auth:
        from .services.auth import Auth

        return Auth(
            secrets=self.secrets,
            clock=self.clock,
            verify_signature=self.verify_signature,
            window_seconds=self.settings.signature_window_seconds,
            devices=self.devices,
        )

    @cached_property
    def rate_limit(self) -> RateLimit:  # one per function instance: its memory is the instance's window
        from .services.ratelimit import RateLimit

        return RateLimit(claims=self.claims, clock=self.clock)

    @cached_property
    def idempotency(self) -> Idempotency:
        from .services.idempotency import Idempotency

        return Idempotency(claims=self.claims, clock=self.clock)

    @cached_property
    def operator(self) -> Operator:
        from .services.operator import Operator

        return Operator(devices=self.devices)


def build(s: Settings | None = None, **overrides: Any) -> Container:
    """The production adapters for `s` (default: from the environment), any of them
    replaced by `overrides` (e.g. `rpc=FakeRpc(), clock=FakeClock()`)."""
    from .adapters import models
    from .adapters.claims import ClaimsRepo
    from .adapters.contracts import ContractsRepo
    from .adapters.delivery_log import DeliveryLogRepo
    from .adapters.devices import DevicesRepo
    from .adapters.ledger import LedgerRepo
    from .adapters.metrics import MetricsRepo
    from .adapters.outbox import OutboxRepo
    from .adapters.queue import RefundQueue as SqsRefundQueue
    from .adapters.quotes import QuotesRepo
    from .adapters.refunds import BooksRepo, RefundsRepo
    from .adapters.secrets import Secrets as AdminKey
    from .adapters.solana_rpc import SolanaRpc
    from .adapters.transactions import Transactions as DynamoTransactions
    from .adapters.webhooks import WebhooksRepo

    s = s or load_settings()
    models.bind(s.table_prefix, s.region, s.dynamodb_endpoint_url or s.aws_endpoint_url)
    c = Container(
        settings=s,
        contracts=ContractsRepo(s.active_shards),
        devices=DevicesRepo(),
        ledger=LedgerRepo(),
        claims=ClaimsRepo(),
        metrics=MetricsRepo(),
        tx=DynamoTransactions(s.active_shards),
        queue=SqsRefundQueue(
            s.refund_queue_url, s.refund_queue_name, s.region, s.aws_endpoint_url, s.refund_dlq_url, s.refund_dlq_name
        ),
        rpc=SolanaRpc(s.solana_rpc_url, s.rpc_timeout_seconds),
        secrets=AdminKey(s),
        refunds=RefundsRepo(s.active_shards),
        book=BooksRepo(s.active_shards),
        webhook_store=WebhooksRepo(),
        outbox=OutboxRepo(),
        delivery_log=DeliveryLogRepo(),
        quotes=QuotesRepo(s.active_shards),
    )
    return replace(c, **overrides) if overrides else c


def production_refund_chain(s: Settings) -> RefundChain:
    """RefundChainRpc over the configured RPC, signing with the treasury key read (once per
    cold start) from the one source the settings name. Only the refund function calls this."""
    from .adapters.refund_chain import RefundChainRpc
    from .adapters.solana_rpc import SolanaRpc
    from .adapters.treasury import treasury_from_settings

    return RefundChainRpc(
        SolanaRpc(s.solana_rpc_url, s.rpc_timeout_seconds), treasury_from_settings(s), commitment=s.refund_commitment
    )


_container: Container | None = None


def container() -> Container:
    global _container
    if _container is None:
        _container = build()
    return _container


def set_container(c: Container | None) -> None:
    """For tests: replace (or with None, reset) the process-wide container."""
    global _container
    _container = c
