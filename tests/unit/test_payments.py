"""Payment verification: pure decision over canned JSON-RPC results, and the
adapter's error translation with urlopen replaced (no sockets)."""

from __future__ import annotations

import io
import json
import struct
import urllib.error

import pytest

from chalicelib.adapters.solana_rpc import SolanaRpc
from chalicelib.api.errors import status_of
from chalicelib.domain import keys as base58
from chalicelib.domain.errors import InvalidRequest, Unavailable
from chalicelib.domain.payments import (
    SYSTEM_PROGRAM_ID,
    MalformedRpcResult,
    PaymentCheck,
    PaymentResult,
    decide,
)


def key(n: int) -> str:
    return base58.encode(bytes([n]) * 32)


WALLET = key(1)
TREASURY = key(2)
OTHER = key(3)
STRANGER = key(4)
MEMO_PROGRAM = "MemoSq4gqABAXKb7r6fPQy1hYkZ48jzPz9v1bCZE8zY6"  # memo v2, as on every cluster
TOKEN_PROGRAM = "TokenkegQfeZyiNwAJbNbGKPFXCWuBvf9Ss623VQ5DA"
SIG = base58.encode(bytes(range(64)))
SIG2 = base58.encode(bytes(range(1, 65)))
BLOCKHASH = key(9)
NOW = 1_764_070_000
BLOCK_TIME = NOW - 30
SLOT = 312_345
PRICE = 1_000_000


def transfer_data(lamports: int, index: int = 2, trailing: bytes = b"") -> str:
    return base58.encode(struct.pack("<IQ", index, lamports) + trailing)


def seed_transfer_data(lamports: int, seed: str = "si64", owner: str = SYSTEM_PROGRAM_ID) -> str:
    s = seed.encode()
    return base58.encode(struct.pack("<IQQ", 11, lamports, len(s)) + s + base58.decode(owner))


def ix(program_index: int, accounts: list[int], data: str, stack_height=None) -> dict:
    # key order as a node emits it for "json" encoding
    return {"accounts": accounts, "data": data, "programIdIndex": program_index, "stackHeight": stack_height}


def tx_result(
    account_keys: list[str],
    instructions: list[dict],
    *,
    num_signers: int = 1,
    inner: list[dict] | None = None,
    err=None,
    block_time=BLOCK_TIME,
    slot=SLOT,
    version="legacy",
    loaded=None,
    signatures=None,
) -> dict:
    """A getTransaction result (encoding "json") shaped as solana-validator returns it."""
    n = len(account_keys) + (len(loaded["writable"]) + len(loaded["readonly"]) if loaded else 0)
    meta = {
        "computeUnitsConsumed": 450,
        "err": err,
        "fee": 5000 * num_signers,
        "innerInstructions": inner or [],
        "loadedAddresses": loaded or {"readonly": [], "writable": []},
        "logMessages": [
            "Program 11111111111111111111111111111111 invoke [1]",
            "Program 11111111111111111111111111111111 success",
        ],
        "postBalances": [1_000_000_000] * n,
        "postTokenBalances": [],
        "preBalances": [1_000_000_000] * n,
        "preTokenBalances": [],
        "rewards": [],
        "status": {"Ok": None} if err is None else {"Err": err},
    }
    message = {
        "accountKeys": account_keys,
        "header": {
            "numReadonlySignedAccounts": 0,
            "numReadonlyUnsignedAccounts": 1,
            "numRequiredSignatures": num_signers,
        },
        "instructions": instructions,
        "recentBlockhash": BLOCKHASH,
    }
    if version != "legacy":
        message["addressTableLookups"] = (
            [{"accountKey": key(50), "readonlyIndexes": [0], "writableIndexes": [1]}] if loaded else []
        )
    return {
        "blockTime": block_time,
        "meta": meta,
        "slot": slot,
        "transaction": {"message": message, "signatures": signatures or [SIG] + [SIG2] * (num_signers - 1)},
        "version": version,
    }


