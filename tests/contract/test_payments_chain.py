"""The payment verifier: one suite, run against the fake (`FakeRpc`: the real adapter
over an in-memory node holding getTransaction-shaped transactions) and against the
real adapter (`SolanaRpc`) on the local LiteSVM chain, where a stock solana-py client
pays exactly as a renter's client would.

Both answer through `chalicelib.domain.payments.decide`; what this suite pins is
that the fake's transactions say to `decide` what the chain's say.
"""

from __future__ import annotations

import asyncio
import os
import time
from dataclasses import dataclass, field

import pytest

from chalicelib.domain import keys as base58
from chalicelib.domain.payments import PaymentCheck, PaymentResult
from chalicelib.domain.signing import rent_memo
from tests.support.fakes import FakeRpc, new_wallet

PRICE = 2_500_000
LAMPORTS_PER_SOL = 1_000_000_000
MAX_AGE = 86_400
MEMO = rent_memo("M3_ULTRA", 360)
POOR_BALANCE = 10_000_000


@dataclass
class Chain:
    verifier: object  # the PaymentVerifier port
    treasury: str
    payer: str
    other: str
    poor: str
    sigs: dict = field(default_factory=dict)


def _fake_chain() -> Chain:
    treasury, payer, other, poor, stranger = (new_wallet() for _ in range(5))
    rpc = FakeRpc(treasury=treasury)
    ch = Chain(rpc, treasury, payer, other, poor)
    ch.sigs["genuine"] = rpc.pay(payer, PRICE)
    ch.sigs["memo"] = rpc.pay(payer, PRICE, memo=MEMO)
    ch.sigs["short"] = rpc.pay(payer, PRICE - 1, memo="si64 short")
    ch.sigs["wrong_recipient"] = rpc.pay(payer, PRICE, to=stranger)
    ch.sigs["other_pays"] = rpc.pay(other, PRICE)
    ch.sigs["failed"] = rpc.pay(poor, 5 * LAMPORTS_PER_SOL, err={"InstructionError": [0, {"Custom": 1}]})
    return ch


async def _build_on_chain(rpc_url: str) -> Chain:
    from solana.rpc.async_api import AsyncClient
    from solana.rpc.commitment import Confirmed
    from solana.rpc.models import TxOpts
    from solders.instruction import AccountMeta, Instruction
    from solders.keypair import Keypair
    from solders.system_program import TransferParams, transfer
    from solders.transaction import Transaction
    from spl.memo.constants import MEMO_PROGRAM_ID

    from chalicelib.adapters.solana_rpc import SolanaRpc

    payer, other, poor = Keypair(), Keypair(), Keypair()
    treasury, stranger = Keypair().pubkey(), Keypair().pubkey()
    ch = Chain(
        SolanaRpc(rpc_url, timeout=5), str(treasury), str(payer.pubkey()), str(other.pubkey()), str(poor.pubkey())
    )

    def pay(src, dst, lamports, memo=None):
        ixs = [transfer(TransferParams(from_pubkey=src.pubkey(), to_pubkey=dst, lamports=lamports))]
        if memo is not None:
            ixs.append(Instruction(MEMO_PROGRAM_ID, memo.encode(), [AccountMeta(src.pubkey(), True, True)]))
        return ixs

    async with AsyncClient(rpc_url, commitment=Confirmed) as client:

        async def confirm(sig):
            resp = await client.confirm_transaction(sig, Confirmed, sleep_seconds=0.2)
            assert resp.value[0] is not None, f"{sig} never got a status"
            return str(sig)

        async def send(ixs, signer, *, skip_preflight=False):
            blockhash = (await client.get_latest_blockhash(Confirmed)).value.blockhash
            tx = Transaction.new_signed_with_payer(ixs, signer.pubkey(), [signer], blockhash)
            opts = TxOpts(skip_preflight=skip_preflight, preflight_commitment=Confirmed)
            return await confirm((await client.send_transaction(tx, opts=opts)).value)

        for kp, amount in ((payer, LAMPORTS_PER_SOL), (other, LAMPORTS_PER_SOL), (poor, POOR_BALANCE)):
            await confirm((await client.request_airdrop(kp.pubkey(), amount)).value)
        ch.sigs["genuine"] = await send(pay(payer, treasury, PRICE), payer)
        ch.sigs["memo"] = await send(pay(payer, treasury, PRICE, MEMO), payer)
        ch.sigs["short"] = await send(pay(payer, treasury, PRICE - 1, "si64 short"), payer)
        ch.sigs["wrong_recipient"] = await send(pay(payer, stranger, PRICE), payer)
        ch.sigs["other_pays"] = await send(pay(other, treasury, PRICE), other)
        ch.sigs["failed"] = await send(pay(poor, treasury, 5 * LAMPORTS_PER_SOL), poor, skip_preflight=True)
    return ch


