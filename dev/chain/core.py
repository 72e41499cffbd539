"""The ledger behind the local chain: LiteSVM plus what a real node keeps that LiteSVM does not.

LiteSVM executes transactions for real (system program, memo program, fees,
signature checks) but has no notion of slots, block times, recent blockhashes
or pre/post balances. This module supplies them:

* **Slots** advance with wall time, one every ``slot_seconds`` (400 ms), starting
  at 1. Every slot is a block: block height == slot (no skipped slots).
  ``advance_slots(n)`` jumps ahead (tests use it to expire blockhashes).
* **Blockhashes**: slot ``s`` has a deterministic blockhash derived from a
  per-process seed. A blockhash issued at height ``h`` is valid while the current
  height is ``<= h + 150`` (``MAX_PROCESSING_AGE``), exactly the
  ``lastValidBlockHeight`` that ``getLatestBlockhash`` returns. LiteSVM's own
  blockhash check is switched off and this module checks validity itself.
* **Commitment** depends on the timing profile (``TIMING``):

  - ``instant`` (the default): a transaction that lands is ``finalized`` at
    once (``confirmations: null``); a client that waits for ``finalized``
    (solana-py's and web3.js's default) is not kept waiting.
  - ``real`` (``SI64_CHAIN_TIMING=real``): a transaction that lands in slot
    ``s`` is ``processed`` until slot ``s + 1``, ``confirmed`` from then and
    ``finalized`` from slot ``s + 32`` (about 13 s at 400 ms slots), as on a
    cluster where the supermajority votes at once and roots 32 slots later.
    Statuses, ``getTransaction`` and ``getSignaturesForAddress`` honour the
    requested commitment (default ``finalized``: a fresh transaction is not
    there yet); ``getSlot``/``getBlockHeight``/``getLatestBlockhash`` answer the
    slot of that commitment, and ``signatureSubscribe`` notifies once its
    commitment is reached. There is still one bank: nothing is rolled back,
    and balances and accounts show the processed state at every commitment.

  Either profile can drop a share of sent transactions (``drop_rate``, as a
  congested leader does): preflight runs, the signature is returned and the
  transaction never lands. Airdrops are never dropped.
* **Failures**: with preflight, a failing transaction is refused and nothing is
  charged. Without preflight, a transaction that fails while executing
  (``InstructionError``, ``InsufficientFundsForRent`` …) lands with ``meta.err``
  and pays its fee; one that cannot even be loaded (unknown/expired blockhash,
  fee payer missing or unable to pay, bad signature, duplicate) is dropped:
  the signature is returned and never gets a status, as on a real cluster.
* **Duplicates**: resending a processed transaction with preflight gives the
  real node's error ``Transaction simulation failed: This transaction has
  already been processed`` (``err: "AlreadyProcessed"``); with
  ``skipPreflight`` the signature is returned again and nothing happens.
* **Test controls** (``dev/chain/faults.py``, ``Chain.faults``): dropped
  sends (preflight runs, the signature is returned, the transaction never
  lands) and refused accounts (a transaction writing to one fails with
  ``InsufficientFundsForRent`` for it: refused at preflight, dropped without
  preflight).

All access to LiteSVM goes through ``Chain.lock`` (LiteSVM is not thread-safe).
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from solders.account import Account
from solders.hash import Hash
from solders.keypair import Keypair
from solders.litesvm import Clock, LiteSVM
from solders.message import Message, MessageV0
from solders.pubkey import Pubkey
from solders.rpc.responses import RpcSimulateTransactionResult
from solders.system_program import ID as SYSTEM_PROGRAM_ID
from solders.system_program import TransferParams, transfer
from solders.transaction import Transaction, VersionedTransaction
from solders.transaction_metadata import FailedTransactionMetadata
from solders.transaction_status import TransactionErrorFieldless

from .faults import Faults

SLOT_SECONDS = 0.4
# timing profile -> (slots until confirmed, slots until finalized)
TIMING = {"instant": (0, 0), "real": (1, 32)}
COMMITMENTS = ("processed", "confirmed", "finalized")
MAX_PROCESSING_AGE = 150
LAMPORTS_PER_SIGNATURE = 5000
FAUCET_LAMPORTS = 100_000_000 * 10**9  # 100 M SOL
MEMO_PROGRAM_IDS = {
    "MemoSq4gqABAXKb96qnH8TysNcWxMyWCqXgDLGmfcHr",
    "Memo1UhkJRfHyvLMcVucJwxXeuD728EqVDDwQDxFMNo",
}
SOLANA_CORE_VERSION = "2.2.0"
FEATURE_SET = 3294202862


class RpcError(Exception):
    """A JSON-RPC error object: ``{"code", "message", "data"?}``."""

    def __init__(self, code: int, message: str, data: Any = None):
        super().__init__(message)
        self.code = code
        self.message = message
        self.data = data

    def to_json(self) -> dict:
        out: dict = {"code": self.code, "message": self.message}
        if self.data is not None:
            out["data"] = self.data
        return out


def invalid_params(message: str) -> RpcError:
    return RpcError(-32602, message)


def error_json(err) -> Any:
    """A solders TransactionError as the node's JSON (``"BlockhashNotFound"``,
    ``{"InstructionError": [0, {"Custom": 1}]}``)."""
    if err is None:
        return None
    return json.loads(RpcSimulateTransactionResult(err=err, logs=[]).to_json())["err"]


_FIELDLESS_TEXT = {
    "AccountInUse": "Account in use",
    "AccountLoadedTwice": "Account loaded twice",
    "AccountNotFound": "Attempt to debit an account but found no record of a prior credit.",
    "ProgramAccountNotFound": "Attempt to load a program that does not exist",
    "InsufficientFundsForFee": "Insufficient funds for fee",
    "InvalidAccountForFee": "This account may not be used to pay transaction fees",
    "AlreadyProcessed": "This transaction has already been processed",
    "BlockhashNotFound": "Blockhash not found",
    "CallChainTooDeep": "Loader call chain is too deep",
    "MissingSignatureForFee": "Transaction requires a fee but has no signature present",
    "InvalidAccountIndex": "Transaction contains an invalid account reference",
    "SignatureFailure": "Transaction did not pass signature verification",
    "InvalidProgramForExecution": "This program may not be used for executing instructions",
    "SanitizeFailure": "Transaction failed to sanitize accounts offsets correctly",
    "ClusterMaintenance": "Transactions are currently disabled due to cluster maintenance",
    "UnsupportedVersion": "Transaction version is unsupported",
    "InvalidWritableAccount": "Transaction loads a writable account that cannot be written",
}


def _instruction_error_text(ierr: Any) -> str:
    if isinstance(ierr, dict) and "Custom" in ierr:
        return f"custom program error: {hex(ierr['Custom'])}"
    if isinstance(ierr, str):
        # CamelCase → words, close to the node's Display strings
        words = "".join(" " + c.lower() if c.isupper() else c for c in ierr).strip()
        return words
    return json.dumps(ierr)


def describe_error(err_json: Any) -> str:
    """Human text of a transaction error, as the node's ``Display`` writes it."""
    if isinstance(err_json, str):
        return _FIELDLESS_TEXT.get(err_json, err_json)
    if isinstance(err_json, dict):
        if "InstructionError" in err_json:
            index, ierr = err_json["InstructionError"]
            return f"Error processing Instruction {index}: {_instruction_error_text(ierr)}"
        if "InsufficientFundsForRent" in err_json:
            idx = err_json["InsufficientFundsForRent"].get("account_index")
            return f"Transaction results in an account ({idx}) with insufficient funds for rent"
        if "DuplicateInstruction" in err_json:
            return (
                f"Transaction contains a duplicate instruction ({err_json['DuplicateInstruction']}) that is not allowed"
            )
    return json.dumps(err_json)


