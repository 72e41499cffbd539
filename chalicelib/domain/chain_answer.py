"""What the chain says about a refund's recorded transaction (`classify`), and the pieces of
a transfer the worker signs. Pure Python; the refund's state machine that reads these
verdicts is `domain.refunds`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

# what the chain says about the recorded transaction (see `classify`)
LANDED, LANDED_WITH_ERROR, PENDING, EXPIRED = "LANDED", "LANDED_WITH_ERROR", "PENDING", "EXPIRED"
COMMITMENTS = ("processed", "confirmed", "finalized")


# ------------------------------------------------------------ the chain's answer
def checked_lvbh(value: object) -> int:
    """A last valid block height as recorded: a non-negative int (ValueError otherwise)."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError("last_valid_block_height must be a non-negative int")
    return value


@dataclass(frozen=True)
class Blockhash:
    blockhash: str
    last_valid_block_height: int


@dataclass(frozen=True)
class PreparedTransfer:
    """A signed refund transfer, not yet broadcast: record `signature` and
    `last_valid_block_height` (mark_sent / replace_expired) before sending `raw`."""

    signature: str
    last_valid_block_height: int
    raw: bytes

    def __repr__(self) -> str:  # the bytes are long and say nothing a log needs
        return (
            f"PreparedTransfer(signature={self.signature!r}, "
            f"last_valid_block_height={self.last_valid_block_height}, raw=<{len(self.raw)} bytes>)"
        )


@dataclass(frozen=True)
class ChainStatus:
    """Inputs of `classify`: the getSignatureStatuses value of one signature (None when
    the node does not know it) and the block height read BEFORE that status."""

    value: dict[str, Any] | None
    block_height: int


@dataclass(frozen=True)
class Verdict:
    state: str  # LANDED | LANDED_WITH_ERROR | PENDING | EXPIRED
    last_valid_block_height: int
    err: object = None  # the transaction error (LANDED_WITH_ERROR)
    slot: int | None = None


class MalformedStatus(ValueError):
    """The node's status value does not have the documented shape."""


def classify(
    value: dict[str, Any] | None, block_height: int, last_valid_block_height: int, *, commitment: str = "finalized"
) -> Verdict:
    """What became of a recorded transaction.

    `value`: the getSignatureStatuses entry for its signature (searchTransactionHistory);
    `block_height`: the chain's block height read before `value` (at `commitment` or
    stronger); `last_valid_block_height`: the one recorded with the signature.

    * a status at `commitment` or stronger: LANDED, or LANDED_WITH_ERROR(err);
    * a status below `commitment`: PENDING (it landed on a fork that may still drop);
    * no status and `block_height > last_valid_block_height`: EXPIRED — it never can land,
      because the height was read first: had the transaction landed in any block up to its
      last valid height, the status read afterwards would show it;
    * no status otherwise: PENDING.
    """
    if commitment not in COMMITMENTS:
        raise ValueError(f"unknown commitment {commitment!r}")
    if isinstance(block_height, bool) or not isinstance(block_height, int):
        raise MalformedStatus("block height is not an int")
    checked_lvbh(last_valid_block_height)
    if value is None:
        if block_height > last_valid_block_height:
            return Verdict(EXPIRED, last_valid_block_height)
        return Verdict(PENDING, last_valid_block_height)
    if not isinstance(value, dict):
        raise MalformedStatus("status is not an object")
    level = value.get("confirmationStatus")
    if level is None:  # older nodes: confirmations null means rooted, a count means not yet
        level = "finalized" if value.get("confirmations") is None else "processed"
    if level not in COMMITMENTS:
        raise MalformedStatus(f"unknown confirmationStatus {level!r}")
    slot = value.get("slot")
    if COMMITMENTS.index(level) < COMMITMENTS.index(commitment):
        return Verdict(PENDING, last_valid_block_height, slot=slot)
    err = value.get("err")
    if err is not None:
        return Verdict(LANDED_WITH_ERROR, last_valid_block_height, err=err, slot=slot)
    return Verdict(LANDED, last_valid_block_height, slot=slot)


def describe_err(err: object) -> str:
    """A short, stable reason for a transaction error in the node's JSON form:
    `"InsufficientFundsForRent: account 1"`, `"InstructionError: 0 Custom 1"`, `"BlockhashNotFound"`."""
    if isinstance(err, str):
        return err
    if isinstance(err, dict) and len(err) == 1:
        ((name, detail),) = err.items()
        if isinstance(detail, dict) and "account_index" in detail:
            return f"{name}: account {detail['account_index']}"
        if isinstance(detail, list):
            parts = []
            for part in detail:
                if isinstance(part, dict) and len(part) == 1:
                    ((k, v),) = part.items()
                    parts.append(f"{k} {v}")
                else:
                    parts.append(str(part))
            return f"{name}: {' '.join(parts)}"
        return f"{name}: {detail}"
    return str(err)
