"""PynamoDB models of the five tables (docs/data-model.md, infra/resources.yaml).

Table names, endpoint and timeouts are bound once per cold start by `bind()`.
"""

from __future__ import annotations

from typing import Any

from pynamodb.attributes import (
    BinaryAttribute,
    BooleanAttribute,
    ListAttribute,
    MapAttribute,
    NumberAttribute,
    UnicodeAttribute,
)
from pynamodb.indexes import AllProjection, GlobalSecondaryIndex, IncludeProjection
from pynamodb.models import Model


class _Meta:
    table_name = "unbound"
    region = "us-east-1"
    host = None
    connect_timeout_seconds = 2
    read_timeout_seconds = 5
    max_retry_attempts = 2


class PaymentMap(MapAttribute[str, Any]):
    """Legacy: items written before payments were packed (`ContractItem.payments_packed`)
    hold their rent payment here. Read, never written."""

    sig = UnicodeAttribute()
    kind = UnicodeAttribute()
    seconds = NumberAttribute()
    price_lamports = NumberAttribute()
    received_lamports = NumberAttribute()
    at_ms = NumberAttribute()


class ActiveByExpiry(GlobalSecondaryIndex["ContractItem"]):
    class Meta:
        index_name = "active-by-expiry"
        projection = AllProjection()

    active_shard = NumberAttribute(hash_key=True)
    expires_at_ms = NumberAttribute(range_key=True)


class ByWallet(GlobalSecondaryIndex["ContractItem"]):
    class Meta:
        index_name = "by-wallet"
        projection = AllProjection()

    wallet = UnicodeAttribute(hash_key=True)
    created_at_ms = NumberAttribute(range_key=True)


class RefundsPending(GlobalSecondaryIndex["ContractItem"]):
    class Meta:
        index_name = "refunds-pending"
        projection = AllProjection()

    refund_shard = NumberAttribute(hash_key=True)
    refund_due_ms = NumberAttribute(range_key=True)


class ContractRefundsByStatus(GlobalSecondaryIndex["ContractItem"]):
    """Sparse: ended contracts only (ACTIVE ones have no ended_at_ms)."""

    class Meta:
        index_name = "refunds-by-status"
        projection = IncludeProjection(
            [
                "wallet",
                "version",
                "refund_lamports",
                "refund_tx",
                "refund_reason",
                "refund_attempt",
                "refund_fee",
                "refund_confirmed_ms",
            ]
        )

    refund_status = UnicodeAttribute(hash_key=True)
    ended_at_ms = NumberAttribute(range_key=True)


class ContractItem(Model):
    class Meta(_Meta):
        pass

    contract_id = UnicodeAttribute(hash_key=True)
    wallet = UnicodeAttribute()
    tier = UnicodeAttribute()
    device_id = UnicodeAttribute()
    status = UnicodeAttribute()
    version = NumberAttribute()
    lamports_per_hour = NumberAttribute()
    duration_seconds = NumberAttribute()
    price_lamports = NumberAttribute()
    received_lamports = NumberAttribute()
    created_at_ms = NumberAttribute()
    expires_at_ms = NumberAttribute()
    active_shard = NumberAttribute(null=True)
    payments = ListAttribute(of=PaymentMap, null=True)  # legacy, read only (see PaymentMap)
    payments_packed = BinaryAttribute(null=True, legacy_encoding=False)  # adapters/contracts.pack_payments
    ended_at_ms = NumberAttribute(null=True)
    used_lamports = NumberAttribute(null=True)
    refund_lamports = NumberAttribute(null=True)
    refund_status = UnicodeAttribute(default="NONE")
    refund_tx = UnicodeAttribute(null=True)
    refund_reason = UnicodeAttribute(null=True)
    refund_shard = NumberAttribute(null=True)
    refund_due_ms = NumberAttribute(null=True)
    # the refund's transaction record
    refund_lvbh = NumberAttribute(null=True)
    refund_attempt = NumberAttribute(null=True)
    refund_fee = NumberAttribute(null=True)
    refund_raw = BinaryAttribute(null=True, legacy_encoding=False)
    refund_confirmed_ms = NumberAttribute(null=True)
    low_time_for_ms = NumberAttribute(null=True)  # the expiry contract.low_time was sent for
    write_token = UnicodeAttribute(null=True)
    covered_ms = NumberAttribute(null=True)  # covered time (domain/coverage.py)
    covered_end_ms = NumberAttribute(null=True)
    credit_lamports = NumberAttribute(null=True)
    active_by_expiry = ActiveByExpiry()
    by_wallet = ByWallet()
    refunds_pending = RefundsPending()
    refunds_by_status = ContractRefundsByStatus()


