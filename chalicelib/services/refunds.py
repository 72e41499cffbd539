"""Refunds paid on chain: the worker that drives a refund record to CONFIRMED (or FAILED),
and the payer-signed refund of a payment that no contract holds.

The worker reads the record, asks the chain what became of its transaction, and
takes ONE step (`domain.refunds.next_step`); each step is one conditional write
(`ports.RefundStore.advance`) on the record as it was read. A lost race
(Conflict) re-reads and decides again; an outage (Unavailable) or a transaction
still pending leaves the message for redelivery. The signed transaction is
recorded BEFORE it is broadcast, so a crash at any line leaves at most one
transaction per refund that can land, and the next delivery finds it.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, NoReturn, TypeVar

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
from ..domain.ledger import network_fee_postings, orphan_payment_postings, refund_paid_postings
from ..domain.payments import PaymentCheck
from ..domain.records import Claim

if TYPE_CHECKING:  # types only
    from ..ports import (
        ChainHistory,
        ClaimStore,
        Clock,
        DeadLetters,
        PaymentVerifier,
        RefundChain,
        RefundListing,
        RefundQueue,
        RefundStore,
    )
    from .payment_checks import PaymentChecks

log = logging.getLogger(__name__)
MAX_STEPS = 8
_T = TypeVar("_T")


def _recorded(value: _T | None, what: str, r: R.Refund) -> _T:
    """A field the record's status guarantees (a SENT refund has its transaction)."""
    if value is None:
        raise ValueError(f"refund {r.refund_id} ({r.status}) has no {what}")
    return value


def _mark_sent(r: R.Refund, p: R.PreparedTransfer) -> R.Refund:
    return R.mark_sent(r, p.signature, p.last_valid_block_height, p.raw)


def _replace_expired(r: R.Refund, verdict: R.Verdict, p: R.PreparedTransfer) -> R.Refund:
    return R.replace_expired(r, verdict, p.signature, p.last_valid_block_height, p.raw)


REFUND_REQUEST = "refund"  # Claim.kind of a payment claimed by its refund
ANY_AGE_SECONDS = 100 * 365 * 86_400  # a refund of a payment is never too old


@dataclass
class Outcome:
    """What one delivery did: `done` (the message can be deleted) and what happened
    on the way (`events`: "sent", "replaced", "resent", "confirmed", "failed")."""

    refund_id: str
    done: bool
    status: str | None = None
    events: list[str] = field(default_factory=list)
    note: str = ""


