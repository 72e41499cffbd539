"""Races against the lock-serialized emulator (moto over HTTP), many threads at once.

In-process `mock_aws` is not thread-safe and would lie; the emulator answers
each request atomically, as DynamoDB does, so conditional writes decide.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest
from solders.keypair import Keypair

from chalicelib.domain import ledger
from chalicelib.domain.commands import ExtendRequest, RentRequest
from chalicelib.domain.errors import DomainError, NoCapacity
from chalicelib.domain.signing import extend_memo, rent_memo
from chalicelib.services.rentals import Receipt
from tests.support.fakes import new_wallet

from .conftest import make_container


@pytest.fixture
def c(aws_emulator, monkeypatch):
    for k, v in aws_emulator.env.items():
        monkeypatch.setenv(k, v)
    p = aws_emulator.provision()
    return make_container(p, capacity=2, endpoint=aws_emulator.endpoint)


def _run(fn, n):
    def safe(i):
        try:
            return fn(i)
        except DomainError as e:
            return e

    with ThreadPoolExecutor(max_workers=n) as pool:
        return list(pool.map(safe, range(n)))


def _leases(c, tier):
    return {d.device_id: (d.leases, d.capacity) for d in c.devices.by_tier(tier)}


def test_twenty_rents_with_one_signature_make_one_contract(c):
    wallet = new_wallet()
    sig = c.rpc.pay(wallet, 1_000_000, memo=rent_memo("M2", 3600))
    req = RentRequest(wallet, "M2", 3600, sig)
    results = _run(lambda i: c.rentals.rent(req), 20)
    assert all(isinstance(r, Receipt) for r in results), results
    ids = {r.body["contract_id"] for r in results}
    assert len(ids) == 1
    assert [r.first for r in results].count(True) == 1
    assert sum(n for n, _ in _leases(c, "M2").values()) == 1


def test_more_rents_than_slots(c):
    # M2 has 2 devices × 2 slots = 4 free slots; 9 renters race for them
    reqs = []
    for _ in range(9):
        w = new_wallet()
        reqs.append(RentRequest(w, "M2", 3600, c.rpc.pay(w, 1_000_000, memo=rent_memo("M2", 3600))))
    results = _run(lambda i: c.rentals.rent(reqs[i]), 9)
    ok = [r for r in results if isinstance(r, Receipt)]
    full = [r for r in results if isinstance(r, NoCapacity)]
    assert len(ok) == 4 and len(full) == 5, results
    assert all(n <= cap for n, cap in _leases(c, "M2").values())
    assert sum(n for n, _ in _leases(c, "M2").values()) == 4
    # the refused payments were not consumed
    assert all(
        c.claims.get_claim(reqs[i].tx_signature, reqs[i].wallet) is None
        for i, r in enumerate(results)
        if isinstance(r, DomainError)
    )


def test_ten_settles_one_settlement(c):
    kp = Keypair()
    w = str(kp.pubkey())
    cid = c.rentals.rent(RentRequest(w, "ORIN", 7200, c.rpc.pay(w, 9_000_000, memo=rent_memo("ORIN", 7200)))).body[
        "contract_id"
    ]
    c.clock.advance(600)
    sent = []
    c.queue.send_refund = lambda cid_, v: sent.append((cid_, v)) or True
    results = _run(lambda i: c.rentals.settle(cid, w), 10)
    assert all(not isinstance(r, Exception) for r in results), results
    assert len({(r.refund_lamports, r.used_lamports, r.status, r.version) for r in results}) == 1
    assert len(sent) == 1
    rows, _ = c.ledger.by_contract(cid, 100, None)
    assert ledger.balance(rows) == 0 and ledger.balance(rows, f"escrow:{cid}") == 0
    assert len([e for e in rows if e.kind == "settled"]) == 3
    assert _leases(c, "ORIN")["device-orin-001"][0] == 0


def test_five_extends_with_distinct_payments_all_count(c):
    w = new_wallet()
    cid = c.rentals.rent(RentRequest(w, "THOR", 3600, c.rpc.pay(w, 35_000_000, memo=rent_memo("THOR", 3600)))).body[
        "contract_id"
    ]
    sigs = [c.rpc.pay(w, 35_000_000, memo=extend_memo(cid, 3600)) for _ in range(5)]
    results = _run(lambda i: c.rentals.extend(ExtendRequest(cid, 3600, sigs[i])), 5)
    assert all(isinstance(r, Receipt) and r.first for r in results), results
    k = c.contracts.get(cid)
    assert k.duration_seconds == 6 * 3600 and k.price_lamports == 6 * 35_000_000
    assert k.received_lamports == 6 * 35_000_000 and k.version == 6
    assert k.expires_at_ms == k.created_at_ms + 6 * 3600 * 1000
    rows, _ = c.ledger.by_contract(cid, 100, None)
    assert ledger.balance(rows, "treasury") == 6 * 35_000_000
