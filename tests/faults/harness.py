"""The fault suite's world: every service of `bootstrap.Container` on the in-memory fakes,
a tap on every port call (to enumerate a use case's calls and kill the process at any
of them), an SQS-like inbox for refund messages, and the invariants checked after every
fault (`check`) and after recovery (`check_settled`).

Shared by tests/faults and tests/properties. No sockets, no moto.
"""

from __future__ import annotations

import functools
import json
from collections import Counter
from dataclasses import dataclass, field

from chalicelib.domain import books, ledger, money
from chalicelib.domain import contracts as dc
from chalicelib.domain import refunds as R
from chalicelib.domain.commands import ExtendRequest, RentRequest
from chalicelib.domain.records import hash_device_key
from chalicelib.domain.signing import extend_memo, refund_memo, rent_memo
from chalicelib.jobs.refunds import handle_records
from tests.support.fakes import (
    FakeWorld,
    new_wallet,
)

T0 = 1_764_000_000_000
M2 = money.TIERS["M2"].lamports_per_hour
OWED = (R.QUEUED, R.SENT, R.FAILED)

# the methods of each port a service may call (what a kill can interrupt)
PORT_METHODS = {
    "contracts": ("get", "page", "due", "refunds_owed"),
    "devices": ("get", "by_tier", "all"),
    "claims": ("get_claim", "get_replay", "begin_replay", "finish_replay", "release_replay", "count_request"),
    "ledger": ("by_contract", "by_account"),
    "metrics": ("report_context", "latest", "put_batch", "stamp_device"),
    "tx": ("open_rental", "extend_rental", "end_rental"),
    "refunds": ("get", "advance", "open_payment_refund"),
    "book": ("counters",),
}
WRITES = (
    "tx.",
    "refunds.advance",
    "refunds.open_payment_refund",
    "metrics.put_batch",
    "claims.begin_replay",
    "claims.finish_replay",
    "claims.release_replay",
    "claims.count_request",
)
CHAIN_METHODS = ("latest_blockhash", "prepare", "send", "status", "fee", "block_height")


class Killed(BaseException):
    """The process died at this point (a BaseException: no `except Exception` swallows it)."""


@dataclass
class Kill:
    """Kill the process at port call `index` (0-based): `before` it runs, or `after` it took
    effect (a write that landed, its answer never read)."""

    index: int | None
    when: str = "before"
    exc: BaseException | None = None  # raise this instead of Killed (e.g. Unavailable: a timeout)
    call: str | None = None  # or: at the first call of this port method ("chain.send")

    def hits(self, index: int, name: str) -> bool:
        return index == self.index if self.call is None else name == self.call


@dataclass
class Message:
    message_id: str
    body: str


