"""Whole-system property: a hypothesis state machine drives the REAL services (as
`bootstrap.Container` wires them) on the in-memory fakes with an injectable clock —
rents, extends, usage reports, settles, sweeps, refund deliveries (duplicated, reordered,
delayed), payer refund requests, operator retries, clock jumps, chain trouble, and injected
faults (a dependency timing out before a call, a write landing with its answer lost, the
process killed before/after any port call).

After EVERY step (`harness.check`): money is conserved to the lamport for every contract
(received = used + refunded + owed + dust) and across the ledger (debits = credits; the
treasury account = what the chain says it received minus what it sent, fees included); slots
never exceed capacity and equal the ACTIVE contracts; each payment pays once (one claim per
signature); no refund is paid twice. A request that failed before any write landed left the
tables exactly as they were. At the end, time passes with everything up and every refund is
paid exactly once (`check_settled`).

Bounded in `make test` (100 examples of at most 60 steps, ~10 s here); `SI64_SOAK=1` runs the long one
(`make soak`), SI64_SOAK_EXAMPLES / SI64_SOAK_STEPS tune it.
"""

from __future__ import annotations

import os
from collections import Counter
from decimal import Decimal

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from chalicelib.domain import contracts as dc
from chalicelib.domain import ledger, money
from chalicelib.domain import refunds as R
from chalicelib.domain.commands import ExtendRequest
from chalicelib.domain.errors import ContractNotActive, DomainError, NoCapacity, Unavailable
from tests.faults.harness import CHAIN_METHODS, Kill, Killed, World, check, check_settled
from tests.services.conftest import make_world
from tests.support.fakes import ALWAYS_COVERED_SECONDS, database_unavailable, new_wallet

SOAK = os.environ.get("SI64_SOAK") == "1"
EXAMPLES = int(os.environ.get("SI64_SOAK_EXAMPLES", "2000")) if SOAK else 100
STEPS = int(os.environ.get("SI64_SOAK_STEPS", "120")) if SOAK else 60

TIERS = ["M2", "ORIN"]
seconds = st.sampled_from([60, 61, 599, 1800, 3600, 7200, 4 * 3600 + 1])
overpay = st.sampled_from([0, 0, 1, 4_999, 5_000, 123_457])
index = st.integers(min_value=0, max_value=1000)
# a fault: at which port call of the request (k), and what happens there
# a fault: where (the k-th port call of the step, or the first call of one of the port methods
# the use case calls) and what happens there (a timeout before it runs, its answer lost after
# it ran, the process killed before or after it)
KINDS = st.sampled_from(["timeout", "lost", "kill", "kill_after"])
RENT = ["rpc.verify_payment", "devices.by_tier", "tx.open_rental", "claims.get_claim"]
EXTEND = ["contracts.get", "rpc.verify_payment", "tx.extend_rental", "claims.get_claim"]
SETTLE = ["contracts.get", "tx.end_rental", "queue.send_refund"]
METRICS = ["metrics.report_context", "metrics.put_batch", "metrics.stamp_device"]
SWEEP = ["contracts.refunds_owed", "contracts.due", "contracts.get", "tx.end_rental", "queue.send_refund"]
WORKER = ["refunds.get", "refunds.advance", *(f"chain.{m}" for m in CHAIN_METHODS)]
PAYMENT_REFUND = [
    "claims.get_claim",
    "rpc.verify_payment",
    "refunds.open_payment_refund",
    "refunds.get",
    "queue.send_refund",
]


def faults(calls: list[str]):
    return st.one_of(
        st.none(),
        st.tuples(KINDS, st.integers(min_value=0, max_value=12)),
        st.tuples(KINDS, st.sampled_from(calls)),
        st.tuples(KINDS, st.sampled_from(calls)),
    )


