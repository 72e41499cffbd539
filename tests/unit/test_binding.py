"""Binding a payment to its request (docs/api.md "Binding a payment"), and what decide reads for it."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chalicelib.domain import binding
from chalicelib.domain.errors import Forbidden, PaymentInvalid, Unauthorized
from chalicelib.domain.payments import MEMO_PROGRAM_IDS, SYSTEM_PROGRAM_ID, WRONG_PAYER, decide, memos
from chalicelib.domain.signing import extend_memo, rent_memo
from tests.unit.test_payments import PRICE, SIG, TREASURY, WALLET, base58, check, ix, key, transfer_data, tx_result

RENT = rent_memo("THOR", 3600)
CID = "CTR-" + "a" * 22


def test_memo_binds_exactly_its_terms():
    assert binding.bind(RENT, [RENT], payer=WALLET, signed_by=None) == binding.BY_MEMO


def test_memo_binds_a_signed_request_too():
    assert binding.bind(RENT, ["hello", RENT], payer=WALLET, signed_by=WALLET) == binding.BY_MEMO


def test_signature_binds_a_payment_without_terms():
    assert binding.bind(RENT, [], payer=WALLET, signed_by=WALLET) == binding.BY_SIGNATURE
    assert binding.bind(RENT, ["a note from the wallet"], payer=WALLET, signed_by=WALLET) == binding.BY_SIGNATURE


@pytest.mark.parametrize("memo_list", [[], ["si64 rent"], ["thanks"]])
def test_neither_is_401_binding(memo_list):
    with pytest.raises(Unauthorized) as e:
        binding.bind(RENT, memo_list, payer=WALLET, signed_by=None)
    assert e.value.reason == "binding"


@pytest.mark.parametrize(
    "memo",
    [
        rent_memo("M2", 60),  # other terms
        rent_memo("THOR", 3601),
        extend_memo(CID, 3600),  # an extend memo never pays a rent
        RENT + " ",  # not exactly the terms
        "si64:rent:THOR",
    ],
)
def test_other_terms_are_memo_mismatch_even_when_signed(memo):
    for signer in (None, WALLET):
        with pytest.raises(PaymentInvalid) as e:
            binding.bind(RENT, [memo], payer=WALLET, signed_by=signer)
        assert e.value.reason == "memo_mismatch"


def test_a_rent_memo_never_pays_an_extend():
    with pytest.raises(PaymentInvalid) as e:
        binding.bind(extend_memo(CID, 3600), [rent_memo("THOR", 3600)], payer=WALLET, signed_by=None)
    assert e.value.reason == "memo_mismatch"


def test_two_sets_of_terms_are_ambiguous():
    with pytest.raises(PaymentInvalid):
        binding.bind(RENT, [RENT, rent_memo("M2", 60)], payer=WALLET, signed_by=None)


def test_signed_by_another_wallet_is_forbidden():
    with pytest.raises(Forbidden):
        binding.bind(RENT, [RENT], payer=WALLET, signed_by=key(7))


@given(st.text(max_size=80), st.sampled_from(["M2", "ORIN", "M3_ULTRA", "THOR"]), st.integers(60, 2_592_000))
def test_only_the_exact_memo_binds_without_signature(text, tier, seconds):
    expected = rent_memo(tier, seconds)
    try:
        assert binding.bind(expected, [text], payer=WALLET, signed_by=None) == binding.BY_MEMO
        assert text == expected
    except (Unauthorized, PaymentInvalid):
        assert text != expected


# --- what decide reads from the transaction ---------------------------------------------------


def paid(memo_texts=(), signers=(WALLET,), program=MEMO_PROGRAM_IDS[0], inner_memo=None):
    keys = list(signers) + [TREASURY, SYSTEM_PROGRAM_ID, program]
    if WALLET not in keys:
        keys.insert(len(signers), WALLET)
    w, t, sysp, memo_p = keys.index(WALLET), keys.index(TREASURY), keys.index(SYSTEM_PROGRAM_ID), keys.index(program)
    ixs = [ix(sysp, [w, t], transfer_data(PRICE))] + [ix(memo_p, [], base58.encode(m.encode())) for m in memo_texts]
    inner = [{"index": 0, "instructions": [ix(memo_p, [], base58.encode(inner_memo.encode()))]}] if inner_memo else None
    return tx_result(keys, ixs, num_signers=len(signers), inner=inner)


def test_decide_reports_the_memos_of_a_payment():
    r = decide(check(), paid([RENT, "note"]))
    assert r.ok and r.memos == (RENT, "note")


def test_memo_v1_program_counts():
    assert decide(check(), paid([RENT], program=MEMO_PROGRAM_IDS[1])).memos == (RENT,)


def test_an_unknown_program_with_memo_text_is_not_a_memo():
    assert decide(check(), paid([RENT], program=key(40))).memos == ()


def test_inner_memos_are_not_terms():
    assert decide(check(), paid(inner_memo=RENT)).memos == ()


def test_non_utf8_memo_is_skipped():
    tx = paid()
    keys = tx["transaction"]["message"]["accountKeys"]
    tx["transaction"]["message"]["instructions"].append(
        ix(keys.index(MEMO_PROGRAM_IDS[0]), [], base58.encode(b"\xff\xfe"))
    )
    assert memos(tx) == ()


def test_a_transaction_the_treasury_signed_is_never_a_payment():
    r = decide(check(), paid([RENT], signers=(WALLET, TREASURY)))
    assert not r.ok and r.reason == WRONG_PAYER
    assert SIG  # the signature asked for is the first one