class World(FakeWorld):
    """Every port faked, every service built by `Container` as production wires them.

    `trace` lists every port call ("tx.open_rental", "chain.send", "rpc.verify_payment",
    "queue.send_refund", …) since the last `reset_trace()`; `kill` makes the call
    `kill.index` raise `Killed` (before or after it takes effect)."""

    def __init__(self, *, shards: int = 2, capacity: int = 2, devices: dict[str, list[str]] | None = None, **settings):
        super().__init__(shards=shards, t0=T0, **settings)
        self.capacity = capacity
        self.device_keys: dict[str, str] = {}
        for tier, ids in (devices or {"M2": ["m2-a", "m2-b"], "ORIN": ["orin-a"]}).items():
            for device_id in ids:
                self.add_device(device_id, tier, capacity)
                key = f"dk_{device_id}_" + "k" * 24
                self.c.devices.set_key_hash(device_id, hash_device_key(key))
                self.device_keys[device_id] = key
        self.trace: list[str] = []
        self.done: list[str] = []  # the calls that returned (a write among them landed)
        self.kill: Kill | None = None
        self._depth = 0
        self.inbox: list[Message] = []  # refund messages not yet deleted (SQS: visible or in flight)
        self._seen_messages = 0
        self._mid = 0
        self._tap()
        self.db.calls.clear()

    # -- the tap: every port call, and the kill switch ----------------------------
    def _tap(self) -> None:
        for port, methods in PORT_METHODS.items():
            view = getattr(self.c, port)
            for m in methods:
                setattr(view, m, self._wrap(f"{port}.{m}", getattr(view, m)))
        for m in CHAIN_METHODS:
            setattr(self.chain, m, self._wrap(f"chain.{m}", getattr(self.chain, m)))
        for m in ("verify_payment", "health"):
            setattr(self.rpc, m, self._wrap(f"rpc.{m}", getattr(self.rpc, m)))
        self.queue.send_refund = self._wrap("queue.send_refund", self.queue.send_refund)

    def _wrap(self, name: str, fn):
        @functools.wraps(fn)
        def call(*args, **kwargs):
            if self._depth:  # a port calling itself (chain.status → block_height): one call
                return fn(*args, **kwargs)
            index = len(self.trace)
            self.trace.append(name)
            kill = self.kill
            if kill is not None and kill.hits(index, name) and kill.when == "before":
                self.kill = None
                raise kill.exc or Killed(f"before {name}")
            self._depth += 1
            try:
                result = fn(*args, **kwargs)
            finally:
                self._depth -= 1
            self.done.append(name)  # it returned: if a write, it landed
            if kill is not None and kill.hits(index, name) and kill.when == "after":
                self.kill = None
                raise kill.exc or Killed(f"after {name}")
            return result

        return call

    def reset_trace(self) -> None:
        self.trace.clear()
        self.done.clear()

    def wrote(self) -> bool:
        """Did any write land since `reset_trace()`?"""
        return any(c.startswith(WRITES) for c in self.done)

    # -- payments and requests --------------------------------------------------------
    def rent_request(
        self, seconds: int = 3600, overpay: int = 0, tier: str = "M2", wallet: str | None = None
    ) -> RentRequest:
        wallet = wallet or new_wallet()
        price = money.price_lamports(money.TIERS[tier].lamports_per_hour, seconds)
        sig = self.rpc.pay(wallet, price + overpay, memo=rent_memo(tier, seconds))
        return RentRequest(wallet, tier, seconds, sig)

    def extend_request(self, contract: dc.Contract, seconds: int = 1800, overpay: int = 0) -> ExtendRequest:
        price = dc.extension_price(contract, seconds)
        sig = self.rpc.pay(contract.wallet, price + overpay, memo=extend_memo(contract.contract_id, seconds))
        return ExtendRequest(contract.contract_id, seconds, sig)

    def rent(self, seconds: int = 3600, overpay: int = 0, tier: str = "M2") -> dc.Contract:
        receipt = self.c.rentals.rent(self.rent_request(seconds, overpay, tier))
        return self.c.contracts.get(receipt.body["contract_id"])

    def report(self, contract: dc.Contract, n: int = 1):
        """One usage report of the device the contract is leased on."""
        from decimal import Decimal

        rows = lambda now, lo, hi: [[now - (n - 1 - i) * 1000, Decimal("12.5"), 1024, 1, 0] for i in range(n)]
        return self.c.telemetry.record(contract.contract_id, self.device_keys[contract.device_id], rows)

    # -- the queue as SQS delivers it --------------------------------------------------
    def collect(self) -> list[Message]:
        """Move newly sent refund messages into the inbox."""
        new = self.queue.messages[self._seen_messages :]
        self._seen_messages = len(self.queue.messages)
        for m in new:
            self._mid += 1
            self.inbox.append(
                Message(f"m-{self._mid}", json.dumps({"refund_id": m["refund_id"], "version": m["version"]}))
            )
        return self.inbox

    def deliver(self, messages: list[Message]) -> list[str]:
        """One Lambda invocation with these records; the ids SQS will deliver again."""
        out = handle_records([{"messageId": m.message_id, "body": m.body} for m in messages], self.c.refund_worker)
        return [f["itemIdentifier"] for f in out["batchItemFailures"]]

    def deliver_at(self, index: int, *, keep: bool = False) -> list[str]:
        """Deliver the inbox's message at `index` (any order); delete it when the worker is done
        with it, unless `keep` (a duplicate delivery: SQS sends it again anyway)."""
        self.collect()
        if not self.inbox:
            return []
        m = self.inbox[index % len(self.inbox)]
        failed = self.deliver([m])
        if not failed and not keep:
            self.inbox.remove(m)
        return failed

    def drain(self, rounds: int = 12) -> None:
        """Time passes with every dependency up: sweeps run, the queue delivers until empty, the
        chain moves on (pending transactions finalize, dead blockhashes expire)."""
        self.kill = None
        self.db.clear_faults()
        self.db.down = False
        self.rpc.down, self.rpc.fail_next_calls = False, 0
        self.chain.down, self.chain.fail_next_calls, self.chain.pending, self.chain.drop_sends = False, 0, False, 0
        self.chain.fee_unreadable = False
        self.queue.down, self.queue.fail_sends = False, 0
        for _ in range(rounds):
            self.clock.advance(self.settings.refund_requeue_seconds + 1)
            self.chain.advance()
            self.c.sweep.run()
            self.collect()
            while self.inbox:
                batch, self.inbox = self.inbox[:10], self.inbox[10:]
                failed = set(self.deliver(batch))
                self.inbox.extend(m for m in batch if m.message_id in failed)
                if failed:
                    break  # the rest waits for the visibility timeout: the next round
            if not self._owed_moving():
                return

    def _owed_moving(self) -> list[R.Refund]:
        return [r for r in self.refunds() if r.status in (R.QUEUED, R.SENT)]

    # -- reading -------------------------------------------------------------------------
    def contracts(self) -> list[dc.Contract]:
        return list(self.db.tables["contracts"].values())

    def refunds(self) -> list[R.Refund]:
        """Every refund record: of ended contracts and of payments no contract holds."""
        out = [R.refund_of(c) for c in self.contracts() if c.status != dc.ACTIVE]
        out += [rec["refund"] for rec in self.db.tables["claims"].values() if rec.get("kind") == "refund"]
        return out

    def entries(self) -> list[ledger.Entry]:
        return list(self.db.tables["ledger"].values())

    def paid_on_chain(self) -> dict[str, list]:
        """Landed refund transfers (error or not) by refund id, from their memos."""
        by_memo = {refund_memo(r.refund_id): r.refund_id for r in self.refunds()}
        out: dict[str, list] = {}
        for t in self.chain.transfers:
            assert t.memo in by_memo, f"a transfer for no known refund: {t}"
            out.setdefault(by_memo[t.memo], []).append(t)
        return out

    def payment_received(self, sig: str) -> int:
        """What the chain says the treasury received in payment `sig`."""
        tx = self.rpc.landed[sig].tx
        keys = tx["transaction"]["message"]["accountKeys"]
        from chalicelib.domain import keys as b58

        total = 0
        for ix in tx["transaction"]["message"]["instructions"]:
            data = b58.decode(ix["data"])
            if (
                keys[ix["programIdIndex"]] == "11111111111111111111111111111111"
                and len(data) == 12
                and keys[ix["accounts"][1]] == self.chain.treasury
            ):
                total += int.from_bytes(data[4:], "little")
        return total