def simple_payment(lamports: int = PRICE, **kw) -> dict:
    """wallet → treasury system transfer plus a memo, the way a client pays."""
    keys = [WALLET, TREASURY, SYSTEM_PROGRAM_ID, MEMO_PROGRAM]
    return tx_result(
        keys,
        [ix(2, [0, 1], transfer_data(lamports)), ix(3, [], base58.encode(b"si64 rent"))],
        **kw,
    )


def check(**kw) -> PaymentCheck:
    base = {
        "signature": SIG,
        "wallet": WALLET,
        "treasury": TREASURY,
        "min_lamports": PRICE,
        "max_age_seconds": 86_400,
        "now_s": NOW,
    }
    base.update(kw)
    return PaymentCheck(**base)


def status(level="confirmed", err=None, slot=SLOT) -> dict:
    return {
        "confirmationStatus": level,
        "confirmations": None if level == "finalized" else 0,
        "err": err,
        "slot": slot,
        "status": {"Ok": None} if err is None else {"Err": err},
    }


# --- codec sanity: the canned data is what a real client produces -----------------


def test_transfer_data_matches_known_encoding():
    # solders.system_program.transfer(lamports=10**9).data in base58
    assert transfer_data(10**9) == "3Bxs3zzLZLuLQEYX"


# --- genuine ------------------------------------------------------------------------


def test_genuine_payment():
    r = decide(check(), simple_payment(PRICE))
    assert r == PaymentResult(True, PRICE, None, BLOCK_TIME, SLOT)


def test_overpayment_reports_everything_received():
    r = decide(check(), simple_payment(PRICE * 3))
    assert r.ok and r.lamports_received == PRICE * 3


def test_multiple_transfers_are_summed():
    keys = [WALLET, TREASURY, SYSTEM_PROGRAM_ID]
    tx = tx_result(keys, [ix(2, [0, 1], transfer_data(400_000)), ix(2, [0, 1], transfer_data(600_000))])
    assert decide(check(), tx) == PaymentResult(True, 1_000_000, None, BLOCK_TIME, SLOT)


def test_inner_instruction_transfers_are_counted():
    # wallet calls some program which CPIs the system program: wallet → treasury
    router = key(60)
    keys = [WALLET, TREASURY, SYSTEM_PROGRAM_ID, router]
    tx = tx_result(
        keys,
        [ix(3, [0, 1, 2], base58.encode(b"\x07pay"), stack_height=None)],
        inner=[{"index": 0, "instructions": [ix(2, [0, 1], transfer_data(PRICE), stack_height=2)]}],
    )
    r = decide(check(), tx)
    assert r.ok and r.lamports_received == PRICE


def test_top_level_and_inner_transfers_are_summed():
    router = key(60)
    keys = [WALLET, TREASURY, SYSTEM_PROGRAM_ID, router]
    tx = tx_result(
        keys,
        [ix(2, [0, 1], transfer_data(300_000)), ix(3, [0, 1, 2], base58.encode(b"\x07pay"))],
        inner=[
            {
                "index": 1,
                "instructions": [
                    ix(2, [0, 1], transfer_data(300_000), stack_height=2),
                    ix(2, [0, 1], transfer_data(400_000), stack_height=3),
                ],
            }
        ],
    )
    assert decide(check(), tx).lamports_received == 1_000_000
    assert decide(check(min_lamports=1_000_001), tx).reason == "insufficient_amount"


def test_transfer_with_seed_counts_base_as_payer():
    derived = key(70)  # funding account derived from (wallet, seed, owner)
    keys = [WALLET, derived, TREASURY, SYSTEM_PROGRAM_ID]
    tx = tx_result(keys, [ix(3, [1, 0, 2], seed_transfer_data(PRICE))])
    r = decide(check(), tx)
    assert r.ok and r.lamports_received == PRICE


