"""The container's ports: the one dataclass every service mixin reads its ports from."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..config import Settings

if TYPE_CHECKING:  # types only: the Protocols cost cold-start time
    from ..ports import (
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
    from ..services.webhook_delivery import WebhookQueue, WebhookSender


def wall_clock_ms() -> int:
    return time.time_ns() // 1_000_000


def verify_ed25519(pubkey: str, message: bytes, signature: str) -> bool:
    """The production SignatureVerifier; its adapter (and solders) load on first use."""
    from ..adapters.signatures import verify_ed25519 as verify

    return verify(pubkey, message, signature)


@dataclass
class Ports:
    """The ports a container's services are built from (fakes in tests, adapters in production)."""

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
    quotes: QuoteStore | None = None  # quotes (Solana Pay transfer requests); built by `build`
