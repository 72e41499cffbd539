"""Quotes: ask for a rental or an extension, get a Solana Pay transfer request to pay it.

A quote is stored OPEN (one conditional put in the claims table, with a TTL) with a fresh
`reference` key, the price of its terms and an expiry. Its memo is the binding memo of those
terms, so the payment it asks for binds to exactly that rent or extend (domain.binding).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..config import Settings
from ..domain import contracts as dc
from ..domain import money
from ..domain import quotes as q
from ..domain.errors import NotFound, Unavailable

if TYPE_CHECKING:  # types only
    from collections.abc import Callable

    from ..ports import Clock, ContractStore, QuoteStore

QUOTE_TTL_MS = 7 * 86_400_000  # a closed or expired quote is readable this long after its expiry


def new_quote_id() -> str:
    return "QTE-" + secrets.token_urlsafe(16)


def new_reference() -> str:
    """A fresh base58 public key (solders, loaded on first use): only its public half is kept;
    nobody needs to sign with it, a wallet adds it as a read-only, non-signer account."""
    from solders.keypair import Keypair

    return str(Keypair().pubkey())


@dataclass(frozen=True)
class Quotes:
    """quotes: the quote store (`put_quote`, `get_quote`); contracts: `get` (the contract an
    extension quote extends); settings: `treasury`, `quote_seconds`, `max_duration_hours`."""

    quotes: QuoteStore
    contracts: ContractStore
    clock: Clock
    settings: Settings
    reference: Callable[[], str] = new_reference

    def _store(self, kind: str, tier: str, contract_id: str | None, seconds: int, lamports: int) -> q.Quote:
        if not self.settings.treasury:
            raise Unavailable("The treasury address is not configured (SI64_TREASURY).", reason="configuration")
        now = self.clock()
        quote = q.Quote(
            quote_id=new_quote_id(),
            kind=kind,
            tier=tier,
            contract_id=contract_id,
            seconds=seconds,
            lamports=lamports,
            recipient=self.settings.treasury,
            reference=self.reference(),
            created_at_ms=now,
            expires_at_ms=now + q.DEFAULT_QUOTE_SECONDS * 1000,
        )
        self.quotes.put_quote(quote, QUOTE_TTL_MS)
        return quote

    def rent(self, tier: str, seconds: int) -> q.Quote:
        """A quote for renting `tier` for `seconds` (validated by the caller)."""
        return self._store(
            q.RENT, tier, None, seconds, money.price_lamports(money.TIERS[tier].lamports_per_hour, seconds)
        )

    def extend(self, contract_id: str, seconds: int) -> q.Quote:
        """A quote for extending a live contract by `seconds`: NotFound for an unknown contract,
        409 for an ended one or one the extension would take past the maximum duration."""
        contract = self.contracts.get(contract_id)
        if contract is None:
            raise NotFound("No such contract.", reason="contract_id")
        now = self.clock()
        price = dc.extension_price(contract, seconds)
        dc.extend(  # the same checks as the extension itself, before anything is stored
            contract,
            seconds=seconds,
            received_lamports=price,
            sig="quote",
            now_ms=now,
            max_seconds=self.settings.max_duration_hours * 3600,
        )
        return self._store(q.EXTEND, contract.tier, contract_id, seconds, price)

    def get(self, quote_id: str) -> q.Quote:
        quote = self.quotes.get_quote(quote_id) if quote_id.startswith("QTE-") and len(quote_id) <= 64 else None
        if quote is None:
            raise NotFound("No such quote.", reason="quote_id")
        return quote
