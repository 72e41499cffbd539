"""The quote store's port (see `chalicelib/ports.py` for the rules every implementation
honours); `ports` re-exports it."""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:  # pragma: no cover - types only
    from .domain.quotes import Quote


class QuoteStore(Protocol):
    """Quotes in the claims table (`quote#{id}`, with a TTL), OPEN ones in a sparse index by
    shard and expiry (docs/adr/0015-quotes.md)."""

    def put_quote(self, quote: Quote, ttl_ms: int) -> None:
        """Store a new OPEN quote (one conditional put: Conflict(["quote"]) when its id is taken);
        the item expires (TTL) `ttl_ms` after the quote does."""

    def get_quote(self, quote_id: str) -> Quote | None:
        """The quote as stored (strongly consistent), or None."""

    def open_quotes(self, shard: int, now_ms: int, limit: int) -> list[Quote]:
        """Up to `limit` OPEN quotes of `shard` not yet expired at `now_ms`, soonest expiry first."""

    def close_quote(self, quote: Quote) -> bool:
        """Write `quote`'s final status (PAID, REFUSED or EXPIRED, with its contract, signature and
        reason) if the stored quote is still OPEN: True; False, and nothing written, otherwise."""
