"""Refund transfers against the local chain (LiteSVM behind JSON-RPC), no fakes:
chalicelib/adapters/refund_chain.py, adapters/treasury.py and the domain/refunds.py steps
the worker will take. The chain's test controls (si64_*) provoke drops, refusals and
outages."""

from __future__ import annotations

import copy
import json
import logging
import pickle
import socket

import pytest
from solders.keypair import Keypair
from solders.pubkey import Pubkey

from chalicelib.adapters.refund_chain import RefundChainRpc
from chalicelib.adapters.solana_rpc import SolanaRpc
from chalicelib.adapters.treasury import (
    TreasuryConfigError,
    TreasuryKey,
    forget_cached_keys,
    load_treasury,
    parse_keypair,
)
from chalicelib.domain import keys as base58
from chalicelib.domain import refunds as R
from chalicelib.domain.contracts import new_contract_id
from chalicelib.domain.errors import Unavailable
from chalicelib.domain.signing import refund_memo
from tests.support.moto import in_process_aws

SOL = 10**9
FEE = 5000


@pytest.fixture
def chain(chain_controls):
    return chain_controls  # the session's local chain, faults cleared before and after


def new_treasury(chain, lamports=10 * SOL) -> TreasuryKey:
    kp = Keypair()
    chain.fund(kp.pubkey(), lamports)
    return TreasuryKey(bytes(kp))


def funded_wallet(chain, lamports=SOL) -> str:
    kp = Keypair()
    chain.fund(kp.pubkey(), lamports)
    return str(kp.pubkey())


def adapter(chain, treasury, timeout=3.0) -> RefundChainRpc:
    return RefundChainRpc(SolanaRpc(chain.rpc_url, timeout=timeout), treasury)


def balance(chain, address: str) -> int:
    return chain.chain.get_balance(Pubkey.from_string(address))


def contract_refund(wallet: str, lamports: int) -> R.Refund:
    return R.new_refund(new_contract_id(), wallet, lamports, min_lamports=5000)


def send_refund(rc: RefundChainRpc, refund: R.Refund) -> tuple[R.Refund, R.PreparedTransfer]:
    """What the worker does for a QUEUED refund: prepare, record (mark_sent), then send."""
    prepared = rc.prepare(refund, rc.latest_blockhash())
    sent = R.mark_sent(refund, prepared.signature, prepared.last_valid_block_height)
    assert rc.send(prepared.raw) == prepared.signature
    return sent, prepared


def transfers_to(chain, wallet: str) -> list:
    """Landed transactions that moved lamports to `wallet` (from the chain's own records)."""
    out = []
    for rec in chain.chain.signatures_for_address(wallet):
        i = rec.keys.index(wallet)
        if rec.err is None and rec.post_balances[i] > rec.pre_balances[i]:
            out.append(rec)
    return out


# --------------------------------------------------------------------- lands
def test_refund_lands_with_exact_lamports_memo_and_fee(chain):
    treasury = new_treasury(chain)
    rc = adapter(chain, treasury)
    wallet = funded_wallet(chain)
    refund = contract_refund(wallet, 1_234_567)
    t0, w0 = balance(chain, treasury.pubkey), balance(chain, wallet)

    sent, prepared = send_refund(rc, refund)
    verdict = rc.verdict(sent)
    assert verdict.state == R.LANDED
    assert R.next_step(sent, verdict) == R.CONFIRM
    fee = rc.fee(prepared.signature)
    done = R.confirm(sent, fee, 1)

    assert balance(chain, wallet) - w0 == 1_234_567  # the renter gets exactly the refund
    assert t0 - balance(chain, treasury.pubkey) == 1_234_567 + fee
    assert fee == FEE and done.fee_lamports == FEE

    tx = rc.rpc.get_transaction(prepared.signature, commitment="finalized")
    keys = tx["transaction"]["message"]["accountKeys"]
    assert keys[0] == treasury.pubkey and tx["meta"]["fee"] == fee
    memos = [
        base58.decode(ix["data"]).decode()
        for ix in tx["transaction"]["message"]["instructions"]
        if keys[ix["programIdIndex"]] == "MemoSq4gqABAXKb96qnH8TysNcWxMyWCqXgDLGmfcHr"
    ]
    assert memos == [refund_memo(refund.refund_id)] == [f"si64:refund:{refund.refund_id}"]