def account_keys(tx: VersionedTransaction) -> list[Pubkey]:
    """The static account keys of a transaction (address-table lookups are not resolved)."""
    return list(tx.message.account_keys)


def is_writable(msg: Message | MessageV0, index: int) -> bool:
    header = msg.header
    nsig = header.num_required_signatures
    nkeys = len(msg.account_keys)
    if index < nsig:
        return index < nsig - header.num_readonly_signed_accounts
    return index < nkeys - header.num_readonly_unsigned_accounts


def is_signer(msg: Message | MessageV0, index: int) -> bool:
    return index < msg.header.num_required_signatures


def extract_memo(tx: VersionedTransaction) -> str | None:
    """Memos of the transaction as ``getSignaturesForAddress`` shows them: ``"[len] text"``."""
    msg = tx.message
    keys = [str(k) for k in msg.account_keys]
    memos = []
    for ix in msg.instructions:
        if keys[ix.program_id_index] in MEMO_PROGRAM_IDS:
            data = bytes(ix.data)
            text = data.decode("utf-8", errors="replace")
            memos.append(f"[{len(data)}] {text}")
    return "; ".join(memos) if memos else None


@dataclass
class TxRecord:
    signature: str
    slot: int
    block_time: int
    tx: VersionedTransaction
    err: Any  # JSON form, None when the transaction succeeded
    fee: int
    pre_balances: list[int]
    post_balances: list[int]
    logs: list[str]
    inner_instructions: list[list[tuple[Any, int | None]]]  # per instruction: (CompiledInstruction, stack height)
    compute_units: int
    return_data: dict | None
    memo: str | None = None
    keys: list[str] = field(default_factory=list)


