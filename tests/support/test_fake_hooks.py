"""What only the fakes have: fault hooks for service tests, and state callers cannot reach into."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from chalicelib.domain import ledger
from chalicelib.domain.errors import Conflict, Unavailable
from chalicelib.domain.payments import PaymentCheck
from tests.contract.test_storage import NOW, ROWS, claim_for, extended, new_contract, rent, spec
from tests.support.fakes import FakeDatabase, FakePorts, new_wallet


@pytest.fixture
def db() -> FakeDatabase:
    db = FakeDatabase(shards=4)
    db.ports()["devices"].upsert(spec("dev-1"), 2)
    return db


class _S:  # the shape test_storage's helpers expect
    def __init__(self, db: FakeDatabase) -> None:
        self.__dict__.update(db.ports())

    def __getattr__(self, name: str) -> Any:  # the ports set above; anything else is missing
        raise AttributeError(name)


def test_fail_next_raises_once_and_writes_nothing(db: FakeDatabase) -> None:
    s = _S(db)
    db.fail_next("tx.open_rental")
    before = db.snapshot()
    with pytest.raises(Unavailable) as exc:
        rent(s, new_contract())
    assert exc.value.reason == "database" and db.snapshot() == before
    c = rent(s, new_contract())
    assert s.contracts.get(c.contract_id) == c
    assert db.calls.count("tx.open_rental") == 2


def test_fail_next_after_applies_the_write_and_loses_the_answer(db: FakeDatabase) -> None:
    s = _S(db)
    db.fail_next("tx.open_rental", after=True)
    c = new_contract()
    with pytest.raises(Unavailable):
        rent(s, c)
    assert s.contracts.get(c.contract_id) == c  # it landed: a retry must find it
    with pytest.raises(Conflict) as exc:
        rent(s, c)
    assert exc.value.failed == {"claim", "contract", "ledger", "outbox"}


def test_fail_next_with_a_chosen_error_and_times(db: FakeDatabase) -> None:
    s = _S(db)
    db.fail_next("contracts.get", Conflict([], contended=["contract"]), times=2)
    for _ in range(2):
        with pytest.raises(Conflict):
            s.contracts.get("CTR-x")
    assert s.contracts.get("CTR-x") is None


def test_before_next_lets_a_concurrent_writer_win(db: FakeDatabase) -> None:
    s = _S(db)
    c = rent(s, new_contract())
    rival = extended(c)
    db.before_next(
        "tx.extend_rental",
        lambda: s.tx.extend_rental(
            claim_for(rival, kind="extend"), c, rival, ledger.payment_postings(rival, rival.payments[-1]), NOW
        ),
    )
    mine = extended(c)
    with pytest.raises(Conflict) as exc:
        s.tx.extend_rental(
            claim_for(mine, kind="extend"), c, mine, ledger.payment_postings(mine, mine.payments[-1]), NOW
        )
    assert exc.value.failed == {"contract", "ledger"}
    assert s.contracts.get(c.contract_id) == rival


def test_database_down_and_one_port_down(db: FakeDatabase) -> None:
    s = _S(db)
    db.down = True
    for call in (
        lambda: s.contracts.get("x"),
        lambda: s.devices.all(),
        lambda: s.ledger.by_account("a", 1, None),
        lambda: s.claims.get_claim("x", "y"),
        lambda: s.metrics.latest("x"),
        lambda: rent(s, new_contract()),
    ):
        with pytest.raises(Unavailable):
            call()
    db.down = False
    s.metrics.down = True
    with pytest.raises(Unavailable):
        s.metrics.latest("x")
    assert s.contracts.get("x") is None


def test_views_share_one_database(db: FakeDatabase) -> None:
    a, b = _S(db), _S(db)
    c = rent(a, new_contract())
    assert b.contracts.get(c.contract_id) == c and b.devices.get("dev-1").leases == 1


def test_callers_cannot_mutate_stored_state(db: FakeDatabase) -> None:
    s = _S(db)
    c = rent(s, new_contract())
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.contracts.get(c.contract_id).status = "SETTLED"
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.devices.get("dev-1").leases = 0
    s.devices.set_key_hash("dev-1", "k1")
    rows = [list(r) for r in ROWS]
    s.metrics.put_batch(c.contract_id, "dev-1", rows, NOW)
    rows[0][1] = 99  # the caller's list, after the write
    got = s.metrics.latest(c.contract_id)
    got[0][1] = 77  # the reader's list
    assert s.metrics.latest(c.contract_id)[0][1] == 12.5
    snap = db.snapshot()
    snap["contracts"].clear()
    assert s.contracts.get(c.contract_id) == c


def test_fake_ports_bundle_and_rpc_faults() -> None:
    treasury = new_wallet()
    p = FakePorts.build(treasury=treasury, admin_key="k")
    payer = new_wallet()
    sig = p.rpc.pay(payer, 5)
    check = PaymentCheck(sig, payer, treasury, 5, 60, p.clock() // 1000)
    assert p.rpc.verify_payment(check).ok and p.rpc.calls == 1 and p.rpc.health()
    p.rpc.fail_next_calls = 1
    with pytest.raises(Unavailable) as exc:
        p.rpc.verify_payment(check)
    assert exc.value.reason == "rpc"
    assert p.rpc.verify_payment(check).ok
    p.rpc.down = True
    assert p.rpc.health() is False
    with pytest.raises(Unavailable):
        p.rpc.verify_payment(check)
    assert p.secrets.is_admin("k") and p.contracts.get("x") is None and p.queue.send_refund("c", 1)
