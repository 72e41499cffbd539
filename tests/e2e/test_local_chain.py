"""The local chain against stock clients: solana-py ``AsyncClient``, raw JSON-RPC, WebSocket
pub/sub, the CLI process, and ``@solana/web3.js`` 1.x under node. No fakes."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest
from solana.rpc.async_api import AsyncClient
from solana.rpc.core import RPCException
from solana.rpc.models import TxOpts
from solders.hash import Hash
from solders.instruction import AccountMeta, Instruction
from solders.keypair import Keypair
from solders.message import Message, MessageV0
from solders.pubkey import Pubkey
from solders.rpc.responses import SendTransactionPreflightFailureMessage
from solders.system_program import TransferParams, transfer
from solders.transaction import Transaction, VersionedTransaction
from solders.transaction_status import TransactionConfirmationStatus

from tests.support.installs import one_at_a_time

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
JS_DIR = Path(__file__).resolve().parent / "js"
MEMO = Pubkey.from_string("MemoSq4gqABAXKb96qnH8TysNcWxMyWCqXgDLGmfcHr")
SOL = 10**9
FEE = 5000


def run(coro):
    return asyncio.run(coro)


def rpc(url: str, method: str, params=None, *, batch=None):
    body = batch if batch is not None else {"jsonrpc": "2.0", "id": 1, "method": method, "params": params or []}
    req = urllib.request.Request(url, json.dumps(body).encode(), {"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as resp:
        assert resp.status == 200
        return json.loads(resp.read())


def pay_tx(payer: Keypair, to: Pubkey, lamports: int, blockhash: Hash, memo: str | None = None) -> Transaction:
    ixs = [transfer(TransferParams(from_pubkey=payer.pubkey(), to_pubkey=to, lamports=lamports))]
    if memo is not None:
        ixs.append(Instruction(MEMO, memo.encode(), [AccountMeta(payer.pubkey(), True, True)]))
    msg = Message.new_with_blockhash(ixs, payer.pubkey(), blockhash)
    return Transaction([payer], msg, blockhash)


async def funded(client: AsyncClient, lamports: int = 2 * SOL) -> Keypair:
    kp = Keypair()
    sig = (await client.request_airdrop(kp.pubkey(), lamports)).value
    resp = await client.confirm_transaction(sig)  # the client's default commitment: finalized
    assert resp.value[0].err is None
    return kp


def preflight_failure(exc: RPCException) -> SendTransactionPreflightFailureMessage:
    (err,) = exc.args
    assert isinstance(err, SendTransactionPreflightFailureMessage), err
    return err


# ------------------------------------------------------------------- raw RPC
def test_raw_rpc_shapes_batch_and_unknown_method(local_chain):
    url = local_chain.rpc_url
    assert url.startswith("http://127.0.0.1:") and local_chain.ws_url == f"ws://127.0.0.1:{local_chain.port + 1}"
    assert rpc(url, "getHealth")["result"] == "ok"
    assert "solana-core" in rpc(url, "getVersion")["result"]
    out = rpc(
        url,
        "",
        batch=[
            {"jsonrpc": "2.0", "id": 1, "method": "getLatestBlockhash"},
            {"jsonrpc": "2.0", "id": 2, "method": "getBlockHeight"},
            {"jsonrpc": "2.0", "id": 3, "method": "noSuchMethod"},
            {"jsonrpc": "2.0", "id": 4, "method": "getBalance", "params": [str(Keypair().pubkey())]},
        ],
    )
    by_id = {r["id"]: r for r in out}
    latest = by_id[1]["result"]
    assert set(latest) == {"context", "value"} and latest["context"]["slot"] >= 1
    assert latest["value"]["lastValidBlockHeight"] == latest["context"]["slot"] + 150
    assert by_id[2]["result"] >= latest["context"]["slot"]
    assert by_id[3]["error"]["code"] == -32601
    assert by_id[4]["result"]["value"] == 0
    assert rpc(url, "isBlockhashValid", [latest["value"]["blockhash"]])["result"]["value"] is True
    assert rpc(url, "getAccountInfo", [str(Keypair().pubkey()), {"encoding": "base64"}])["result"]["value"] is None
    assert rpc(url, "getTransaction", ["1" * 64, {"encoding": "json"}])["result"] is None
    assert rpc(url, "getMinimumBalanceForRentExemption", [0])["result"] == 890880
    # not a Solana method: the local chain's way to expire blockhashes from another process
    slot = rpc(url, "getSlot")["result"]
    assert rpc(url, "localChain_advanceSlots", [3])["result"] >= slot + 3
    bad = rpc(url, "getBalance", ["not-a-key"])
    assert bad["error"]["code"] == -32602


# ----------------------------------------------------------------- solana-py
def test_airdrop_transfer_with_memo_and_read_back(local_chain):
    async def scenario():
        async with AsyncClient(local_chain.rpc_url) as client:
            payer = await funded(client)
            treasury = Keypair().pubkey()
            payer_before = (await client.get_balance(payer.pubkey())).value
            treasury_before = (await client.get_balance(treasury)).value
            assert (payer_before, treasury_before) == (2 * SOL, 0)

            latest = (await client.get_latest_blockhash()).value
            tx = pay_tx(payer, treasury, 25_000_000, latest.blockhash, memo="CTR-py-0001")
            fee = (await client.get_fee_for_message(tx.message)).value
            assert fee == FEE
            sig = (await client.send_transaction(tx)).value
            assert sig == tx.signatures[0]
            conf = await client.confirm_transaction(sig, last_valid_block_height=latest.last_valid_block_height)
            assert conf.value[0].err is None
            payer_after = (await client.get_balance(payer.pubkey())).value
            treasury_after = (await client.get_balance(treasury)).value
            assert payer_after == payer_before - 25_000_000 - FEE
            assert treasury_after == 25_000_000

            for encoding in ("json", "base64"):
                got = (await client.get_transaction(sig, encoding=encoding, max_supported_transaction_version=0)).value
                assert got is not None and got.slot >= 1 and got.block_time > 1_600_000_000
                meta = got.transaction.meta
                assert meta.err is None and meta.fee == FEE
                assert meta.pre_balances[:2] == [payer_before, treasury_before]
                assert meta.post_balances[:2] == [payer_after, treasury_after]
                assert any("CTR-py-0001" in line for line in meta.log_messages)
                assert meta.inner_instructions == []
                assert got.transaction.version is not None
                decoded = got.transaction.transaction
                if encoding == "base64":
                    assert bytes(decoded) == bytes(tx)
                else:
                    assert str(decoded.message.account_keys[1]) == str(treasury)

            # without maxSupportedTransactionVersion, a legacy transaction is still served
            plain = (await client.get_transaction(sig)).value
            assert plain.transaction.meta.fee == FEE and plain.transaction.version is None
            parsed = (
                await client.get_transaction(sig, encoding="jsonParsed", max_supported_transaction_version=0)
            ).value
            assert parsed.transaction.meta.fee == FEE

            statuses = (await client.get_signature_statuses([sig, Keypair().sign_message(b"x")])).value
            assert statuses[0].err is None and statuses[1] is None
            assert statuses[0].confirmation_status == TransactionConfirmationStatus.Finalized

            history = (await client.get_signatures_for_address(treasury)).value
            assert [h.signature for h in history] == [sig]
            assert history[0].memo == "[11] CTR-py-0001" and history[0].err is None
            assert history[0].block_time == got.block_time and history[0].slot == got.slot

            # newest first
            sig2 = (await client.send_transaction(pay_tx(payer, treasury, 1_000_000, latest.blockhash))).value
            history = (await client.get_signatures_for_address(treasury)).value
            assert [h.signature for h in history] == [sig2, sig]
            assert history[0].memo is None
            assert [h.signature for h in (await client.get_signatures_for_address(treasury, limit=1)).value] == [sig2]

    run(scenario())


def test_raw_json_parsed_transaction(local_chain):
    async def scenario():
        async with AsyncClient(local_chain.rpc_url) as client:
            payer = await funded(client)
            treasury = Keypair().pubkey()
            latest = (await client.get_latest_blockhash()).value
            sig = (await client.send_transaction(pay_tx(payer, treasury, 7_000_000, latest.blockhash, "CTR-x"))).value
            return payer, treasury, str(sig)

    payer, treasury, sig = run(scenario())
    got = rpc(
        local_chain.rpc_url, "getTransaction", [sig, {"encoding": "jsonParsed", "maxSupportedTransactionVersion": 0}]
    )["result"]
    assert got["version"] == "legacy" and got["meta"]["status"] == {"Ok": None}
    msg = got["transaction"]["message"]
    assert msg["accountKeys"][0] == {
        "pubkey": str(payer.pubkey()),
        "signer": True,
        "source": "transaction",
        "writable": True,
    }
    transfer_ix, memo_ix = msg["instructions"]
    assert transfer_ix["program"] == "system" and transfer_ix["parsed"] == {
        "type": "transfer",
        "info": {"source": str(payer.pubkey()), "destination": str(treasury), "lamports": 7_000_000},
    }
    assert memo_ix["program"] == "spl-memo" and memo_ix["parsed"] == "CTR-x"


def test_failing_transfer_preflight_then_skip_preflight(local_chain):
    async def scenario():
        async with AsyncClient(local_chain.rpc_url) as client:
            payer = await funded(client, SOL)
            treasury = Keypair().pubkey()
            latest = (await client.get_latest_blockhash()).value
            tx = pay_tx(payer, treasury, 5 * SOL, latest.blockhash)  # more than it has

            with pytest.raises(RPCException) as info:
                await client.send_transaction(tx)
            failure = preflight_failure(info.value)
            assert failure.message.startswith("Transaction simulation failed: Error processing Instruction 0")
            assert failure.data.err is not None
            assert any("insufficient lamports" in line for line in failure.data.logs)
            assert (await client.get_balance(payer.pubkey())).value == SOL  # nothing charged
            assert (await client.get_signature_statuses([tx.signatures[0]])).value[0] is None

            sig = (await client.send_transaction(tx, opts=TxOpts(skip_preflight=True))).value
            status = (await client.confirm_transaction(sig)).value[0]
            assert status.err is not None
            got = (await client.get_transaction(sig, max_supported_transaction_version=0)).value
            meta = got.transaction.meta
            assert meta.err is not None and meta.fee == FEE
            assert meta.pre_balances[0] == SOL and meta.post_balances[0] == SOL - FEE
            assert (await client.get_balance(payer.pubkey())).value == SOL - FEE
            assert (await client.get_balance(treasury)).value == 0
            history = (await client.get_signatures_for_address(payer.pubkey())).value
            assert history[0].signature == sig and history[0].err is not None

    run(scenario())


def test_resend_of_processed_transaction(local_chain):
    """A real node: preflight says AlreadyProcessed; with skipPreflight the signature comes back."""

    async def scenario():
        async with AsyncClient(local_chain.rpc_url) as client:
            payer = await funded(client)
            latest = (await client.get_latest_blockhash()).value
            tx = pay_tx(payer, Keypair().pubkey(), 1_000_000, latest.blockhash)
            sig = (await client.send_transaction(tx)).value
            balance = (await client.get_balance(payer.pubkey())).value
            with pytest.raises(RPCException) as info:
                await client.send_transaction(tx)
            failure = preflight_failure(info.value)
            assert "already been processed" in failure.message
            again = (await client.send_transaction(tx, opts=TxOpts(skip_preflight=True))).value
            assert again == sig
            assert (await client.get_balance(payer.pubkey())).value == balance

    run(scenario())


def test_expired_and_unknown_blockhash_rejected(local_chain):
    async def scenario():
        async with AsyncClient(local_chain.rpc_url) as client:
            payer = await funded(client)
            old = (await client.get_latest_blockhash()).value
            valid = lambda: rpc(local_chain.rpc_url, "isBlockhashValid", [str(old.blockhash)])["result"]["value"]
            assert valid() is True
            local_chain.advance_slots(151)
            assert (await client.get_block_height()).value > old.last_valid_block_height
            assert valid() is False
            tx = pay_tx(payer, Keypair().pubkey(), 1_000_000, old.blockhash)
            assert (await client.get_fee_for_message(tx.message)).value is None
            with pytest.raises(RPCException) as info:
                await client.send_transaction(tx)
            failure = preflight_failure(info.value)
            assert failure.message == "Transaction simulation failed: Blockhash not found"
            assert failure.data.logs == []

            never_issued = pay_tx(payer, Keypair().pubkey(), 1_000_000, Hash.new_unique())
            with pytest.raises(RPCException):
                await client.send_transaction(never_issued)
            # skipPreflight: the node returns the signature, the transaction never lands
            dropped = (await client.send_transaction(tx, opts=TxOpts(skip_preflight=True))).value
            assert (await client.get_signature_statuses([dropped])).value[0] is None
            assert (await client.get_balance(payer.pubkey())).value == 2 * SOL

            # a fresh blockhash works, also in a v0 message
            fresh = (await client.get_latest_blockhash()).value
            msg = MessageV0.try_compile(
                payer.pubkey(),
                [
                    transfer(
                        TransferParams(from_pubkey=payer.pubkey(), to_pubkey=Keypair().pubkey(), lamports=1_000_000)
                    )
                ],
                [],
                fresh.blockhash,
            )
            vtx = VersionedTransaction(msg, [payer])
            sig = (await client.send_transaction(vtx)).value
            got = (await client.get_transaction(sig, max_supported_transaction_version=0)).value
            assert got.transaction.meta.fee == FEE and int(got.transaction.version) == 0

    run(scenario())


def test_simulate_transaction(local_chain):
    async def scenario():
        async with AsyncClient(local_chain.rpc_url) as client:
            payer = await funded(client)
            latest = (await client.get_latest_blockhash()).value
            ok = (
                await client.simulate_transaction(
                    VersionedTransaction.from_legacy(
                        pay_tx(payer, Keypair().pubkey(), 1_000_000, latest.blockhash, "sim")
                    )
                )
            ).value
            assert ok.err is None and any("sim" in line for line in ok.logs) and ok.units_consumed > 0
            bad = (
                await client.simulate_transaction(
                    VersionedTransaction.from_legacy(pay_tx(payer, Keypair().pubkey(), 9 * SOL, latest.blockhash))
                )
            ).value
            assert bad.err is not None
            assert (await client.get_balance(payer.pubkey())).value == 2 * SOL

    run(scenario())


def test_raw_send_base58_and_preflight_error_shape(local_chain):
    from base58 import b58encode

    url = local_chain.rpc_url
    payer = Keypair()
    local_chain.fund(payer.pubkey(), SOL)
    blockhash = Hash.from_string(rpc(url, "getLatestBlockhash")["result"]["value"]["blockhash"])
    ok = pay_tx(payer, Keypair().pubkey(), 2_000_000, blockhash)
    sent = rpc(url, "sendTransaction", [b58encode(bytes(ok)).decode()])  # default encoding: base58
    assert sent["result"] == str(ok.signatures[0])

    bad = pay_tx(payer, Keypair().pubkey(), 3 * SOL, blockhash)
    import base64

    err = rpc(url, "sendTransaction", [base64.b64encode(bytes(bad)).decode(), {"encoding": "base64"}])["error"]
    assert err["code"] == -32002
    assert err["message"] == (
        "Transaction simulation failed: Error processing Instruction 0: custom program error: 0x1"
    )
    data = err["data"]
    assert data["err"] == {"InstructionError": [0, {"Custom": 1}]}
    assert data["accounts"] is None and data["returnData"] is None and data["unitsConsumed"] > 0
    assert any("insufficient lamports" in line for line in data["logs"])


def test_concurrent_payments(local_chain):
    async def one(client: AsyncClient, treasury: Pubkey, n: int):
        payer = await funded(client)
        latest = (await client.get_latest_blockhash()).value
        sig = (await client.send_transaction(pay_tx(payer, treasury, 1_000_000 + n, latest.blockhash))).value
        await client.confirm_transaction(sig, last_valid_block_height=latest.last_valid_block_height)
        return sig

    async def scenario():
        treasury = Keypair().pubkey()
        async with AsyncClient(local_chain.rpc_url) as client:
            sigs = await asyncio.gather(*(one(client, treasury, n) for n in range(8)))
            assert (await client.get_balance(treasury)).value == sum(1_000_000 + n for n in range(8))
            history = (await client.get_signatures_for_address(treasury)).value
            assert {h.signature for h in history} == set(sigs)

    run(scenario())


# ----------------------------------------------------------------- WebSocket
def test_signature_subscribe_notifies(local_chain):
    import websockets

    async def scenario():
        async with AsyncClient(local_chain.rpc_url) as client, websockets.connect(local_chain.ws_url) as ws:
            payer = await funded(client)
            latest = (await client.get_latest_blockhash()).value
            tx = pay_tx(payer, Keypair().pubkey(), 1_000_000, latest.blockhash)
            sig = str(tx.signatures[0])
            await ws.send(
                json.dumps(
                    {
                        "jsonrpc": "2.0",
                        "id": 7,
                        "method": "signatureSubscribe",
                        "params": [sig, {"commitment": "confirmed"}],
                    }
                )
            )
            sub = json.loads(await asyncio.wait_for(ws.recv(), 5))
            assert sub["id"] == 7 and isinstance(sub["result"], int)
            await ws.send(json.dumps({"jsonrpc": "2.0", "method": "ping"}))  # web3.js heartbeat: no answer
            await client.send_transaction(tx)
            note = json.loads(await asyncio.wait_for(ws.recv(), 5))
            assert note["method"] == "signatureNotification"
            assert note["params"]["subscription"] == sub["result"]
            assert note["params"]["result"]["value"] == {"err": None}
            assert note["params"]["result"]["context"]["slot"] >= 1

            # already landed: answered, then notified at once
            await ws.send(json.dumps({"jsonrpc": "2.0", "id": 8, "method": "signatureSubscribe", "params": [sig]}))
            sub2 = json.loads(await asyncio.wait_for(ws.recv(), 5))
            note2 = json.loads(await asyncio.wait_for(ws.recv(), 5))
            assert note2["params"]["subscription"] == sub2["result"]
            await ws.send(json.dumps({"jsonrpc": "2.0", "id": 9, "method": "slotSubscribe"}))
            assert isinstance(json.loads(await asyncio.wait_for(ws.recv(), 5))["result"], int)

    run(scenario())


# ----------------------------------------------------------------------- CLI
def _free_port_pair() -> int:
    for _ in range(50):
        with socket.socket() as a:
            a.bind(("127.0.0.1", 0))
            port = a.getsockname()[1]
            with socket.socket() as b:
                try:
                    b.bind(("127.0.0.1", port + 1))
                except OSError:
                    continue
            return port
    raise RuntimeError("no free port pair")


def test_cli_ready_line_and_sigterm_frees_ports():
    port = _free_port_pair()
    proc = subprocess.Popen(
        [sys.executable, "-m", "dev.chain", "--host", "127.0.0.1", "--port", str(port)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        line = proc.stdout.readline().strip()
        assert line == f"local chain ready rpc=http://127.0.0.1:{port} ws=ws://127.0.0.1:{port + 1}"
        assert rpc(f"http://127.0.0.1:{port}", "getHealth")["result"] == "ok"
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=15) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    for p in (port, port + 1):
        with socket.socket() as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind(("127.0.0.1", p))


# ------------------------------------------------------------ @solana/web3.js
def _ensure_node_modules() -> None:
    with one_at_a_time("npm-e2e-js"):  # test_web3js_rent may install it at the same time on another worker
        if (JS_DIR / "node_modules" / "@solana" / "web3.js" / "package.json").exists():
            return
        npm = shutil.which("npm")
        if npm is None:
            pytest.fail("node is installed but npm is not: cannot install @solana/web3.js into tests/e2e/js")
        proc = subprocess.run(
            [npm, "ci", "--no-audit", "--no-fund"],
            cwd=JS_DIR,
            timeout=600,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        assert proc.returncode == 0, f"npm ci in {JS_DIR} failed:\n{proc.stdout}"


def test_web3js_airdrop_send_and_confirm_with_memo(local_chain):
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed: the @solana/web3.js end-to-end test needs Node.js 18+")
    _ensure_node_modules()
    proc = subprocess.run(
        [node, "pay.mjs", local_chain.rpc_url],
        cwd=JS_DIR,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "NODE_NO_WARNINGS": "1"},
    )
    assert proc.returncode == 0, proc.stderr + proc.stdout
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["airdropErr"] is None
    assert out["payerBefore"] == 2 * SOL and out["treasuryBefore"] == 0
    assert out["payerAfter"] == out["payerBefore"] - out["lamports"] - FEE
    assert out["treasuryAfter"] == out["lamports"]
    tx = out["tx"]
    assert tx["err"] is None and tx["fee"] == FEE
    assert tx["preBalances"][:2] == [out["payerBefore"], out["treasuryBefore"]]
    assert tx["postBalances"][:2] == [out["payerAfter"], out["treasuryAfter"]]
    assert any(out["memo"] in line for line in tx["logMessages"])
    assert tx["slot"] >= 1 and tx["blockTime"] > 1_600_000_000 and tx["version"] == "legacy"
    assert out["parsedTransfer"] == {
        "source": out["payer"],
        "destination": out["treasury"],
        "lamports": out["lamports"],
    }
    assert out["parsedMemo"] == out["memo"]
    assert out["status"] == {"err": None, "confirmationStatus": "finalized"}
    assert out["failure"]["name"] == "SendTransactionError"
    assert any("insufficient lamports" in line for line in out["failure"]["logs"])


# ------------------------------------------------------ test controls (si64_*)
def post(url: str, method: str, params=None):
    """(HTTP status, parsed body) of one JSON-RPC call; HTTP errors are returned, not raised."""
    import urllib.error

    body = json.dumps({"jsonrpc": "2.0", "id": 7, "method": method, "params": params or []}).encode()
    req = urllib.request.Request(url, body, {"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"null")


@pytest.fixture
def controlled(local_chain):
    rpc(local_chain.rpc_url, "si64_clearFaults")
    yield local_chain
    rpc(local_chain.rpc_url, "si64_clearFaults")


def test_control_advance_past_block_height_expires_the_blockhash(controlled):
    url = controlled.rpc_url
    value = rpc(url, "getLatestBlockhash")["result"]["value"]
    assert rpc(url, "isBlockhashValid", [value["blockhash"]])["result"]["value"] is True
    height = rpc(url, "si64_advancePastBlockHeight", [value["lastValidBlockHeight"]])["result"]
    # past it, and the height now read is at least that (slots keep ticking on wall time meanwhile)
    assert value["lastValidBlockHeight"] < height <= rpc(url, "getBlockHeight")["result"]
    assert rpc(url, "isBlockhashValid", [value["blockhash"]])["result"]["value"] is False
    assert rpc(url, "si64_advancePastBlockHeight", [1])["result"] == height  # never goes back
    slot = rpc(url, "si64_advanceSlots", [5])["result"]
    assert slot >= height + 5
    assert rpc(url, "si64_advanceSlots", [-1])["error"]["code"] == -32602


def test_control_fail_rpc_http503_then_recovers_by_count(controlled):
    url = controlled.rpc_url
    assert rpc(url, "si64_failRpc", [{"mode": "http503", "requests": 2}])["result"]["fail"]["requestsLeft"] == 2
    assert post(url, "getHealth")[0] == 503
    assert rpc(url, "si64_faults")["result"]["fail"]["mode"] == "http503"  # controls always answer
    assert post(url, "getSlot")[0] == 503
    assert post(url, "getHealth") == (200, {"jsonrpc": "2.0", "result": "ok", "id": 7})


def test_control_fail_rpc_error_for_some_methods_for_a_time(controlled):
    import time

    url = controlled.rpc_url
    rpc(url, "si64_failRpc", [{"mode": "error", "seconds": 0.5, "methods": ["getBalance"]}])
    status, body = post(url, "getBalance", [str(Keypair().pubkey())])
    assert status == 200 and body["error"]["code"] == -32005 and body["error"]["message"] == "Node is unhealthy"
    assert post(url, "getSlot")[1]["result"] > 0  # other methods answer
    batch = rpc(
        url,
        "",
        batch=[
            {"jsonrpc": "2.0", "id": 1, "method": "getBalance", "params": [str(Keypair().pubkey())]},
            {"jsonrpc": "2.0", "id": 2, "method": "si64_faults"},
        ],
    )
    assert batch[0]["error"]["code"] == -32005 and "result" in batch[1]
    time.sleep(0.6)
    assert post(url, "getBalance", [str(Keypair().pubkey())])[1]["result"]["value"] == 0


def test_control_fail_rpc_disconnect_and_slow(controlled):
    import http.client
    import time
    import urllib.error

    url = controlled.rpc_url
    rpc(url, "si64_failRpc", [{"mode": "disconnect", "requests": 1}])
    with pytest.raises((http.client.RemoteDisconnected, urllib.error.URLError, ConnectionError)):
        post(url, "getSlot")
    assert post(url, "getSlot")[0] == 200
    rpc(url, "si64_slowRpc", [{"delaySeconds": 0.4, "requests": 1}])
    started = time.monotonic()
    assert post(url, "getSlot")[0] == 200
    assert time.monotonic() - started >= 0.4
    started = time.monotonic()
    post(url, "getSlot")
    assert time.monotonic() - started < 0.4
    for bad in ([{"mode": "sometimes"}], [{"seconds": -1}], [{"requests": 1.5}], [{"nope": 1}]):
        assert rpc(url, "si64_failRpc", bad)["error"]["code"] == -32602
    assert rpc(url, "si64_slowRpc", [{}])["error"]["code"] == -32602


def test_control_drop_transactions_never_land_and_expire(controlled):
    url = controlled.rpc_url
    payer = Keypair()
    controlled.fund(payer.pubkey(), SOL)
    value = rpc(url, "getLatestBlockhash")["result"]["value"]
    tx = pay_tx(payer, Keypair().pubkey(), 2_000_000, Hash.from_string(value["blockhash"]))
    import base64

    encoded = base64.b64encode(bytes(tx)).decode()
    rpc(url, "si64_dropTransactions", [{"requests": 1}])
    sig = rpc(url, "sendTransaction", [encoded, {"encoding": "base64"}])["result"]
    assert sig == str(tx.signatures[0])
    assert rpc(url, "si64_faults")["result"]["dropped"][-1] == sig
    statuses = rpc(url, "getSignatureStatuses", [[sig], {"searchTransactionHistory": True}])
    assert statuses["result"]["value"] == [None]
    assert rpc(url, "getBalance", [str(payer.pubkey())])["result"]["value"] == SOL  # no fee either
    rpc(url, "si64_advancePastBlockHeight", [value["lastValidBlockHeight"]])
    late = rpc(url, "sendTransaction", [encoded, {"encoding": "base64"}])
    assert late["error"]["data"]["err"] == "BlockhashNotFound"  # can never land now
    assert rpc(url, "getSignatureStatuses", [[sig]])["result"]["value"] == [None]


def test_control_refuse_account(controlled):
    import base64

    url = controlled.rpc_url
    payer, target = Keypair(), Keypair()
    controlled.fund(payer.pubkey(), SOL)
    controlled.fund(target.pubkey(), SOL)
    assert str(target.pubkey()) in rpc(url, "si64_refuseAccount", [str(target.pubkey())])["result"]["refused"]
    blockhash = Hash.from_string(rpc(url, "getLatestBlockhash")["result"]["value"]["blockhash"])
    tx = pay_tx(payer, target.pubkey(), 2_000_000, blockhash)
    encoded = base64.b64encode(bytes(tx)).decode()
    refused = rpc(url, "sendTransaction", [encoded, {"encoding": "base64"}])["error"]
    assert refused["code"] == -32002 and refused["data"]["err"] == {"InsufficientFundsForRent": {"account_index": 1}}
    assert "insufficient funds for rent" in refused["message"]
    skipped = rpc(url, "sendTransaction", [encoded, {"encoding": "base64", "skipPreflight": True}])["result"]
    assert rpc(url, "getSignatureStatuses", [[skipped]])["result"]["value"] == [None]  # dropped
    rpc(url, "si64_refuseAccount", [str(target.pubkey()), False])
    assert rpc(url, "sendTransaction", [encoded, {"encoding": "base64"}])["result"] == skipped
    assert rpc(url, "getBalance", [str(target.pubkey())])["result"]["value"] == SOL + 2_000_000
