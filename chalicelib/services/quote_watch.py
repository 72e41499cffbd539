"""The quote watcher: finds the payments of OPEN quotes by their Solana Pay reference and opens
(or extends) the contract with no further request (docs/adr/0015-quotes.md).

Each tick reads, per shard, the OPEN quotes from the sparse `open-quotes` index (no scan) and
asks `getSignaturesForAddress(reference)` ONCE per quote, then `getTransaction` only for a
quote whose reference has a landed signature: at most `1 × open quotes + 1 × payments found`
calls per tick. A quote is watched until `LATE_GRACE_MS` after its expiry (a payment that lands
after the expiry is then found and refused as `late`), and never again once closed.

The contract is opened by `Rentals.rent` / `Rentals.extend` themselves, with the payer and
signature found: the quote's memo binds the terms, the payment's claim, the contract and its
ledger postings are one transaction, so a second tick, another watcher or a `POST /api/rent`
with the same signature meets the claim and opens nothing more.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from ..domain import quotes as q
from ..domain.commands import ExtendRequest, RentRequest
from ..domain.errors import (
    ContractNotActive,
    DomainError,
    NoCapacity,
    PaymentAlreadyUsed,
    PaymentInvalid,
    TooManyLookups,
    Unavailable,
)
from ..domain.payments import NOT_CONFIRMED, NOT_FOUND

if TYPE_CHECKING:  # types only
    from ..ports import ChainHistory, Clock, QuoteStore
    from .rentals import Rentals

log = logging.getLogger(__name__)
LATE_GRACE_MS = 120_000  # how long past its expiry a quote is still looked up (to refuse a late payment)
OPEN_PER_SHARD = 100  # OPEN quotes read per shard per tick: the bound on lookups per tick
SIGNATURES_PER_LOOKUP = 10  # a reference normally carries one payment; a few more are tolerated
_RETRY = (NOT_FOUND, NOT_CONFIRMED)  # the node does not show it at `confirmed` yet: next tick
# a refusal's `reason` on the quote: the error's own code where its `reason` names only a field
_REASON_OF: dict[type[DomainError], str] = {
    ContractNotActive: "contract_not_active",
    NoCapacity: "no_capacity",
    PaymentAlreadyUsed: "payment_already_used",
}


@dataclass(frozen=True)
class TickReport:
    watched: int
    paid: int
    refused: int
    rpc_calls: int


@dataclass(frozen=True)
class QuoteWatcher:
    """quotes: OPEN quotes (`open_quotes`, `close_quote`); history: `signatures`, `transaction`;
    rentals: the rent and extend use cases; shards: the index's shards."""

    quotes: QuoteStore
    history: ChainHistory
    rentals: Rentals
    clock: Clock
    shards: int
    treasury: str

    def tick(self) -> TickReport:
        now = self.clock()
        counts = {"watched": 0, "paid": 0, "refused": 0, "rpc_calls": 0}
        for shard in range(self.shards):
            for quote in self.quotes.open_quotes(shard, now - LATE_GRACE_MS, OPEN_PER_SHARD):
                counts["watched"] += 1
                try:
                    outcome, calls = self._watch(quote, now)
                except (Unavailable, TooManyLookups) as err:  # the node or the table: next tick
                    log.warning("quote %s not checked: %s", quote.quote_id, err)
                    continue
                counts["rpc_calls"] += calls
                if outcome:
                    counts[outcome] += 1
        return TickReport(**counts)

    def _close(self, quote: q.Quote) -> None:
        if not self.quotes.close_quote(quote):
            log.info("quote %s was closed by another watcher", quote.quote_id)

    def _watch(self, quote: q.Quote, now: int) -> tuple[str | None, int]:
        """(what became of it: "paid", "refused" or None, RPC calls made)."""
        found = self.history.signatures(quote.reference, None, SIGNATURES_PER_LOOKUP)
        landed = [s for s in reversed(found) if not s.failed]  # oldest first
        if not landed:
            return None, 1  # unpaid: it reads EXPIRED after its expiry; the index stops listing it after the grace
        first = landed[0]
        tx = self.history.transaction(first.signature)
        if tx is None:
            return None, 2  # not visible at `confirmed` yet
        payers = sorted({t.source for t in tx.transfers if t.destination == self.treasury})
        reason = None
        if first.block_time is not None and first.block_time * 1000 >= quote.expires_at_ms:
            reason = "late"
        elif len(payers) != 1:
            reason = "several_payers" if payers else "wrong_recipient"
        if reason is not None:
            self._close(replace(quote, status=q.REFUSED, tx_signature=first.signature, reason=reason))
            return "refused", 2
        try:
            if quote.kind == q.RENT:
                receipt = self.rentals.rent(RentRequest(payers[0], quote.tier, quote.seconds, first.signature))
            else:
                assert quote.contract_id is not None
                receipt = self.rentals.extend(ExtendRequest(quote.contract_id, quote.seconds, first.signature))
        except PaymentInvalid as err:
            if err.reason in _RETRY:
                return None, 2
            return self._refuse(quote, first.signature, err), 2
        except (Unavailable, TooManyLookups):
            raise
        except DomainError as err:
            return self._refuse(quote, first.signature, err), 2
        contract_id = receipt.body.get("contract_id") or quote.contract_id
        self._close(replace(quote, status=q.PAID, paid_contract_id=contract_id, tx_signature=first.signature))
        return "paid", 2

    def _refuse(self, quote: q.Quote, sig: str, err: DomainError) -> str:
        reason = _REASON_OF.get(type(err)) or err.reason or type(err).__name__
        self._close(replace(quote, status=q.REFUSED, tx_signature=sig, reason=reason))
        return "refused"
