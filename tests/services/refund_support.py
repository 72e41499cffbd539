"""Shared set-up of the refund and sweep service tests: fakes wired into a Container,
contracts opened and settled through the real services, and the books' checks."""

from __future__ import annotations

from chalicelib.domain import books, ledger, money
from chalicelib.domain import contracts as dc
from tests.support.fakes import FakeWorld, new_wallet

T0 = 1_764_000_000_000
M2 = money.TIERS["M2"].lamports_per_hour


class World(FakeWorld):
    """Every port faked; the refund chain's treasury is the settings' treasury."""

    def __init__(self, *, shards: int = 2, capacity: int = 100, devices: int = 2, **settings):
        super().__init__(shards=shards, t0=T0, **settings)
        for i in range(devices):
            self.add_device(f"m2-{i}", "M2", capacity)

    def open(self, seconds: int = 3600, overpay: int = 0, wallet: str | None = None) -> dc.Contract:
        """A contract opened through the rental transaction (as rent commits it)."""
        from chalicelib.domain.records import Claim
        from tests.support.fakes import new_signature

        wallet = wallet or new_wallet()
        price = money.price_lamports(M2, seconds)
        device = min(self.c.devices.by_tier("M2"), key=lambda d: d.leases)
        sig = new_signature()
        c = dc.open_contract(
            contract_id=dc.new_contract_id(),
            wallet=wallet,
            tier="M2",
            device_id=device.device_id,
            seconds=seconds,
            received_lamports=price + overpay,
            sig=sig,
            now_ms=self.clock(),
        )
        self.c.tx.open_rental(
            Claim(sig, "rent", c.contract_id, wallet, "req", {}),
            c,
            ledger.payment_postings(c, c.payments[0]),
            self.clock(),
        )
        return c

    def settled(self, *, after_seconds: int = 600, seconds: int = 3600, overpay: int = 0) -> dc.Contract:
        """A contract settled by its renter after `after_seconds` (refund QUEUED and queued)."""
        c = self.open(seconds, overpay)
        self.clock.advance(after_seconds)
        return self.c.rentals.settle(c.contract_id, c.wallet)

    def entries(self, key: str) -> list:
        return [e for (cid, _), e in self.db.tables["ledger"].items() if cid == key]

    def all_entries(self) -> list:
        return list(self.db.tables["ledger"].values())

    def counters(self) -> dict:
        return books.total(self.c.book.counters())


def assert_books_balance(w: World) -> None:
    """For every contract/refund and the whole book, debits = credits; the counters equal the
    records they count; the ledger's treasury account equals the chain's treasury change."""
    per: dict[str, int] = {}
    for e in w.all_entries():
        per[e.contract_id] = per.get(e.contract_id, 0) + e.debit_lamports - e.credit_lamports
    assert all(v == 0 for v in per.values()), per
    assert ledger.balance(w.all_entries()) == 0
    expected: dict[str, int] = {}
    for c in w.db.tables["contracts"].values():
        for k, v in books.contract_contribution(c).items():
            expected[k] = expected.get(k, 0) + v
    for rec in w.db.tables["claims"].values():
        if rec.get("kind") == "refund":
            for k, v in books.refund_contribution(rec["refund"]).items():
                expected[k] = expected.get(k, 0) + v
    got = w.counters()
    assert {k: v for k, v in got.items() if v} == {k: v for k, v in expected.items() if v}
    # the treasury: what came in (payments) minus what went out (refunds + fees) on the chain
    paid_out = sum(t.lamports for t in w.chain.transfers if t.err is None) + sum(t.fee for t in w.chain.transfers)
    came_in = sum(p.received_lamports for c in w.db.tables["contracts"].values() for p in c.payments) + sum(
        rec["refund"].lamports for rec in w.db.tables["claims"].values() if rec.get("kind") == "refund"
    )
    assert ledger.balance(w.all_entries(), ledger.TREASURY) == came_in - paid_out
