"""The quote watcher on the fakes: a Solana Pay payment (memo + reference) opens or extends the
contract with no request, once, even when the watcher runs twice or races POST /api/rent with
the same signature; late, short or wrong payments make the quote REFUSED and stay unclaimed
(refundable like any refused payment); the chain is asked once per open quote per tick."""

from __future__ import annotations

import pytest

from chalicelib.domain import quotes as q
from chalicelib.domain.commands import RentRequest
from chalicelib.services.quote_watch import LATE_GRACE_MS
from tests.services.conftest import make_world
from tests.support.fake_history import FakeChainHistory
from tests.support.fakes import FakeRefundChain, FakeTreasurySigner, new_wallet


@pytest.fixture
def w():
    w = make_world()
    w.history = FakeChainHistory(w.rpc, FakeRefundChain(FakeTreasurySigner(w.rpc.treasury)))
    w.c.chain_history = w.history  # before the container's first use of it
    return w


def pay(w, quote: q.Quote, wallet: str, lamports: int | None = None, **kw) -> str:
    """A stock Solana Pay transfer of the quote: its memo, its reference as a read-only key."""
    return w.rpc.pay(
        wallet, quote.lamports if lamports is None else lamports, memo=quote.memo, references=[quote.reference], **kw
    )


def contracts_of(w, wallet: str) -> list:
    page, _ = w.p.contracts.page(1000, None)
    return [k for k in page if k.wallet == wallet]


def test_a_paid_quote_opens_its_contract_with_no_request_and_only_once(w):
    quote = w.c.quote_service.rent("ORIN", 1800)
    wallet = new_wallet()
    sig = pay(w, quote, wallet)
    report = w.c.quote_watcher.tick()
    assert (report.watched, report.paid, report.rpc_calls) == (1, 1, 2)
    [k] = contracts_of(w, wallet)
    assert (k.tier, k.duration_seconds, k.received_lamports) == ("ORIN", 1800, quote.lamports)
    stored = w.c.quote_service.get(quote.quote_id)
    assert (stored.status, stored.paid_contract_id, stored.tx_signature) == (q.PAID, k.contract_id, sig)
    assert w.c.quote_watcher.tick().watched == 0  # closed: never asked about again
    # an old client posts the same signature: a replay of that contract
    again = w.rentals.rent(RentRequest(wallet, "ORIN", 1800, sig))
    assert (again.first, again.body["contract_id"]) == (False, k.contract_id)
    assert len(contracts_of(w, wallet)) == 1


def test_the_watcher_losing_its_close_runs_again_and_opens_nothing_more(w):
    quote = w.c.quote_service.rent("M2", 600)
    wallet = new_wallet()
    pay(w, quote, wallet)
    w.db.fail_next("quotes.close_quote")  # the contract is open, the quote's close is lost
    w.c.quote_watcher.tick()
    assert w.c.quote_service.get(quote.quote_id).status == q.OPEN
    [k] = contracts_of(w, wallet)
    assert w.c.quote_watcher.tick().paid == 1
    assert contracts_of(w, wallet) == [w.p.contracts.get(k.contract_id)]
    assert w.c.quote_service.get(quote.quote_id).paid_contract_id == k.contract_id


def test_post_rent_first_then_the_watcher_binds_the_quote_to_that_same_contract(w):
    quote = w.c.quote_service.rent("M2", 600)
    wallet = new_wallet()
    sig = pay(w, quote, wallet)
    first = w.rentals.rent(RentRequest(wallet, "M2", 600, sig))
    assert first.first
    assert w.c.quote_watcher.tick().paid == 1
    assert w.c.quote_service.get(quote.quote_id).paid_contract_id == first.body["contract_id"]
    assert len(contracts_of(w, wallet)) == 1


def test_an_extension_quote_extends_the_contract_of_its_wallet(w):
    k = w.rent("M2", 600, 200_000)
    quote = w.c.quote_service.extend(k.contract_id, 600)
    pay(w, quote, k.wallet)
    assert w.c.quote_watcher.tick().paid == 1
    assert w.p.contracts.get(k.contract_id).duration_seconds == 1200
    assert w.c.quote_service.get(quote.quote_id).paid_contract_id == k.contract_id


