"""The refund state machine, the chain-answer classifier and the refund postings
(chalicelib/domain/refunds.py, chalicelib/domain/ledger.py). Pure: no sockets, no AWS."""

from __future__ import annotations

import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chalicelib.domain import refunds as R
from chalicelib.domain.ledger import (
    NETWORK_FEES,
    REFUNDS_PAYABLE,
    TREASURY,
    balance,
    network_fee_postings,
    orphan_payment_postings,
    refund_paid_postings,
)

ROOT = Path(__file__).resolve().parents[2]
WALLET = "9xQeWvG816bUx9EPjHmaT23yvVM2ZWbrrpZb9PusVFin"
CID = "CTR-abcdefghijklmnopqrstuv"
SIG = "5" * 88
LAMPORTS = st.integers(min_value=1, max_value=2**63 - 1)
FEES = st.integers(min_value=0, max_value=10**9)
refund_ids = st.one_of(
    st.from_regex(r"CTR-[A-Za-z0-9_-]{22}", fullmatch=True),
    st.from_regex(r"[1-9A-HJ-NP-Za-km-z]{87,88}", fullmatch=True).map(lambda sig: R.payment_refund_id(sig, WALLET)),
)


def queued(lamports=1_000_000, refund_id=CID) -> R.Refund:
    return R.new_refund(refund_id, WALLET, lamports, min_lamports=5_000)


def status(err=None, level="finalized", slot=7):
    return {
        "slot": slot,
        "confirmations": None,
        "err": err,
        "confirmationStatus": level,
        "status": {"Ok": None} if err is None else {"Err": err},
    }


