"""Quotes in the claims table: `quote#{quote_id}` items with a TTL; an OPEN quote carries
`quote_shard`, so the sparse `open-quotes` index holds only the quotes still to watch."""

from __future__ import annotations

from ..domain.errors import Conflict
from ..domain.quotes import OPEN, Quote
from ..domain.storage import shard_of
from .dynamo import guarded, is_conditional_failure
from .models import QuoteItem


def quote_key(quote_id: str) -> str:
    return f"quote#{quote_id}"


def _quote(i: QuoteItem) -> Quote:
    return Quote(
        quote_id=i.pk.removeprefix("quote#"),
        kind=i.quote_kind,
        tier=i.tier,
        contract_id=i.contract_id,
        seconds=int(i.seconds),
        lamports=int(i.lamports),
        recipient=i.recipient,
        reference=i.reference,
        created_at_ms=int(i.created_at_ms),
        expires_at_ms=int(i.expires_at_ms),
        status=i.quote_status,
        paid_contract_id=i.paid_contract_id,
        tx_signature=i.tx_signature,
        reason=i.reason,
    )


def _outcome(q: Quote) -> list[tuple[str, str | None]]:
    return [("paid_contract_id", q.paid_contract_id), ("tx_signature", q.tx_signature), ("reason", q.reason)]


class QuotesRepo:
    def __init__(self, shards: int) -> None:
        self.shards = shards

    @guarded
    def put_quote(self, quote: Quote, ttl_ms: int) -> None:
        item = QuoteItem(
            quote_key(quote.quote_id),
            kind="quote",
            quote_kind=quote.kind,
            tier=quote.tier,
            contract_id=quote.contract_id,
            seconds=quote.seconds,
            lamports=quote.lamports,
            recipient=quote.recipient,
            reference=quote.reference,
            created_at_ms=quote.created_at_ms,
            expires_at_ms=quote.expires_at_ms,
            quote_status=OPEN,
            quote_shard=shard_of(quote.quote_id, self.shards),
            ttl=(quote.expires_at_ms + ttl_ms) // 1000,
        )
        try:
            item.save(condition=QuoteItem.pk.does_not_exist())
        except Exception as exc:
            if is_conditional_failure(exc):
                raise Conflict(["quote"]) from exc
            raise

    @guarded
    def get_quote(self, quote_id: str) -> Quote | None:
        try:
            return _quote(QuoteItem.get(quote_key(quote_id), consistent_read=True))
        except QuoteItem.DoesNotExist:
            return None

    @guarded
    def open_quotes(self, shard: int, now_ms: int, limit: int) -> list[Quote]:
        items = QuoteItem.open_quotes.query(shard, QuoteItem.expires_at_ms > now_ms, limit=limit)
        return [_quote(i) for i in items]

    @guarded
    def close_quote(self, quote: Quote) -> bool:
        try:
            QuoteItem(quote_key(quote.quote_id)).update(
                actions=[
                    QuoteItem.quote_status.set(quote.status),
                    QuoteItem.quote_shard.remove(),
                    *(getattr(QuoteItem, name).set(value) for name, value in _outcome(quote) if value is not None),
                ],
                condition=QuoteItem.quote_status == OPEN,
            )
        except Exception as exc:
            if is_conditional_failure(exc):
                return False
            raise
        return True
