"""Refund transfers on chain (implements `ports.RefundChain`).

Builds and signs a treasury → wallet System transfer with the memo
`signing.refund_memo(refund_id)`, sends it, and reads back what became of it.
JSON-RPC goes through `solana_rpc.SolanaRpc.call` (stdlib urllib); transactions
are built with `solders` only, imported on first use — never the solana-py
client stack — so only the refund function pays for it.

The caller records `PreparedTransfer.signature` and `.last_valid_block_height`
(a conditional write) BEFORE `send(raw)`: one transaction per refund is live.

Errors:
* no trustworthy answer (unreachable, timeout, HTTP 5xx, JSON-RPC error such as
  an unhealthy node, malformed answer) → `Unavailable(reason="rpc")`: retry later;
* preflight says the blockhash is unknown → `Unavailable(reason="blockhash")`:
  nothing is refused; `status` tells later whether that transaction expired;
* the treasury cannot pay (no funds for the transfer or the fee) →
  `Unavailable(reason="treasury_funds")`: retry once it is funded, not the
  recipient's fault;
* any other refusal (e.g. `InsufficientFundsForRent` for a fresh recipient
  receiving less than the rent-exempt minimum, an invalid recipient) →
  `domain.refunds.RefundRefused(reason)`;
* `AlreadyProcessed` on a resend of the same bytes → not an error: its signature.
"""

from __future__ import annotations

import base64
from typing import TYPE_CHECKING

from chalicelib.domain import keys as base58
from chalicelib.domain.errors import Unavailable
from chalicelib.domain.refunds import (
    Blockhash,
    ChainStatus,
    PreparedTransfer,
    Refund,
    RefundRefused,
    Verdict,
    classify,
    describe_err,
)
from chalicelib.domain.signing import refund_memo

from .solana_rpc import RpcErrorAnswer, SolanaRpc

if TYPE_CHECKING:  # types only
    from chalicelib.ports import TreasurySigner

MEMO_PROGRAM_ID = "MemoSq4gqABAXKb96qnH8TysNcWxMyWCqXgDLGmfcHr"
PREFLIGHT_FAILED = -32002
SIGNATURE_FAILURE = -32003
INVALID_PARAMS = -32602
# errors that mean the treasury (fee payer and source of the transfer) cannot pay
_TREASURY_SHORT = ("InsufficientFundsForFee", "AccountNotFound")
_SYSTEM_RESULT_WITH_NEGATIVE_LAMPORTS = 1  # SystemError custom code: the source lacks lamports


def _treasury_short(err: object) -> bool:
    if err in _TREASURY_SHORT:
        return True
    if isinstance(err, dict) and "InstructionError" in err:
        index, ierr = err["InstructionError"]
        return bool(index == 0 and ierr == {"Custom": _SYSTEM_RESULT_WITH_NEGATIVE_LAMPORTS})
    return False