@dataclass(frozen=True)
class RefundWorker:
    """Drive one refund a step at a time.

    refunds: the records (`get`, `advance`).
    chain:   the refund transfers (`latest_blockhash`, `prepare`, `send`, `status`, `fee`).
    clock:   now, in Unix milliseconds.
    commitment: the level at which a refund counts as landed (finalized: never rolled back).
    """

    refunds: RefundStore
    chain: RefundChain
    clock: Clock
    commitment: str = "finalized"

    def handle(self, refund_id: str) -> Outcome:
        """Take steps until the refund is done, must wait, or MAX_STEPS. Unavailable (the
        chain or the database did not answer) propagates: the caller retries later."""
        out = Outcome(refund_id, done=False)
        resent = False
        for _ in range(MAX_STEPS):
            r = self.refunds.get(refund_id)
            if r is None:
                out.done, out.note = True, "no such refund"
                return out
            out.status = r.status
            verdict = None
            if r.status == R.SENT:
                st = self.chain.status(_recorded(r.tx_signature, "transaction", r))
                lvbh = _recorded(r.last_valid_block_height, "last valid block height", r)
                verdict = R.classify(st.value, st.block_height, lvbh, commitment=self.commitment)
            step = R.next_step(r, verdict, has_raw=r.raw is not None and not resent)
            if step == R.DONE:
                out.done = True
                return out
            if step == R.WAIT:
                out.note = "transaction pending"
                return out
            try:
                if step == R.SEND:
                    self._send_new(r, functools.partial(_mark_sent, r), out, "sent")
                elif step == R.REPLACE:
                    self._send_new(
                        r, functools.partial(_replace_expired, r, _recorded(verdict, "verdict", r)), out, "replaced"
                    )
                elif step == R.RESEND:
                    resent = True
                    try:
                        self.chain.send(_recorded(r.raw, "signed bytes", r))
                        out.events.append("resent")
                    except R.RefundRefused as exc:  # it may still land or expire: never fail a live tx here
                        log.warning("refund %s: resend refused (%s); waiting for expiry", refund_id, exc.reason)
                elif step == R.CONFIRM:
                    fee = self.chain.fee(_recorded(r.tx_signature, "transaction", r))
                    if fee is None:
                        out.note = "fee not readable yet"
                        return out
                    after = R.confirm(r, fee, self.clock())
                    self.refunds.advance(r, after, refund_paid_postings(after), self.clock())
                    out.events.append("confirmed")
                elif step == R.FAIL:
                    fee = self.chain.fee(_recorded(r.tx_signature, "transaction", r))
                    if fee is None:
                        out.note = "fee not readable yet"
                        return out
                    now = self.clock()
                    after = R.fail(r, R.describe_err(_recorded(verdict, "verdict", r).err))
                    entries = network_fee_postings(r.refund_id, r.attempt, fee, r.tx_signature, now) if fee else []
                    self.refunds.advance(r, after, entries, now)
                    out.events.append("failed")
            except Conflict:
                continue  # another delivery moved the record: read it again and decide again
        out.note = out.note or "too many steps"
        return out

    def _send_new(
        self, r: R.Refund, record: Callable[[R.PreparedTransfer], R.Refund], out: Outcome, event: str
    ) -> None:
        """Sign a new transaction, record it (conditional write) and only then broadcast it.
        A refusal by the chain makes the refund FAILED with the chain's reason."""
        try:
            prepared = self.chain.prepare(r, self.chain.latest_blockhash())
        except R.RefundRefused as exc:
            self.refunds.advance(r, R.fail(r, exc.reason), [], self.clock())
            out.events.append("failed")
            return
        after = record(prepared)
        self.refunds.advance(r, after, [], self.clock())  # Conflict: not ours to send
        try:
            self.chain.send(prepared.raw)
        except R.RefundRefused as exc:
            # preflight refused it: the node never forwarded it, so it cannot land
            self.refunds.advance(after, R.fail(after, exc.reason), [], self.clock())
            out.events.append("failed")
            return
        out.events.append(event)


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


@dataclass(frozen=True)
class RefundOperations:
    """An operator's retry of a FAILED refund (still owed in the ledger): FAILED → QUEUED,
    one conditional write, then queued for the worker.

    refunds: the records (`get`, `advance`).
    queue:   the refund queue (`send_refund`).
    clock:   now, in Unix milliseconds.
    """

    refunds: RefundStore
    queue: RefundQueue
    clock: Clock

    def retry(self, refund_id: str) -> R.Refund:
        try:
            R.refund_kind(refund_id)
        except ValueError:
            raise NotFound("No such refund.", reason="refund_id") from None
        for _ in range(MAX_STEPS):
            r = self.refunds.get(refund_id)
            if r is None:
                raise NotFound("No such refund.", reason="refund_id")
            if r.status != R.FAILED:
                if r.status in (R.QUEUED, R.SENT):
                    self.queue.send_refund(r.refund_id, r.version)
                return r  # nothing to retry: it is moving or done
            after = R.retry(r)
            try:
                self.refunds.advance(r, after, [], self.clock())
            except Conflict:
                continue
            self.queue.send_refund(after.refund_id, after.version)
            return after
        raise Unavailable("Too many concurrent changes; nothing was changed. Retry.", reason="contention")


@dataclass(frozen=True)
class RefundAdmin:
    """The operator's view of the refunds: a page by status from the sparse
    `refunds-by-status` indexes, and the dead-letter queue moved back to the refund queue.

    listing: refunds by status (`by_status`).
    dead_letters: the refund queues (`redrive`).
    """

    listing: RefundListing
    dead_letters: DeadLetters
    max_redrive: int = 100

    def list(self, status: str, limit: int, token: str | None) -> tuple[list[R.Refund], str | None]:
        if status not in R.STATUSES:
            from ..domain.errors import InvalidRequest

            raise InvalidRequest(f"'status' must be one of {', '.join(R.STATUSES)}.", reason="status")
        return self.listing.by_status(status, limit, token)

    def redrive(self, limit: int | None = None) -> int:
        """Move at most `limit` (≤ max_redrive) dead letters back; how many moved."""
        return self.dead_letters.redrive(min(limit or self.max_redrive, self.max_redrive))
