"""Rentals.rent on fakes: prices, payment refusals, capacity, replays, lost races, outages."""

from __future__ import annotations

import pytest

from chalicelib.domain import contracts as dc
from chalicelib.domain import ledger
from chalicelib.domain.commands import RentRequest
from chalicelib.domain.errors import Conflict, NoCapacity, PaymentAlreadyUsed, PaymentInvalid, Unavailable
from chalicelib.domain.signing import rent_memo
from chalicelib.services.rentals import MAX_RETRIES
from tests.support.fakes import new_signature, new_wallet, payment_tx

from .conftest import TREASURY, make_world

NOW_S = 1_764_000_000


# --- happy paths: docs/api.md "Tiers", price = ceil(lamports_per_hour × seconds / 3600) --------------


@pytest.mark.parametrize(
    "tier, seconds, price",
    [
        ("M2", 1800, 500_000),  # 1,000,000 × 1800 / 3600
        ("ORIN", 61, 67_778),  # 4,000,000 × 61 / 3600 = 67,777.7… → up
        ("M3_ULTRA", 5400, 37_500_000),  # 25,000,000 × 1.5
        ("THOR", 3601, 35_009_723),  # 35,000,000 × 3601 / 3600 = 35,009,722.2… → up
    ],
)
def test_rent_opens_a_contract_at_the_exact_price(w, tier, seconds, price):
    req = w.rent_request(tier, seconds, price)
    receipt = w.rentals.rent(req)
    assert receipt.first is True
    body = receipt.body
    assert body["cost_lamports"] == price and body["prepaid_lamports"] == price
    assert body["duration_seconds"] == seconds and body["status"] == "ACTIVE" and body["tier"] == tier
    assert body["created_at"] == NOW_S and body["expires_at"] == NOW_S + seconds
    k = w.p.contracts.get(body["contract_id"])
    assert (k.wallet, k.tier, k.version, k.status) == (req.wallet, tier, 1, dc.ACTIVE)
    assert (k.price_lamports, k.received_lamports, k.duration_seconds) == (price, price, seconds)
    assert k.expires_at_ms == w.clock() + seconds * 1000
    assert w.leases() == {k.device_id: 1}
    claim = w.p.claims.get_claim(req.tx_signature, req.wallet)
    assert (claim.contract_id, claim.response, claim.request) == (k.contract_id, body, req.fingerprint())
    rows = w.entries(k.contract_id)
    assert {(e.account, e.debit_lamports, e.credit_lamports, e.ref) for e in rows} == {
        (ledger.TREASURY, price, 0, req.tx_signature),
        (ledger.escrow(k.contract_id), 0, price, req.tx_signature),
    }


def test_an_overpayment_is_prepaid_and_only_the_price_is_the_cost(w):
    receipt = w.rentals.rent(w.rent_request("M2", 3600, 1_250_000))
    assert receipt.body["cost_lamports"] == 1_000_000 and receipt.body["prepaid_lamports"] == 1_250_000
    k = w.p.contracts.get(receipt.body["contract_id"])
    assert (k.price_lamports, k.received_lamports) == (1_000_000, 1_250_000)
    assert ledger.balance(w.entries(k.contract_id), ledger.TREASURY) == 1_250_000


def test_the_least_loaded_device_is_taken_ties_by_id(w):
    placed = [w.rent("M2", 600, 166_667).device_id for _ in range(4)]
    assert placed == ["dev-m2-a", "dev-m2-b", "dev-m2-a", "dev-m2-b"]
    assert w.leases()["dev-m2-a"] == 2 and w.leases()["dev-m2-b"] == 2


# --- payment refusals: nothing written, the signature stays unclaimed -------------------------


def _refused(w, req: RentRequest, reason: str):
    before = w.db.snapshot()
    with pytest.raises(PaymentInvalid) as exc:
        w.rentals.rent(req)
    assert exc.value.reason == reason
    assert w.db.snapshot() == before
    assert w.p.claims.get_claim(req.tx_signature, req.wallet) is None