class RefundChainRpc:
    """`ports.RefundChain` over JSON-RPC, signing with a `ports.TreasurySigner`.

    `commitment`: the level at which a refund counts as landed, and at which the block
    height is read to decide that a transaction expired (finalized: never rolled back).
    """

    def __init__(self, rpc: SolanaRpc, signer: TreasurySigner, *, commitment: str = "finalized") -> None:
        self.rpc = rpc
        self.signer = signer
        self.commitment = commitment

    # -------------------------------------------------------------- reads
    def latest_blockhash(self) -> Blockhash:
        result = self.rpc.call("getLatestBlockhash", [{"commitment": "confirmed"}])
        try:
            value = result["value"]
            blockhash, lvbh = value["blockhash"], value["lastValidBlockHeight"]
            if not isinstance(blockhash, str) or isinstance(lvbh, bool) or not isinstance(lvbh, int):
                raise TypeError("wrong types")
        except (KeyError, TypeError) as exc:
            raise Unavailable("Solana RPC answered a malformed blockhash", reason="rpc") from exc
        return Blockhash(blockhash, lvbh)

    def block_height(self) -> int:
        height = self.rpc.call("getBlockHeight", [{"commitment": self.commitment}])
        if isinstance(height, bool) or not isinstance(height, int):
            raise Unavailable("Solana RPC answered a malformed block height", reason="rpc")
        return height

    def status(self, signature: str) -> ChainStatus:
        """The inputs of `refunds.classify` for `signature`. The block height is read FIRST:
        a transaction that had landed by then shows in the status read after it."""
        height = self.block_height()
        return ChainStatus(self.rpc.get_signature_status(signature), height)

    def verdict(self, refund: Refund) -> Verdict:
        """`classify` of the refund's recorded transaction."""
        if refund.tx_signature is None or refund.last_valid_block_height is None:
            raise ValueError("the refund has no recorded transaction")
        st = self.status(refund.tx_signature)
        return classify(st.value, st.block_height, refund.last_valid_block_height, commitment=self.commitment)

    def fee(self, signature: str) -> int | None:
        """`meta.fee` of a landed transaction; None while the node cannot return it."""
        tx = self.rpc.get_transaction(signature, commitment=self.commitment)
        if tx is None:
            return None
        try:
            fee = tx["meta"]["fee"]
            if signature not in tx["transaction"]["signatures"]:
                raise ValueError("another transaction")
            if isinstance(fee, bool) or not isinstance(fee, int) or fee < 0:
                raise TypeError("fee is not a non-negative int")
        except (KeyError, TypeError, ValueError) as exc:
            raise Unavailable("Solana RPC answered a malformed transaction", reason="rpc") from exc
        return fee

    # ------------------------------------------------------------ writes
    def prepare(self, refund: Refund, blockhash: Blockhash) -> PreparedTransfer:
        """Build and sign the transfer of `refund.lamports` from the treasury to
        `refund.wallet`, with the memo `si64:refund:{refund_id}`. Nothing is sent."""
        from solders.hash import Hash
        from solders.instruction import AccountMeta, Instruction
        from solders.message import Message
        from solders.pubkey import Pubkey
        from solders.signature import Signature
        from solders.system_program import TransferParams, transfer
        from solders.transaction import Transaction

        if refund.lamports <= 0:
            raise ValueError("nothing to refund")
        if not base58.is_pubkey(refund.wallet):
            raise RefundRefused("InvalidRecipient: the wallet is not a public key")
        treasury = Pubkey.from_string(self.signer.pubkey)
        wallet = Pubkey.from_string(refund.wallet)
        if wallet == treasury:
            raise RefundRefused("InvalidRecipient: the wallet is the treasury")
        instructions = [
            transfer(TransferParams(from_pubkey=treasury, to_pubkey=wallet, lamports=refund.lamports)),
            Instruction(
                Pubkey.from_string(MEMO_PROGRAM_ID),
                refund_memo(refund.refund_id).encode(),
                [AccountMeta(treasury, is_signer=True, is_writable=True)],
            ),
        ]
        message = Message.new_with_blockhash(instructions, treasury, Hash.from_string(blockhash.blockhash))
        signature = Signature.from_bytes(self.signer.sign(bytes(message)))
        tx = Transaction.populate(message, [signature])
        return PreparedTransfer(str(signature), blockhash.last_valid_block_height, bytes(tx))

    def send(self, raw: bytes) -> str:
        """Broadcast signed bytes with preflight; returns the signature (also when the node
        has already processed these very bytes)."""
        signature = _first_signature(raw)
        try:
            sent = self.rpc.call(
                "sendTransaction",
                [base64.b64encode(raw).decode("ascii"), {"encoding": "base64", "preflightCommitment": "confirmed"}],
            )
        except RpcErrorAnswer as exc:
            return self._refusal(exc, signature)
        if sent != signature:
            raise Unavailable("Solana RPC answered another signature to sendTransaction", reason="rpc")
        return signature

    @staticmethod
    def _refusal(exc: RpcErrorAnswer, signature: str) -> str:
        code = exc.error.get("code")
        data = exc.error.get("data")
        message = str(exc.error.get("message") or "")
        if code == PREFLIGHT_FAILED:
            err = data.get("err") if isinstance(data, dict) else None
            if err == "AlreadyProcessed" or (err is None and "already been processed" in message):
                return signature
            if err == "BlockhashNotFound":
                raise Unavailable("the node does not know the refund's blockhash", reason="blockhash") from exc
            if _treasury_short(err):
                raise Unavailable(
                    f"the treasury cannot pay the refund ({describe_err(err)})", reason="treasury_funds"
                ) from exc
            if err is None:
                raise RefundRefused(message or "preflight failed") from exc
            raise RefundRefused(describe_err(err), err) from exc
        if code in (SIGNATURE_FAILURE, INVALID_PARAMS):
            raise RefundRefused(f"InvalidTransaction: {message}") from exc
        raise exc  # an unhealthy node, an internal error: Unavailable


def _first_signature(raw: bytes) -> str:
    from solders.transaction import VersionedTransaction

    try:
        tx = VersionedTransaction.from_bytes(raw)
    except Exception as exc:  # solders raises its own error types
        raise ValueError("not a serialized transaction") from exc
    return str(tx.signatures[0])