def test_payment_refund_id_in_the_memo(chain):
    treasury = new_treasury(chain)
    rc = adapter(chain, treasury)
    wallet = funded_wallet(chain)
    refund = R.new_refund(R.payment_refund_id("4" * 87, wallet), wallet, 2_000_000, min_lamports=5000)
    _, prepared = send_refund(rc, refund)
    assert chain.chain.get_record(prepared.signature).memo.endswith(f"si64:refund:PAY-{'4' * 87}-{wallet}")


def test_resending_the_same_bytes_gives_no_second_transfer(chain):
    treasury = new_treasury(chain)
    rc = adapter(chain, treasury)
    wallet = funded_wallet(chain)
    _, prepared = send_refund(rc, contract_refund(wallet, 3_000_000))
    after_first = balance(chain, wallet), balance(chain, treasury.pubkey)
    for _ in range(3):  # AlreadyProcessed is no error: the same signature
        assert rc.send(prepared.raw) == prepared.signature
    assert (balance(chain, wallet), balance(chain, treasury.pubkey)) == after_first
    assert len(transfers_to(chain, wallet)) == 2  # the funding airdrop and one refund


def test_dropped_transaction_expires_and_one_replacement_lands(chain):
    treasury = new_treasury(chain)
    rc = adapter(chain, treasury)
    wallet = funded_wallet(chain)
    w0 = balance(chain, wallet)
    refund = contract_refund(wallet, 4_000_000)

    chain.drop_transactions(requests=1)
    sent, first = send_refund(rc, refund)  # accepted, never lands
    assert chain.dropped[-1] == first.signature
    verdict = rc.verdict(sent)
    assert verdict.state == R.PENDING and R.next_step(sent, verdict) == R.WAIT
    with pytest.raises(R.InvalidTransition):
        R.replace_expired(sent, verdict, "x" * 88, 1)

    chain.advance_past_block_height(first.last_valid_block_height)
    verdict = rc.verdict(sent)
    assert verdict.state == R.EXPIRED and R.next_step(sent, verdict) == R.REPLACE

    second = rc.prepare(sent, rc.latest_blockhash())
    replaced = R.replace_expired(sent, verdict, second.signature, second.last_valid_block_height)
    assert rc.send(second.raw) == second.signature
    assert rc.verdict(replaced).state == R.LANDED
    assert replaced.attempt == 2

    # the expired first transaction can never land now: the node does not know its blockhash
    with pytest.raises(Unavailable) as exc:
        rc.send(first.raw)
    assert exc.value.reason == "blockhash"
    assert chain.chain.get_record(first.signature) is None
    assert balance(chain, wallet) - w0 == 4_000_000  # one transfer in total
    assert len(transfers_to(chain, wallet)) == 2


# ------------------------------------------------------------------- refused
def test_fresh_recipient_below_rent_exemption_is_refused_with_the_reason(chain):
    treasury = new_treasury(chain)
    rc = adapter(chain, treasury)
    fresh = str(Keypair().pubkey())
    minimum = rc.rpc.call("getMinimumBalanceForRentExemption", [0])
    t0 = balance(chain, treasury.pubkey)
    refund = contract_refund(fresh, minimum - 1)
    prepared = rc.prepare(refund, rc.latest_blockhash())
    sent = R.mark_sent(refund, prepared.signature, prepared.last_valid_block_height)
    with pytest.raises(R.RefundRefused) as exc:
        rc.send(prepared.raw)
    assert exc.value.reason == "InsufficientFundsForRent: account 1"
    assert exc.value.err == {"InsufficientFundsForRent": {"account_index": 1}}
    failed = R.fail(sent, exc.value.reason)
    assert failed.status == R.FAILED and failed.reason == "InsufficientFundsForRent: account 1"
    assert balance(chain, treasury.pubkey) == t0 and balance(chain, fresh) == 0  # nothing charged

    # the same fresh wallet with at least the rent-exempt minimum is paid
    retried = R.retry(failed)
    ok = R.new_refund(retried.refund_id, fresh, minimum, min_lamports=5000)
    sent_ok, _ = send_refund(rc, ok)
    assert rc.verdict(sent_ok).state == R.LANDED and balance(chain, fresh) == minimum


