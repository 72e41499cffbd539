"""PynamoDB models of the claims table (docs/data-model.md): payment claims and the other small
items kept there (idempotency, rate-limit windows, webhooks, outbox events), the book's counter
items and quotes."""

from __future__ import annotations

from typing import Any

from pynamodb.attributes import BinaryAttribute, NumberAttribute, UnicodeAttribute
from pynamodb.indexes import AllProjection, GlobalSecondaryIndex, IncludeProjection

from .models_base import SharedClientModel, TableMeta


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


class ClaimItem(SharedClientModel):
    class Meta(TableMeta):
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


def _book_item() -> Any:  # a Model class whose attributes are built from COUNTERS
    """The book's counter items (`book#{shard}`), kept in the claims table (small items that
    guard money moves live there): one NumberAttribute per `domain.books.COUNTERS`."""
    from ..domain.books import COUNTERS

    class Meta(TableMeta):
        pass

    attrs = {
        "Meta": Meta,
        "pk": UnicodeAttribute(hash_key=True),
        **{name: NumberAttribute(null=True) for name in COUNTERS},
    }
    return type("BookItem", (SharedClientModel,), attrs)


BookItem = _book_item()


class OpenQuotes(GlobalSecondaryIndex["QuoteItem"]):
    """Sparse: only an OPEN quote carries quote_shard; the watcher reads its unexpired ones."""

    class Meta:
        index_name = "open-quotes"
        projection = AllProjection()

    quote_shard = NumberAttribute(hash_key=True)
    expires_at_ms = NumberAttribute(range_key=True)


class QuoteItem(SharedClientModel):
    """A quote (`quote#{quote_id}`), kept in the claims table with a TTL (docs/adr/0015-quotes.md)."""

    class Meta(TableMeta):
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