def test_transfer_data_with_trailing_bytes_is_still_a_transfer():
    # bincode in the system program allows trailing bytes: the chain moved the lamports
    keys = [WALLET, TREASURY, SYSTEM_PROGRAM_ID]
    tx = tx_result(keys, [ix(2, [0, 1], transfer_data(PRICE, trailing=b"\x00\x01"))])
    assert decide(check(), tx).ok


def test_v0_transaction_with_loaded_addresses():
    # treasury comes from an address lookup table (loaded writable), program is static
    keys = [WALLET, SYSTEM_PROGRAM_ID]
    loaded = {"writable": [TREASURY], "readonly": [MEMO_PROGRAM]}
    tx = tx_result(
        keys,
        [ix(1, [0, 2], transfer_data(PRICE)), ix(3, [], base58.encode(b"memo"))],
        version=0,
        loaded=loaded,
    )
    r = decide(check(), tx)
    assert r.ok and r.lamports_received == PRICE


def test_v0_program_id_from_loaded_readonly():
    keys = [WALLET, TREASURY]
    loaded = {"writable": [], "readonly": [SYSTEM_PROGRAM_ID]}
    tx = tx_result(keys, [ix(2, [0, 1], transfer_data(PRICE))], version=0, loaded=loaded)
    assert decide(check(), tx).ok


def test_finalized_transaction_is_accepted():
    assert decide(check(), simple_payment(), status("finalized")).ok


def test_age_exactly_at_limit_is_accepted():
    assert decide(check(max_age_seconds=30), simple_payment()).ok


# --- not_found / not_confirmed ------------------------------------------------------


def test_not_found_when_no_tx_and_no_status():
    assert decide(check(), None, None) == PaymentResult(False, 0, "not_found", None, None)


def test_not_confirmed_when_only_processed():
    r = decide(check(), None, status("processed"))
    assert r == PaymentResult(False, 0, "not_confirmed", None, SLOT)


def test_processed_with_error_is_not_confirmed_yet():
    r = decide(check(), None, status("processed", err={"InstructionError": [0, {"Custom": 1}]}))
    assert r.reason == "not_confirmed"


def test_confirmed_status_but_tx_not_readable_is_not_confirmed():
    assert decide(check(), None, status("confirmed")).reason == "not_confirmed"


def test_confirmed_status_with_error_is_failed_on_chain():
    r = decide(check(), None, status("confirmed", err={"InstructionError": [0, {"Custom": 1}]}))
    assert r.reason == "failed_on_chain"


def test_null_block_time_is_not_confirmed():
    r = decide(check(), simple_payment(block_time=None))
    assert r == PaymentResult(False, 0, "not_confirmed", None, SLOT)


# --- failed_on_chain ----------------------------------------------------------------


def test_failed_on_chain():
    err = {"InstructionError": [0, {"Custom": 1}]}  # system program: insufficient funds
    r = decide(check(), simple_payment(err=err))
    assert r == PaymentResult(False, 0, "failed_on_chain", BLOCK_TIME, SLOT)


def test_failed_on_chain_wins_over_other_problems():
    err = "InsufficientFundsForFee"
    assert decide(check(wallet=STRANGER), simple_payment(1, err=err)).reason == "failed_on_chain"


# --- wrong_payer --------------------------------------------------------------------


def test_wrong_payer_when_wallet_is_not_a_signer():
    # someone else's signed transfer to the treasury presented as the wallet's
    keys = [OTHER, TREASURY, SYSTEM_PROGRAM_ID]
    tx = tx_result(keys, [ix(2, [0, 1], transfer_data(PRICE))])
    assert decide(check(), tx).reason == "wrong_payer"


def test_wallet_present_but_not_signing_is_wrong_payer():
    # wallet appears as a (non-signer) account key: still wrong_payer
    keys = [OTHER, TREASURY, WALLET, SYSTEM_PROGRAM_ID]
    tx = tx_result(keys, [ix(3, [0, 1], transfer_data(PRICE))])
    assert decide(check(), tx).reason == "wrong_payer"