class WholeSystem(RuleBasedStateMachine):
    @initialize(shards=st.sampled_from([1, 2, 4]), capacity=st.sampled_from([1, 2, 3]))
    def build(self, shards, capacity):
        self.w = World(
            shards=shards, capacity=capacity, max_duration_hours=6, devices={"M2": ["m2-a", "m2-b"], "ORIN": ["orin-a"]}
        )
        self.rents: list = []  # (request, first answer)
        self.extends: list = []
        self.orphans: list = []  # (signature, wallet) of payments no contract holds
        self.steps = 0

    # -- running a request under a fault ----------------------------------------------
    def _attempt(self, call, f, *, job: bool = False):
        """Run `call` with fault `f`; returns (result or None, exception or None). A request that
        raised before any write landed must have left the tables unchanged."""
        w = self.w
        w.reset_trace()
        before = w.db.snapshot()
        if f is not None:
            kind, at = f
            where = at if isinstance(at, str) else ""
            if kind.startswith("kill") or where.startswith("queue."):
                exc = None  # a dead process (the queue port never raises: only a death stops it)
            elif where.startswith(("chain.", "rpc.")):
                exc = Unavailable("Solana RPC unreachable (timeout)", reason="rpc")
            else:
                exc = database_unavailable()
            when = "after" if kind in ("lost", "kill_after") else "before"
            w.kill = Kill(None, when, exc, at) if where else Kill(at, when, exc)
        try:
            return call(), None
        except (Killed, DomainError) as exc:
            if not w.wrote() and not job:
                assert w.db.snapshot() == before, f"a failed request left something behind: {exc!r}"
            return None, exc
        finally:
            w.kill = None
            w.collect()

    def _contract(self, i):
        ids = [b["contract_id"] for _, b in self.rents]
        return self.w.c.contracts.get(ids[i % len(ids)]) if ids else None

    # -- rules --------------------------------------------------------------------------
    @rule(tier=st.sampled_from(TIERS), secs=seconds, extra=overpay, f=faults(RENT), retry=st.booleans())
    def rent(self, tier, secs, extra, f, retry):
        req = self.w.rent_request(secs, extra, tier)
        out, exc = self._attempt(lambda: self.w.c.rentals.rent(req), f)
        if exc is not None and retry:
            out, exc = self._attempt(lambda: self.w.c.rentals.rent(req), None)
        if out is not None:
            self.rents.append((req, out.body))
        elif not any(p.sig == req.tx_signature for c in self.w.contracts() for p in c.payments):
            self.orphans.append((req.tx_signature, req.wallet))  # paid, not rented: refundable

    @precondition(lambda self: self.rents)
    @rule(i=index, secs=seconds, extra=overpay, f=faults(EXTEND), retry=st.booleans())
    def extend(self, i, secs, extra, f, retry):
        k = self._contract(i)
        req = self.w.extend_request(k, secs, extra)
        out, exc = self._attempt(lambda: self.w.c.rentals.extend(req), f)
        if exc is not None and retry:
            out, exc = self._attempt(lambda: self.w.c.rentals.extend(req), None)
        if out is not None:
            self.extends.append((req, out.body))
            after = self.w.c.contracts.get(k.contract_id)
            assert sum(1 for p in after.payments if p.sig == req.tx_signature) == 1

    @precondition(lambda self: self.rents or self.extends)
    @rule(i=index)
    def replay(self, i):
        """The same paid request again, any time later: the first answer, nothing written."""
        done = (self.rents + self.extends)[i % len(self.rents + self.extends)]
        service = self.w.c.rentals.rent if done in self.rents else self.w.c.rentals.extend
        before = self.w.db.snapshot()
        again = service(done[0])
        assert (again.first, again.body) == (False, done[1])
        assert self.w.db.snapshot() == before

    @precondition(lambda self: self.rents)
    @rule(i=index, f=faults(SETTLE), retry=st.booleans())
    def settle(self, i, f, retry):
        k = self._contract(i)
        out, exc = self._attempt(lambda: self.w.c.rentals.settle(k.contract_id, k.wallet), f)
        if exc is not None and retry:
            out, exc = self._attempt(lambda: self.w.c.rentals.settle(k.contract_id, k.wallet), None)
        if out is not None:
            assert out.status != dc.ACTIVE

    @precondition(lambda self: self.rents)
    @rule(i=index, n=st.integers(min_value=1, max_value=5), f=faults(METRICS))
    def metrics(self, i, n, f):
        k = self._contract(i)
        rows = lambda now, lo, hi: [[now - (n - 1 - j) * 1000, Decimal("12.5"), 1024, 1, 0] for j in range(n)]
        self._attempt(lambda: self.w.c.telemetry.record(k.contract_id, self.w.device_keys[k.device_id], rows), f)

    @rule(f=faults(SWEEP))
    def sweep(self, f):
        out, exc = self._attempt(self.w.c.sweep.run, f, job=True)
        if out is not None:
            assert out.expired + out.lost_races <= out.due

    @rule(i=index, duplicate=st.booleans(), batch=st.integers(min_value=1, max_value=4), f=faults(WORKER))
    def deliver(self, i, duplicate, batch, f):
        """SQS delivers some messages (any order; kept when the worker is not done, or when the
        delivery is a duplicate: it comes again)."""
        w = self.w
        w.collect()
        if not w.inbox:
            return
        start = i % len(w.inbox)
        msgs = (w.inbox[start:] + w.inbox[:start])[:batch]
        out, exc = self._attempt(lambda: w.deliver(msgs), f, job=True)
        if out is not None and not duplicate:
            for m in msgs:
                if m.message_id not in out and m in w.inbox:
                    w.inbox.remove(m)

    @rule(
        secs=seconds,
        extra=overpay,
        run_for=st.sampled_from([0, 1, 30, 599, 3600, 5 * 3600]),
        extend_by=st.sampled_from([None, 60, 1800]),
        f=faults(SETTLE),
        wf=faults(WORKER),
    )
    def lifecycle(self, secs, extra, run_for, extend_by, f, wf):
        """A whole rental in one step: rent, maybe extend, run, settle (under fault `f`), and let
        the queue deliver what it holds once (under fault `wf`)."""
        w = self.w
        req = w.rent_request(secs, extra)
        out, _ = self._attempt(lambda: w.c.rentals.rent(req), None)
        if out is None:
            self.orphans.append((req.tx_signature, req.wallet))
            return
        self.rents.append((req, out.body))
        k = w.c.contracts.get(out.body["contract_id"])
        if extend_by:
            ext = w.extend_request(k, extend_by)
            done, _ = self._attempt(lambda: w.c.rentals.extend(ext), None)
            if done is not None:
                self.extends.append((ext, done.body))
        w.clock.advance(run_for)
        self._attempt(lambda: w.c.rentals.settle(k.contract_id, k.wallet), f)
        if w.inbox:
            failed, _ = self._attempt(lambda: w.deliver(list(w.inbox)), wf, job=True)
            if failed is not None:
                w.inbox = [m for m in w.inbox if m.message_id in failed]

    @rule(i=index)
    def lose_message(self, i):
        """A message lost for good (its receives ran out into the dead-letter queue)."""
        if self.w.inbox:
            self.w.inbox.pop(i % len(self.w.inbox))

    @precondition(lambda self: self.orphans)
    @rule(i=index, f=faults(PAYMENT_REFUND))
    def refund_payment(self, i, f):
        sig, wallet = self.orphans[i % len(self.orphans)]
        out, exc = self._attempt(lambda: self.w.c.payment_refunds.request(sig, wallet), f)
        if out is not None:
            assert out.refund.lamports == self.w.payment_received(sig)

    @rule(secs=st.sampled_from([1, 59, 60, 61, 600, 3600, 5 * 3600]))
    def clock_jump(self, secs):
        self.w.clock.advance(secs)

    @rule(event=st.sampled_from(["blocks", "pending", "final", "rpc_blip", "drop", "refuse", "unrefuse"]), i=index)
    def chain(self, event, i):
        ch = self.w.chain
        if event == "blocks":
            ch.advance()
        elif event in ("pending", "final"):
            ch.pending = event == "pending"
        elif event == "rpc_blip":
            ch.fail_next_calls = 2
        elif event == "drop":
            ch.drop_sends = 2
        elif event == "refuse" and self.rents:
            ch.refused[self._contract(i).wallet] = "InsufficientFundsForRent: account 1"
        elif event == "unrefuse":
            ch.refused.clear()

    @rule(i=index)
    def operator_retry(self, i):
        failed = [r for r in self.w.refunds() if r.status == R.FAILED]
        if failed:
            self._attempt(lambda: self.w.c.refund_operations.retry(failed[i % len(failed)].refund_id), None)

    @rule(i=index)
    def foreign_signature(self, i):
        """A payment presented to extend another wallet's contract: refused, nothing written."""
        if not self.rents:
            return
        k = self._contract(i)
        sig = self.w.rpc.pay(new_wallet(), 10**9)
        before = self.w.db.snapshot()
        try:
            self.w.c.rentals.extend(ExtendRequest(k.contract_id, 600, sig))
            raise AssertionError("a payment by another wallet extended a contract")
        except DomainError:
            pass
        assert self.w.db.snapshot() == before

    # -- invariants ------------------------------------------------------------------------
    @invariant()
    def books_balance_and_states_are_legal(self):
        if hasattr(self, "w"):
            check(self.w)

    def teardown(self):
        if not hasattr(self, "w"):
            return
        w = self.w
        w.chain.refused.clear()
        for r in w.refunds():
            if r.status == R.FAILED:
                w.c.refund_operations.retry(r.refund_id)
        for sig, wallet in self.orphans:  # a payer asks again (requeues a lost enqueue)
            if sig in {k[4:] for k, rec in w.db.tables["claims"].items() if rec.get("kind") == "refund"}:
                w.c.payment_refunds.request(sig, wallet)
        w.drain(rounds=20)
        check_settled(w)
        for c in w.contracts():
            if c.status != dc.ACTIVE and c.refund_status == R.CONFIRMED:
                assert [t.lamports for t in w.chain.transfers_to(c.wallet) if t.memo.endswith(c.contract_id)] == [
                    c.refund_lamports
                ]
        assert money.TIERS  # the tiers the machine rents exist


