"""Transactions, metas and accounts in the JSON shapes of a Solana RPC node."""

from __future__ import annotations

import base64
import struct
from typing import Any

import base58
from solders.account import Account
from solders.message import MessageV0
from solders.transaction import VersionedTransaction

from .core import MEMO_PROGRAM_IDS, RpcError, TxRecord, is_signer, is_writable

SYSTEM_PROGRAM = "11111111111111111111111111111111"


def _b58(data: bytes) -> str:
    return base58.b58encode(data).decode("ascii")


def is_v0(tx: VersionedTransaction) -> bool:
    return isinstance(tx.message, MessageV0)


# ------------------------------------------------------------------ accounts
def encode_account(acc: Account | None, encoding: str | None, data_slice: dict | None = None) -> dict | None:
    if acc is None:
        return None
    data = bytes(acc.data)
    if data_slice:
        offset = int(data_slice.get("offset", 0))
        length = int(data_slice.get("length", len(data)))
        data = data[offset : offset + length]
    if encoding in (None, "binary"):
        encoded: Any = _b58(data)
    elif encoding == "base58":
        encoded = [_b58(data), "base58"]
    elif encoding in ("base64", "jsonParsed"):  # no parser for system accounts: base64 fallback, as a node does
        encoded = [base64.b64encode(data).decode(), "base64"]
    elif encoding == "base64+zstd":
        try:
            import zstandard  # type: ignore
        except ImportError:
            raise RpcError(-32602, "Invalid params: base64+zstd encoding is not supported by the local chain") from None
        encoded = [base64.b64encode(zstandard.ZstdCompressor().compress(data)).decode(), "base64+zstd"]
    else:
        raise RpcError(-32602, f"Invalid params: unknown variant `{encoding}`")
    return {
        "data": encoded,
        "executable": acc.executable,
        "lamports": acc.lamports,
        "owner": str(acc.owner),
        "rentEpoch": acc.rent_epoch,
        "space": len(bytes(acc.data)),
    }


# -------------------------------------------------------------- instructions
def _compiled_ix(ix, stack_height: int | None) -> dict:
    return {
        "programIdIndex": ix.program_id_index,
        "accounts": list(bytes(ix.accounts)),
        "data": _b58(bytes(ix.data)),
        "stackHeight": stack_height,
    }


def _parse_system(data: bytes, accounts: list[str]) -> dict | None:
    if len(data) < 4:
        return None
    (kind,) = struct.unpack_from("<I", data, 0)
    try:
        if kind == 0 and len(data) >= 52 and len(accounts) >= 2:
            lamports, space = struct.unpack_from("<QQ", data, 4)
            from solders.pubkey import Pubkey

            owner = str(Pubkey.from_bytes(data[20:52]))
            return {
                "info": {
                    "lamports": lamports,
                    "newAccount": accounts[1],
                    "owner": owner,
                    "source": accounts[0],
                    "space": space,
                },
                "type": "createAccount",
            }
        if kind == 1 and len(data) >= 36 and accounts:
            from solders.pubkey import Pubkey

            return {"info": {"account": accounts[0], "owner": str(Pubkey.from_bytes(data[4:36]))}, "type": "assign"}
        if kind == 2 and len(data) >= 12 and len(accounts) >= 2:
            (lamports,) = struct.unpack_from("<Q", data, 4)
            return {
                "info": {"destination": accounts[1], "lamports": lamports, "source": accounts[0]},
                "type": "transfer",
            }
        if kind == 8 and len(data) >= 12 and accounts:
            (space,) = struct.unpack_from("<Q", data, 4)
            return {"info": {"account": accounts[0], "space": space}, "type": "allocate"}
    except (struct.error, ValueError):
        return None
    return None


def _parsed_ix(ix, keys: list[str], stack_height: int | None) -> dict:
    program = keys[ix.program_id_index]
    accounts = [keys[i] for i in bytes(ix.accounts) if i < len(keys)]
    data = bytes(ix.data)
    if program == SYSTEM_PROGRAM:
        parsed = _parse_system(data, accounts)
        if parsed is not None:
            return {"parsed": parsed, "program": "system", "programId": program, "stackHeight": stack_height}
    if program in MEMO_PROGRAM_IDS:
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            text = None
        if text is not None:
            return {"parsed": text, "program": "spl-memo", "programId": program, "stackHeight": stack_height}
    return {"accounts": accounts, "data": _b58(data), "programId": program, "stackHeight": stack_height}