def test_wallet_as_treasury_recipient_is_not_signer():
    assert decide(check(wallet=TREASURY), simple_payment()).reason == "wrong_payer"


# --- wrong_recipient ----------------------------------------------------------------


def test_wrong_recipient():
    keys = [WALLET, STRANGER, SYSTEM_PROGRAM_ID]
    tx = tx_result(keys, [ix(2, [0, 1], transfer_data(PRICE))])
    assert decide(check(), tx) == PaymentResult(False, 0, "wrong_recipient", BLOCK_TIME, SLOT)


def test_memo_only_is_wrong_recipient():
    keys = [WALLET, MEMO_PROGRAM]
    tx = tx_result(keys, [ix(1, [], base58.encode(b"si64"))])
    assert decide(check(), tx).reason == "wrong_recipient"


def test_non_system_program_with_transfer_bytes_is_not_counted():
    # a token-program (or any program) instruction whose data happens to equal
    # a system Transfer must not count
    keys = [WALLET, TREASURY, TOKEN_PROGRAM]
    tx = tx_result(keys, [ix(2, [0, 1], transfer_data(PRICE))])
    assert decide(check(), tx).reason == "wrong_recipient"


def test_other_system_instructions_are_not_transfers():
    # CreateAccount (index 0) funding the treasury address is not a payment
    keys = [WALLET, TREASURY, SYSTEM_PROGRAM_ID]
    create = base58.encode(struct.pack("<IQQ", 0, PRICE, 0) + base58.decode(SYSTEM_PROGRAM_ID))
    tx = tx_result(keys, [ix(2, [0, 1], create)], num_signers=2)
    tx["transaction"]["signatures"] = [SIG, SIG2]
    # the treasury had to sign the CreateAccount: a transaction it signed is never a payment
    assert decide(check(), tx).reason == "wrong_payer"


def test_short_system_data_is_not_a_transfer():
    keys = [WALLET, TREASURY, SYSTEM_PROGRAM_ID]
    tx = tx_result(keys, [ix(2, [0, 1], base58.encode(struct.pack("<I", 2) + b"\x01"))])
    assert decide(check(), tx).reason == "wrong_recipient"


# --- insufficient_amount ------------------------------------------------------------


def test_insufficient_amount():
    r = decide(check(), simple_payment(PRICE - 1))
    assert r == PaymentResult(False, PRICE - 1, "insufficient_amount", BLOCK_TIME, SLOT)