def test_refused_account_control(chain):
    treasury = new_treasury(chain)
    rc = adapter(chain, treasury)
    wallet = funded_wallet(chain)
    chain.refuse_account(wallet)
    prepared = rc.prepare(contract_refund(wallet, 1_000_000), rc.latest_blockhash())
    with pytest.raises(R.RefundRefused) as exc:
        rc.send(prepared.raw)
    assert exc.value.reason == "InsufficientFundsForRent: account 1"
    chain.refuse_account(wallet, False)
    assert rc.send(prepared.raw) == prepared.signature


def test_recipient_that_is_the_treasury_or_not_a_key_is_refused(chain):
    treasury = new_treasury(chain)
    rc = adapter(chain, treasury)
    bh = rc.latest_blockhash()
    with pytest.raises(R.RefundRefused, match="treasury"):
        rc.prepare(contract_refund(treasury.pubkey, 10_000), bh)
    with pytest.raises(R.RefundRefused, match="public key"):
        rc.prepare(contract_refund("not-a-key", 10_000), bh)


def test_treasury_without_funds_is_retried_not_failed(chain):
    treasury = new_treasury(chain, lamports=1_000_000)
    rc = adapter(chain, treasury)
    prepared = rc.prepare(contract_refund(funded_wallet(chain), 5 * SOL), rc.latest_blockhash())
    with pytest.raises(Unavailable) as exc:
        rc.send(prepared.raw)
    assert exc.value.reason == "treasury_funds" and not isinstance(exc.value, R.RefundRefused)
    empty = TreasuryKey(bytes(Keypair()))  # never funded: no fee payer account
    prepared = adapter(chain, empty).prepare(contract_refund(funded_wallet(chain), 10_000), rc.latest_blockhash())
    with pytest.raises(Unavailable) as exc:
        rc.send(prepared.raw)
    assert exc.value.reason == "treasury_funds"


# ------------------------------------------------------------------- outages
@pytest.mark.parametrize("mode", ["http503", "error", "disconnect"])
def test_rpc_down_is_unavailable_and_the_refund_lands_after(chain, mode):
    treasury = new_treasury(chain)
    rc = adapter(chain, treasury)
    wallet = funded_wallet(chain)
    w0 = balance(chain, wallet)
    refund = contract_refund(wallet, 2_500_000)
    prepared = rc.prepare(refund, rc.latest_blockhash())
    sent = R.mark_sent(refund, prepared.signature, prepared.last_valid_block_height)

    chain.fail_rpc(mode)
    for call in (
        rc.latest_blockhash,
        rc.block_height,
        lambda: rc.send(prepared.raw),
        lambda: rc.status(prepared.signature),
        lambda: rc.fee(prepared.signature),
    ):
        with pytest.raises(Unavailable) as exc:
            call()
        assert exc.value.reason == "rpc" and not isinstance(exc.value, R.RefundRefused)
    assert balance(chain, wallet) == w0

    chain.clear_faults()  # the node is back: the recorded transaction is still the one
    assert rc.verdict(sent).state == R.PENDING
    assert rc.send(prepared.raw) == prepared.signature
    assert rc.verdict(sent).state == R.LANDED
    assert balance(chain, wallet) - w0 == 2_500_000


def test_slow_rpc_times_out_as_unavailable(chain):
    rc = adapter(chain, new_treasury(chain), timeout=0.3)
    chain.slow_rpc(1.0, requests=1)
    with pytest.raises(Unavailable):
        rc.block_height()
    assert rc.block_height() > 0  # the window was one request


def test_unreachable_node_is_unavailable():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: nothing listens there
    rc = RefundChainRpc(SolanaRpc(f"http://127.0.0.1:{port}", timeout=1), TreasuryKey(bytes(Keypair())))
    with pytest.raises(Unavailable):
        rc.latest_blockhash()


def test_fee_of_an_unknown_signature_is_none(chain):
    rc = adapter(chain, new_treasury(chain))
    assert rc.fee("1" * 64) is None
    assert rc.status("1" * 64).value is None