@pytest.fixture(scope="module", params=["fake", pytest.param("local_chain", marks=pytest.mark.chain)])
def chain(request) -> Chain:
    if request.param == "fake":
        return _fake_chain()
    return asyncio.run(_build_on_chain(request.getfixturevalue("local_chain").rpc_url))


def verify(ch: Chain, name: str, **kw) -> PaymentResult:
    check = {
        "signature": ch.sigs.get(name, name),
        "wallet": ch.payer,
        "treasury": ch.treasury,
        "min_lamports": PRICE,
        "max_age_seconds": MAX_AGE,
        "now_s": int(time.time()),
        **kw,
    }
    return ch.verifier.verify_payment(PaymentCheck(**check))


def outcome(r: PaymentResult) -> tuple:
    return r.ok, r.reason, r.lamports_received


def memos(r: PaymentResult):
    return getattr(r, "memos", None)  # the payment's memos, for the binding checks


def test_health(chain):
    assert chain.verifier.health() is True


def test_genuine(chain):
    r = verify(chain, "genuine")
    assert outcome(r) == (True, None, PRICE)
    assert r.slot > 0 and abs(r.block_time - time.time()) < 300


def test_genuine_with_a_memo_instruction(chain):
    r = verify(chain, "memo")
    assert outcome(r) == (True, None, PRICE)
    assert memos(r) in (None, (MEMO,))
    assert memos(verify(chain, "genuine")) in (None, ())


def test_short(chain):
    assert outcome(verify(chain, "short")) == (False, "insufficient_amount", PRICE - 1)
    assert verify(chain, "short", min_lamports=PRICE - 1).ok


def test_wrong_recipient(chain):
    assert outcome(verify(chain, "wrong_recipient")) == (False, "wrong_recipient", 0)


def test_wrong_payer(chain):
    assert outcome(verify(chain, "other_pays")) == (False, "wrong_payer", 0)
    assert verify(chain, "other_pays", wallet=chain.other).ok


def test_unknown_signature(chain):
    assert outcome(verify(chain, base58.encode(os.urandom(64)))) == (False, "not_found", 0)


def test_failed_on_chain(chain):
    assert outcome(verify(chain, "failed", wallet=chain.poor, min_lamports=1)) == (False, "failed_on_chain", 0)


def test_too_old(chain):
    block_time = verify(chain, "genuine").block_time
    assert outcome(verify(chain, "genuine", now_s=block_time + MAX_AGE + 1)) == (False, "too_old", PRICE)
    assert verify(chain, "genuine", now_s=block_time + MAX_AGE).ok


def _shape(value):
    """The structure of a JSON value: dict keys and value types, recursively (lists by their first item)."""
    if isinstance(value, dict):
        return {k: _shape(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_shape(value[0])] if value else []
    return type(value).__name__


@pytest.mark.chain
@pytest.mark.parametrize("name", ["memo", "failed"])
def test_fake_transactions_are_shaped_like_the_nodes(local_chain, name):
    """What the fake node serves has the keys and types the real node serves (so `decide`
    cannot come to rely on something only one of them has)."""
    from chalicelib.adapters.solana_rpc import SolanaRpc

    real = _real_chain_for_shapes(local_chain)
    fake = _fake_chain()
    got_real = SolanaRpc(local_chain.rpc_url).get_transaction(real.sigs[name])
    got_fake = fake.verifier.get_transaction(fake.sigs[name])
    for tx in (got_real, got_fake):  # values that are null on one node and set on the other
        tx["meta"].pop("computeUnitsConsumed", None)
        for ix in tx["transaction"]["message"]["instructions"]:
            ix.pop("stackHeight", None)
        tx["meta"]["status"] = _shape(tx["meta"]["status"]) and "status"
        tx["meta"]["err"] = tx["meta"]["err"] and "err"
    assert _shape(got_fake) == _shape(got_real)


_real_cache: dict = {}


def _real_chain_for_shapes(local_chain) -> Chain:
    if local_chain.rpc_url not in _real_cache:
        _real_cache[local_chain.rpc_url] = asyncio.run(_build_on_chain(local_chain.rpc_url))
    return _real_cache[local_chain.rpc_url]
