"""The chain fake: getTransaction-shaped transactions (`payment_tx`) served by an in-memory
node (`FakeRpc`, a `ports.PaymentVerifier`) that asks the node what the `SolanaRpc` adapter
asks it, so every payment decision is `chalicelib.domain.payments.decide`'s (tests/contract
runs both through the same cases). Imported through `tests.support.fakes`."""

from __future__ import annotations

import copy
import secrets
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from chalicelib.domain import keys as base58
from chalicelib.domain.errors import Unavailable
from chalicelib.domain.payments import (
    SYSTEM_PROGRAM_ID,
    PaymentCheck,
    PaymentResult,
    verify,
)

MEMO_PROGRAM_ID = "MemoSq4gqABAXKb96qnH8TysNcWxMyWCqXgDLGmfcHr"  # SPL Memo v2, on every cluster


def new_signature() -> str:
    return base58.encode(secrets.token_bytes(64))


def new_wallet() -> str:
    return base58.encode(secrets.token_bytes(32))


# --------------------------------------------------------------------------
# the chain: getTransaction-shaped transactions, decided by the real adapter


def _transfer_data(lamports: int) -> str:
    return base58.encode(struct.pack("<IQ", 2, lamports))  # System Program Transfer


def payment_tx(
    signature: str,
    *,
    signers: list[str],
    transfers: list[tuple[str, str, int]],
    memo: str | None = None,
    err: object = None,
    block_time: int | None,
    slot: int = 1,
    version: str | int = "legacy",
    extra_signatures: list[str] | None = None,
    references: list[str] | None = None,
) -> dict[str, Any]:
    """A getTransaction result (encoding "json") as a node returns it: `signers` sign (the
    first pays the fee), each (source, destination, lamports) is a System transfer, and
    `memo` (text) a Memo-program instruction signed by the first signer."""
    writable = list(signers)
    for source, destination, _ in transfers:
        for k in (source, destination):
            if k not in writable:
                writable.append(k)
    programs = [SYSTEM_PROGRAM_ID] + ([MEMO_PROGRAM_ID] if memo is not None else [])
    refs = list(references or [])  # Solana Pay references: read-only non-signers of the transfers
    keys = writable + refs + programs
    instructions: list[dict[str, Any]] = [
        {
            "accounts": [keys.index(s), keys.index(d), *(keys.index(r) for r in refs)],
            "data": _transfer_data(n),
            "programIdIndex": keys.index(SYSTEM_PROGRAM_ID),
            "stackHeight": None,
        }
        for s, d, n in transfers
    ]
    if memo is not None:
        instructions.append(
            {
                "accounts": [0],
                "data": base58.encode(memo.encode()),
                "programIdIndex": keys.index(MEMO_PROGRAM_ID),
                "stackHeight": None,
            }
        )
    n = len(keys)
    balances = [1_000_000_000] * n
    logs = []
    for ix in instructions:
        program = keys[ix["programIdIndex"]]
        logs.append(f"Program {program} invoke [1]")
        if err is not None:
            logs.append(f"Program {program} failed: custom program error: 0x1")
            break
        logs.append(f"Program {program} success")
    meta = {
        "computeUnitsConsumed": 300 * len(instructions),
        "err": err,
        "fee": 5000 * len(signers),
        "innerInstructions": [],
        "loadedAddresses": {"readonly": [], "writable": []},
        "logMessages": logs,
        "postBalances": balances,
        "postTokenBalances": [],
        "preBalances": list(balances),
        "preTokenBalances": [],
        "rewards": [],
        "status": {"Ok": None} if err is None else {"Err": err},
    }
    message = {
        "accountKeys": keys,
        "header": {
            "numReadonlySignedAccounts": 0,
            "numReadonlyUnsignedAccounts": len(refs) + len(programs),
            "numRequiredSignatures": len(signers),
        },
        "instructions": instructions,
        "recentBlockhash": base58.encode(secrets.token_bytes(32)),
    }
    if version != "legacy":
        message["addressTableLookups"] = []
    sigs = [signature] + (extra_signatures or [new_signature() for _ in signers[1:]])
    return {
        "blockTime": block_time,
        "meta": meta,
        "slot": slot,
        "transaction": {"message": message, "signatures": sigs},
        "version": version,
    }


