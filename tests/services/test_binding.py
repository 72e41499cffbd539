"""Payment binding (docs/api.md "Binding a payment") at the service level, on fakes.

Each attack found by trying the API as an attacker is a case here: anything on chain is public,
so a transfer to the treasury must not rent (or extend) anything unless its payer bound it to
the request — by the terms in its memo, or by signing the request.
"""

from __future__ import annotations

import pytest

from chalicelib.config import Settings
from chalicelib.domain.commands import ExtendRequest, RentRequest
from chalicelib.domain.errors import Forbidden, PaymentAlreadyUsed, PaymentInvalid, Unauthorized
from chalicelib.domain.signing import extend_memo, rent_memo
from tests.support.fakes import FakePorts, new_wallet

TREASURY = new_wallet()
THOR_HOUR = 35_000_000
DEVICES = [
    {
        "device_id": f"device-{t.lower()}-00{i}",
        "name": f"{t} {i}",
        "tier": t,
        "uri": "u",
        "address": "a",
        "region": "r",
        "ram": "16GB",
    }
    for t in ("M2", "THOR")
    for i in (1, 2)
]


@pytest.fixture
def p():
    ports = FakePorts.build(treasury=TREASURY)
    for spec in DEVICES:
        ports.devices.upsert(spec, 4)
    return ports


@pytest.fixture
def rentals(p):
    return p.container(Settings(treasury=TREASURY)).rentals


def refused(p, fn, error, reason=None):
    """`fn` raises `error` (with `reason`) and writes nothing."""
    before = p.db.snapshot()
    with pytest.raises(error) as exc:
        fn()
    if reason is not None:
        assert exc.value.reason == reason, exc.value
    assert p.db.snapshot() == before, "a refused request wrote something"
    return exc.value


def test_a_strangers_transfer_without_binding_is_401_binding(p, rentals):
    stranger = new_wallet()
    sig = p.rpc.pay(stranger, 1_000 * 10**9)  # e.g. the treasury's own funding transfer: public on chain
    refused(p, lambda: rentals.rent(RentRequest(stranger, "THOR", 3600, sig)), Unauthorized, "binding")


def test_a_note_that_is_not_terms_does_not_bind(p, rentals):
    a = new_wallet()
    sig = p.rpc.pay(a, THOR_HOUR, memo="si64 rent THOR")  # not the exact terms
    refused(p, lambda: rentals.rent(RentRequest(a, "THOR", 3600, sig)), Unauthorized, "binding")


def test_a_transaction_the_treasury_signed_is_never_a_payment(p, rentals):
    a = new_wallet()
    sig = p.rpc.pay(a, THOR_HOUR, memo=rent_memo("THOR", 3600), signers=[a, TREASURY])
    refused(p, lambda: rentals.rent(RentRequest(a, "THOR", 3600, sig), signed_by=a), PaymentInvalid, "wrong_payer")


def test_a_signed_payment_cannot_be_claimed_first_with_other_terms(p, rentals):
    """A paid 1 h of THOR with a bare transfer and will sign its request; someone watching the
    chain tries A's payment for 60 s of M2 first."""
    a, mallory = new_wallet(), new_wallet()
    sig = p.rpc.pay(a, THOR_HOUR)
    refused(p, lambda: rentals.rent(RentRequest(a, "M2", 60, sig)), Unauthorized, "binding")
    refused(p, lambda: rentals.rent(RentRequest(a, "M2", 60, sig), signed_by=mallory), Forbidden, "X-Wallet")
    refused(
        p, lambda: rentals.rent(RentRequest(mallory, "M2", 60, sig), signed_by=mallory), PaymentInvalid, "wrong_payer"
    )
    receipt = rentals.rent(RentRequest(a, "THOR", 3600, sig), signed_by=a)  # A still gets what A paid for
    assert receipt.first and receipt.body["tier"] == "THOR" and receipt.body["prepaid_lamports"] == THOR_HOUR
    # and a signed request for other terms by A itself: that payment is spent
    with pytest.raises(PaymentAlreadyUsed):
        rentals.rent(RentRequest(a, "M2", 60, sig), signed_by=a)