class ByTier(GlobalSecondaryIndex["DeviceItem"]):
    class Meta:
        index_name = "by-tier"
        projection = AllProjection()

    tier = UnicodeAttribute(hash_key=True)
    device_id = UnicodeAttribute(range_key=True)


class DeviceItem(Model):
    class Meta(_Meta):
        pass

    device_id = UnicodeAttribute(hash_key=True)
    name = UnicodeAttribute()
    tier = UnicodeAttribute()
    uri = UnicodeAttribute()
    address = UnicodeAttribute()
    region = UnicodeAttribute()
    ram = UnicodeAttribute()
    capacity = NumberAttribute()
    leases = NumberAttribute(default=0)
    uptime = UnicodeAttribute(default="100.0%")
    audited = BooleanAttribute(default=True)
    key_hash = UnicodeAttribute(null=True)
    last_seen_ms = NumberAttribute(null=True)
    pubkey = UnicodeAttribute(null=True)  # ed25519, base58: signs the device's usage receipts
    previous_pubkeys = ListAttribute(of=UnicodeAttribute, null=True)
    by_tier = ByTier()


class ByAccount(GlobalSecondaryIndex["LedgerItem"]):
    class Meta:
        index_name = "by-account"
        projection = AllProjection()

    account = UnicodeAttribute(hash_key=True)
    account_seq = UnicodeAttribute(range_key=True)


class LedgerItem(Model):
    class Meta(_Meta):
        pass

    contract_id = UnicodeAttribute(hash_key=True)
    entry_id = UnicodeAttribute(range_key=True)
    account = UnicodeAttribute()
    account_seq = UnicodeAttribute()
    debit_lamports = NumberAttribute()
    credit_lamports = NumberAttribute()
    kind = UnicodeAttribute()
    created_at_ms = NumberAttribute()
    ref = UnicodeAttribute(null=True)
    by_account = ByAccount()


class ClaimRefundsByStatus(GlobalSecondaryIndex["ClaimItem"]):
    """Sparse: only the refund of a payment no contract holds carries refund_status."""

    class Meta:
        index_name = "refunds-by-status"
        projection = IncludeProjection(
            [
                "contract_id",
                "wallet",
                "refund_version",
                "refund_lamports",
                "refund_tx",
                "refund_reason",
                "refund_attempt",
                "refund_fee",
                "refund_confirmed_ms",
            ]
        )

    refund_status = UnicodeAttribute(hash_key=True)
    created_at_ms = NumberAttribute(range_key=True)


class Outbox(GlobalSecondaryIndex["ClaimItem"]):
    """Sparse: only an event not yet dispatched carries outbox_shard (adapters/outbox.py)."""

    class Meta:
        index_name = "outbox"
        projection = AllProjection()

    outbox_shard = NumberAttribute(hash_key=True)
    created_at_ms = NumberAttribute(range_key=True)


class ClaimItem(Model):
    class Meta(_Meta):
        pass

    pk = UnicodeAttribute(hash_key=True)
    kind = UnicodeAttribute()
    contract_id = UnicodeAttribute(null=True)
    wallet = UnicodeAttribute(null=True)
    request = UnicodeAttribute(null=True)
    status = NumberAttribute(null=True)
    response = UnicodeAttribute(null=True)
    created_at_ms = NumberAttribute()
    expires_at_ms = NumberAttribute(null=True)
    ttl = NumberAttribute(null=True)
    # the refund of a payment no contract holds (kind "refund")
    refund_status = UnicodeAttribute(null=True)
    refund_lamports = NumberAttribute(null=True)
    refund_tx = UnicodeAttribute(null=True)
    refund_reason = UnicodeAttribute(null=True)
    refund_lvbh = NumberAttribute(null=True)
    refund_attempt = NumberAttribute(null=True)
    refund_fee = NumberAttribute(null=True)
    refund_raw = BinaryAttribute(null=True, legacy_encoding=False)
    refund_confirmed_ms = NumberAttribute(null=True)
    refund_version = NumberAttribute(null=True)
    hits = NumberAttribute(null=True)  # requests counted by a rate-limit window item (rl#…)
    # an owner's webhooks (whk#{owner}, adapters/webhooks.py): packed JSON, and its write version
    hooks = UnicodeAttribute(null=True)
    hooks_version = NumberAttribute(null=True)
    # an outbox event (evt#{event_id}, kind "event"): written inside the money transaction
    event_type = UnicodeAttribute(null=True)
    event_data = UnicodeAttribute(null=True)
    outbox_shard = NumberAttribute(null=True)  # removed once dispatched: the item leaves the index
    dispatched_at_ms = NumberAttribute(null=True)
    outbox = Outbox()
    refunds_by_status = ClaimRefundsByStatus()