# ------------------------------------------------------------------ treasury
def test_treasury_key_from_the_local_state_file_once(tmp_path, caplog):
    forget_cached_keys()
    kp = Keypair()
    path = tmp_path / "treasury.json"
    path.write_text(json.dumps(list(bytes(kp))))  # dev/stack.py load_or_create_treasury's format
    caplog.set_level(logging.DEBUG)
    key = load_treasury(key_file=str(path), expected_pubkey=str(kp.pubkey()))
    assert key.pubkey == str(kp.pubkey())
    path.unlink()
    assert load_treasury(key_file=str(path)) is key  # read once per process
    secret_forms = (str(kp), json.dumps(list(bytes(kp))), bytes(kp).hex(), str(list(bytes(kp))[:8])[1:-1])
    for text in (repr(key), str(key), caplog.text):
        assert not any(form in text for form in secret_forms)
    for leak in (lambda: pickle.dumps(key), lambda: copy.copy(key), lambda: copy.deepcopy(key)):
        with pytest.raises(TypeError):
            leak()
    with pytest.raises(AttributeError):
        key._keypair = None
    assert key.sign(b"message") == bytes(kp.sign_message(b"message"))
    forget_cached_keys()
    with pytest.raises(TreasuryConfigError, match="does not exist"):
        load_treasury(key_file=str(path))


def test_treasury_key_config_errors(tmp_path):
    forget_cached_keys()
    kp = Keypair()
    path = tmp_path / "t.json"
    path.write_text(json.dumps(list(bytes(kp))))
    with pytest.raises(TreasuryConfigError, match="exactly one"):
        load_treasury()
    with pytest.raises(TreasuryConfigError, match="exactly one"):
        load_treasury(key_file=str(path), parameter="/x")
    with pytest.raises(TreasuryConfigError, match="not the configured treasury"):
        load_treasury(key_file=str(path), expected_pubkey=str(Keypair().pubkey()))
    assert parse_keypair(str(kp)) == bytes(kp)  # base58, as wallets export it
    for bad in ("", "[1,2,3]", "[" + ",".join(["300"] * 64) + "]", "0OIl", base58.encode(b"x" * 32)):
        with pytest.raises(TreasuryConfigError) as exc:
            parse_keypair(bad)
        assert bad not in str(exc.value) or bad == ""
    forged = bytearray(bytes(kp))
    forged[40] ^= 1  # public half does not match the secret
    with pytest.raises(TreasuryConfigError):
        TreasuryKey(bytes(forged))


@pytest.fixture
def moto():
    forget_cached_keys()
    with in_process_aws():
        yield
    forget_cached_keys()


def test_treasury_key_from_ssm_secure_string_and_secrets_manager(moto, caplog):
    import boto3

    kp1, kp2 = Keypair(), Keypair()
    boto3.client("ssm", region_name="us-east-1").put_parameter(
        Name="/si64/prod/treasury", Value=json.dumps(list(bytes(kp1))), Type="SecureString"
    )
    arn = boto3.client("secretsmanager", region_name="us-east-1").create_secret(
        Name="si64/prod/treasury", SecretString=str(kp2)
    )["ARN"]
    logging.getLogger("botocore").setLevel(logging.DEBUG)
    caplog.set_level(logging.DEBUG)
    try:
        k1 = load_treasury(parameter="/si64/prod/treasury", region="us-east-1")
        k2 = load_treasury(secret_id=arn, region="us-east-1", expected_pubkey=str(kp2.pubkey()))
    finally:
        logging.getLogger("botocore").setLevel(logging.NOTSET)
    assert (k1.pubkey, k2.pubkey) == (str(kp1.pubkey()), str(kp2.pubkey()))
    assert str(kp1) not in caplog.text and str(kp2) not in caplog.text
    assert json.dumps(list(bytes(kp1))) not in caplog.text
    with pytest.raises(TreasuryConfigError, match="ParameterNotFound"):
        load_treasury(parameter="/si64/none", region="us-east-1")
    with pytest.raises(TreasuryConfigError, match="ResourceNotFoundException"):
        load_treasury(secret_id="si64/none", region="us-east-1")


def test_treasury_store_outage_is_unavailable_and_not_cached(monkeypatch):
    forget_cached_keys()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    for k, v in {
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test",
        "AWS_MAX_ATTEMPTS": "1",
        "AWS_RETRY_MODE": "standard",
    }.items():
        monkeypatch.setenv(k, v)
    with pytest.raises(Unavailable) as exc:
        load_treasury(parameter="/si64/x", region="us-east-1", endpoint_url=f"http://127.0.0.1:{port}")
    assert exc.value.reason == "treasury"