@dataclass
class _Landed:
    tx: dict[str, Any]
    commitment: str = "confirmed"  # "processed": the node knows the signature, not yet at confirmed


class FakeRpc:
    """`ports.PaymentVerifier` over an in-memory JSON-RPC node: the adapter's two reads
    (getTransaction at `confirmed`, then getSignatureStatuses when it is unknown), decided by
    `domain.payments.decide`.

    `pay(wallet, lamports)` lands a genuine payment (wallet → treasury, signed by the
    wallet) and returns its signature; `land(tx)` lands any transaction built with
    `payment_tx`. `down = True` or `fail_next_calls = n` make the node unreachable.
    `calls` counts verify_payment calls; `requests` lists the JSON-RPC methods asked.
    """

    def __init__(self, treasury: str | None = None, clock: Callable[[], int] | None = None) -> None:
        self.treasury = treasury
        self.clock = clock
        self.landed: dict[str, _Landed] = {}
        self.slot = 1000
        self.down = False
        self.fail_next_calls = 0
        self.calls = 0
        self.requests: list[str] = []
        self.on_land: list[Callable[[str], None]] = []  # called with each landed signature

    # -- building the chain ----------------------------------------------------
    def now_s(self) -> int:
        return (self.clock() // 1000) if self.clock is not None else int(time.time())

    def land(self, tx: dict[str, Any], commitment: str = "confirmed") -> str:
        self.slot += 1
        tx = copy.deepcopy(tx)
        tx["slot"] = self.slot
        sig: str = tx["transaction"]["signatures"][0]
        self.landed[sig] = _Landed(tx, commitment)
        for hook in self.on_land:
            hook(sig)
        return sig

    def pay(
        self,
        wallet: str,
        lamports: int,
        *,
        to: str | None = None,
        memo: str | None = None,
        signers: list[str] | None = None,
        err: object = None,
        block_time: int | None = None,
        commitment: str = "confirmed",
        references: list[str] | None = None,
    ) -> str:
        to = to or self.treasury
        if not to:
            raise ValueError("FakeRpc needs a treasury (FakeRpc(treasury=...)) or pay(..., to=...)")
        tx = payment_tx(
            new_signature(),
            signers=signers or [wallet],
            transfers=[(wallet, to, lamports)],
            memo=memo,
            err=err,
            block_time=self.now_s() if block_time is None else block_time,
            references=references,
        )
        return self.land(tx, commitment)

    # -- the node ----------------------------------------------------------------
    def call(self, method: str, params: list[Any] | None = None) -> Any:
        self.requests.append(method)
        if self.down or self.fail_next_calls > 0:
            self.fail_next_calls = max(0, self.fail_next_calls - 1)
            raise Unavailable(f"Solana RPC unreachable ({method})", reason="rpc")
        params = params or []
        if method == "getHealth":
            return "ok"
        if method == "getTransaction":
            sig, opts = params
            if opts.get("encoding") != "json" or opts.get("maxSupportedTransactionVersion") != 0:
                raise Unavailable(f"fake node: unsupported getTransaction options {opts}", reason="rpc")
            landed = self.landed.get(sig)
            if landed is None or (landed.commitment == "processed" and opts.get("commitment") != "processed"):
                return None
            return copy.deepcopy(landed.tx)
        if method == "getSignatureStatuses":
            (sigs, _opts) = params
            return {"context": {"slot": self.slot}, "value": [self._status(s) for s in sigs]}
        raise Unavailable(f"fake node: no method {method}", reason="rpc")

    def _status(self, sig: str) -> dict[str, Any] | None:
        landed = self.landed.get(sig)
        if landed is None:
            return None
        err = landed.tx["meta"]["err"]
        return {
            "confirmationStatus": landed.commitment,
            "confirmations": 0,
            "err": err,
            "slot": landed.tx["slot"],
            "status": {"Ok": None} if err is None else {"Err": err},
        }

    # -- the port (the reads and errors of adapters/solana_rpc.py) --------------------
    def get_transaction(self, signature: str, commitment: str = "confirmed") -> dict[str, Any] | None:
        opts = {"encoding": "json", "commitment": commitment, "maxSupportedTransactionVersion": 0}
        tx: dict[str, Any] | None = self.call("getTransaction", [signature, opts])
        return tx

    def get_signature_status(self, signature: str) -> dict[str, Any] | None:
        status: dict[str, Any] | None = self.call(
            "getSignatureStatuses", [[signature], {"searchTransactionHistory": True}]
        )["value"][0]
        return status

    def verify_payment(self, check: PaymentCheck) -> PaymentResult:
        self.calls += 1
        return verify(check, self.get_transaction, self.get_signature_status)

    def health(self) -> bool:
        try:
            return bool(self.call("getHealth") == "ok")
        except Unavailable:
            return False


# --------------------------------------------------------------------------
# refunds: the treasury's signer and the chain that lands refund transfers

import hashlib as _hashlib  # noqa: E402
import json as _json  # noqa: E402
import threading  # noqa: E402

from chalicelib.domain import refunds as _R  # noqa: E402
from chalicelib.domain.signing import refund_memo as _refund_memo  # noqa: E402

REFUND_FEE = 5000
BLOCKHASH_VALIDITY = 150


class FakeTreasurySigner:
    """`ports.TreasurySigner`: deterministic 64-byte signatures (sha512 of a secret and the
    message), like ed25519 the same message always gets the same signature."""

    def __init__(self, pubkey: str | None = None) -> None:
        self._secret = secrets.token_bytes(32)
        self._pubkey = pubkey or new_wallet()
        self.signed = 0

    @property
    def pubkey(self) -> str:
        return self._pubkey

    def sign(self, message: bytes) -> bytes:
        self.signed += 1
        return _hashlib.sha512(self._secret + bytes(message)).digest()

    def __repr__(self) -> str:
        return f"FakeTreasurySigner(pubkey={self._pubkey})"


@dataclass
class RefundTransfer:
    signature: str
    source: str
    destination: str
    lamports: int
    memo: str
    fee: int
    err: object = None


class FakeRefundChain:
    """`ports.RefundChain` over an in-memory ledger of balances, with the rules the real
    adapter relies on: a blockhash is valid up to its last valid block height; the same
    bytes land at most once (a resend answers the same signature); preflight refuses a
    recipient in `refused` (RefundRefused) and an unknown/expired blockhash
    (Unavailable "blockhash"); an empty treasury is Unavailable "treasury_funds".

    Controls: `down` / `fail_next_calls` (Unavailable "rpc"), `drop_sends` (the next N
    sends are accepted but never land, like a dropped transaction), `advance(blocks)`,
    `pending` (landed transactions show at "processed" only), `land_with_error[wallet]`
    (the transfer lands but fails, charging the fee), `fee_unreadable`.
    `transfers` lists what landed; `sent` every accepted send."""

    def __init__(self, signer: FakeTreasurySigner | None = None, treasury_lamports: int = 1_000 * 10**9) -> None:
        self.signer = signer or FakeTreasurySigner()
        self.height = 1_000
        self.balances: dict[str, int] = {self.signer.pubkey: treasury_lamports}
        self.blockhashes: dict[str, int] = {}
        self.landed: dict[str, RefundTransfer] = {}
        self.transfers: list[RefundTransfer] = []
        self.sent: list[str] = []
        self.refused: dict[str, str] = {}
        self.land_with_error: dict[str, object] = {}
        self.down = False
        self.fail_next_calls = 0
        self.drop_sends = 0
        self.pending = False
        self.fee_unreadable = False
        self.calls: list[str] = []
        self.on_call: dict[str, Callable[[], None]] = {}  # run once before the next call of a method
        self.on_land: list[Callable[[RefundTransfer], None]] = []  # called with each transfer that lands
        self.lock = threading.RLock()  # one node: concurrent sends land at most once

    @property
    def treasury(self) -> str:
        return self.signer.pubkey

    def advance(self, blocks: int = BLOCKHASH_VALIDITY + 1) -> int:
        self.height += blocks
        return self.height

    def _enter(self, method: str) -> None:
        self.calls.append(method)
        hook = self.on_call.pop(method, None)
        if hook is not None:
            hook()
        if self.down or self.fail_next_calls > 0:
            self.fail_next_calls = max(0, self.fail_next_calls - 1)
            raise Unavailable(f"Solana RPC unreachable ({method})", reason="rpc")

    # -- the port ---------------------------------------------------------------
    def latest_blockhash(self) -> _R.Blockhash:
        self._enter("latest_blockhash")
        bh = base58.encode(_hashlib.sha256(f"bh{self.height}".encode()).digest())
        self.blockhashes[bh] = self.height + BLOCKHASH_VALIDITY
        return _R.Blockhash(bh, self.blockhashes[bh])

    def prepare(self, refund: _R.Refund, blockhash: _R.Blockhash) -> _R.PreparedTransfer:
        if refund.lamports <= 0:
            raise ValueError("nothing to refund")
        if not base58.is_pubkey(refund.wallet):
            raise _R.RefundRefused("InvalidRecipient: the wallet is not a public key")
        if refund.wallet == self.treasury:
            raise _R.RefundRefused("InvalidRecipient: the wallet is the treasury")
        body = {
            "from": self.treasury,
            "to": refund.wallet,
            "lamports": refund.lamports,
            "memo": _refund_memo(refund.refund_id),
            "blockhash": blockhash.blockhash,
        }
        message = _json.dumps(body, sort_keys=True).encode()
        sig = base58.encode(self.signer.sign(message))
        raw = _json.dumps({"signature": sig, **body}, sort_keys=True).encode()
        return _R.PreparedTransfer(sig, blockhash.last_valid_block_height, raw)

    def send(self, raw: bytes) -> str:
        self._enter("send")
        with self.lock:
            return self._send(_json.loads(raw))

    def _send(self, tx: dict[str, Any]) -> str:
        sig: str = tx["signature"]
        if sig in self.landed:
            return sig  # AlreadyProcessed
        lvbh = self.blockhashes.get(tx["blockhash"])
        if lvbh is None or self.height > lvbh:
            raise Unavailable("the node does not know the refund's blockhash", reason="blockhash")
        if tx["to"] in self.refused:
            raise _R.RefundRefused(self.refused[tx["to"]])
        if self.balances.get(self.treasury, 0) < tx["lamports"] + REFUND_FEE:
            raise Unavailable("the treasury cannot pay the refund", reason="treasury_funds")
        self.sent.append(sig)
        if self.drop_sends > 0:
            self.drop_sends -= 1
            return sig
        err = self.land_with_error.get(tx["to"])
        t = RefundTransfer(sig, tx["from"], tx["to"], tx["lamports"], tx["memo"], REFUND_FEE, err)
        self.balances[self.treasury] -= REFUND_FEE
        if err is None:
            self.balances[self.treasury] -= tx["lamports"]
            self.balances[tx["to"]] = self.balances.get(tx["to"], 0) + tx["lamports"]
        self.landed[sig] = t
        self.transfers.append(t)
        self.height += 1
        for hook in self.on_land:
            hook(t)
        return sig

    def block_height(self) -> int:
        self._enter("block_height")
        return self.height

    def status(self, signature: str) -> _R.ChainStatus:
        height = self.block_height()
        self._enter("status")
        t = self.landed.get(signature)
        if t is None:
            return _R.ChainStatus(None, height)
        level = "processed" if self.pending else "finalized"
        return _R.ChainStatus(
            {
                "confirmationStatus": level,
                "confirmations": None,
                "err": t.err,
                "slot": height,
                "status": {"Ok": None} if t.err is None else {"Err": t.err},
            },
            height,
        )

    def fee(self, signature: str) -> int | None:
        self._enter("fee")
        t = self.landed.get(signature)
        if t is None or self.fee_unreadable or self.pending:
            return None
        return t.fee

    # -- inspection ---------------------------------------------------------------
    def transfers_to(self, wallet: str) -> list[RefundTransfer]:
        return [t for t in self.transfers if t.destination == wallet and t.err is None]