def test_transfer_from_another_signer_is_not_counted():
    # wallet signs and pays half; a co-signer pays the other half
    keys = [WALLET, OTHER, TREASURY, SYSTEM_PROGRAM_ID]
    tx = tx_result(
        keys,
        [ix(3, [0, 2], transfer_data(PRICE // 2)), ix(3, [1, 2], transfer_data(PRICE // 2))],
        num_signers=2,
    )
    r = decide(check(), tx)
    assert r.reason == "insufficient_amount" and r.lamports_received == PRICE // 2
    # ... and the co-signer's payment is its own, complete
    assert decide(check(wallet=OTHER), tx).reason == "insufficient_amount"
    assert decide(check(wallet=OTHER, min_lamports=PRICE // 2), tx).ok


def test_wallet_signs_but_only_another_signer_pays_treasury():
    keys = [WALLET, OTHER, TREASURY, SYSTEM_PROGRAM_ID]
    tx = tx_result(keys, [ix(3, [1, 2], transfer_data(PRICE))], num_signers=2)
    r = decide(check(), tx)
    assert r.reason == "insufficient_amount" and r.lamports_received == 0


def test_wallet_transfers_elsewhere_are_not_counted():
    keys = [WALLET, TREASURY, STRANGER, SYSTEM_PROGRAM_ID]
    tx = tx_result(keys, [ix(3, [0, 1], transfer_data(10)), ix(3, [0, 2], transfer_data(PRICE))])
    r = decide(check(), tx)
    assert r.reason == "insufficient_amount" and r.lamports_received == 10


def test_treasury_self_transfer_is_not_a_payment():
    keys = [TREASURY, SYSTEM_PROGRAM_ID]
    tx = tx_result(keys, [ix(1, [0, 0], transfer_data(PRICE))])
    r = decide(check(wallet=TREASURY), tx)
    assert r.reason == "wrong_payer" and r.lamports_received == 0  # the treasury signed it


def test_insufficient_reported_before_too_old():
    r = decide(check(now_s=NOW + 10**6), simple_payment(PRICE - 1))
    assert r.reason == "insufficient_amount"


def test_balance_deltas_are_ignored():
    # meta claims the treasury gained a lot, but there is no transfer instruction
    keys = [WALLET, TREASURY, MEMO_PROGRAM]
    tx = tx_result(keys, [ix(2, [0, 1], base58.encode(b"x"))])
    tx["meta"]["postBalances"][1] += 10 * PRICE
    tx["meta"]["preBalances"][0] += 10 * PRICE
    assert decide(check(), tx).reason == "wrong_recipient"


# --- too_old ------------------------------------------------------------------------


def test_too_old():
    r = decide(check(max_age_seconds=29), simple_payment())
    assert r == PaymentResult(False, PRICE, "too_old", BLOCK_TIME, SLOT)


def test_too_old_with_clock_far_ahead():
    assert decide(check(now_s=NOW + 86_400 * 2), simple_payment()).reason == "too_old"


# --- malformed answers are not decisions --------------------------------------------


@pytest.mark.parametrize(
    "mutate",
    [
        lambda t: t.pop("meta"),
        lambda t: t.__setitem__("meta", None),
        lambda t: t["transaction"]["message"].pop("accountKeys"),
        lambda t: t["transaction"]["message"]["instructions"][0].__setitem__("programIdIndex", 99),
        lambda t: t["transaction"]["message"]["instructions"][0].__setitem__("data", "0OIl"),
        lambda t: t["transaction"].__setitem__("signatures", [SIG2]),
        lambda t: t.__setitem__("blockTime", "yesterday"),
    ],
)
def test_malformed_transaction_raises(mutate):
    tx = simple_payment()
    mutate(tx)
    with pytest.raises(MalformedRpcResult):
        decide(check(), tx)


def test_malformed_status_raises():
    with pytest.raises(MalformedRpcResult):
        decide(check(), None, ["confirmed"])


# --- adapter, with urlopen replaced -------------------------------------------------


class FakeResponse(io.BytesIO):
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class FakeNode:
    """Answers urlopen(req) like a JSON-RPC node; `answers` maps method → result or exception."""

    def __init__(self, answers: dict):
        self.answers = answers
        self.calls = []

    def __call__(self, req, timeout=None):
        doc = json.loads(req.data)
        self.calls.append((doc["method"], doc["params"]))
        answer = self.answers[doc["method"]]
        if isinstance(answer, BaseException):
            raise answer
        if callable(answer):
            return FakeResponse(answer(doc))
        return FakeResponse(json.dumps({"jsonrpc": "2.0", "result": answer, "id": doc["id"]}).encode())


@pytest.fixture
def node(monkeypatch):
    def install(answers):
        fake = FakeNode(answers)
        monkeypatch.setattr("urllib.request.urlopen", fake)
        return fake

    return install


def rpc() -> SolanaRpc:
    return SolanaRpc("http://rpc.invalid", timeout=1)


def test_adapter_genuine_uses_confirmed_json_v0(node):
    fake = node({"getTransaction": simple_payment()})
    assert rpc().verify_payment(check()).ok
    assert fake.calls == [
        ("getTransaction", [SIG, {"encoding": "json", "commitment": "confirmed", "maxSupportedTransactionVersion": 0}])
    ]


def test_adapter_asks_status_only_when_tx_is_null(node):
    fake = node({"getTransaction": None, "getSignatureStatuses": {"context": {"slot": 5}, "value": [None]}})
    assert rpc().verify_payment(check()).reason == "not_found"
    assert [c[0] for c in fake.calls] == ["getTransaction", "getSignatureStatuses"]
    assert fake.calls[1][1] == [[SIG], {"searchTransactionHistory": True}]


def test_adapter_processed_is_not_confirmed(node):
    node({"getTransaction": None, "getSignatureStatuses": {"context": {"slot": 5}, "value": [status("processed")]}})
    assert rpc().verify_payment(check()).reason == "not_confirmed"


@pytest.mark.parametrize(
    "answer",
    [
        urllib.error.URLError(ConnectionRefusedError(111, "Connection refused")),
        TimeoutError("timed out"),
        urllib.error.HTTPError("http://rpc.invalid", 503, "Service Unavailable", {}, None),
        urllib.error.HTTPError("http://rpc.invalid", 429, "Too Many Requests", {}, None),
        lambda doc: b"<html>bad gateway</html>",
        lambda doc: b"[]",
        lambda doc: json.dumps({"jsonrpc": "2.0", "id": doc["id"]}).encode(),
        lambda doc: json.dumps({"jsonrpc": "2.0", "result": None, "id": doc["id"] + 1}).encode(),
        lambda doc: json.dumps(
            {"jsonrpc": "2.0", "error": {"code": -32005, "message": "Node is behind"}, "id": doc["id"]}
        ).encode(),
        {"transaction": "garbage"},
    ],
)
def test_adapter_failures_are_unavailable_never_not_found(node, answer):
    node({"getTransaction": answer})
    with pytest.raises(Unavailable) as exc:
        rpc().verify_payment(check())
    assert exc.value.reason == "rpc" and status_of(exc.value) == (503, "unavailable")


def test_adapter_status_failure_is_unavailable(node):
    node({"getTransaction": None, "getSignatureStatuses": TimeoutError()})
    with pytest.raises(Unavailable):
        rpc().verify_payment(check())


def test_adapter_malformed_status_is_unavailable(node):
    node({"getTransaction": None, "getSignatureStatuses": {"value": []}})
    with pytest.raises(Unavailable):
        rpc().verify_payment(check())


@pytest.mark.parametrize(
    "bad", ["", "not-base58-0OIl", key(1), base58.encode(bytes(range(1, 66))), 64, None, SIG[:-1] + "0", "1" * 88]
)
def test_adapter_rejects_bad_signature_before_any_call(node, bad):
    fake = node({})
    with pytest.raises(InvalidRequest) as exc:
        rpc().verify_payment(check(signature=bad))
    assert exc.value.reason == "tx_signature"
    assert fake.calls == []


def test_health(node):
    node({"getHealth": "ok"})
    assert rpc().health() is True
    node({"getHealth": TimeoutError()})
    assert rpc().health() is False
    node(
        {
            "getHealth": lambda doc: json.dumps(
                {"jsonrpc": "2.0", "error": {"code": -32005, "message": "Node is unhealthy"}, "id": doc["id"]}
            ).encode()
        }
    )
    assert rpc().health() is False


def test_adapter_imports_nothing_heavy():
    import subprocess
    import sys

    code = (
        "import sys, chalicelib.adapters.solana_rpc, chalicelib.domain.payments;"
        "bad=[m for m in sys.modules if m.split('.')[0] in ('solana','solders','boto3','botocore','urllib','http')];"
        "print(bad); sys.exit(1 if bad else 0)"
    )
    import os

    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    assert subprocess.run([sys.executable, "-c", code], cwd=root).returncode == 0