WholeSystem.TestCase.settings = settings(
    max_examples=EXAMPLES,
    stateful_step_count=STEPS,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.data_too_large],
)
TestWholeSystem = WholeSystem.TestCase


# -- the use cases alone: one service world (tests/services), books checked at the end ----------
# Whatever sequence of rents, extensions, settlements, replays, lost answers and time passing runs
# on the fakes, the books balance for every contract, every ended contract received exactly
# used + refund, slots match the ACTIVE contracts, and no refund is queued twice.

SERVICE_TIERS = list(money.TIERS)
service_seconds = st.integers(min_value=60, max_value=4 * 3600)
service_overpay = st.sampled_from([0, 0, 1, 4_999, 5_000, 123_456])
service_index = st.integers(min_value=0, max_value=30)
service_lost = st.booleans()  # the write lands, its answer is lost, the client retries

service_ops = st.one_of(
    st.tuples(st.just("rent"), st.sampled_from(SERVICE_TIERS), service_seconds, service_overpay, service_lost),
    st.tuples(st.just("extend"), service_index, service_seconds, service_overpay, service_lost),
    st.tuples(st.just("settle"), service_index, service_lost),
    st.tuples(st.just("replay"), service_index),
    st.tuples(st.just("advance"), st.integers(min_value=1, max_value=3 * 3600)),
    st.tuples(st.just("report"), service_index, st.integers(min_value=1, max_value=600)),
)


