"""Property: whatever sequence of rents, extensions, settlements, replays, lost answers and
time passing runs on the fakes, the books balance for every contract, every ended contract
received exactly used + refund, slots match the ACTIVE contracts, and no refund is queued twice."""

from __future__ import annotations

from collections import Counter

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chalicelib.domain import contracts as dc
from chalicelib.domain import ledger, money
from chalicelib.domain.errors import ContractNotActive, NoCapacity, Unavailable

from .conftest import make_world

TIERS = list(money.TIERS)
seconds = st.integers(min_value=60, max_value=4 * 3600)
overpay = st.sampled_from([0, 0, 1, 4_999, 5_000, 123_456])
index = st.integers(min_value=0, max_value=30)
lost = st.booleans()  # the write lands, its answer is lost, the client retries

ops = st.one_of(
    st.tuples(st.just("rent"), st.sampled_from(TIERS), seconds, overpay, lost),
    st.tuples(st.just("extend"), index, seconds, overpay, lost),
    st.tuples(st.just("settle"), index, lost),
    st.tuples(st.just("replay"), index),
    st.tuples(st.just("advance"), st.integers(min_value=1, max_value=3 * 3600)),
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
@given(st.lists(ops, max_size=25))
def test_books_balance_and_received_is_used_plus_refund(steps):
    w = make_world(capacity=1)  # 5 slots: races for capacity are frequent
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
        if k.contract_id in queued:
            assert k.refund_status == dc.REFUND_QUEUED