def test_a_memo_bound_payment_rents_exactly_its_terms_for_anyone_who_submits_it(p, rentals):
    a = new_wallet()
    sig = p.rpc.pay(a, THOR_HOUR, memo=rent_memo("THOR", 3600))
    for tier, seconds in (("M2", 60), ("THOR", 60), ("THOR", 3601)):
        refused(p, lambda t=tier, s=seconds: rentals.rent(RentRequest(a, t, s, sig)), PaymentInvalid, "memo_mismatch")
    # other terms stay refused even when A signs: the memo is what A signed into the payment
    refused(p, lambda: rentals.rent(RentRequest(a, "M2", 60, sig), signed_by=a), PaymentInvalid, "memo_mismatch")
    first = rentals.rent(RentRequest(a, "THOR", 3600, sig))  # unsigned: the memo binds it
    assert first.first and first.body["duration_seconds"] == 3600
    contract = p.contracts.get(first.body["contract_id"])
    assert contract.wallet == a  # whoever submitted it, the contract (and its refund) is the payer's
    replay = rentals.rent(RentRequest(a, "THOR", 3600, sig))
    assert not replay.first and replay.body == first.body


def test_a_rent_memo_never_pays_an_extend_nor_the_reverse(p, rentals):
    a = new_wallet()
    cid = rentals.rent(RentRequest(a, "THOR", 3600, p.rpc.pay(a, THOR_HOUR, memo=rent_memo("THOR", 3600)))).body[
        "contract_id"
    ]
    other = rentals.rent(RentRequest(a, "M2", 3600, p.rpc.pay(a, 1_000_000, memo=rent_memo("M2", 3600)))).body[
        "contract_id"
    ]
    as_rent = p.rpc.pay(a, THOR_HOUR, memo=rent_memo("THOR", 3600))
    refused(p, lambda: rentals.extend(ExtendRequest(cid, 3600, as_rent)), PaymentInvalid, "memo_mismatch")
    for_other = p.rpc.pay(a, THOR_HOUR, memo=extend_memo(other, 3600))  # names another contract
    refused(p, lambda: rentals.extend(ExtendRequest(cid, 3600, for_other)), PaymentInvalid, "memo_mismatch")
    as_extend = p.rpc.pay(a, THOR_HOUR, memo=extend_memo(cid, 3600))
    refused(p, lambda: rentals.rent(RentRequest(a, "THOR", 3600, as_extend)), PaymentInvalid, "memo_mismatch")
    ok = rentals.extend(ExtendRequest(cid, 3600, as_extend))
    assert ok.first and ok.body["additional_cost_lamports"] == THOR_HOUR


def test_an_extension_binds_by_the_contract_wallets_signature(p, rentals):
    a, mallory = new_wallet(), new_wallet()
    cid = rentals.rent(RentRequest(a, "THOR", 3600, p.rpc.pay(a, THOR_HOUR, memo=rent_memo("THOR", 3600)))).body[
        "contract_id"
    ]
    bare = p.rpc.pay(a, THOR_HOUR)
    refused(p, lambda: rentals.extend(ExtendRequest(cid, 3600, bare)), Unauthorized, "binding")
    refused(p, lambda: rentals.extend(ExtendRequest(cid, 3600, bare), signed_by=mallory), Forbidden, "wallet")
    assert rentals.extend(ExtendRequest(cid, 3600, bare), signed_by=a).first


def test_binding_is_decided_before_the_amount(p, rentals):
    """An unbound payment tells a stranger nothing about itself but "bind it first"; a bound
    short one is refused for its amount, and writes nothing either way."""
    a = new_wallet()
    short = p.rpc.pay(a, THOR_HOUR - 1)
    refused(p, lambda: rentals.rent(RentRequest(a, "THOR", 3600, short)), Unauthorized, "binding")
    refused(
        p, lambda: rentals.rent(RentRequest(a, "THOR", 3600, short), signed_by=a), PaymentInvalid, "insufficient_amount"
    )
