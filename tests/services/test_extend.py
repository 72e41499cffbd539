"""Rentals.extend on fakes: exact figures, refusals before the chain, replays, lost races, outages."""

from __future__ import annotations

from decimal import Decimal

import pytest

from chalicelib.domain import contracts as dc
from chalicelib.domain import ledger
from chalicelib.domain.commands import ExtendRequest
from chalicelib.domain.errors import (
    Conflict,
    ContractNotActive,
    InvalidRequest,
    NotFound,
    PaymentAlreadyUsed,
    PaymentInvalid,
    Unavailable,
)
from chalicelib.services.rentals import MAX_RETRIES
from tests.support.fakes import new_signature, new_wallet

from .conftest import make_world

NOW_S = 1_764_000_000


@pytest.fixture
def k(w) -> dc.Contract:
    """An ORIN contract of 1 h, paid exactly (4,000,000), 10 minutes in."""
    c = w.rent("ORIN", 3600, 4_000_000)
    w.clock.advance(600)
    return c


def test_extend_adds_time_and_money_at_the_exact_price(w, k):
    req = w.extend_request(k, 1800, 2_000_000)
    receipt = w.rentals.extend(req)
    assert receipt.first is True
    assert receipt.body == {
        "contract_id": k.contract_id,
        "extended_hours": 0.5,
        "extended_seconds": 1800,
        "additional_cost_sol": Decimal("0.002"),
        "additional_cost_lamports": 2_000_000,
        "prepaid_lamports": 2_000_000,
        "new_total_cost": Decimal("0.006"),
        "new_total_cost_lamports": 6_000_000,
        "new_expiration": NOW_S + 5400,
        "duration_seconds": 5400,
        "payment_received_lamports": 2_000_000,
        "new_expiration_ms": (NOW_S + 5400) * 1000,
        "payment_tx_signature": req.tx_signature,
    }
    after = w.p.contracts.get(k.contract_id)
    assert (after.version, after.duration_seconds, after.price_lamports, after.received_lamports) == (
        2,
        5400,
        6_000_000,
        6_000_000,
    )
    assert after.expires_at_ms == k.expires_at_ms + 1_800_000
    assert [p.sig for p in after.payments] == [k.payments[0].sig, req.tx_signature]
    rows = w.entries(k.contract_id)
    assert ledger.balance(rows) == 0 and ledger.balance(rows, ledger.TREASURY) == 6_000_000
    assert ledger.balance(rows, ledger.escrow(k.contract_id)) == -6_000_000
    assert w.leases() == {k.device_id: 1}  # an extension takes no second slot


def test_an_odd_extension_is_rounded_up_and_an_overpayment_is_kept(w):
    k = w.rent("THOR", 3600, 35_000_000)
    receipt = w.rentals.extend(w.extend_request(k, 61, 600_000))
    assert receipt.body["additional_cost_lamports"] == 593_056  # 35,000,000 × 61 / 3600 = 593,055.5… → up
    assert receipt.body["prepaid_lamports"] == 600_000
    after = w.p.contracts.get(k.contract_id)
    assert (after.price_lamports, after.received_lamports) == (35_593_056, 35_600_000)


# --- refusals -----------------------------------------------------------------------------------


def test_no_such_contract_is_not_found_without_asking_the_chain(w):
    with pytest.raises(NotFound):
        w.rentals.extend(ExtendRequest("CTR-nosuchcontract000000", 600, new_signature()))
    assert w.rpc.calls == 0


def test_a_settled_contract_cannot_be_extended_and_the_payment_is_kept(w, k):
    w.rentals.settle(k.contract_id, k.wallet)
    req = w.extend_request(k, 600, 666_667)
    before = w.db.snapshot()
    with pytest.raises(ContractNotActive):
        w.rentals.extend(req)
    assert w.rpc.calls == 1 and w.db.snapshot() == before  # only the rent's payment was verified


def test_a_contract_past_its_expiry_cannot_be_extended_before_the_sweep_ends_it(w, k):
    w.clock.advance(3000)  # exactly at expiry; still ACTIVE in the table
    assert w.p.contracts.get(k.contract_id).status == dc.ACTIVE
    with pytest.raises(ContractNotActive):
        w.rentals.extend(w.extend_request(k, 600, 666_667))


def test_the_maximum_total_duration_is_checked_before_the_chain():
    w = make_world(max_duration_hours=2)
    k = w.rent("M2", 3600, 1_000_000)
    req = w.extend_request(k, 3601, 1_000_278)
    with pytest.raises(InvalidRequest) as exc:
        w.rentals.extend(req)
    assert exc.value.reason == "additional_hours" and w.rpc.calls == 1
    assert w.rentals.extend(w.extend_request(k, 3600, 1_000_000)).first  # exactly the maximum is fine


@pytest.mark.parametrize(
    "make, reason",
    [
        (lambda w, k: w.extend_request(k, 1800, 1_999_999), "insufficient_amount"),
        (
            lambda w, k: ExtendRequest(k.contract_id, 1800, w.pay_extend(new_wallet(), k.contract_id, 1800, 2_000_000)),
            "wrong_payer",
        ),  # paid from another wallet than the contract's
        (lambda w, k: ExtendRequest(k.contract_id, 1800, new_signature()), "not_found"),
    ],
)
def test_payment_refusals_write_nothing(w, k, make, reason):
    req = make(w, k)
    before = w.db.snapshot()
    with pytest.raises(PaymentInvalid) as exc:
        w.rentals.extend(req)
    assert exc.value.reason == reason and w.db.snapshot() == before


