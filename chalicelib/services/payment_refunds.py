"""The refund of a payment that no contract holds: the payer's signed request, or an
operator's orphan refund. Each share (signature AND payer) is verified on chain, claimed
for its refund in the same transaction that books it, and queued for the refund worker
(services/refunds.py)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, NoReturn

from ..config import Settings
from ..domain import refunds as R
from ..domain.errors import (
    Conflict,
    Forbidden,
    InvalidRequest,
    NotFound,
    PaymentAlreadyUsed,
    PaymentInvalid,
    Unavailable,
)
from ..domain.ledger import orphan_payment_postings
from ..domain.payments import PaymentCheck
from ..domain.records import Claim

if TYPE_CHECKING:  # types only
    from ..ports import (
        ChainHistory,
        ClaimStore,
        Clock,
        PaymentVerifier,
        RefundQueue,
        RefundStore,
    )
    from .payment_checks import PaymentChecks

log = logging.getLogger(__name__)
REFUND_REQUEST = "refund"  # Claim.kind of a payment claimed by its refund
ANY_AGE_SECONDS = 100 * 365 * 86_400  # a refund of a payment is never too old


@dataclass(frozen=True)
class PaymentRefund:
    """A payment's refund as the API shows it; `first` when this request booked it."""

    payment_signature: str
    refund: R.Refund
    first: bool