def test_domain_module_imports_no_chain_or_aws_library():
    code = (
        "import sys, chalicelib.domain.refunds, chalicelib.domain.ledger; "
        "print(sorted({m.split('.')[0] for m in sys.modules} & "
        "{'solders', 'solana', 'boto3', 'botocore', 'pynamodb'}))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert out.stdout.strip() == "[]"


# ------------------------------------------------------------------- records
def test_new_refund_is_queued_or_dust_by_the_minimum():
    assert queued(5_000).status == R.QUEUED
    assert queued(4_999).status == R.DUST
    assert R.new_refund(CID, WALLET, 0, min_lamports=0).status == R.DUST
    r = queued()
    assert (r.version, r.attempt, r.tx_signature, r.last_valid_block_height) == (1, 0, None, None)


@pytest.mark.parametrize("bad", [1.0, True, "10", None])
def test_lamports_are_ints_only(bad):
    with pytest.raises(TypeError):
        R.new_refund(CID, WALLET, bad, min_lamports=0)
    with pytest.raises(ValueError):
        R.new_refund(CID, WALLET, -1, min_lamports=0)


def test_refund_ids_contract_and_payment():
    assert R.refund_kind(CID) == "contract"
    rid = R.payment_refund_id(SIG, WALLET)
    assert rid == f"PAY-{SIG}-{WALLET}" and R.refund_kind(rid) == "payment"
    assert R.payment_of(rid) == (SIG, WALLET)  # one refund per signature AND payer
    assert R.payment_refund_id(SIG, "B" * 44) != rid
    for bad in ("", "CTR-", "PAY-", "abc", SIG, "PAY-" + SIG, f"PAY-{SIG}-", f"PAY--{WALLET}", f"PAY-{SIG}-a-b"):
        with pytest.raises(ValueError):
            R.refund_kind(bad)
    with pytest.raises(ValueError):
        R.Refund(refund_id="nope", wallet=WALLET, lamports=1)


# --------------------------------------------------------------- transitions
def test_happy_path_queued_sent_confirmed():
    r = queued()
    s = R.mark_sent(r, SIG, 250)
    assert (s.status, s.tx_signature, s.last_valid_block_height, s.attempt, s.version) == (R.SENT, SIG, 250, 1, 2)
    c = R.confirm(s, 5000, 1_700_000_000_000)
    assert (c.status, c.fee_lamports, c.confirmed_at_ms, c.version, c.tx_signature) == (
        R.CONFIRMED,
        5000,
        1_700_000_000_000,
        3,
        SIG,
    )
    assert r.status == R.QUEUED and s.status == R.SENT  # records are immutable


def test_only_one_live_transaction_mark_sent_twice_is_refused():
    s = R.mark_sent(queued(), SIG, 250)
    with pytest.raises(R.InvalidTransition):
        R.mark_sent(s, "6" * 88, 300)


def test_replacement_only_with_proof_of_expiry():
    s = R.mark_sent(queued(), SIG, 250)
    for verdict in (
        R.classify(None, 250, 250),
        R.classify(status(), 999, 250),
        R.classify(status(level="confirmed"), 999, 250),
    ):
        with pytest.raises(R.InvalidTransition):
            R.replace_expired(s, verdict, "6" * 88, 400)
    expired = R.classify(None, 251, 250)
    with pytest.raises(R.InvalidTransition):  # a verdict about another transaction
        R.replace_expired(s, R.classify(None, 400, 300), "6" * 88, 500)
    with pytest.raises(ValueError):
        R.replace_expired(s, expired, SIG, 400)  # the same signature is no replacement
    n = R.replace_expired(s, expired, "6" * 88, 400)
    assert (n.status, n.tx_signature, n.last_valid_block_height, n.attempt, n.version) == (R.SENT, "6" * 88, 400, 2, 3)


def test_fail_and_operator_retry():
    with pytest.raises(ValueError):
        R.fail(queued(), "  ")
    f = R.fail(R.mark_sent(queued(), SIG, 250), "InsufficientFundsForRent: account 1")
    assert (f.status, f.reason, f.tx_signature) == (R.FAILED, "InsufficientFundsForRent: account 1", SIG)
    q = R.retry(f)
    assert (q.status, q.reason, q.tx_signature, q.last_valid_block_height, q.attempt) == (R.QUEUED, None, None, None, 1)
    assert R.mark_sent(q, "6" * 88, 900).attempt == 2
    assert len(R.fail(queued(), "x" * 1000).reason) == R.MAX_REASON_CHARS


@pytest.mark.parametrize("terminal", ["confirmed", "dust"])
def test_terminal_states_refuse_every_step(terminal):
    r = R.confirm(R.mark_sent(queued(), SIG, 250), 5000, 1) if terminal == "confirmed" else queued(1)
    assert r.is_terminal
    for step in (
        lambda: R.mark_sent(r, SIG, 1),
        lambda: R.confirm(r, 1, 1),
        lambda: R.fail(r, "x"),
        lambda: R.retry(r),
        lambda: R.replace_expired(r, R.classify(None, 9, 1), SIG, 1),
    ):
        with pytest.raises(R.InvalidTransition):
            step()
    assert R.next_step(r) == R.DONE


# one step of a random history: (name, argument)
steps = st.lists(
    st.tuples(
        st.sampled_from(["send", "confirm", "fail", "retry", "expire", "replace", "wait"]),
        st.integers(min_value=0, max_value=10**6),
    ),
    max_size=30,
)


@settings(max_examples=300)
@given(lamports=LAMPORTS, history=steps, refund_id=refund_ids)
def test_random_histories_keep_the_invariants(lamports, history, refund_id):
    """Whatever steps are tried (invalid ones refused): version + 1 per applied step, attempt
    counts the signed transactions, at most one live signature, a new signature only after
    the recorded one expired, lamports never change, terminal states stay terminal."""
    r = R.new_refund(refund_id, WALLET, lamports, min_lamports=1)
    height = 0
    signatures = []
    for name, arg in history:
        before = r
        height += arg % 200
        try:
            if name == "send":
                r = R.mark_sent(r, f"sig{len(signatures)}", height + 150)
            elif name == "confirm":
                r = R.confirm(r, arg, arg)
            elif name == "fail":
                r = R.fail(r, f"reason {arg}")
            elif name == "retry":
                r = R.retry(r)
            elif name in ("expire", "replace"):
                lvbh = r.last_valid_block_height if r.last_valid_block_height is not None else 0
                seen = height if name == "expire" else lvbh  # "replace" without the height past it
                r = R.replace_expired(r, R.classify(None, seen, lvbh), f"sig{len(signatures)}", height + 150)
        except R.InvalidTransition:
            assert r is before
            continue
        if r is before:
            continue
        assert r.version == before.version + 1
        assert r.lamports == lamports and r.refund_id == refund_id
        assert not before.is_terminal
        if r.tx_signature != before.tx_signature and r.tx_signature is not None:
            signatures.append(r.tx_signature)
            assert r.attempt == before.attempt + 1
            if before.status == R.SENT:  # a replacement: only past the old one's validity
                assert height > before.last_valid_block_height
        else:
            assert r.attempt == before.attempt
        if r.status == R.SENT:
            assert r.tx_signature is not None and r.last_valid_block_height is not None
        if r.status == R.QUEUED:
            assert r.tx_signature is None and r.last_valid_block_height is None
    assert r.attempt == len(signatures)
    assert len(set(signatures)) == len(signatures)


# ---------------------------------------------------------------- classifier
def test_classify_landed_error_pending_expired():
    assert R.classify(status(), 100, 250).state == R.LANDED
    v = R.classify(status(err={"InstructionError": [0, {"Custom": 1}]}), 100, 250)
    assert (v.state, v.err, v.slot) == (R.LANDED_WITH_ERROR, {"InstructionError": [0, {"Custom": 1}]}, 7)
    assert R.classify(status(level="confirmed"), 400, 250).state == R.PENDING  # below finalized: wait
    assert R.classify(status(level="confirmed"), 400, 250, commitment="confirmed").state == R.LANDED
    assert R.classify(status(level="processed"), 400, 250, commitment="confirmed").state == R.PENDING
    assert R.classify(None, 250, 250).state == R.PENDING  # height == last valid: can still land
    assert R.classify(None, 251, 250).state == R.EXPIRED
    legacy = {"slot": 3, "confirmations": None, "err": None, "status": {"Ok": None}}
    assert R.classify(legacy, 1, 250).state == R.LANDED
    assert R.classify({**legacy, "confirmations": 4}, 1, 250).state == R.PENDING


@pytest.mark.parametrize("bad", [[], "x", {"confirmationStatus": "rooted"}])
def test_classify_refuses_malformed_status(bad):
    with pytest.raises(R.MalformedStatus):
        R.classify(bad, 1, 250)
    with pytest.raises(R.MalformedStatus):
        R.classify(None, "1", 250)


@given(
    height=st.integers(0, 10**12),
    lvbh=st.integers(0, 10**12),
    landed=st.booleans(),
    err=st.sampled_from([None, "AccountInUse", {"InsufficientFundsForRent": {"account_index": 1}}]),
)
def test_classify_never_calls_a_landed_transaction_expired(height, lvbh, landed, err):
    v = R.classify(status(err=err) if landed else None, height, lvbh)
    if landed:
        assert v.state == (R.LANDED if err is None else R.LANDED_WITH_ERROR)
    else:
        assert v.state == (R.EXPIRED if height > lvbh else R.PENDING)


def test_next_step_for_each_state_and_verdict():
    q = queued()
    s = R.mark_sent(q, SIG, 250)
    assert R.next_step(q) == R.SEND
    assert R.next_step(s, R.classify(status(), 10, 250)) == R.CONFIRM
    assert R.next_step(s, R.classify(status(err="AccountInUse"), 10, 250)) == R.FAIL
    assert R.next_step(s, R.classify(None, 251, 250)) == R.REPLACE
    assert R.next_step(s, R.classify(None, 100, 250)) == R.WAIT
    assert R.next_step(s, R.classify(None, 100, 250), has_raw=True) == R.RESEND
    assert R.next_step(R.fail(q, "x")) == R.DONE
    with pytest.raises(ValueError):
        R.next_step(s)
    with pytest.raises(ValueError):
        R.next_step(s, R.classify(None, 100, 300))


def test_describe_err():
    assert R.describe_err("BlockhashNotFound") == "BlockhashNotFound"
    assert R.describe_err({"InsufficientFundsForRent": {"account_index": 1}}) == "InsufficientFundsForRent: account 1"
    assert R.describe_err({"InstructionError": [0, {"Custom": 1}]}) == "InstructionError: 0 Custom 1"
    e = R.RefundRefused("InsufficientFundsForRent: account 1", {"InsufficientFundsForRent": {"account_index": 1}})
    assert e.reason == "InsufficientFundsForRent: account 1" and e.status == 422 and e.err


def test_prepared_transfer_repr_hides_the_bytes():
    p = R.PreparedTransfer(SIG, 250, b"\x01" * 300)
    assert "300 bytes" in repr(p) and "\\x01" not in repr(p)


# ------------------------------------------------------------------ postings
@given(lamports=LAMPORTS, fee=FEES, refund_id=refund_ids, attempts=st.integers(0, 5))
def test_paid_postings_balance_and_move_payable_and_fee_out_of_the_treasury(lamports, fee, refund_id, attempts):
    r = R.new_refund(refund_id, WALLET, lamports, min_lamports=1)
    for i in range(attempts):  # replacements before the one that landed
        r = (
            R.mark_sent(r, f"s{i}", i)
            if r.status == R.QUEUED
            else R.replace_expired(r, R.classify(None, i + 1, r.last_valid_block_height), f"s{i}", i + 1)
        )
    r = R.confirm(
        R.mark_sent(r, SIG, 10**6)
        if r.status == R.QUEUED
        else R.replace_expired(r, R.classify(None, 10**6, r.last_valid_block_height), SIG, 10**6 + 150),
        fee,
        1234,
    )
    entries = refund_paid_postings(r)
    assert balance(entries) == 0
    assert balance(entries, REFUNDS_PAYABLE) == lamports  # the payable is settled (debited)
    assert balance(entries, TREASURY) == -(lamports + fee)
    assert balance(entries, NETWORK_FEES) == fee
    assert all(isinstance(e.debit_lamports, int) and isinstance(e.credit_lamports, int) for e in entries)
    assert all(e.contract_id == refund_id and e.ref == SIG and e.created_at_ms == 1234 for e in entries)
    ids = [e.entry_id for e in entries]
    assert len(set(ids)) == len(ids)
    assert ids == [e.entry_id for e in refund_paid_postings(r)]  # deterministic
    assert all(i.startswith(f"{refund_id}#refund#") for i in ids)
    assert any(f"#fee{r.attempt:03d}#" in i for i in ids) == (fee > 0)


def test_paid_postings_need_a_confirmed_refund_with_its_fee():
    for r in (queued(), R.mark_sent(queued(), SIG, 1), R.fail(queued(), "x")):
        with pytest.raises(ValueError):
            refund_paid_postings(r)


def test_paid_ids_do_not_depend_on_version_so_a_second_booking_collides():
    s = R.mark_sent(queued(), SIG, 250)
    a = refund_paid_postings(R.confirm(s, 5000, 1))
    b = refund_paid_postings(R.confirm(R.replace_expired(s, R.classify(None, 251, 250), "7" * 88, 400), 5000, 2))
    payout = lambda es: [e.entry_id for e in es if e.kind == "refund"]
    assert payout(a) == payout(b)  # one payout per refund, ever


@given(fee=FEES, lamports=LAMPORTS, attempt=st.integers(1, 999))
def test_fee_and_orphan_postings_balance(fee, lamports, attempt):
    fee_entries = network_fee_postings(CID, attempt, fee, SIG, 5)
    assert balance(fee_entries) == 0 and balance(fee_entries, NETWORK_FEES) == fee
    orphan = orphan_payment_postings(R.payment_refund_id(SIG, WALLET), lamports, SIG, 5)
    assert balance(orphan) == 0
    assert balance(orphan, TREASURY) == lamports and balance(orphan, REFUNDS_PAYABLE) == -lamports
    ids = Counter(e.entry_id for e in fee_entries + orphan)
    assert max(ids.values(), default=1) == 1


@pytest.mark.parametrize("bad", [-1, 1.5, True])
def test_postings_refuse_non_int_or_negative_amounts(bad):
    with pytest.raises(ValueError):
        network_fee_postings(CID, 1, bad, SIG, 5)
    with pytest.raises(ValueError):
        network_fee_postings(CID, 0, 5000, SIG, 5)


def test_rejects_nonsense_lvbh():
    with pytest.raises(ValueError):
        R.mark_sent(queued(), SIG, -1)