class MetricsItem(Model):
    class Meta(_Meta):
        pass

    contract_id = UnicodeAttribute(hash_key=True)
    batch_key = UnicodeAttribute(range_key=True)
    device_id = UnicodeAttribute()
    n = NumberAttribute()
    packed = BinaryAttribute(null=True, legacy_encoding=False)  # adapters/metrics.pack_rows (columnar, DEFLATE)
    samples = UnicodeAttribute(null=True)  # legacy, read only: JSON rows [ts_ms, cpu, mem, disk, net]
    ttl = NumberAttribute(null=True)
    at_ms = NumberAttribute(null=True)  # the server time the batch counted at (its covered interval ends there)
    receipt = UnicodeAttribute(null=True)  # a device-signed receipt (JSON: domain.usage_receipts.to_view)


MODELS = {
    "contracts": ContractItem,
    "devices": DeviceItem,
    "ledger": LedgerItem,
    "claims": ClaimItem,
    "metrics": MetricsItem,
}


def _book_item() -> Any:  # a Model class whose attributes are built from COUNTERS
    """The book's counter items (`book#{shard}`), kept in the claims table (small items that
    guard money moves live there): one NumberAttribute per `domain.books.COUNTERS`."""
    from ..domain.books import COUNTERS

    class Meta(_Meta):
        pass

    attrs = {
        "Meta": Meta,
        "pk": UnicodeAttribute(hash_key=True),
        **{name: NumberAttribute(null=True) for name in COUNTERS},
    }
    return type("BookItem", (Model,), attrs)


BookItem = _book_item()


class OpenQuotes(GlobalSecondaryIndex["QuoteItem"]):
    """Sparse: only an OPEN quote carries quote_shard; the watcher reads its unexpired ones."""

    class Meta:
        index_name = "open-quotes"
        projection = AllProjection()

    quote_shard = NumberAttribute(hash_key=True)
    expires_at_ms = NumberAttribute(range_key=True)


class QuoteItem(Model):
    """A quote (`quote#{quote_id}`), kept in the claims table with a TTL (docs/adr/0015-quotes.md)."""

    class Meta(_Meta):
        pass

    pk = UnicodeAttribute(hash_key=True)
    kind = UnicodeAttribute()  # "quote"
    quote_kind = UnicodeAttribute()
    tier = UnicodeAttribute()
    contract_id = UnicodeAttribute(null=True)
    seconds = NumberAttribute()
    lamports = NumberAttribute()
    recipient = UnicodeAttribute()
    reference = UnicodeAttribute()
    created_at_ms = NumberAttribute()
    expires_at_ms = NumberAttribute()
    quote_status = UnicodeAttribute()
    quote_shard = NumberAttribute(null=True)
    paid_contract_id = UnicodeAttribute(null=True)
    tx_signature = UnicodeAttribute(null=True)
    reason = UnicodeAttribute(null=True)
    ttl = NumberAttribute()
    open_quotes = OpenQuotes()


TABLE_OF = {BookItem: "claims", QuoteItem: "claims"}  # models that share another model's table


def bind(prefix: str, region: str, host: str | None) -> None:
    """Point every model at `{prefix}-<table>` on `host` (None = AWS)."""
    for name, model in [*MODELS.items(), *((t, m) for m, t in TABLE_OF.items())]:
        model.Meta.table_name = f"{prefix}-{name}"
        model.Meta.region = region
        model.Meta.host = host
        model._connection = None
