"""Refunds paid on chain: the worker that drives a refund record to CONFIRMED (or FAILED),
and the operator's retry and redrive (the refund of a payment no contract holds:
services/payment_refunds.py).

The worker reads the record, asks the chain what became of its transaction, and
takes ONE step (`domain.refunds.next_step`); each step is one conditional write
(`ports.RefundStore.advance`) on the record as it was read, or as its own last
write left it (one read per delivery). A lost race (Conflict) re-reads and decides
again; an outage (Unavailable) or a transaction still pending leaves the message
for redelivery. The signed transaction is
recorded BEFORE it is broadcast, so a crash at any line leaves at most one
transaction per refund that can land, and the next delivery finds it.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, TypeVar

from ..domain import refunds as R
from ..domain.errors import (
    Conflict,
    NotFound,
    Unavailable,
)
from ..domain.ledger import network_fee_postings, refund_paid_postings

if TYPE_CHECKING:  # types only
    from ..ports import (
        Clock,
        DeadLetters,
        RefundChain,
        RefundListing,
        RefundQueue,
        RefundStore,
    )

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
        known: R.Refund | None = None  # the record as this delivery's last write left it
        for _ in range(MAX_STEPS):
            # after our own conditional write succeeded the stored record IS `known`: no read;
            # a later writer's change still shows, as a Conflict on our next write
            r, known = (known if known is not None else self.refunds.get(refund_id)), None
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
                    known = self._send_new(r, functools.partial(_mark_sent, r), out, "sent")
                elif step == R.REPLACE:
                    known = self._send_new(
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
                    known = after
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
                    known = after
                    out.events.append("failed")
            except Conflict:
                continue  # another delivery moved the record: read it again and decide again
        out.note = out.note or "too many steps"
        return out

    def _send_new(
        self, r: R.Refund, record: Callable[[R.PreparedTransfer], R.Refund], out: Outcome, event: str
    ) -> R.Refund:
        """Sign a new transaction, record it (conditional write) and only then broadcast it.
        A refusal by the chain makes the refund FAILED with the chain's reason. The record as
        written last."""
        try:
            prepared = self.chain.prepare(r, self.chain.latest_blockhash())
        except R.RefundRefused as exc:
            failed = R.fail(r, exc.reason)
            self.refunds.advance(r, failed, [], self.clock())
            out.events.append("failed")
            return failed
        after = record(prepared)
        self.refunds.advance(r, after, [], self.clock())  # Conflict: not ours to send
        try:
            self.chain.send(prepared.raw)
        except R.RefundRefused as exc:
            # preflight refused it: the node never forwarded it, so it cannot land
            failed = R.fail(after, exc.reason)
            self.refunds.advance(after, failed, [], self.clock())
            out.events.append("failed")
            return failed
        out.events.append(event)
        return after


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