def test_refused_not_found(w):
    _refused(w, RentRequest(new_wallet(), "M2", 3600, new_signature()), "not_found")


def test_refused_not_confirmed_processed_only(w):
    wallet = new_wallet()
    sig = w.pay_rent(wallet, "M2", 3600, 1_000_000, commitment="processed")
    _refused(w, RentRequest(wallet, "M2", 3600, sig), "not_confirmed")


def test_refused_not_confirmed_without_block_time(w):
    wallet = new_wallet()
    sig = w.rpc.land(
        payment_tx(
            new_signature(),
            signers=[wallet],
            transfers=[(wallet, TREASURY, 1_000_000)],
            memo=rent_memo("M2", 3600),
            block_time=None,
        )
    )
    _refused(w, RentRequest(wallet, "M2", 3600, sig), "not_confirmed")


def test_refused_failed_on_chain(w):
    wallet = new_wallet()
    sig = w.pay_rent(wallet, "M2", 3600, 1_000_000, err={"InstructionError": [0, {"Custom": 1}]})
    _refused(w, RentRequest(wallet, "M2", 3600, sig), "failed_on_chain")


def test_refused_wrong_payer_when_the_wallet_did_not_sign(w):
    wallet = new_wallet()
    sig = w.pay_rent(wallet, "M2", 3600, 1_000_000, signers=[new_wallet()])
    _refused(w, RentRequest(wallet, "M2", 3600, sig), "wrong_payer")


def test_refused_wrong_payer_when_the_treasury_signed(w):
    wallet = new_wallet()
    sig = w.pay_rent(wallet, "M2", 3600, 1_000_000, signers=[wallet, TREASURY])
    _refused(w, RentRequest(wallet, "M2", 3600, sig), "wrong_payer")


def test_refused_wrong_recipient(w):
    wallet = new_wallet()
    sig = w.pay_rent(wallet, "M2", 3600, 1_000_000, to=new_wallet())
    _refused(w, RentRequest(wallet, "M2", 3600, sig), "wrong_recipient")


def test_refused_insufficient_amount_by_one_lamport(w):
    _refused(w, w.rent_request("THOR", 3601, 35_009_722), "insufficient_amount")


def test_refused_too_old(w):
    wallet = new_wallet()
    sig = w.pay_rent(wallet, "M2", 3600, 1_000_000, block_time=NOW_S - 86_400 - 1)
    _refused(w, RentRequest(wallet, "M2", 3600, sig), "too_old")


def test_a_payment_exactly_at_the_maximum_age_is_accepted(w):
    wallet = new_wallet()
    sig = w.pay_rent(wallet, "M2", 3600, 1_000_000, block_time=NOW_S - 86_400)
    assert w.rentals.rent(RentRequest(wallet, "M2", 3600, sig)).first


# --- no capacity: the payment is not consumed ----------------------------------------------------


def test_no_capacity_consumes_nothing_and_the_payment_pays_later():
    w = make_world(capacity=1)
    first = [w.rent("M2", 600, 166_667) for _ in range(2)]  # both M2 devices full
    req = w.rent_request("M2", 3600, 1_000_000)
    before = w.db.snapshot()
    with pytest.raises(NoCapacity) as exc:
        w.rentals.rent(req)
    assert exc.value.reason == "tier"
    assert w.db.snapshot() == before and w.p.claims.get_claim(req.tx_signature, req.wallet) is None
    w.rentals.settle(first[1].contract_id, first[1].wallet)  # a slot frees up
    receipt = w.rentals.rent(req)
    assert receipt.first and receipt.body["device_id"] == first[1].device_id


# --- replays and reuse ------------------------------------------------------------------------------


def test_the_same_request_again_is_the_same_answer_not_a_second_contract(w):
    req = w.rent_request("ORIN", 7200, 8_000_000)
    first = w.rentals.rent(req)
    w.clock.advance(30)
    again = w.rentals.rent(req)
    assert first.first is True and again.first is False and again.body == first.body
    assert len(w.db.tables["contracts"]) == 1 and sum(w.leases().values()) == 1
    assert len(w.entries(first.body["contract_id"])) == 2


