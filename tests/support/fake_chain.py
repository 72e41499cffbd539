"""The chain fake: getTransaction-shaped transactions (`payment_tx`) served by an in-memory
node under the real `SolanaRpc` adapter (`FakeRpc`), so every payment decision is
`chalicelib.domain.payments.decide`'s. Imported through `tests.support.fakes`."""
from __future__ import annotations

import copy
import secrets
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass

from chalicelib.adapters.solana_rpc import SolanaRpc
from chalicelib.domain import keys as base58
from chalicelib.domain.errors import Unavailable
from chalicelib.domain.payments import SYSTEM_PROGRAM_ID, PaymentCheck, PaymentResult

MEMO_PROGRAM_ID = "MemoSq4gqABAXKb96qnH8TysNcWxMyWCqXgDLGmfcHr"  # SPL Memo v2, on every cluster


def new_signature() -> str:
    return base58.encode(secrets.token_bytes(64))


def new_wallet() -> str:
    return base58.encode(secrets.token_bytes(32))


# --------------------------------------------------------------------------
# the chain: getTransaction-shaped transactions, decided by the real adapter


def _transfer_data(lamports: int) -> str:
    return base58.encode(struct.pack("<IQ", 2, lamports))  # System Program Transfer


def payment_tx(signature: str, *, signers: list[str], transfers: list[tuple[str, str, int]],
               memo: str | None = None, err=None, block_time: int | None, slot: int = 1,
               version="legacy", extra_signatures: list[str] | None = None) -> dict:
    """A getTransaction result (encoding "json") as a node returns it: `signers` sign (the
    first pays the fee), each (source, destination, lamports) is a System transfer, and
    `memo` (text) a Memo-program instruction signed by the first signer."""
    writable = list(signers)
    for source, destination, _ in transfers:
        for k in (source, destination):
            if k not in writable:
                writable.append(k)
    programs = [SYSTEM_PROGRAM_ID] + ([MEMO_PROGRAM_ID] if memo is not None else [])
    keys = writable + programs
    instructions = [{"accounts": [keys.index(s), keys.index(d)], "data": _transfer_data(n),
                     "programIdIndex": keys.index(SYSTEM_PROGRAM_ID), "stackHeight": None}
                    for s, d, n in transfers]
    if memo is not None:
        instructions.append({"accounts": [0], "data": base58.encode(memo.encode()),
                             "programIdIndex": keys.index(MEMO_PROGRAM_ID), "stackHeight": None})
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
        "computeUnitsConsumed": 300 * len(instructions), "err": err, "fee": 5000 * len(signers),
        "innerInstructions": [], "loadedAddresses": {"readonly": [], "writable": []},
        "logMessages": logs, "postBalances": balances, "postTokenBalances": [], "preBalances": list(balances),
        "preTokenBalances": [], "rewards": [], "status": {"Ok": None} if err is None else {"Err": err},
    }
    message = {
        "accountKeys": keys,
        "header": {"numReadonlySignedAccounts": 0, "numReadonlyUnsignedAccounts": len(programs),
                   "numRequiredSignatures": len(signers)},
        "instructions": instructions, "recentBlockhash": base58.encode(secrets.token_bytes(32)),
    }
    if version != "legacy":
        message["addressTableLookups"] = []
    sigs = [signature] + (extra_signatures or [new_signature() for _ in signers[1:]])
    return {"blockTime": block_time, "meta": meta, "slot": slot,
            "transaction": {"message": message, "signatures": sigs}, "version": version}


@dataclass
class _Landed:
    tx: dict
    commitment: str = "confirmed"  # "processed": the node knows the signature, not yet at confirmed


class FakeRpc(SolanaRpc):
    """The real `SolanaRpc` adapter over an in-memory node instead of HTTP.

    `pay(wallet, lamports)` lands a genuine payment (wallet → treasury, signed by the
    wallet) and returns its signature; `land(tx)` lands any transaction built with
    `payment_tx`. `down = True` or `fail_next_calls = n` make the node unreachable.
    `calls` counts verify_payment calls; `requests` lists the JSON-RPC methods asked.
    """

    def __init__(self, treasury: str | None = None, clock: Callable[[], int] | None = None):
        super().__init__("http://fake-rpc.invalid", timeout=1)
        self.treasury = treasury
        self.clock = clock
        self.landed: dict[str, _Landed] = {}
        self.slot = 1000
        self.down = False
        self.fail_next_calls = 0
        self.calls = 0
        self.requests: list[str] = []

    # -- building the chain ----------------------------------------------------
    def now_s(self) -> int:
        return (self.clock() // 1000) if self.clock is not None else int(time.time())

    def land(self, tx: dict, commitment: str = "confirmed") -> str:
        self.slot += 1
        tx = copy.deepcopy(tx)
        tx["slot"] = self.slot
        sig = tx["transaction"]["signatures"][0]
        self.landed[sig] = _Landed(tx, commitment)
        return sig

    def pay(self, wallet: str, lamports: int, *, to: str | None = None, memo: str | None = None,
            signers: list[str] | None = None, err=None, block_time: int | None = None,
            commitment: str = "confirmed") -> str:
        to = to or self.treasury
        if not to:
            raise ValueError("FakeRpc needs a treasury (FakeRpc(treasury=...)) or pay(..., to=...)")
        tx = payment_tx(new_signature(), signers=signers or [wallet], transfers=[(wallet, to, lamports)],
                        memo=memo, err=err, block_time=self.now_s() if block_time is None else block_time)
        return self.land(tx, commitment)

    # -- the node ----------------------------------------------------------------
    def call(self, method: str, params: list | None = None):
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

    def _status(self, sig: str) -> dict | None:
        landed = self.landed.get(sig)
        if landed is None:
            return None
        err = landed.tx["meta"]["err"]
        return {"confirmationStatus": landed.commitment, "confirmations": 0, "err": err,
                "slot": landed.tx["slot"], "status": {"Ok": None} if err is None else {"Err": err}}

    def verify_payment(self, check: PaymentCheck) -> PaymentResult:
        self.calls += 1
        return super().verify_payment(check)
