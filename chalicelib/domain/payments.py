"""Payment verification: pure decision over JSON-RPC results.

No I/O here and no solana/solders import. `decide` reads the standard Solana
JSON-RPC shapes:

* `tx`: the `result` of `getTransaction(signature, {"encoding": "json",
  "commitment": "confirmed" (or "finalized"), "maxSupportedTransactionVersion": 0})`,
  or None when the node returned null;
* `status`: the element of `getSignatureStatuses([signature],
  {"searchTransactionHistory": true}).value` for this signature, or None. It is
  only looked at when `tx` is None (the adapter only fetches it then).

What counts as payment
----------------------
Only System Program instructions, top-level AND inner (CPI), never balance
deltas (other instructions, fees, rent or a program could move lamports):

* `Transfer` (u32 LE index 2, u64 LE lamports): from = account 0, to = account 1;
* `TransferWithSeed` (index 11, u64 lamports, seed, owner): the funding
  account (0) is derived from the base (1), which must sign, and only the
  base can move its lamports; the *base* is therefore the payer:
  from = account 1, to = account 2.

The system program deserializes with bincode allowing trailing bytes, so an
instruction whose data is longer than 12 bytes still executed as that
transfer; we read the first 12 bytes, as the chain did. A transfer counts when
from == wallet and to == treasury (and from != to: a self-transfer moves nothing). Account indexes resolve through
`message.accountKeys` followed by `meta.loadedAddresses.writable` and then
`.readonly` (v0 transactions with address lookup tables). Signers are the
first `header.numRequiredSignatures` static account keys.

Order of checks (first failing one is the reason)
-------------------------------------------------
1. `not_found`       — no transaction and no signature status at all.
2. `not_confirmed`   — the node knows the signature but not at `confirmed`
                        (status `processed`, or confirmed but the transaction
                        is not readable yet), or the block has no `blockTime`
                        (we cannot prove the age, so we do not accept; a
                        retry usually succeeds once the node has the time).
3. `failed_on_chain` — `meta.err` (or a confirmed status with `err`): the
                        transfers did not happen, whatever the instructions say.
4. `wrong_payer`     — the wallet is not a signer of the transaction, or the
                        treasury is one (its own funding, refunds, anything it
                        sent is never a payment).
5. `wrong_recipient` — no system transfer to the treasury at all (from anyone).
6. `insufficient_amount` — sum of wallet → treasury transfers below the minimum
                        (a transfer to the treasury from another signer is
                        not counted, so it can be 0 here).
7. `too_old`         — `now_s - blockTime > max_age_seconds`.

Age comes last: it is the only check a genuine, otherwise valid payment can
fail, so any structural problem is reported first and the renter learns the
most useful thing. Rationale for "not_confirmed" before "failed_on_chain": a
processed-only transaction can still be dropped with its fork, so its error
is not final.

A malformed result (missing keys, wrong types, a transaction that does not
carry the signature asked for) raises `MalformedRpcResult` (a ValueError);
the adapter turns it into `Unavailable(reason="rpc")` — never `not_found`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from .errors import InvalidRequest, Unavailable
from .keys import decode as b58decode
from .keys import is_signature

SYSTEM_PROGRAM_ID = "11111111111111111111111111111111"
# SPL Memo v2 and v1: a memo instruction's data is its UTF-8 text.
MEMO_PROGRAM_IDS = ("MemoSq4gqABAXKb96qnH8TysNcWxMyWCqXgDLGmfcHr", "Memo1UhkJRfHyvLMcVucJwxXeuD728EqVDDwQDxFMNo")
_TRANSFER = 2
_TRANSFER_WITH_SEED = 11

NOT_FOUND = "not_found"
NOT_CONFIRMED = "not_confirmed"
FAILED_ON_CHAIN = "failed_on_chain"
WRONG_PAYER = "wrong_payer"
WRONG_RECIPIENT = "wrong_recipient"
INSUFFICIENT_AMOUNT = "insufficient_amount"
TOO_OLD = "too_old"
REASONS = (
    NOT_FOUND,
    NOT_CONFIRMED,
    FAILED_ON_CHAIN,
    WRONG_PAYER,
    WRONG_RECIPIENT,
    INSUFFICIENT_AMOUNT,
    TOO_OLD,
)
_CONFIRMED_LEVELS = ("confirmed", "finalized")


class MalformedRpcResult(ValueError):
    """The RPC answered something that is not a well-formed transaction/status."""


@dataclass(frozen=True)
class PaymentCheck:
    signature: str
    wallet: str
    treasury: str
    min_lamports: int
    max_age_seconds: int
    now_s: int


@dataclass(frozen=True)
class PaymentResult:
    ok: bool
    lamports_received: int
    reason: str | None = None
    block_time: int | None = None
    slot: int | None = None
    memos: tuple[str, ...] = ()  # texts of the top-level memo instructions (the payer signed them)


@dataclass(frozen=True)
class Transfer:
    source: str
    destination: str
    lamports: int


def _fail(
    reason: str, lamports: int = 0, block_time: int | None = None, slot: int | None = None, memos: tuple[str, ...] = ()
) -> PaymentResult:
    return PaymentResult(False, lamports, reason, block_time, slot, memos)


def _int_or_none(value: object) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise MalformedRpcResult("expected an integer")
    return value


def parse_system_transfer(data: bytes, accounts: list[str]) -> Transfer | None:
    """The transfer a System Program instruction performs, or None for any other one."""
    if len(data) < 12:
        return None
    index = int.from_bytes(data[:4], "little")
    lamports = int.from_bytes(data[4:12], "little")
    if index == _TRANSFER and len(accounts) >= 2:
        return Transfer(accounts[0], accounts[1], lamports)
    if index == _TRANSFER_WITH_SEED and len(accounts) >= 3:
        return Transfer(accounts[1], accounts[2], lamports)
    return None


def account_keys(tx: dict[str, Any]) -> list[str]:
    """All account keys of a json-encoded transaction: static, then loaded writable, then readonly."""
    message = tx["transaction"]["message"]
    keys = list(message["accountKeys"])
    loaded = (tx.get("meta") or {}).get("loadedAddresses") or {}
    keys += list(loaded.get("writable") or [])
    keys += list(loaded.get("readonly") or [])
    if not all(isinstance(k, str) for k in keys):
        raise MalformedRpcResult("account key is not a string")
    return keys


def signers(tx: dict[str, Any]) -> list[str]:
    message = tx["transaction"]["message"]
    n = message["header"]["numRequiredSignatures"]
    if isinstance(n, bool) or not isinstance(n, int) or n < 0:
        raise MalformedRpcResult("bad numRequiredSignatures")
    return list(message["accountKeys"][:n])


def _instructions(tx: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield from tx["transaction"]["message"]["instructions"]
    for group in tx["meta"].get("innerInstructions") or []:
        yield from group["instructions"]


def system_transfers(tx: dict[str, Any]) -> list[Transfer]:
    """Every System Program Transfer / TransferWithSeed, top-level and inner, in order."""
    keys = account_keys(tx)
    out = []
    for ix in _instructions(tx):
        program = keys[ix["programIdIndex"]]
        if program != SYSTEM_PROGRAM_ID:
            continue
        accounts = [keys[i] for i in ix["accounts"]]
        try:
            data = b58decode(ix["data"])
        except (TypeError, ValueError) as exc:
            raise MalformedRpcResult("instruction data is not base58") from exc
        transfer = parse_system_transfer(data, accounts)
        if transfer is not None:
            out.append(transfer)
    return out


def memos(tx: dict[str, Any]) -> tuple[str, ...]:
    """The text of every top-level Memo program instruction, in order.

    Only top-level instructions count: they are exactly what the signers signed.
    Memo data that is not valid UTF-8 is not a memo any client could have written
    (the Memo program itself refuses it), so it is skipped.
    """
    keys = account_keys(tx)
    out = []
    for ix in tx["transaction"]["message"]["instructions"]:
        if keys[ix["programIdIndex"]] not in MEMO_PROGRAM_IDS:
            continue
        try:
            out.append(b58decode(ix["data"]).decode("utf-8"))
        except (TypeError, ValueError):
            continue
    return tuple(out)


def _decide_from_status(status: object) -> PaymentResult:
    if status is None:
        return _fail(NOT_FOUND)
    if not isinstance(status, dict):
        raise MalformedRpcResult("signature status is not an object")
    slot = _int_or_none(status.get("slot"))
    level = status.get("confirmationStatus")
    if level in _CONFIRMED_LEVELS and status.get("err") is not None:
        return _fail(FAILED_ON_CHAIN, slot=slot)
    # processed (or confirmed but not yet readable at confirmed): try again later
    return _fail(NOT_CONFIRMED, slot=slot)


def decide(check: PaymentCheck, tx: dict[str, Any] | None, status: dict[str, Any] | None = None) -> PaymentResult:
    """Classify a payment; see the module docstring for the order of checks."""
    if tx is None:
        return _decide_from_status(status)
    try:
        return _decide_tx(check, tx)
    except (KeyError, IndexError, TypeError, AttributeError) as exc:
        raise MalformedRpcResult(f"malformed getTransaction result: {exc!r}") from exc


def _decide_tx(check: PaymentCheck, tx: dict[str, Any]) -> PaymentResult:
    if not isinstance(tx, dict):
        raise MalformedRpcResult("transaction is not an object")
    meta = tx["meta"]
    if not isinstance(meta, dict):
        # a node returns meta for every transaction it serves at confirmed
        raise MalformedRpcResult("transaction has no meta")
    if check.signature not in tx["transaction"]["signatures"]:
        raise MalformedRpcResult("transaction does not carry the signature asked for")
    slot = _int_or_none(tx.get("slot"))
    block_time = _int_or_none(tx.get("blockTime"))

    if block_time is None:
        return _fail(NOT_CONFIRMED, slot=slot)
    if meta.get("err") is not None:
        return _fail(FAILED_ON_CHAIN, block_time=block_time, slot=slot)
    notes = memos(tx)
    tx_signers = signers(tx)
    # A transaction the treasury signed (its funding, a refund, anything it sent) is never a payment.
    if check.wallet not in tx_signers or check.treasury in tx_signers:
        return _fail(WRONG_PAYER, block_time=block_time, slot=slot, memos=notes)

    transfers = system_transfers(tx)
    to_treasury = [t for t in transfers if t.destination == check.treasury]
    if not to_treasury:
        return _fail(WRONG_RECIPIENT, block_time=block_time, slot=slot, memos=notes)
    # a self-transfer (wallet == treasury) moves nothing and is never a payment
    received = sum(t.lamports for t in to_treasury if t.source == check.wallet and t.source != t.destination)
    if received < check.min_lamports:
        return _fail(INSUFFICIENT_AMOUNT, received, block_time, slot, notes)
    if check.now_s - block_time > check.max_age_seconds:
        return _fail(TOO_OLD, received, block_time, slot, notes)
    return PaymentResult(True, received, None, block_time, slot, notes)


def verify(
    check: PaymentCheck,
    get_transaction: Callable[[str], dict[str, Any] | None],
    get_signature_status: Callable[[str], dict[str, Any] | None],
) -> PaymentResult:
    """Ask a node about `check.signature` and decide: the transaction at `confirmed`, and its
    signature status only when the node has no transaction (a processed-but-not-confirmed
    payment is told from an unknown one). A malformed signature is refused before any call
    (InvalidRequest); a malformed answer is the node's fault (Unavailable)."""
    if not is_signature(check.signature):
        raise InvalidRequest("tx_signature is not a base58 transaction signature", reason="tx_signature")
    tx = get_transaction(check.signature)
    status = None if tx is not None else get_signature_status(check.signature)
    try:
        return decide(check, tx, status)
    except MalformedRpcResult as exc:
        raise Unavailable(f"Solana RPC answered a malformed transaction: {exc}", reason="rpc") from exc
