"""Binding a payment to the request it pays for (docs/api.md, "Binding a payment"). Pure Python.

Everything on chain is public: a transfer to the treasury proves that money moved,
not who may spend it or on what. A rent or an extend is therefore accepted only
when its payment is bound to it, in one of two ways:

1. the payment carries its terms: a Memo instruction `si64:rent:{tier}:{seconds}`
   or `si64:extend:{contract_id}:{seconds}` in the paying transaction (the payer
   signed the transaction, so the payer chose these terms); or
2. the paying wallet signs the request (renter credentials over the body hash).

A payment whose memo names terms binds those terms and no others, even for a
signed request: a renter who wrote terms into a payment meant them.
"""

from __future__ import annotations

from collections.abc import Iterable

from .errors import Forbidden, PaymentInvalid, Unauthorized
from .signing import MEMO_PREFIX

BY_MEMO, BY_SIGNATURE = "memo", "signature"


def terms_in(memos: Iterable[str]) -> list[str]:
    """The memos that state si64 terms (other memos, e.g. a wallet's note, are ignored)."""
    return [m for m in memos if m.startswith(MEMO_PREFIX + ":")]


def bind(expected_memo: str, memos: Iterable[str], *, payer: str, signed_by: str | None) -> str:
    """How the payment is bound to this request (BY_MEMO or BY_SIGNATURE), or why it is not.

    `expected_memo` is the memo of exactly this request's terms (domain.signing);
    `memos` the texts of the payment's memo instructions; `payer` the wallet the
    payment must come from; `signed_by` the wallet whose renter credentials the
    request carried and that checked out (None for an unsigned request).
    """
    if signed_by is not None and signed_by != payer:
        raise Forbidden("The request is signed by another wallet than the one that pays.", reason="wallet")
    terms = terms_in(memos)
    if terms:
        if terms == [expected_memo]:
            return BY_MEMO
        raise PaymentInvalid(
            f"The payment's memo binds other terms than this request ({expected_memo!r} expected).",
            reason="memo_mismatch",
        )
    if signed_by == payer:
        return BY_SIGNATURE
    raise Unauthorized(
        "The payment is not bound to this request: sign the request with the paying wallet "
        "(X-Wallet, X-Timestamp, X-Signature over the body hash) or put the terms in the payment's memo "
        f"({expected_memo!r}).",
        reason="binding",
    )