def _with_lost_answer(w, port_method: str, flaky: bool, call):
    """Run `call`; when `flaky`, its write lands but the answer is lost, and the client retries."""
    if not flaky:
        return call()
    w.db.fail_next(port_method, after=True)
    try:
        call()
    except Unavailable:
        pass
    finally:
        w.db.clear_faults()  # unused when the call was refused before its write
    return call()


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(service_ops, max_size=25), st.sampled_from([ALWAYS_COVERED_SECONDS, 60, 1]))
def test_books_balance_and_received_is_used_plus_refund(steps, grace):
    w = make_world(capacity=1, coverage_grace_seconds=grace)  # 5 slots: races for capacity are frequent
    rents, extends = [], []  # (request, first receipt body)
    for op in steps:
        kind = op[0]
        try:
            if kind == "rent":
                _, tier, secs, extra, flaky = op
                price = money.price_lamports(money.TIERS[tier].lamports_per_hour, secs)
                req = w.rent_request(tier, secs, price + extra)
                r = _with_lost_answer(w, "tx.open_rental", flaky, lambda req=req: w.rentals.rent(req))
                rents.append((req, r.body))
            elif kind == "extend" and rents:
                _, i, secs, extra, flaky = op
                k = w.p.contracts.get(rents[i % len(rents)][1]["contract_id"])
                req = w.extend_request(k, secs, dc.extension_price(k, secs) + extra)
                r = _with_lost_answer(w, "tx.extend_rental", flaky, lambda req=req: w.rentals.extend(req))
                extends.append((req, r.body))
            elif kind == "settle" and rents:
                _, i, flaky = op
                cid = rents[i % len(rents)][1]["contract_id"]
                wallet = rents[i % len(rents)][0].wallet
                _with_lost_answer(w, "tx.end_rental", flaky, lambda c=cid, wl=wallet: w.rentals.settle(c, wl))
            elif kind == "replay" and (rents or extends):
                _, i = op
                done = (rents + extends)[i % len(rents + extends)]
                service = w.rentals.rent if done in rents else w.rentals.extend
                again = service(done[0])
                assert again.first is False and again.body == done[1]
            elif kind == "advance":
                w.clock.advance(op[1])
            elif kind == "report" and rents:  # the device reports, then time passes (covered time)
                _, i, secs = op
                k = w.p.contracts.get(rents[i % len(rents)][1]["contract_id"])
                key = w.operator.issue_device_key(k.device_id)
                sample = lambda now, lo, hi: [[now, Decimal("12.5"), 1024, 1, 0]]
                w.telemetry.record(k.contract_id, key, sample)
                w.clock.advance(secs)
        except (NoCapacity, ContractNotActive):
            pass  # refusals a random sequence meets; nothing may have been written (checked below)
    _check_books(w)