@pytest.mark.parametrize(
    ("case", "reason"),
    [("short", "insufficient_amount"), ("late", "late"), ("no_memo", "binding"), ("other_wallet", "wrong_payer")],
)
def test_a_late_short_or_wrong_payment_refuses_the_quote_and_stays_unclaimed(w, case, reason):
    if case == "other_wallet":
        k = w.rent("M2", 600, 200_000)
        quote = w.c.quote_service.extend(k.contract_id, 600)
    else:
        quote = w.c.quote_service.rent("M2", 600)
    wallet = new_wallet()
    if case == "short":
        sig = pay(w, quote, wallet, quote.lamports - 1)
    elif case == "late":
        w.clock.advance(15 * 60)
        sig = pay(w, quote, wallet)
    elif case == "no_memo":
        sig = w.rpc.pay(wallet, quote.lamports, references=[quote.reference])
    else:
        sig = pay(w, quote, wallet)
    before = w.p.contracts.page(1000, None)
    report = w.c.quote_watcher.tick()
    assert report.refused == 1
    stored = w.c.quote_service.get(quote.quote_id)
    assert (stored.status, stored.reason, stored.tx_signature) == (q.REFUSED, reason, sig)
    assert w.p.claims.get_claim(sig, wallet) is None  # unclaimed: its payer can have it refunded
    assert w.p.contracts.page(1000, None) == before


def test_an_unpaid_quote_is_watched_until_its_grace_then_reads_expired_and_costs_nothing(w):
    quote = w.c.quote_service.rent("M2", 600)
    w.clock.advance(15 * 60)
    assert w.c.quote_watcher.tick().watched == 1  # still looked up: a late payment is refused
    assert w.c.quote_service.get(quote.quote_id).status_at(w.clock()) == q.EXPIRED
    w.clock.advance(LATE_GRACE_MS / 1000)
    w.history.calls.clear()
    assert w.c.quote_watcher.tick().watched == 0
    assert w.history.calls == []


def test_lookups_per_tick_are_one_per_open_quote(w):
    quotes = [w.c.quote_service.rent("M2", 600) for _ in range(25)]
    pay(w, quotes[0], new_wallet())
    w.history.calls.clear()
    report = w.c.quote_watcher.tick()
    assert report.watched == 25 and report.paid == 1
    assert w.history.calls.count("signatures") == 25 and w.history.calls.count("transaction") == 1
    w.history.calls.clear()
    w.c.quote_watcher.tick()
    assert w.history.calls == ["signatures"] * 24


def test_a_node_outage_leaves_every_quote_open_and_writes_nothing(w):
    quote = w.c.quote_service.rent("M2", 600)
    pay(w, quote, new_wallet())
    before = w.db.snapshot()
    w.history.down = True
    assert w.c.quote_watcher.tick().paid == 0
    assert w.db.snapshot() == before
    w.history.down = False
    assert w.c.quote_watcher.tick().paid == 1


def test_one_invocation_ticks_every_two_seconds_until_its_minute_is_up(w):
    from chalicelib.jobs.quotes import run_quote_watch

    t = [0.0]
    slept: list[float] = []

    def sleep(s: float) -> None:
        slept.append(s)
        t[0] += s
        w.clock.advance(s)

    quote = w.c.quote_service.rent("M2", 600)
    w.clock.advance(10)
    pay(w, quote, new_wallet())
    total = run_quote_watch(w.c, sleep=sleep, monotonic=lambda: t[0])
    assert total["ticks"] == 25 and set(slept) == {2.0} and sum(slept) == 48.0  # 50 s at 2 s
    assert total["paid"] == 1 and total["rpc_calls"] == 2  # found on the first tick, never asked again


def test_a_payment_for_an_ended_contract_or_a_full_tier_is_refused_with_the_errors_code(w):
    k = w.rent("M2", 600, 200_000)
    ext = w.c.quote_service.extend(k.contract_id, 600)
    w.rentals.settle(k.contract_id, k.wallet)
    pay(w, ext, k.wallet)
    thor = [w.c.quote_service.rent("THOR", 600) for _ in range(3)]  # THOR has 2 slots
    for quote in thor:
        pay(w, quote, new_wallet())
    assert w.c.quote_watcher.tick().refused == 2
    assert w.c.quote_service.get(ext.quote_id).reason == "contract_not_active"
    assert sorted(w.c.quote_service.get(x.quote_id).status for x in thor) == [q.PAID, q.PAID, q.REFUSED]
    assert {w.c.quote_service.get(x.quote_id).reason for x in thor} == {None, "no_capacity"}