def inner_instructions_json(inner: list, keys: list[str], parsed: bool) -> list[dict]:
    out = []
    for index, per_ix in enumerate(inner):
        if not per_ix:
            continue
        out.append(
            {
                "index": index,
                "instructions": [_parsed_ix(ix, keys, sh) if parsed else _compiled_ix(ix, sh) for ix, sh in per_ix],
            }
        )
    return out


# -------------------------------------------------------------- transactions
def _lookups(msg) -> list[dict]:
    return [
        {
            "accountKey": str(lk.account_key),
            "writableIndexes": list(bytes(lk.writable_indexes)),
            "readonlyIndexes": list(bytes(lk.readonly_indexes)),
        }
        for lk in msg.address_table_lookups
    ]


def transaction_json(tx: VersionedTransaction, parsed: bool) -> dict:
    msg = tx.message
    keys = [str(k) for k in msg.account_keys]
    if parsed:
        message: dict = {
            "accountKeys": [
                {"pubkey": k, "signer": is_signer(msg, i), "source": "transaction", "writable": is_writable(msg, i)}
                for i, k in enumerate(keys)
            ],
            "instructions": [_parsed_ix(ix, keys, None) for ix in msg.instructions],
            "recentBlockhash": str(msg.recent_blockhash),
        }
    else:
        header = msg.header
        message = {
            "accountKeys": keys,
            "header": {
                "numReadonlySignedAccounts": header.num_readonly_signed_accounts,
                "numReadonlyUnsignedAccounts": header.num_readonly_unsigned_accounts,
                "numRequiredSignatures": header.num_required_signatures,
            },
            "instructions": [_compiled_ix(ix, None) for ix in msg.instructions],
            "recentBlockhash": str(msg.recent_blockhash),
        }
    if isinstance(msg, MessageV0):
        message["addressTableLookups"] = _lookups(msg)
    return {"message": message, "signatures": [str(s) for s in tx.signatures]}


def encode_transaction(tx: VersionedTransaction, encoding: str) -> Any:
    if encoding == "base64":
        return [base64.b64encode(bytes(tx)).decode(), "base64"]
    if encoding in ("base58", "binary"):
        raw = _b58(bytes(tx))
        return raw if encoding == "binary" else [raw, "base58"]
    if encoding in ("json", "jsonParsed"):
        return transaction_json(tx, parsed=encoding == "jsonParsed")
    raise RpcError(
        -32602,
        f"Invalid params: unknown variant `{encoding}`, expected one of `binary`, "
        "`base64`, `base58`, `json`, `jsonParsed`",
    )


def meta_json(record: TxRecord, parsed: bool) -> dict:
    keys = record.keys
    meta: dict = {
        "computeUnitsConsumed": record.compute_units,
        "err": record.err,
        "fee": record.fee,
        "innerInstructions": inner_instructions_json(record.inner_instructions, keys, parsed),
        "logMessages": list(record.logs),
        "postBalances": list(record.post_balances),
        "postTokenBalances": [],
        "preBalances": list(record.pre_balances),
        "preTokenBalances": [],
        "rewards": [],
        "status": {"Ok": None} if record.err is None else {"Err": record.err},
    }
    if not parsed:
        meta["loadedAddresses"] = {"readonly": [], "writable": []}
    if record.return_data is not None:
        meta["returnData"] = record.return_data
    return meta


def get_transaction_result(record: TxRecord, encoding: str, max_version: int | None) -> dict:
    v0 = is_v0(record.tx)
    if v0 and (max_version is None or max_version < 0):
        raise RpcError(
            -32015,
            "Transaction version (0) is not supported by the requesting client. Please try the request again "
            'with the following configuration parameter: "maxSupportedTransactionVersion": 0',
        )
    result = {
        "blockTime": record.block_time,
        "meta": meta_json(record, parsed=encoding == "jsonParsed"),
        "slot": record.slot,
        "transaction": encode_transaction(record.tx, encoding),
    }
    if max_version is not None:
        result["version"] = 0 if v0 else "legacy"
    return result
