"""Payment checks do not amplify (services/payment_checks.py), on the fakes: what one address
can make the backend ask the chain is bounded by its lookup budget, a signature the chain does
not know is answered from memory for a few seconds, and the budget holds across instances
when the shared counter is on. Calls are counted on the fake node (`FakeRpc.requests`)."""

from __future__ import annotations

import pytest

from chalicelib.domain import money
from chalicelib.domain.commands import RentRequest
from chalicelib.domain.errors import PaymentInvalid, TooManyLookups
from chalicelib.domain.signing import rent_memo
from chalicelib.services.payment_checks import PaymentChecks
from tests.services.refund_support import World
from tests.support.fakes import new_signature, new_wallet

PRICE = money.price_lamports(money.TIERS["M2"].lamports_per_hour, 3600)
RPC_PER_LOOKUP = 2  # getTransaction, then getSignatureStatuses when the node returns null


def attack(w: World, n: int, client: str = "ip:198.51.100.7") -> dict:
    """`n` anonymous rents with random well-formed signatures from one address."""
    out = {"not_found": 0, "limited": 0}
    for _ in range(n):
        try:
            w.c.rentals.rent(RentRequest(new_wallet(), "M2", 3600, new_signature()), client=client)
        except PaymentInvalid as exc:
            assert exc.reason == "not_found"
            out["not_found"] += 1
        except TooManyLookups as exc:
            assert exc.reason == "rpc_budget" and exc.retry_after >= 1
            out["limited"] += 1
    return out


def test_200_random_signatures_from_one_address_cost_at_most_the_budget_in_rpc_calls():
    w = World(rpc_lookup_limit=(10, 10))
    before = w.db.snapshot()
    got = attack(w, 200)
    assert got == {"not_found": 10, "limited": 190}
    assert len(w.rpc.requests) <= 10 * RPC_PER_LOOKUP
    assert w.rpc.requests.count("getTransaction") == 10
    assert w.db.snapshot() == before  # refused requests write nothing
    # the window ends: the address has a new budget, and no more
    w.clock.advance(10)
    assert attack(w, 50) == {"not_found": 10, "limited": 40}
    assert w.rpc.requests.count("getTransaction") == 20


def test_another_address_has_its_own_budget_and_a_real_payment_still_rents():
    w = World(rpc_lookup_limit=(3, 10))
    attack(w, 20, client="ip:198.51.100.7")
    renter = new_wallet()
    sig = w.rpc.pay(renter, PRICE, memo=rent_memo("M2", 3600))
    receipt = w.c.rentals.rent(RentRequest(renter, "M2", 3600, sig), client="ip:203.0.113.5")
    assert receipt.first
    asked = len(w.rpc.requests)
    # the attacker's address is still over budget: a payment this exact request already spent is
    # answered from its claim without asking the chain; a new one waits for the window
    again = w.c.rentals.rent(RentRequest(renter, "M2", 3600, sig), client="ip:198.51.100.7")
    assert (again.first, again.body) == (False, receipt.body) and len(w.rpc.requests) == asked
    other = w.rpc.pay(renter, PRICE, memo=rent_memo("M2", 3600))
    with pytest.raises(TooManyLookups):
        w.c.rentals.rent(RentRequest(renter, "M2", 3600, other), client="ip:198.51.100.7")
    assert len(w.rpc.requests) == asked


def test_the_same_unknown_signature_costs_one_lookup_until_the_cache_entry_expires():
    w = World(rpc_lookup_limit=(100, 10), unknown_payment_cache_seconds=5)
    renter, sig = new_wallet(), new_signature()
    for _ in range(20):
        with pytest.raises(PaymentInvalid) as exc:
            w.c.rentals.rent(RentRequest(renter, "M2", 3600, sig), client="ip:198.51.100.7")
        assert exc.value.reason == "not_found"
    assert w.rpc.requests == ["getTransaction", "getSignatureStatuses"]  # asked once
    assert w.c.payment_checks.lookups == 1
    # after the entry expires the chain is asked again
    w.clock.advance(5)
    with pytest.raises(PaymentInvalid):
        w.c.rentals.rent(RentRequest(renter, "M2", 3600, sig), client="ip:198.51.100.7")
    assert w.rpc.requests.count("getTransaction") == 2


def test_a_known_payment_is_never_cached_as_unknown():
    w = World(rpc_lookup_limit=(100, 10))
    renter = new_wallet()
    sig = w.rpc.pay(renter, PRICE - 1, memo=rent_memo("M2", 3600))
    for _ in range(2):
        with pytest.raises(PaymentInvalid) as exc:
            w.c.rentals.rent(RentRequest(renter, "M2", 3600, sig), client="ip:198.51.100.7")
        assert exc.value.reason == "insufficient_amount"
    assert w.rpc.requests.count("getTransaction") == 2


def test_payment_refund_requests_share_the_budget():
    w = World(rpc_lookup_limit=(2, 10))
    payer = new_wallet()
    for _ in range(2):
        with pytest.raises(PaymentInvalid):
            w.c.payment_refunds.request(new_signature(), payer, client="ip:198.51.100.7")
    with pytest.raises(TooManyLookups):
        w.c.payment_refunds.request(new_signature(), payer, client="ip:198.51.100.7")
    assert w.rpc.requests.count("getTransaction") == 2


def test_the_shared_budget_holds_across_instances():
    w = World(rpc_lookup_limit=(10, 10), rate_limit_shared=True)
    instances = [PaymentChecks(claims=w.c.claims, clock=w.clock, settings=w.settings) for _ in range(4)]
    from dataclasses import replace

    passed = limited = 0
    for i in range(80):  # a fleet of 4 instances, requests spread over them
        rentals = replace(w.c.rentals, checks=instances[i % 4])
        try:
            rentals.rent(RentRequest(new_wallet(), "M2", 3600, new_signature()), client="ip:198.51.100.7")
        except PaymentInvalid:
            passed += 1
        except TooManyLookups:
            limited += 1
    assert (passed, limited) == (10, 70)  # the fleet's budget, not 4 x 10
    assert w.rpc.requests.count("getTransaction") == 10
    assert sum(i.lookups for i in instances) == 10


def test_no_client_no_budget():
    """The operator's orphan refund and service calls without an address are not budgeted."""
    w = World(rpc_lookup_limit=(1, 10))
    for _ in range(5):
        with pytest.raises(PaymentInvalid):
            w.c.rentals.rent(RentRequest(new_wallet(), "M2", 3600, new_signature()))
    assert w.rpc.requests.count("getTransaction") == 5