def test_a_replay_after_the_payment_grew_too_old_still_gets_its_answer(w):
    req = w.rent_request("M2", 3600, 1_000_000)
    first = w.rentals.rent(req)
    w.clock.advance(86_400 + 60)
    again = w.rentals.rent(req)
    assert again.first is False and again.body == first.body


def test_a_replay_when_the_tier_is_full_still_gets_its_answer():
    w = make_world(devices={"THOR": ["dev-thor-a"]}, capacity=1)
    req = w.rent_request("THOR", 3600, 35_000_000)
    first = w.rentals.rent(req)
    again = w.rentals.rent(req)  # no free THOR slot now: its own contract holds it
    assert again.first is False and again.body == first.body


def test_a_signature_claimed_by_another_request_is_payment_already_used(w):
    req = w.rent_request("M2", 1800, 500_000)
    w.claim_elsewhere(req.tx_signature, f"rent|{req.wallet}|M2|60", "dev-m2-b", req.wallet)
    before = w.db.snapshot()
    with pytest.raises(PaymentAlreadyUsed) as exc:
        w.rentals.rent(req)
    assert exc.value.reason == "tx_signature" and w.db.snapshot() == before


# --- lost races ---------------------------------------------------------------------------------


def test_a_rival_takes_the_last_slot_of_the_chosen_device_so_the_next_one_is_used():
    w = make_world(capacity=1)
    rival = w.rent_request("M2", 600, 166_667)
    won = []
    w.db.before_next("tx.open_rental", lambda: won.append(w.rentals.rent(rival)))
    mine = w.rentals.rent(w.rent_request("M2", 600, 166_667))
    assert won[0].body["device_id"] == "dev-m2-a" and mine.body["device_id"] == "dev-m2-b"
    assert mine.first and w.leases() == {"dev-m2-a": 1, "dev-m2-b": 1}


def test_a_rival_takes_the_last_slot_of_the_tier_so_no_capacity_and_the_payment_is_kept():
    w = make_world(devices={"THOR": ["dev-thor-a"]}, capacity=1)
    rival = w.rent_request("THOR", 3600, 35_000_000)
    w.db.before_next("tx.open_rental", lambda: w.rentals.rent(rival))
    req = w.rent_request("THOR", 3600, 35_000_000)
    with pytest.raises(NoCapacity):
        w.rentals.rent(req)
    assert w.p.claims.get_claim(req.tx_signature, req.wallet) is None and w.leases() == {"dev-thor-a": 1}


def test_the_same_request_racing_itself_makes_one_contract(w):
    req = w.rent_request("M2", 1800, 500_000)
    rival = []
    w.db.before_next("tx.open_rental", lambda: rival.append(w.rentals.rent(req)))
    mine = w.rentals.rent(req)
    assert rival[0].first is True and mine.first is False and mine.body == rival[0].body
    assert len(w.db.tables["contracts"]) == 1 and sum(w.leases().values()) == 1


def test_another_request_claiming_the_signature_mid_flight_is_payment_already_used(w):
    req = w.rent_request("M2", 1800, 500_000)
    w.db.before_next(
        "tx.open_rental",
        lambda: w.claim_elsewhere(req.tx_signature, f"rent|{req.wallet}|M2|60", "dev-m2-b", req.wallet),
    )
    with pytest.raises(PaymentAlreadyUsed):
        w.rentals.rent(req)
    assert len(w.db.tables["contracts"]) == 1  # the other request's only


def test_a_concurrent_transaction_is_retried_after_a_fresh_query(w):
    w.db.fail_next("tx.open_rental", Conflict([], contended=["device"]), times=MAX_RETRIES - 1)
    receipt = w.rentals.rent(w.rent_request("M2", 1800, 500_000))
    assert receipt.first
    assert w.db.calls.count("tx.open_rental") == MAX_RETRIES
    assert w.db.calls.count("devices.by_tier") == MAX_RETRIES  # every retry re-reads the slots


