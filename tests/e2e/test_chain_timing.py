"""The local chain's ``real`` timing profile over raw JSON-RPC: confirmed one slot and finalized
32 slots after a transaction lands, every read at the commitment it asks for, fees charged,
blockhashes expiring after 150 slots, and a drop rate for sent transactions.

The chains here have hour-long slots, so only ``si64_advanceSlots`` moves them: every
assertion is about slots, none about wall time."""

from __future__ import annotations

import base64
import json
import os
import signal
import subprocess
import sys
import urllib.request

import pytest
from solders.hash import Hash
from solders.keypair import Keypair
from solders.message import Message
from solders.system_program import TransferParams, transfer
from solders.transaction import Transaction

from dev.chain import Chain, ChainServer
from dev.procs import free_port
from tests.e2e.test_local_chain import ROOT

pytestmark = pytest.mark.chain

HOUR = 3600.0
FEE = 5000


def call(url, method, *params):
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": list(params)}).encode()
    req = urllib.request.Request(url, body, {"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as resp:
        out = json.loads(resp.read())
    if "error" in out:
        raise AssertionError(out["error"])
    return out["result"]


@pytest.fixture(scope="module")
def real_chain():
    with ChainServer("127.0.0.1", 0, chain=Chain(slot_seconds=HOUR, timing="real")) as server:
        yield server


def funded(server, lamports=10**9) -> Keypair:
    kp = Keypair()
    server.fund(kp.pubkey(), lamports)
    server.advance_slots(32)  # the airdrop is finalized
    return kp


def send_transfer(url, payer: Keypair, to, lamports, commitment="confirmed") -> tuple[str, int]:
    latest = call(url, "getLatestBlockhash", {"commitment": commitment})["value"]
    blockhash = Hash.from_string(latest["blockhash"])
    msg = Message.new_with_blockhash(
        [transfer(TransferParams(from_pubkey=payer.pubkey(), to_pubkey=to, lamports=lamports))],
        payer.pubkey(),
        blockhash,
    )
    raw = bytes(Transaction([payer], msg, blockhash))
    sig = call(url, "sendTransaction", base64.b64encode(raw).decode(), {"encoding": "base64"})
    return sig, latest["lastValidBlockHeight"]


def status(url, sig):
    return call(url, "getSignatureStatuses", [sig], {"searchTransactionHistory": True})["value"][0]


def test_processed_then_confirmed_after_one_slot_then_finalized_after_32(real_chain):
    url = real_chain.rpc_url
    payer, to = funded(real_chain), Keypair().pubkey()
    sig, _ = send_transfer(url, payer, to, 1_000_000)
    landed = status(url, sig)
    assert (landed["confirmationStatus"], landed["confirmations"]) == ("processed", 0)
    # getTransaction: finalized by default, confirmed on request, never processed
    assert call(url, "getTransaction", sig, {"encoding": "json"}) is None
    assert call(url, "getTransaction", sig, {"encoding": "json", "commitment": "confirmed"}) is None
    real_chain.advance_slots(1)
    assert status(url, sig)["confirmationStatus"] == "confirmed"
    assert status(url, sig)["confirmations"] == 1
    tx = call(url, "getTransaction", sig, {"encoding": "json", "commitment": "confirmed"})
    assert tx["slot"] == landed["slot"] and tx["meta"]["fee"] == FEE
    assert call(url, "getTransaction", sig, {"encoding": "json"}) is None
    real_chain.advance_slots(30)
    assert status(url, sig)["confirmationStatus"] == "confirmed"  # 31 slots: not yet rooted
    real_chain.advance_slots(1)
    final = status(url, sig)
    assert (final["confirmationStatus"], final["confirmations"]) == ("finalized", None)
    tx = call(url, "getTransaction", sig, {"encoding": "json"})
    # the fee is charged: the payer lost the amount and 5000 lamports
    assert tx["meta"]["preBalances"][0] - tx["meta"]["postBalances"][0] == 1_000_000 + FEE


def test_heights_and_blockhashes_at_each_commitment(real_chain):
    url = real_chain.rpc_url
    slot = real_chain.advance_slots(40)
    assert call(url, "getSlot", {"commitment": "processed"}) == slot
    assert call(url, "getBlockHeight", {"commitment": "confirmed"}) == slot - 1
    assert call(url, "getBlockHeight") == call(url, "getBlockHeight", {"commitment": "finalized"}) == slot - 32
    fin = call(url, "getLatestBlockhash")
    assert fin["context"]["slot"] == slot - 32
    assert fin["value"]["lastValidBlockHeight"] == slot - 32 + 150
    conf = call(url, "getLatestBlockhash", {"commitment": "confirmed"})["value"]
    assert conf["lastValidBlockHeight"] == slot - 1 + 150
    # a blockhash is valid for 150 slots after its own
    assert call(url, "isBlockhashValid", conf["blockhash"])["value"] is True
    real_chain.advance_past_block_height(conf["lastValidBlockHeight"])
    assert call(url, "isBlockhashValid", conf["blockhash"])["value"] is False


def test_history_shows_a_transaction_once_it_reached_the_commitment(real_chain):
    url = real_chain.rpc_url
    payer, to = funded(real_chain), Keypair().pubkey()
    sig, _ = send_transfer(url, payer, to, 2_000_000)
    assert call(url, "getSignaturesForAddress", str(to)) == []
    real_chain.advance_slots(1)
    (entry,) = call(url, "getSignaturesForAddress", str(to), {"commitment": "confirmed"})
    assert (entry["signature"], entry["confirmationStatus"]) == (sig, "confirmed")
    assert call(url, "getSignaturesForAddress", str(to)) == []
    real_chain.advance_slots(31)
    (entry,) = call(url, "getSignaturesForAddress", str(to))
    assert (entry["signature"], entry["confirmationStatus"]) == (sig, "finalized")


def test_an_expired_transaction_never_lands(real_chain):
    url = real_chain.rpc_url
    payer, to = funded(real_chain), Keypair().pubkey()
    real_chain.drop_transactions(requests=1)
    sig, last_valid = send_transfer(url, payer, to, 3_000_000)
    assert status(url, sig) is None
    real_chain.advance_past_block_height(last_valid)
    # the same bytes again: the blockhash has expired, preflight refuses it
    latest = call(url, "getLatestBlockhash", {"commitment": "processed"})["value"]
    assert latest["lastValidBlockHeight"] > last_valid
    assert status(url, sig) is None and call(url, "getBalance", str(to))["value"] == 0


def test_a_drop_rate_drops_some_sends_and_never_an_airdrop():
    chain = Chain(slot_seconds=HOUR, timing="real", drop_rate=0.5, seed=7)
    with ChainServer("127.0.0.1", 0, chain=chain) as server:
        url = server.rpc_url
        payers = [funded(server, 10**8) for _ in range(4)]  # airdrops: never dropped
        to = Keypair().pubkey()
        sigs = [send_transfer(url, payers[i % 4], to, 1_000_000 + i)[0] for i in range(16)]
        server.advance_slots(32)
        landed = [s for s in sigs if status(url, s) is not None]
        dropped = set(server.dropped)
        assert 0 < len(landed) < len(sigs)
        assert dropped == set(sigs) - set(landed)
        assert call(url, "getBalance", str(to))["value"] == sum(1_000_000 + sigs.index(s) for s in landed)


def test_bad_profiles_are_refused():
    with pytest.raises(ValueError):
        Chain(timing="slow")
    with pytest.raises(ValueError):
        Chain(drop_rate=1.0)


def test_cli_takes_the_profile_from_the_environment():
    port = free_port(pair=True)
    env = dict(os.environ, SI64_CHAIN_TIMING="real", SI64_CHAIN_DROP_RATE="0.25")
    proc = subprocess.Popen(
        [sys.executable, "-m", "dev.chain", "--host", "127.0.0.1", "--port", str(port)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        line = proc.stdout.readline().strip()
        assert line.endswith(" timing=real drop_rate=0.25"), line
        assert call(f"http://127.0.0.1:{port}", "getHealth") == "ok"
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=15) == 0


def test_signature_subscribe_notifies_at_the_commitment_asked_for(real_chain):
    import asyncio

    import websockets

    url = real_chain.rpc_url
    payer, to = funded(real_chain), Keypair().pubkey()
    sig, _ = send_transfer(url, payer, to, 4_000_000)

    async def scenario():
        async with websockets.connect(real_chain.ws_url) as ws:
            subs = {}
            for i, commitment in enumerate(("processed", "confirmed", "finalized")):
                await ws.send(
                    json.dumps(
                        {
                            "jsonrpc": "2.0",
                            "id": i,
                            "method": "signatureSubscribe",
                            "params": [sig, {"commitment": commitment}],
                        }
                    )
                )
            notes = []
            while len(subs) < 3 or len(notes) < 1:
                msg = json.loads(await asyncio.wait_for(ws.recv(), 10))
                if "id" in msg:
                    subs[msg["result"]] = msg["id"]
                else:
                    notes.append(msg["params"]["subscription"])
            assert [subs[n] for n in notes] == [0]  # processed at once; the others wait
            real_chain.advance_slots(1)
            msg = json.loads(await asyncio.wait_for(ws.recv(), 10))
            assert subs[msg["params"]["subscription"]] == 1
            real_chain.advance_slots(31)
            msg = json.loads(await asyncio.wait_for(ws.recv(), 10))
            assert subs[msg["params"]["subscription"]] == 2
            assert msg["params"]["result"]["value"] == {"err": None}

    asyncio.run(scenario())
