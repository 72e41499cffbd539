"""Quotes: Solana Pay transfer requests for a rental or an extension. Pure Python.

A quote fixes the terms (tier and seconds, or contract and additional seconds), the price in
lamports, a fresh `reference` (a base58 32-byte key the payer's wallet adds to its transfer as
a read-only non-signer account, so the backend can find the payment with
`getSignaturesForAddress(reference)`) and an expiry. Its `memo` is the binding memo of those
terms (domain.signing), so a payment made from the quote binds to exactly that request by the
existing memo rule (domain.binding) and is claimed by the same single transaction as a rent.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import quote as _pct

from .money import LAMPORTS_PER_SOL
from .signing import extend_memo, rent_memo

RENT, EXTEND = "rent", "extend"
OPEN, PAID, EXPIRED, REFUSED = "OPEN", "PAID", "EXPIRED", "REFUSED"
QUOTE_LABEL = "SI64"
DEFAULT_QUOTE_SECONDS = 15 * 60


def sol_amount(lamports: int) -> str:
    """The Solana Pay `amount` of `lamports`: SOL as a plain decimal, a leading 0 below 1, no
    exponent, no trailing zeros, at most 9 decimals (an exact integer prints without a point)."""
    if isinstance(lamports, bool) or not isinstance(lamports, int) or lamports < 0:
        raise ValueError("lamports must be a non-negative int")
    whole, frac = divmod(lamports, LAMPORTS_PER_SOL)
    return f"{whole}.{frac:09d}".rstrip("0").rstrip(".")


def solana_pay_url(recipient: str, lamports: int, reference: str, message: str, memo: str) -> str:
    """A Solana Pay transfer request (spec v1): `solana:{recipient}?amount=…&reference=…&label=…
    &message=…&memo=…`, every value percent-encoded as UTF-8 (encodeURIComponent: a space is
    %20, which both URLSearchParams and a plain percent-decoder read back)."""
    params = (
        ("amount", sol_amount(lamports)),
        ("reference", reference),
        ("label", QUOTE_LABEL),
        ("message", message),
        ("memo", memo),
    )
    return f"solana:{recipient}?" + "&".join(f"{k}={_pct(v, safe='')}" for k, v in params)


@dataclass(frozen=True)
class Quote:
    quote_id: str
    kind: str  # RENT or EXTEND
    tier: str
    contract_id: str | None  # the contract an EXTEND quote extends
    seconds: int
    lamports: int
    recipient: str
    reference: str
    created_at_ms: int
    expires_at_ms: int
    status: str = OPEN
    paid_contract_id: str | None = None
    tx_signature: str | None = None
    reason: str | None = None

    @property
    def memo(self) -> str:
        """The binding memo of the quote's terms (domain.signing)."""
        if self.kind == RENT:
            return rent_memo(self.tier, self.seconds)
        assert self.contract_id is not None
        return extend_memo(self.contract_id, self.seconds)

    @property
    def message(self) -> str:
        hours = f"{self.seconds / 3600:g}"
        if self.kind == RENT:
            return f"SI64 {self.tier} rental, {hours} h"
        return f"SI64 extension of {self.contract_id}, {hours} h"

    @property
    def url(self) -> str:
        return solana_pay_url(self.recipient, self.lamports, self.reference, self.message, self.memo)

    def status_at(self, now_ms: int) -> str:
        """OPEN turns EXPIRED at `expires_at_ms` when nothing paid it; PAID and REFUSED are final."""
        if self.status == OPEN and now_ms >= self.expires_at_ms:
            return EXPIRED
        return self.status