@dataclass(frozen=True)
class PaymentRefunds:
    """The payer-signed refund of a payment to the treasury that no contract holds.

    refunds: the records (`get`, `open_payment_refund`).
    claims:  who holds a signature (`get_claim`).
    rpc:     payment verification on chain (`verify_payment`).
    queue:   the refund queue (`send_refund`).
    clock:   now, in Unix milliseconds.
    settings: `treasury`, `refund_min_lamports`.
    """

    refunds: RefundStore
    claims: ClaimStore
    rpc: PaymentVerifier
    queue: RefundQueue
    clock: Clock
    settings: Settings
    checks: PaymentChecks | None = None  # the payment-check bounds (services/payment_checks.py)

    def request(self, tx_signature: str, wallet: str, client: str | None = None) -> PaymentRefund:
        """Verify that `wallet` signed a payment to the treasury, then claim the signature for
        its refund in the same transaction that books it, and queue it. Asking again returns
        the same refund (and queues it again while it is owed: a lost enqueue is recovered)."""
        claim = self.claims.get_claim(tx_signature, wallet)
        if claim is not None:
            return self._existing(tx_signature, claim, wallet)
        s = self.settings
        if not s.treasury:
            raise Unavailable("The treasury address is not configured (SI64_TREASURY).", reason="configuration")
        now = self.clock()
        check = PaymentCheck(
            signature=tx_signature,
            wallet=wallet,
            treasury=s.treasury,
            min_lamports=1,
            max_age_seconds=ANY_AGE_SECONDS,
            now_s=now // 1000,
        )
        result = self.checks.verify(self.rpc, check, client) if self.checks else self.rpc.verify_payment(check)
        if not result.ok:
            raise PaymentInvalid(f"The payment does not prove what it must: {result.reason}.", reason=result.reason)
        return self._book(
            tx_signature,
            wallet,
            result.lamports_received,
            now,
            f"refund:{wallet}",
            lambda claim: self._existing(tx_signature, claim, wallet),
        )

    def _book(
        self,
        tx_signature: str,
        wallet: str,
        lamports: int,
        now: int,
        request: str,
        on_claimed: Callable[[Claim], PaymentRefund],
    ) -> PaymentRefund:
        """ONE transaction: claim `wallet`'s share of the signature for its refund, store the record,
        book it; then queue it. A claim that won the race meanwhile is answered by `on_claimed(claim)`."""
        refund_id = R.payment_refund_id(tx_signature, wallet)
        refund = R.new_refund(refund_id, wallet, lamports, min_lamports=self.settings.refund_min_lamports)
        entries = orphan_payment_postings(refund_id, refund.lamports, tx_signature, now, dust=refund.status == R.DUST)
        booked = Claim(
            tx_signature,
            REFUND_REQUEST,
            refund_id,
            wallet,
            request,
            {"refund_id": refund_id, "lamports": refund.lamports},
        )
        try:
            self.refunds.open_payment_refund(booked, refund, entries, now)
        except Conflict as exc:
            if "claim" not in exc.failed:
                raise Unavailable(
                    "Too many concurrent changes; nothing was changed. Retry.", reason="contention"
                ) from exc
            claim = self.claims.get_claim(tx_signature, wallet)
            if claim is None:
                raise Unavailable(
                    "Too many concurrent changes; nothing was changed. Retry.", reason="contention"
                ) from exc
            return on_claimed(claim)
        if refund.status == R.QUEUED:
            self.queue.send_refund(refund_id, refund.version)
        return PaymentRefund(tx_signature, refund, first=True)

    def refund_orphan(self, tx_signature: str, history: ChainHistory, payer: str | None = None) -> PaymentRefund:
        """An operator refunds an orphan payment share to its payer: one payer's transfers to the
        treasury in a transaction the treasury did not sign, claimed by nothing. The payers are
        the transfers' sources, which signed (read from the chain, never from the request);
        `payer` names one when several paid and more than one share is unclaimed. The share is
        verified for that payer exactly as on the payer-signed path, then claimed for its refund
        in the same transaction that books it, and queued. A share that a contract or a refund
        already holds is 409 `payment_already_used` (nothing written); the other payers' shares
        stay refundable."""
        from ..domain.reconcile import NotAnOrphan, orphan_payers

        if payer is not None:
            claim = self.claims.get_claim(tx_signature, payer)
            if claim is not None:
                raise self._claimed(claim)
        if not self.settings.treasury:
            raise Unavailable("The treasury address is not configured (SI64_TREASURY).", reason="configuration")
        tx = history.transaction(tx_signature)
        if tx is None:
            raise PaymentInvalid("The payment does not prove what it must: not_found.", reason="not_found")
        try:
            paid = orphan_payers(tx, self.settings.treasury)
        except NotAnOrphan as exc:
            raise PaymentInvalid(f"Not an orphan payment: {exc}", reason=exc.reason) from None
        if payer is not None and payer not in paid:
            raise PaymentInvalid(
                f"{payer} paid the treasury nothing in this transaction (payers: {', '.join(sorted(paid))}).",
                reason="wrong_payer",
            )
        if payer is None:
            if len(paid) == 1:
                (payer,) = paid
            else:
                open_ = [p for p in sorted(paid) if self.claims.get_claim(tx_signature, p) is None]
                if not open_:
                    held = self.claims.get_claim(tx_signature, sorted(paid)[0])
                    assert held is not None  # every share was just read as claimed
                    raise self._claimed(held)
                if len(open_) > 1:
                    raise InvalidRequest(
                        f"Several payers' shares of this payment are unclaimed ({', '.join(open_)}); "
                        "name the one to refund with 'payer'.",
                        reason="payer",
                    )
                (payer,) = open_
            claim = self.claims.get_claim(tx_signature, payer)
            if claim is not None:
                raise self._claimed(claim)
        now = self.clock()
        result = self.rpc.verify_payment(
            PaymentCheck(
                signature=tx_signature,
                wallet=payer,
                treasury=self.settings.treasury,
                min_lamports=1,
                max_age_seconds=ANY_AGE_SECONDS,
                now_s=now // 1000,
            )
        )
        if not result.ok:
            raise PaymentInvalid(f"The payment does not prove what it must: {result.reason}.", reason=result.reason)

        def lost_race(claim: Claim) -> NoReturn:
            raise self._claimed(claim)

        return self._book(tx_signature, payer, result.lamports_received, now, f"refund:operator:{payer}", lost_race)

    @staticmethod
    def _claimed(claim: Claim) -> PaymentAlreadyUsed:
        if claim.kind == REFUND_REQUEST:
            return PaymentAlreadyUsed(f"This payment is already being refunded ({claim.contract_id}).", reason="refund")
        return PaymentAlreadyUsed(
            f"This payment already paid for {claim.contract_id}; it is not an orphan.", reason="tx_signature"
        )

    def _existing(self, tx_signature: str, claim: Claim, wallet: str) -> PaymentRefund:
        if claim.kind != REFUND_REQUEST:
            raise PaymentAlreadyUsed(
                "This payment already paid for a contract; it is not refundable on its own.", reason="tx_signature"
            )
        if claim.wallet != wallet:
            raise Forbidden("This payment's refund belongs to another wallet.", reason="wallet")
        refund = self.refunds.get(claim.contract_id)
        if refund is None:  # the claim and its record are one item: a bug if it ever happens
            raise Unavailable("The refund record is not readable yet. Retry.", reason="database")
        if refund.status in (R.QUEUED, R.SENT):
            self.queue.send_refund(refund.refund_id, refund.version)
        return PaymentRefund(tx_signature, refund, first=False)

    def status(self, tx_signature: str, payer: str) -> PaymentRefund:
        """The refund of `payer`'s share of a payment (404 when nobody asked for one)."""
        refund = self.refunds.get(R.payment_refund_id(tx_signature, payer))
        if refund is None:
            raise NotFound("No refund was requested for this payment.", reason="tx_signature")
        return PaymentRefund(tx_signature, refund, first=False)