def _return_data_json(rd) -> dict | None:
    if rd is None:
        return None
    data = bytes(rd.data)
    if not data:
        return None
    import base64

    return {"programId": str(rd.program_id), "data": [base64.b64encode(data).decode(), "base64"]}


def _inner(meta) -> list[list[tuple[Any, int | None]]]:
    out = []
    for per_ix in meta.inner_instructions():
        out.append([(inner.instruction(), inner.stack_height()) for inner in per_ix])
    return out


class Chain:
    """Thread-safe LiteSVM ledger with slots, blockhashes and transaction records."""

    def __init__(
        self,
        slot_seconds: float = SLOT_SECONDS,
        time_fn: Callable[[], float] = time.time,
        monotonic_fn: Callable[[], float] = time.monotonic,
        timing: str = "instant",
        drop_rate: float = 0.0,
        seed: int | None = None,
    ):
        if timing not in TIMING:
            raise ValueError(f"unknown timing {timing!r} (one of {', '.join(TIMING)})")
        if not 0.0 <= drop_rate < 1.0:
            raise ValueError("drop_rate must be in [0, 1)")
        self.lock = threading.RLock()
        self.slot_seconds = slot_seconds
        self.timing = timing
        self.confirm_slots, self.finalize_slots = TIMING[timing]
        self.drop_rate = drop_rate
        self._rng = random.Random(seed)
        self._time = time_fn  # Unix time: blockTime, the Clock sysvar
        self._mono = monotonic_fn  # slots never go back, whatever the wall clock does
        self._t0 = time_fn()
        self._m0 = monotonic_fn()
        self._slot_offset = 0
        self._seed = os.urandom(16)
        self._svm = LiteSVM().with_blockhash_check(False)
        self._hash_slot: dict[str, int] = {}
        self._slot_hash: dict[int, str] = {}
        self._records: dict[str, TxRecord] = {}
        self._by_address: dict[str, list[str]] = defaultdict(list)
        self._listeners: list[Callable[[TxRecord], None]] = []
        self._synced_slot: int | None = None
        self.faults = Faults(monotonic_fn)
        self.genesis_hash = str(Hash(hashlib.sha256(b"genesis" + self._seed).digest()))
        self.faucet = Keypair()
        self._svm.set_account(
            self.faucet.pubkey(),
            Account(lamports=FAUCET_LAMPORTS, data=b"", owner=SYSTEM_PROGRAM_ID),
        )

    # ----------------------------------------------------------------- time
    def now(self) -> float:
        return self._time()

    def slot(self) -> int:
        return 1 + int((self._mono() - self._m0) / self.slot_seconds) + self._slot_offset

    def block_height(self) -> int:
        return self.slot()

    def slot_at(self, commitment: str | None) -> int:
        """The newest slot at ``commitment`` (``None``: finalized, the node's default)."""
        lag = {"processed": 0, "confirmed": self.confirm_slots}.get(commitment or "finalized", self.finalize_slots)
        return max(1, self.slot() - lag)

    def commitment_of(self, record: TxRecord) -> str:
        """How far the transaction of ``record`` has come: processed, confirmed or finalized."""
        age = self.slot() - record.slot
        if age >= self.finalize_slots:
            return "finalized"
        return "confirmed" if age >= self.confirm_slots else "processed"

    def reached(self, record: TxRecord, commitment: str | None) -> bool:
        """Whether ``record`` is visible at ``commitment`` (``None``: finalized)."""
        want = commitment if commitment in COMMITMENTS else "finalized"
        return COMMITMENTS.index(self.commitment_of(record)) >= COMMITMENTS.index(want)

    def advance_slots(self, n: int) -> int:
        """Jump ``n`` slots ahead (blockhashes older than 150 blocks expire)."""
        if n < 0:
            raise ValueError("slots only move forward")
        with self.lock:
            self._slot_offset += int(n)
            return self.slot()

    def advance_past_block_height(self, height: int) -> int:
        """Advance until the block height exceeds ``height`` (a ``lastValidBlockHeight``:
        every transaction with that blockhash is then expired); returns the new height."""
        with self.lock:
            current = self.block_height()
            if current <= height:
                self._slot_offset += height + 1 - current
            return self.block_height()

    def block_time_of_slot(self, slot: int) -> int:
        return int(self._t0 + (slot - 1 - self._slot_offset) * self.slot_seconds)

    # ------------------------------------------------------------ blockhash
    def blockhash_at(self, slot: int) -> str:
        h = self._slot_hash.get(slot)
        if h is None:
            h = str(Hash(hashlib.sha256(self._seed + slot.to_bytes(8, "little")).digest()))
            self._slot_hash[slot] = h
            self._hash_slot[h] = slot
            if len(self._slot_hash) > 4 * MAX_PROCESSING_AGE:
                self._prune(slot)
        return h

    def _prune(self, current: int) -> None:
        for s in [s for s in self._slot_hash if s < current - 2 * MAX_PROCESSING_AGE]:
            self._hash_slot.pop(self._slot_hash.pop(s), None)

    def latest_blockhash(self, commitment: str | None = "processed") -> tuple[str, int, int]:
        """(blockhash, lastValidBlockHeight, context slot) of the newest block at ``commitment``."""
        with self.lock:
            slot = self.slot_at(commitment)
            return self.blockhash_at(slot), slot + MAX_PROCESSING_AGE, slot

    def is_blockhash_valid(self, blockhash: str) -> bool:
        with self.lock:
            current = self.slot()
            slot = self._hash_slot.get(blockhash)
            if slot is None:
                for s in range(max(1, current - MAX_PROCESSING_AGE), current + 1):
                    self.blockhash_at(s)
                slot = self._hash_slot.get(blockhash)
            return slot is not None and slot <= current <= slot + MAX_PROCESSING_AGE

    # ------------------------------------------------------------- accounts
    def get_account(self, pubkey: Pubkey) -> Account | None:
        with self.lock:
            acc = self._svm.get_account(pubkey)
        if acc is None or acc.lamports == 0:
            return None
        return acc

    def get_balance(self, pubkey: Pubkey) -> int:
        with self.lock:
            return self._svm.get_balance(pubkey) or 0

    def minimum_balance_for_rent_exemption(self, data_len: int) -> int:
        with self.lock:
            return self._svm.minimum_balance_for_rent_exemption(data_len)

    # --------------------------------------------------------- transactions
    def add_listener(self, fn: Callable[[TxRecord], None]) -> None:
        self._listeners.append(fn)

    def remove_listener(self, fn: Callable[[TxRecord], None]) -> None:
        try:
            self._listeners.remove(fn)
        except ValueError:
            pass

    def get_record(self, signature: str) -> TxRecord | None:
        with self.lock:
            return self._records.get(signature)

    def signatures_for_address(self, address: str) -> list[TxRecord]:
        """Records touching ``address``, newest first."""
        with self.lock:
            return [self._records[s] for s in reversed(self._by_address.get(address, []))]

    def transaction_count(self) -> int:
        with self.lock:
            return len(self._records)

    def _sync_clock(self) -> None:
        slot = self.slot()
        if slot != self._synced_slot:
            self._svm.set_clock(Clock(slot, int(self._t0), 0, 1, int(self._time())))
            self._synced_slot = slot

    def _refused(self, tx: VersionedTransaction) -> dict | None:
        """The error of a transaction that writes to an account refused by ``faults.refuse``."""
        msg = tx.message
        keys = [str(k) for k in msg.account_keys]
        writable = [(i, k) for i, k in enumerate(keys) if is_writable(msg, i) and not is_signer(msg, i)]
        index = self.faults.refused_index(writable)
        return None if index is None else {"InsufficientFundsForRent": {"account_index": index}}

    def _precheck(self, tx: VersionedTransaction, check_blockhash: bool = True) -> Any | None:
        """Errors a node finds before executing: unknown/expired blockhash, duplicate."""
        if check_blockhash and not self.is_blockhash_valid(str(tx.message.recent_blockhash)):
            return TransactionErrorFieldless.BlockhashNotFound
        if str(tx.signatures[0]) in self._records:
            return TransactionErrorFieldless.AlreadyProcessed
        return None

    def simulate(
        self,
        tx: VersionedTransaction,
        sig_verify: bool = False,
        check_blockhash: bool = True,
        accounts: list[Pubkey] | None = None,
    ) -> dict:
        """Simulate ``tx``; returns a dict with err (JSON), logs, unitsConsumed, returnData,
        innerInstructions (raw), accounts (post states or None), fee."""
        with self.lock:
            self._sync_clock()
            pre = self._precheck(tx, check_blockhash)
            if pre is not None:
                return {
                    "err": error_json(pre),
                    "logs": [],
                    "unitsConsumed": 0,
                    "returnData": None,
                    "inner": [],
                    "accounts": None,
                }
            refused = self._refused(tx)
            if refused is not None:
                return {
                    "err": refused,
                    "logs": [],
                    "unitsConsumed": 0,
                    "returnData": None,
                    "inner": [],
                    "accounts": None,
                }
            previous = self._svm.get_sigverify()
            self._svm.with_sigverify(sig_verify)
            try:
                res = self._svm.simulate_transaction(tx)
            finally:
                self._svm.with_sigverify(previous)
            if isinstance(res, FailedTransactionMetadata):
                meta, err, post = res.meta(), error_json(res.err()), None
            else:
                meta, err, post = res.meta(), None, {str(k): a for k, a in res.post_accounts()}
            post_accounts = None
            if accounts is not None:
                post_accounts = []
                for key in accounts:
                    acc = post.get(str(key)) if post is not None else None
                    if acc is None:
                        acc = self._svm.get_account(key)
                    post_accounts.append(acc if acc is not None and acc.lamports else None)
            return {
                "err": err,
                "logs": list(meta.logs()),
                "unitsConsumed": meta.compute_units_consumed(),
                "returnData": _return_data_json(meta.return_data()),
                "inner": _inner(meta),
                "accounts": post_accounts,
            }

    def send(
        self, tx: VersionedTransaction, skip_preflight: bool = False, drop: bool = False, may_drop: bool = True
    ) -> str:
        """sendTransaction semantics (see module doc). Returns the signature or raises RpcError.
        ``drop``: after preflight, return the signature and never execute the transaction;
        ``may_drop``: the ``drop_rate`` applies (False for airdrops)."""
        signature = str(tx.signatures[0])
        with self.lock:
            if not skip_preflight:
                if not all(tx.verify_with_results()):
                    raise RpcError(-32003, "Transaction signature verification failure")
                sim = self.simulate(tx, sig_verify=True)
                if sim["err"] is not None:
                    raise RpcError(
                        -32002,
                        f"Transaction simulation failed: {describe_error(sim['err'])}",
                        {
                            "err": sim["err"],
                            "logs": sim["logs"],
                            "accounts": None,
                            "unitsConsumed": sim["unitsConsumed"],
                            "returnData": sim["returnData"],
                            "innerInstructions": None,
                            "replacementBlockhash": None,
                        },
                    )
            if not drop and may_drop and self.drop_rate and signature not in self._records:
                drop = self._rng.random() < self.drop_rate
            if drop:
                self.faults.note_dropped(signature)
                return signature
            record = self._execute(tx)
        if record is not None:
            for fn in list(self._listeners):
                try:
                    fn(record)
                except Exception:  # noqa: BLE001 - a listener must never break a send
                    pass
        return signature

    def _execute(self, tx: VersionedTransaction) -> TxRecord | None:
        signature = str(tx.signatures[0])
        self._sync_clock()
        if self._precheck(tx) is not None:
            return None  # dropped, as a leader drops it
        if self._refused(tx) is not None:
            return None  # test control: refused accounts are never written
        keys = account_keys(tx)
        pre = [self._svm.get_balance(k) or 0 for k in keys]
        res = self._svm.send_transaction(tx)
        if isinstance(res, FailedTransactionMetadata):
            meta, err = res.meta(), error_json(res.err())
            if str(meta.signature()) != signature:
                return None  # not loaded (no fee payer, no funds for the fee, bad signature): dropped
        else:
            meta, err = res, None
        post = [self._svm.get_balance(k) or 0 for k in keys]
        record = TxRecord(
            signature=signature,
            slot=self.slot(),
            block_time=int(self._time()),
            tx=tx,
            err=err,
            fee=meta.fee(),
            pre_balances=pre,
            post_balances=post,
            logs=list(meta.logs()),
            inner_instructions=_inner(meta),
            compute_units=meta.compute_units_consumed(),
            return_data=_return_data_json(meta.return_data()),
            memo=extract_memo(tx),
            keys=[str(k) for k in keys],
        )
        self._records[signature] = record
        for key in dict.fromkeys(record.keys):
            self._by_address[key].append(signature)
        return record

    def request_airdrop(self, pubkey: Pubkey, lamports: int) -> str:
        """A real system transfer from the faucet keypair (which pays the fee)."""
        with self.lock:
            current = self.slot()
            vtx = None
            for s in range(current, max(0, current - MAX_PROCESSING_AGE), -1):
                tx = Transaction.new_signed_with_payer(
                    [transfer(TransferParams(from_pubkey=self.faucet.pubkey(), to_pubkey=pubkey, lamports=lamports))],
                    self.faucet.pubkey(),
                    [self.faucet],
                    Hash.from_string(self.blockhash_at(s)),
                )
                vtx = VersionedTransaction.from_legacy(tx)
                if str(vtx.signatures[0]) not in self._records:
                    break
            try:
                return self.send(vtx, may_drop=False)
            except RpcError as exc:
                raise RpcError(-32603, f"Internal error: airdrop failed: {exc.message}", exc.data) from None