# ---------------------------------------------------------------------------------------
# invariants


def check(w: World) -> None:
    """What must hold at any moment, whatever failed: balanced books, legal states, slots,
    each payment paying once, each refund paid at most once, counters equal to the records."""
    entries = w.entries()
    contracts = w.contracts()
    # 1. the ledger balances: per contract / refund, and as a whole
    per: Counter = Counter()
    for e in entries:
        assert isinstance(e.debit_lamports, int) and isinstance(e.credit_lamports, int)
        per[e.contract_id] += e.debit_lamports - e.credit_lamports
    assert all(v == 0 for v in per.values()), {k: v for k, v in per.items() if v}
    assert sum(e.debit_lamports for e in entries) == sum(e.credit_lamports for e in entries)
    by_id: dict[str, list] = {}
    for e in entries:
        by_id.setdefault(e.contract_id, []).append(e)

    # 2. slots: leases equal the ACTIVE contracts of each device, never above capacity
    active_on = Counter(c.device_id for c in contracts if c.status == dc.ACTIVE)
    for d in w.db.tables["devices"].values():
        assert d.leases == active_on.get(d.device_id, 0), (d.device_id, d.leases, active_on)
        assert 0 <= d.leases <= d.capacity

    # 3. each payment pays once: one claim per signature, naming its one holder
    holders: Counter = Counter()
    claims = {k[4:].split("#")[0]: rec for k, rec in w.db.tables["claims"].items() if k.startswith("sig#")}
    for c in contracts:
        for p in c.payments:
            holders[p.sig] += 1
            assert claims[p.sig]["contract_id"] == c.contract_id and claims[p.sig]["kind"] in ("rent", "extend")
            assert p.received_lamports == w.payment_received(p.sig)
    for sig, rec in claims.items():
        if rec["kind"] == "refund":
            holders[sig] += 1
            assert rec["refund"].lamports == w.payment_received(sig)
    assert all(n == 1 for n in holders.values()), [s for s, n in holders.items() if n != 1]
    assert set(holders) == set(claims)

    # 4. every contract in a legal state, received = used + refunded + owed + dust to the lamport
    paid = w.paid_on_chain()
    for c in contracts:
        rows = by_id.get(c.contract_id, [])
        assert c.received_lamports == sum(p.received_lamports for p in c.payments)
        assert c.price_lamports == sum(p.price_lamports for p in c.payments)
        assert c.received_lamports >= c.price_lamports
        assert ledger.balance(rows, ledger.TREASURY) - _refund_outflow(rows) == c.received_lamports
        if c.status == dc.ACTIVE:
            assert c.refund_status == dc.REFUND_NONE and c.refund_lamports is None and c.ended_at_ms is None
            assert c.contract_id not in paid
            assert ledger.balance(rows, ledger.escrow(c.contract_id)) == -c.received_lamports
            continue
        assert c.status in (dc.SETTLED, dc.EXPIRED) and c.ended_at_ms is not None
        assert c.ended_at_ms <= c.expires_at_ms and (c.status == dc.EXPIRED) == (c.ended_at_ms == c.expires_at_ms)
        assert 0 <= c.used_lamports <= c.price_lamports and c.refund_lamports >= 0
        assert c.received_lamports == c.used_lamports + c.refund_lamports
        assert ledger.balance(rows, ledger.escrow(c.contract_id)) == 0
        assert ledger.balance(rows, ledger.REVENUE) == -c.used_lamports
        _check_refund(R.refund_of(c), rows, paid.get(c.contract_id, []))
    for rec in w.db.tables["claims"].values():
        if rec.get("kind") == "refund":
            r = rec["refund"]
            _check_refund(r, by_id.get(r.refund_id, []), paid.get(r.refund_id, []))

    # 5. the treasury account is what the chain says came in minus what went out and is booked
    came_in = sum(w.payment_received(sig) for sig in claims)
    in_flight = 0  # landed transfers whose record has not yet read their outcome (SENT)
    records = {r.refund_id: r for r in w.refunds()}
    for rid, transfers in paid.items():
        r = records[rid]
        for t in transfers:
            if r.status == R.SENT and r.tx_signature == t.signature:
                in_flight += t.fee + (t.lamports if t.err is None else 0)
    went_out = sum(t.fee + (t.lamports if t.err is None else 0) for t in w.chain.transfers)
    assert ledger.balance(entries, ledger.TREASURY) == came_in - went_out + in_flight

    # 6. the book's counters equal the records they count
    expected: Counter = Counter()
    for c in contracts:
        expected.update(books.contract_contribution(c))
    for rec in w.db.tables["claims"].values():
        if rec.get("kind") == "refund":
            expected.update(books.refund_contribution(rec["refund"]))
    got = books.total([{n: int(v.get(n, 0)) for n in books.COUNTERS} for v in w.db.tables["book"].values()])
    assert {k: v for k, v in got.items() if v} == {k: v for k, v in expected.items() if v}