# --- replays and reuse ---------------------------------------------------------------------------


def test_the_same_extension_again_is_the_same_answer_and_counts_once(w, k):
    req = w.extend_request(k, 1800, 2_000_000)
    first = w.rentals.extend(req)
    again = w.rentals.extend(req)
    assert again.first is False and again.body == first.body
    assert w.p.contracts.get(k.contract_id).version == 2


def test_a_replay_after_the_contract_ended_still_gets_its_answer(w, k):
    req = w.extend_request(k, 1800, 2_000_000)
    first = w.rentals.extend(req)
    w.rentals.settle(k.contract_id, k.wallet)
    again = w.rentals.extend(req)
    assert again.first is False and again.body == first.body


def test_a_signature_claimed_by_another_request_is_payment_already_used(w, k):
    req = w.extend_request(k, 1800, 2_000_000)
    w.claim_elsewhere(req.tx_signature, f"rent|{k.wallet}|M2|60", "dev-m2-a", k.wallet)
    before = w.db.snapshot()
    with pytest.raises(PaymentAlreadyUsed):
        w.rentals.extend(req)
    assert w.db.snapshot() == before


# --- lost races ----------------------------------------------------------------------------------


def test_a_concurrent_extension_bumps_the_version_so_it_re_reads_and_both_count(w, k):
    rival = w.extend_request(k, 900, 1_000_000)
    w.db.before_next("tx.extend_rental", lambda: w.rentals.extend(rival))
    mine = w.rentals.extend(w.extend_request(k, 1800, 2_000_000))
    after = w.p.contracts.get(k.contract_id)
    assert mine.first and after.version == 3
    assert (after.duration_seconds, after.price_lamports, after.received_lamports) == (
        3600 + 900 + 1800,
        7_000_000,
        7_000_000,
    )
    assert mine.body["new_total_cost_lamports"] == 7_000_000 and mine.body["duration_seconds"] == 6300
    assert ledger.balance(w.entries(k.contract_id), ledger.TREASURY) == 7_000_000


def test_a_concurrent_settle_wins_so_the_extension_is_refused_and_the_payment_kept(w, k):
    req = w.extend_request(k, 1800, 2_000_000)
    w.db.before_next("tx.extend_rental", lambda: w.rentals.settle(k.contract_id, k.wallet))
    with pytest.raises(ContractNotActive):
        w.rentals.extend(req)
    assert w.p.claims.get_claim(req.tx_signature, k.wallet) is None
    assert w.p.contracts.get(k.contract_id).status == dc.SETTLED


def test_the_retry_loop_gives_up_as_unavailable_and_writes_nothing(w, k):
    req = w.extend_request(k, 1800, 2_000_000)
    w.db.fail_next("tx.extend_rental", Conflict(["contract"]), times=MAX_RETRIES)
    w.db.calls.clear()
    before = w.db.snapshot()
    with pytest.raises(Unavailable) as exc:
        w.rentals.extend(req)
    assert exc.value.reason == "contention" and w.db.snapshot() == before
    assert w.db.calls.count("tx.extend_rental") == MAX_RETRIES
    assert w.db.calls.count("contracts.get") == 1 + MAX_RETRIES  # each lost race re-reads


def test_a_write_that_landed_but_whose_answer_was_lost_is_found_by_the_retry(w, k):
    req = w.extend_request(k, 1800, 2_000_000)
    w.db.fail_next("tx.extend_rental", after=True)
    assert w.rentals.extend(req).first is True  # the claim read after the timeout shows it landed
    again = w.rentals.extend(req)
    assert again.first is False and again.body == w.p.claims.get_claim(req.tx_signature, k.wallet).response
    assert w.p.contracts.get(k.contract_id).version == 2


def test_an_sdk_retry_of_a_landed_extension_answers_the_stored_receipt(w, k):
    req = w.extend_request(k, 1800, 2_000_000)
    w.db.repeat_next("tx.extend_rental")
    receipt = w.rentals.extend(req)
    assert receipt.body == w.p.claims.get_claim(req.tx_signature, k.wallet).response
    assert receipt.body["new_total_cost_lamports"] == 6_000_000
    assert w.p.contracts.get(k.contract_id).version == 2


# --- outages -------------------------------------------------------------------------------------


@pytest.mark.parametrize("down", ["database", "rpc", "tx"])
def test_an_outage_is_unavailable_and_writes_nothing(w, k, down):
    req = w.extend_request(k, 1800, 2_000_000)
    before = w.db.snapshot()
    if down == "database":
        w.db.down = True
    elif down == "rpc":
        w.rpc.down = True
    else:
        w.p.tx.down = True
    with pytest.raises(Unavailable) as exc:
        w.rentals.extend(req)
    assert exc.value.reason == ("rpc" if down == "rpc" else "database")
    assert w.db.snapshot() == before
