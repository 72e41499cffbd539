"""The payment side of a paid request (rent, extend): verify the payment on chain and that it is
bound to the request (docs/api.md "Binding a payment"), and answer a request whose payment was
already claimed with its first answer. `Rentals` (services/rentals.py) is built on it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..domain import binding
from ..domain.errors import PaymentAlreadyUsed, PaymentInvalid, TooManyLookups, Unavailable
from ..domain.payments import PaymentCheck, PaymentResult

if TYPE_CHECKING:  # types only: importing the Protocols costs cold-start time
    from ..config import Settings
    from ..ports import ClaimStore, PaymentVerifier
    from .payment_checks import PaymentChecks


@dataclass(frozen=True)
class Receipt:
    """The answer to a paid request: `body` is the receipt (domain.receipts) stored with
    the payment's claim; `first` is True when this request committed it, False for a replay."""

    body: dict[str, Any]
    first: bool


# Refusals of a real payment by the wallet to the treasury: binding is decided first, so a
# request that cannot bind the payment learns nothing more about it than "bind it first".
_BINDABLE = ("insufficient_amount", "too_old")


def busy() -> Unavailable:
    return Unavailable("Too many concurrent changes to this resource; nothing was changed. Retry.", reason="contention")


class PaidRequests:
    """What a paid request needs of the payment: claims (`get_claim`), the chain (`rpc`, through
    `checks` when set) and `settings` (`treasury`, `payment_max_age_seconds`). A base of
    `Rentals`, which holds them."""

    claims: ClaimStore
    rpc: PaymentVerifier
    settings: Settings
    checks: PaymentChecks | None

    def _replay(self, sig: str, payer: str, fingerprint: str) -> Receipt | None:
        """None while `payer`'s share of the signature is unclaimed; the first answer for the same
        request; else 409. A claim is per signature AND payer: a co-signer's share is not this one."""
        claim = self.claims.get_claim(sig, payer)
        if claim is None:
            return None
        if claim.request == fingerprint:
            return Receipt(claim.response, first=False)
        raise PaymentAlreadyUsed("This transaction signature already paid for something else.", reason="tx_signature")

    def _landed_anyway(self, sig: str, payer: str, fingerprint: str, attempt: dict[str, Any]) -> Receipt:
        """The transaction got no answer (timeouts after the SDK's retries). It may have landed:
        one read of the claim tells. This attempt's own receipt there → it did, and this is the
        first answer; otherwise the 503 stands and, as docs/api.md says, nothing was changed."""
        try:
            claim = self.claims.get_claim(sig, payer)
        except Unavailable:
            claim = None
        if claim is not None and claim.request == fingerprint and claim.response == attempt:
            return Receipt(claim.response, first=True)
        raise Unavailable("The database did not answer; nothing was changed. Retry later.", reason="database")

    def _claimed(self, sig: str, payer: str, fingerprint: str, attempt: dict[str, Any]) -> Receipt:
        """The transaction found the signature claimed: replay, 409, or (claim not yet visible) retry.

        A claim holding exactly this attempt's receipt is this request's own write, sent again by
        the SDK after a lost answer (botocore retries a timed-out TransactWriteItems): it is the
        first answer. A rent's receipt names the contract id drawn at random for this attempt."""
        replay = self._replay(sig, payer, fingerprint)
        if replay is None:
            raise busy()
        if replay.body == attempt:
            return Receipt(replay.body, first=True)
        return replay

    def _verify(
        self,
        sig: str,
        wallet: str,
        min_lamports: int,
        now_ms: int,
        fingerprint: str,
        terms_memo: str,
        signed_by: str | None,
        client: str | None = None,
    ) -> tuple[PaymentResult | None, Receipt | None]:
        """Verify the payment on chain and that it is bound to this request (docs/api.md "Binding a
        payment"): the payment's memo states exactly these terms, or `signed_by` — the wallet whose
        renter credentials the request carried and that checked out — is the payer."""
        s = self.settings
        if not s.treasury:
            raise Unavailable("The treasury address is not configured (SI64_TREASURY).", reason="configuration")
        check = PaymentCheck(
            signature=sig,
            wallet=wallet,
            treasury=s.treasury,
            min_lamports=min_lamports,
            max_age_seconds=s.payment_max_age_seconds,
            now_s=now_ms // 1000,
        )
        try:
            result = self.checks.verify(self.rpc, check, client) if self.checks else self.rpc.verify_payment(check)
        except TooManyLookups:
            # over the address's budget of chain lookups: a payment this request already spent is
            # still answered from its claim (one read, no lookup); anything else waits its window
            replay = self._replay(sig, wallet, fingerprint)
            if replay:
                return None, replay
            raise
        if result.ok or result.reason in _BINDABLE:
            # the transaction is a payment by `wallet` to the treasury: is it bound to this request?
            binding.bind(terms_memo, result.memos, payer=wallet, signed_by=signed_by)
        if result.ok:
            return result, None
        if result.reason == "too_old":  # a retry of a request that succeeded long ago still gets its answer
            replay = self._replay(sig, wallet, fingerprint)
            if replay:
                return None, replay
        raise PaymentInvalid(f"The payment does not prove what it must: {result.reason}.", reason=result.reason)