def _refund_outflow(rows) -> int:
    """Credits to the treasury of a refund's payout and fees (negative of their balance)."""
    return sum(
        e.debit_lamports - e.credit_lamports
        for e in rows
        if e.account == ledger.TREASURY and e.kind in ("refund", "network_fee")
    )


def _check_refund(r: R.Refund, rows, transfers) -> None:
    """One refund record against its entries and the transfers that landed for it."""
    good = [t for t in transfers if t.err is None]
    assert len(good) <= 1, f"refund {r.refund_id} paid {len(good)} times"
    assert all(t.lamports == r.lamports for t in good)
    payable = ledger.balance(rows, ledger.REFUNDS_PAYABLE)
    dust = ledger.balance(rows, ledger.RETAINED_DUST)
    fees_booked = ledger.balance(rows, ledger.NETWORK_FEES)
    if r.status == R.DUST:
        assert (payable, dust, good) == (0, -r.lamports, [])
        return
    assert dust == 0
    if r.status == R.CONFIRMED:
        assert len(good) == 1 and good[0].signature == r.tx_signature, (r, transfers)
        assert payable == 0 and r.fee_lamports == good[0].fee
    else:  # owed: QUEUED, SENT (maybe landed, not yet read), FAILED
        assert payable == -r.lamports, (r, payable)
        if good:
            assert r.status == R.SENT and good[0].signature == r.tx_signature, (r, good)
    # every landed transaction's fee is booked once its outcome was read
    booked_sigs = {e.ref for e in rows if e.kind == "network_fee"}
    for t in transfers:
        if not (r.status == R.SENT and t.signature == r.tx_signature):
            assert t.signature in booked_sigs, (r, t)
    assert fees_booked == sum(t.fee for t in transfers if t.signature in booked_sigs)


def check_settled(w: World, *, allow_failed: bool = False) -> None:
    """After recovery (`World.drain`): nothing owed is stuck; each refund paid exactly once."""
    check(w)
    paid = w.paid_on_chain()
    for r in w.refunds():
        assert r.status not in (R.QUEUED, R.SENT), f"refund {r.refund_id} still {r.status} after recovery"
        if r.status == R.FAILED:
            assert allow_failed, r
        if r.status == R.CONFIRMED:
            assert len([t for t in paid.get(r.refund_id, []) if t.err is None]) == 1


@dataclass
class Scenario:
    """A use case to kill: `setup(w)` builds the state (deterministic port calls), `run(w)` is
    the use case, `restart(w)` is what the world does after a death (a client retry, a
    redelivery, the next sweep)."""

    name: str
    setup: object
    run: object
    restart: object
    checks: list = field(default_factory=list)  # what must hold once recovered
