"""Payment verification against the REAL local chain.

A stock solana-py `AsyncClient` airdrops and pays (system transfer + memo),
exactly as a renter's client would on devnet; `SolanaRpc.verify_payment`
then classifies each payment over plain JSON-RPC. Nothing here is faked.
"""

from __future__ import annotations

import asyncio
import os
import socket
import time
from dataclasses import dataclass, field

import pytest

from chalicelib.adapters.solana_rpc import SolanaRpc
from chalicelib.api.errors import status_of
from chalicelib.domain.errors import InvalidRequest, Unavailable
from chalicelib.domain.payments import PaymentCheck

PRICE = 2_500_000  # e.g. 0.1 h of M3_ULTRA
LAMPORTS_PER_SOL = 1_000_000_000
MAX_AGE = 86_400


@dataclass
class Scenario:
    rpc_url: str
    treasury: str
    payer: str
    other: str
    stranger: str
    sigs: dict = field(default_factory=dict)
    treasury_delta: int = 0


async def _build(rpc_url: str) -> Scenario:
    from solana.rpc.async_api import AsyncClient
    from solana.rpc.commitment import Confirmed
    from solana.rpc.models import TxOpts
    from solders.instruction import AccountMeta, Instruction
    from solders.keypair import Keypair
    from solders.message import MessageV0
    from solders.pubkey import Pubkey
    from solders.system_program import ID as SYSTEM_PROGRAM_ID
    from solders.system_program import (
        CreateAccountWithSeedParams,
        TransferParams,
        TransferWithSeedParams,
        create_account_with_seed,
        transfer,
        transfer_with_seed,
    )
    from solders.transaction import Transaction, VersionedTransaction
    from spl.memo.constants import MEMO_PROGRAM_ID

    payer, other, poor = Keypair(), Keypair(), Keypair()
    treasury, stranger = Keypair().pubkey(), Keypair().pubkey()
    sc = Scenario(rpc_url, str(treasury), str(payer.pubkey()), str(other.pubkey()), str(stranger))

    def memo(signer: Keypair, text: str) -> Instruction:
        return Instruction(MEMO_PROGRAM_ID, text.encode(), [AccountMeta(signer.pubkey(), True, True)])

    def pay(src: Keypair, dst: Pubkey, lamports: int) -> Instruction:
        return transfer(TransferParams(from_pubkey=src.pubkey(), to_pubkey=dst, lamports=lamports))

    async with AsyncClient(rpc_url, commitment=Confirmed) as client:

        async def confirm(sig):
            resp = await client.confirm_transaction(sig, Confirmed, sleep_seconds=0.2)
            assert resp.value[0] is not None, f"{sig} never got a status"
            return str(sig)

        async def send(ixs, signers, *, skip_preflight=False, v0=False):
            blockhash = (await client.get_latest_blockhash(Confirmed)).value.blockhash
            if v0:
                msg = MessageV0.try_compile(signers[0].pubkey(), ixs, [], blockhash)
                tx = VersionedTransaction(msg, signers)
            else:
                tx = Transaction.new_signed_with_payer(ixs, signers[0].pubkey(), signers, blockhash)
            opts = TxOpts(skip_preflight=skip_preflight, preflight_commitment=Confirmed)
            return await confirm((await client.send_transaction(tx, opts=opts)).value)

        for kp, amount in ((payer, 2 * LAMPORTS_PER_SOL), (other, LAMPORTS_PER_SOL), (poor, 10_000_000)):
            await confirm((await client.request_airdrop(kp.pubkey(), amount)).value)
        before = (await client.get_balance(treasury)).value

        sc.sigs["genuine"] = await send([pay(payer, treasury, PRICE), memo(payer, "si64 rent M3_ULTRA")], [payer])
        sc.sigs["genuine_v0"] = await send([pay(payer, treasury, PRICE), memo(payer, "si64 v0")], [payer], v0=True)
        sc.sigs["split"] = await send(
            [pay(payer, treasury, PRICE // 2), memo(payer, "si64 split"), pay(payer, treasury, PRICE - PRICE // 2)],
            [payer],
        )
        sc.sigs["short"] = await send([pay(payer, treasury, PRICE - 1), memo(payer, "si64 short")], [payer])
        sc.sigs["wrong_recipient"] = await send([pay(payer, stranger, PRICE), memo(payer, "si64")], [payer])
        sc.sigs["other_pays"] = await send([pay(other, treasury, PRICE), memo(other, "si64 other")], [other])
        # both sign; payer pays the fee but `other` pays the treasury
        sc.sigs["cosigned"] = await send([pay(other, treasury, PRICE), pay(payer, stranger, 1)], [payer, other])
        # lands with meta.err: a transfer above the balance, preflight skipped
        sc.sigs["failed"] = await send(
            [pay(poor, treasury, 5 * LAMPORTS_PER_SOL), memo(poor, "si64 fails")], [poor], skip_preflight=True
        )
        # TransferWithSeed: a system account derived from (payer, seed) pays; payer (the base) signs
        seed = "si64"
        derived = Pubkey.create_with_seed(payer.pubkey(), seed, SYSTEM_PROGRAM_ID)
        await send(
            [
                create_account_with_seed(
                    CreateAccountWithSeedParams(
                        from_pubkey=payer.pubkey(),
                        to_pubkey=derived,
                        base=payer.pubkey(),
                        seed=seed,
                        lamports=PRICE * 2,
                        space=0,
                        owner=SYSTEM_PROGRAM_ID,
                    )
                )
            ],
            [payer],
        )
        sc.sigs["with_seed"] = await send(
            [
                transfer_with_seed(
                    TransferWithSeedParams(
                        from_pubkey=derived,
                        from_base=payer.pubkey(),
                        from_seed=seed,
                        from_owner=SYSTEM_PROGRAM_ID,
                        to_pubkey=treasury,
                        lamports=PRICE,
                    )
                )
            ],
            [payer],
        )
        sc.treasury_delta = (await client.get_balance(treasury)).value - before
    return sc


@pytest.fixture(scope="module")
def scenario(local_chain) -> Scenario:
    return asyncio.run(_build(local_chain.rpc_url))


@pytest.fixture(scope="module")
def rpc(scenario) -> SolanaRpc:
    return SolanaRpc(scenario.rpc_url, timeout=5)


def check(sc: Scenario, name: str, **kw) -> PaymentCheck:
    base = {
        "signature": sc.sigs.get(name, name),
        "wallet": sc.payer,
        "treasury": sc.treasury,
        "min_lamports": PRICE,
        "max_age_seconds": MAX_AGE,
        "now_s": int(time.time()),
    }
    base.update(kw)
    return PaymentCheck(**base)


def test_health(rpc):
    assert rpc.health() is True


@pytest.mark.parametrize("name", ["genuine", "genuine_v0", "split", "with_seed"])
def test_genuine(scenario, rpc, name):
    r = rpc.verify_payment(check(scenario, name))
    assert r.ok, r
    assert r.reason is None and r.lamports_received == PRICE
    assert r.slot and r.slot > 0
    assert abs(r.block_time - time.time()) < 300


def test_transfer_parsing_agrees_with_chain_balances(scenario, rpc):
    """What verification counts equals what the treasury really received."""
    counted = 0
    for name, wallet in [
        ("genuine", scenario.payer),
        ("genuine_v0", scenario.payer),
        ("split", scenario.payer),
        ("short", scenario.payer),
        ("other_pays", scenario.other),
        ("cosigned", scenario.other),
        ("with_seed", scenario.payer),
    ]:
        counted += rpc.verify_payment(check(scenario, name, wallet=wallet, min_lamports=0)).lamports_received
    assert counted == scenario.treasury_delta


def test_short(scenario, rpc):
    r = rpc.verify_payment(check(scenario, "short"))
    assert (r.ok, r.reason, r.lamports_received) == (False, "insufficient_amount", PRICE - 1)
    assert rpc.verify_payment(check(scenario, "short", min_lamports=PRICE - 1)).ok


def test_wrong_recipient(scenario, rpc):
    r = rpc.verify_payment(check(scenario, "wrong_recipient"))
    assert (r.ok, r.reason, r.lamports_received) == (False, "wrong_recipient", 0)


def test_wrong_payer_someone_elses_signed_transfer(scenario, rpc):
    r = rpc.verify_payment(check(scenario, "other_pays"))
    assert (r.ok, r.reason) == (False, "wrong_payer")
    # ... while it is a genuine payment of its real payer
    assert rpc.verify_payment(check(scenario, "other_pays", wallet=scenario.other)).ok


def test_cosigner_transfer_is_not_the_wallets(scenario, rpc):
    r = rpc.verify_payment(check(scenario, "cosigned"))
    assert (r.ok, r.reason, r.lamports_received) == (False, "insufficient_amount", 0)
    assert rpc.verify_payment(check(scenario, "cosigned", wallet=scenario.other)).ok


def test_failed_on_chain(scenario, rpc):
    r = rpc.verify_payment(check(scenario, "failed", min_lamports=1))
    assert (r.ok, r.reason, r.lamports_received) == (False, "failed_on_chain", 0)


def test_unknown_signature_is_not_found(rpc, scenario):
    from chalicelib.domain import keys as base58

    r = rpc.verify_payment(check(scenario, base58.encode(os.urandom(64))))
    assert (r.ok, r.reason, r.lamports_received) == (False, "not_found", 0)


def test_stale_far_future_clock(scenario, rpc):
    r = rpc.verify_payment(check(scenario, "genuine", now_s=int(time.time()) + 2 * MAX_AGE))
    assert (r.ok, r.reason, r.lamports_received) == (False, "too_old", PRICE)


def test_stale_small_max_age(scenario, rpc):
    first = rpc.verify_payment(check(scenario, "genuine"))
    r = rpc.verify_payment(check(scenario, "genuine", max_age_seconds=5, now_s=first.block_time + 6))
    assert r.reason == "too_old"
    assert rpc.verify_payment(check(scenario, "genuine", max_age_seconds=5, now_s=first.block_time + 5)).ok


def test_bad_signature_is_invalid_request(scenario, rpc):
    with pytest.raises(InvalidRequest) as exc:
        rpc.verify_payment(check(scenario, "not-a-signature"))
    assert exc.value.reason == "tx_signature"


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_unreachable_rpc_is_unavailable_never_not_found(scenario):
    dead = SolanaRpc(f"http://127.0.0.1:{_closed_port()}", timeout=2)
    with pytest.raises(Unavailable) as exc:
        dead.verify_payment(check(scenario, "genuine"))
    assert exc.value.reason == "rpc" and status_of(exc.value) == (503, "unavailable")
    assert dead.health() is False


def test_rpc_that_never_answers_is_unavailable(scenario):
    """A listener that accepts but never replies: the timeout is Unavailable."""
    with socket.socket() as srv:
        srv.bind(("127.0.0.1", 0))
        srv.listen(1)
        silent = SolanaRpc(f"http://127.0.0.1:{srv.getsockname()[1]}", timeout=0.5)
        start = time.monotonic()
        with pytest.raises(Unavailable):
            silent.verify_payment(check(scenario, "genuine"))
        assert time.monotonic() - start < 5
