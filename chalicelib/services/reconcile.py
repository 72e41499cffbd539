"""Reconciliation of the books with the chain; see `domain/reconcile.py` for the
identity it checks. Read-only: it writes nothing, anywhere.

Reads, in this order (the chain first, so anything booked since is on chain already):
1. the treasury's balance and its context slot S (getBalance);
2. the treasury's history, newest first (getSignaturesForAddress, pages of 1,000, at most
   `max_signatures`); transactions after S are left out, and so are the ledger entries
   that book them;
3. the ledger's `treasury` account (pages of 1,000); each entry's `ref` is the signature
   of the transaction it books;
4. getTransaction for each transaction of the history that no entry books (and for the
   oldest booked one: the baseline is the treasury's balance before it);
5. the CONFIRMED refunds (the sparse refunds-by-status indexes) and each one's transaction.
A history or a refund list longer than the bounds gives `complete = False`: a mismatch.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..config import Settings
from ..domain import refunds as R
from ..domain.errors import Unavailable
from ..domain.ledger import TREASURY
from ..domain.reconcile import ChainTx, Report, SignatureInfo, Unbooked, check_refund, inbound, refund_id_of
from ..domain.signing import refund_memo

if TYPE_CHECKING:  # types only
    from ..ports import ChainHistory, ClaimStore, Clock, LedgerStore, RefundListing, RefundStore

PAGE = 1000


@dataclass(frozen=True)
class Reconciler:
    """history: the chain (`balance`, `signatures`, `transaction`).
    ledger:  the `treasury` account's entries (`by_account`).
    claims:  who holds a signature (`get_claim`).
    refunds: the refund records (`get`) and their listing by status (`by_status`).
    clock:   now, in Unix milliseconds.   settings: `treasury`."""

    history: ChainHistory
    ledger: LedgerStore
    claims: ClaimStore
    refunds: RefundStore
    listing: RefundListing
    clock: Clock
    settings: Settings
    max_signatures: int = 20_000
    max_transactions: int = 2_000

    def run(
        self, orphan_age_seconds: int = 3600, baseline_slot: int | None = None, check_refunds: bool = True
    ) -> Report:
        treasury = self.settings.treasury
        if not treasury:
            raise Unavailable("The treasury address is not configured (SI64_TREASURY).", reason="configuration")
        now_s = self.clock() // 1000
        notes: list[str] = []
        complete = True
        reads = {"tx": 0}
        cache: dict[str, ChainTx | None] = {}

        def tx_of(sig: str) -> ChainTx | None:
            if sig not in cache:
                reads["tx"] += 1
                cache[sig] = self.history.transaction(sig)
            return cache[sig]

        # 1-2. the chain
        chain_lamports, chain_slot = self.history.balance(treasury)
        sigs, before = [], None
        while True:
            page = self.history.signatures(treasury, before, PAGE)
            sigs += page
            if len(page) < PAGE:
                break
            if len(sigs) >= self.max_signatures:
                complete = False
                notes.append(
                    f"the treasury's history has more than {self.max_signatures} transactions; "
                    f"name a recent baseline slot"
                )
                break
            before = page[-1].signature
        late = {s.signature for s in sigs if s.slot > chain_slot}
        window = [s for s in sigs if s.slot <= chain_slot]  # newest first
        on_chain = {s.signature for s in window}

        # 3. the ledger's treasury account
        entries, token = [], None
        while True:
            rows, token = self.ledger.by_account(TREASURY, PAGE, token)
            entries += [e for e in rows if e.ref not in late]
            if not token:
                break
        booked = {e.ref for e in entries}

        # the baseline: before the first booked transaction, or after the slot named
        if baseline_slot is not None:
            after = [s for s in window if s.slot > baseline_slot]
            older = [s for s in window if s.slot <= baseline_slot]
            entries = [e for e in entries if e.ref in {s.signature for s in after} or e.ref not in on_chain]
            if older:
                last = tx_of(older[0].signature)
                baseline = last.post_balance(treasury) if last is not None else None
                if baseline is None:
                    raise Unavailable("The node did not return the baseline transaction.", reason="rpc")
            else:
                baseline = 0
            source = f"balance after slot {baseline_slot}"
        else:
            first = next((i for i in range(len(window) - 1, -1, -1) if window[i].signature in booked), None)
            if first is None:
                after, baseline, baseline_slot = [], chain_lamports, chain_slot
                source = "no booked transaction yet: the whole balance"
            else:
                t = tx_of(window[first].signature)
                pre = None if t is None else t.pre_balance(treasury)
                if pre is None:
                    raise Unavailable("The node did not return the first booked transaction.", reason="rpc")
                after, baseline, baseline_slot = window[: first + 1], pre, window[first].slot
                source = f"balance before the first booked transaction {window[first].signature}"
        ledger_lamports = sum(e.debit_lamports - e.credit_lamports for e in entries)
        phantom = sorted({e.ref for e in entries if e.ref not in on_chain and e.ref is not None})

        # 4. what the ledger does not book
        unbooked: list[Unbooked] = []
        for s in after:
            if s.signature in booked:
                continue
            if reads["tx"] >= self.max_transactions:
                complete = False
                notes.append(f"more than {self.max_transactions} unbooked transactions")
                break
            t = tx_of(s.signature)
            if t is None:
                complete = False
                notes.append(f"the node did not return {s.signature}")
                continue
            delta = t.delta(treasury)
            if treasury in t.signers:
                rid = refund_id_of(t.memos)
                r = self._refund(rid)
                if r is not None and r.status == R.SENT and r.tx_signature == s.signature:
                    unbooked.append(
                        Unbooked(
                            s.signature,
                            "refund_in_flight",
                            delta,
                            s.slot,
                            s.block_time,
                            refund_id=rid,
                            note="landed, not confirmed yet",
                        )
                    )
                elif delta:
                    unbooked.append(
                        Unbooked(
                            s.signature,
                            "unexplained",
                            delta,
                            s.slot,
                            s.block_time,
                            refund_id=rid,
                            note="sent by the treasury and booked nowhere",
                        )
                    )
                continue
            paid = inbound(t, treasury)
            unbooked += self._shares(s, paid, now_s, orphan_age_seconds)
            rest = delta - sum(paid.values())
            if rest:
                unbooked.append(
                    Unbooked(
                        s.signature,
                        "unexplained",
                        rest,
                        s.slot,
                        s.block_time,
                        note="changes the treasury's balance and is booked nowhere",
                    )
                )

        # 4b. a booked payment may hold other payers' shares (a co-signed transaction): each
        # payer's transfers are claimed apart, so a share nobody claimed is not in the ledger.
        # Only read when the books do not balance (one getTransaction per booked payment).
        explained = sum(u.lamports for u in unbooked)
        if chain_lamports - baseline - ledger_lamports - explained:
            by_ref: dict[str, int] = {}
            for e in entries:
                if e.ref:
                    by_ref[e.ref] = by_ref.get(e.ref, 0) + e.debit_lamports - e.credit_lamports
            for s in after:
                if s.signature not in booked or by_ref.get(s.signature, 0) <= 0:
                    continue
                if reads["tx"] >= self.max_transactions and s.signature not in cache:
                    complete = False
                    notes.append(f"more than {self.max_transactions} transactions to read")
                    break
                t = tx_of(s.signature)
                if t is None:
                    complete = False
                    notes.append(f"the node did not return {s.signature}")
                    continue
                paid = inbound(t, treasury)
                if sum(paid.values()) == by_ref[s.signature]:
                    continue  # every share is booked
                open_ = {p: n for p, n in paid.items() if self.claims.get_claim(s.signature, p) is None}
                unbooked += self._shares(s, open_, now_s, orphan_age_seconds, claimed_checked=True)

        # 5. every CONFIRMED refund is on chain as recorded
        problems, checked, token = [], 0, None
        while check_refunds:  # (the refusal job needs only the orphans: it skips this)
            refunds, token = self.listing.by_status(R.CONFIRMED, PAGE, token)
            for r in refunds:
                checked += 1
                if r.tx_signature and r.tx_signature not in on_chain and r.tx_signature not in late and complete:
                    problems.append(check_refund(r, None, treasury, refund_memo(r.refund_id)))
                    continue
                if reads["tx"] >= self.max_transactions:
                    complete = False
                    notes.append(f"more than {self.max_transactions} transactions to read")
                    break
                c = check_refund(
                    r, tx_of(r.tx_signature) if r.tx_signature else None, treasury, refund_memo(r.refund_id)
                )
                if not c.ok:
                    problems.append(c)
            if not token or not complete:
                break

        return Report(
            treasury=treasury,
            chain_lamports=chain_lamports,
            chain_slot=chain_slot,
            baseline_lamports=baseline,
            baseline_slot=baseline_slot,
            baseline_source=source,
            ledger_lamports=ledger_lamports,
            unbooked=unbooked,
            refunds_checked=checked,
            refund_problems=problems,
            orphan_age_seconds=orphan_age_seconds,
            signatures_read=len(sigs),
            transactions_read=reads["tx"],
            complete=complete,
            notes=notes,
            phantom_refs=phantom,
        )

    def _shares(
        self, s: SignatureInfo, paid: dict[str, int], now_s: int, orphan_age_seconds: int, claimed_checked: bool = False
    ) -> list[Unbooked]:
        """One Unbooked per payer's share of an inbound transaction the ledger does not book:
        claimed but unbooked, an orphan (older than the orphan age) or a recent payment."""
        out: list[Unbooked] = []
        for payer, lamports in sorted(paid.items()):
            if not claimed_checked and self.claims.get_claim(s.signature, payer) is not None:
                out.append(
                    Unbooked(
                        s.signature,
                        "claimed_unbooked",
                        lamports,
                        s.slot,
                        s.block_time,
                        payer,
                        note="claimed but not in the treasury account",
                    )
                )
            elif s.block_time is not None and now_s - s.block_time >= orphan_age_seconds:
                out.append(Unbooked(s.signature, "orphan", lamports, s.slot, s.block_time, payer))
            else:
                out.append(
                    Unbooked(
                        s.signature,
                        "recent_payment",
                        lamports,
                        s.slot,
                        s.block_time,
                        payer,
                        note=f"younger than {orphan_age_seconds} s: may still be rented",
                    )
                )
        return out

    def _refund(self, refund_id: str | None) -> R.Refund | None:
        if not refund_id:
            return None
        try:
            R.refund_kind(refund_id)
        except ValueError:
            return None
        return self.refunds.get(refund_id)