def test_the_retry_loop_gives_up_as_unavailable_and_writes_nothing(w):
    w.db.fail_next("tx.open_rental", Conflict([], contended=["device"]), times=MAX_RETRIES)
    req = w.rent_request("M2", 1800, 500_000)
    before = w.db.snapshot()
    with pytest.raises(Unavailable) as exc:
        w.rentals.rent(req)
    assert exc.value.reason == "contention"
    assert w.db.snapshot() == before and w.db.calls.count("tx.open_rental") == MAX_RETRIES


def test_a_write_that_landed_but_whose_answer_was_lost_is_found_by_the_retry(w):
    req = w.rent_request("M2", 1800, 500_000)
    w.db.fail_next("tx.open_rental", after=True)
    first = w.rentals.rent(req)  # the claim read after the timeout shows it landed
    stored = w.p.claims.get_claim(req.tx_signature, req.wallet)
    assert first.first is True and first.body == stored.response
    again = w.rentals.rent(req)  # the client's retry
    assert again.first is False and again.body == stored.response
    assert len(w.db.tables["contracts"]) == 1 and sum(w.leases().values()) == 1


def test_an_sdk_retry_of_a_landed_rent_answers_the_stored_receipt(w):
    req = w.rent_request("M2", 1800, 500_000)
    w.db.repeat_next("tx.open_rental")  # lands, the answer is lost, botocore sends it again
    receipt = w.rentals.rent(req)
    assert receipt.body == w.p.claims.get_claim(req.tx_signature, req.wallet).response
    assert len(w.db.tables["contracts"]) == 1 and sum(w.leases().values()) == 1


def test_an_sdk_retry_of_a_landed_rent_is_still_the_first_answer(w):
    w.db.repeat_next("tx.open_rental")
    assert w.rentals.rent(w.rent_request("M2", 1800, 500_000)).first is True


# --- outages: 503 and nothing written -------------------------------------------------------------


@pytest.mark.parametrize("down", ["database", "devices", "tx"])
def test_a_store_outage_is_unavailable_and_writes_nothing(w, down):
    req = w.rent_request("M2", 1800, 500_000)
    before = w.db.snapshot()
    if down == "database":
        w.db.down = True
    else:
        getattr(w.p, down).down = True
    with pytest.raises(Unavailable) as exc:
        w.rentals.rent(req)
    assert exc.value.reason == "database"
    assert w.db.snapshot() == before


def test_an_rpc_outage_is_unavailable_before_any_read_or_write(w):
    req = w.rent_request("M2", 1800, 500_000)
    w.rpc.down = True
    before = w.db.snapshot()
    with pytest.raises(Unavailable) as exc:
        w.rentals.rent(req)
    assert exc.value.reason == "rpc"
    assert w.db.snapshot() == before and w.db.calls == []


def test_no_treasury_configured_is_unavailable_without_asking_the_chain():
    w = make_world(treasury="")
    req = RentRequest(new_wallet(), "M2", 1800, new_signature())
    with pytest.raises(Unavailable) as exc:
        w.rentals.rent(req)
    assert exc.value.reason == "configuration" and w.rpc.calls == 0 and w.db.calls == []


def test_a_rent_whose_write_landed_but_timed_out_answers_its_receipt_not_503(w):
    """botocore gave up (timeouts) although the transaction committed: the claim tells."""
    req = w.rent_request("M2", 1800, 500_000)
    w.db.fail_next("tx.open_rental", after=True)  # the write lands, the answer is lost: Unavailable
    receipt = w.rentals.rent(req)
    assert receipt.first and receipt.body == w.p.claims.get_claim(req.tx_signature, req.wallet).response
    assert len(w.db.tables["contracts"]) == 1


def test_a_rent_whose_write_did_not_land_is_still_503_and_writes_nothing(w):
    req = w.rent_request("M2", 1800, 500_000)
    before = w.db.snapshot()
    w.db.fail_next("tx.open_rental")
    with pytest.raises(Unavailable):
        w.rentals.rent(req)
    assert w.db.snapshot() == before