def _check_books(w):
    contracts = list(w.db.tables["contracts"].values())
    active_on = Counter(k.device_id for k in contracts if k.status == dc.ACTIVE)
    assert w.leases() == dict(active_on)
    queued = Counter(m["contract_id"] for m in w.queue.messages)
    assert all(n == 1 for n in queued.values())
    for k in contracts:
        rows = w.entries(k.contract_id)
        assert ledger.balance(rows) == 0
        assert k.received_lamports == sum(p.received_lamports for p in k.payments)
        assert k.price_lamports == sum(p.price_lamports for p in k.payments)
        assert k.duration_seconds == sum(p.seconds for p in k.payments)
        assert ledger.balance(rows, ledger.TREASURY) == k.received_lamports
        assert all(w.p.claims.get_claim(p.sig, k.wallet).contract_id == k.contract_id for p in k.payments)
        if k.status == dc.ACTIVE:
            assert ledger.balance(rows, ledger.escrow(k.contract_id)) == -k.received_lamports
            assert k.contract_id not in queued
            continue
        assert k.received_lamports == k.used_lamports + k.refund_lamports
        assert k.used_lamports <= k.price_lamports and k.refund_lamports >= k.received_lamports - k.price_lamports
        assert ledger.balance(rows, ledger.escrow(k.contract_id)) == 0
        assert ledger.balance(rows, ledger.REVENUE) == -k.used_lamports
        owed = ledger.REFUNDS_PAYABLE if k.refund_status == dc.REFUND_QUEUED else ledger.RETAINED_DUST
        assert ledger.balance(rows, owed) == -k.refund_lamports
        # received = used + downtime credit refunded + the rest of the refund (unused time and
        # overpayment, or dust kept); the credit is what elapsed-time billing would have added
        credit = k.credit_lamports or 0
        elapsed_usage = dc.usage(k, k.ended_at_ms - k.created_at_ms)
        assert k.used_lamports + credit == elapsed_usage
        assert k.received_lamports == k.used_lamports + credit + (k.refund_lamports - credit)
        assert k.refund_lamports >= credit >= 0
        assert sum(e.credit_lamports for e in rows if e.account == ledger.DOWNTIME_CREDIT) == credit
        assert ledger.balance(rows, ledger.DOWNTIME_CREDIT) == 0
        event("downtime credit" if credit else "no downtime credit")
        if k.credit_lamports is not None and k.covered_ms is not None:
            covered = k.covered_until(k.ended_at_ms)
            assert covered is not None and 0 <= covered <= k.ended_at_ms - k.created_at_ms
            assert k.used_lamports == dc.usage(k, covered)
        if k.contract_id in queued:
            assert k.refund_status == dc.REFUND_QUEUED
