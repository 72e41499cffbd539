"""JSON-RPC 2.0 methods of the local chain (the subset stock clients use), over a ``Chain``."""

from __future__ import annotations

import base64
import binascii
import json
import logging
import threading
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

import base58
from solders.message import from_bytes_versioned
from solders.pubkey import Pubkey
from solders.signature import Signature
from solders.transaction import VersionedTransaction

from .core import (
    FEATURE_SET,
    LAMPORTS_PER_SIGNATURE,
    MAX_PROCESSING_AGE,
    SOLANA_CORE_VERSION,
    Chain,
    RpcError,
)
from .encode import encode_account, get_transaction_result, inner_instructions_json
from .faults import is_control

log = logging.getLogger("dev.chain")

SLOTS_PER_EPOCH = 432_000


def _pubkey(value: Any) -> Pubkey:
    if not isinstance(value, str):
        raise RpcError(-32602, "Invalid params: pubkey must be a base58 string")
    try:
        return Pubkey.from_string(value)
    except ValueError:
        raise RpcError(-32602, "Invalid param: Invalid") from None


def _signature(value: Any) -> str:
    if not isinstance(value, str):
        raise RpcError(-32602, "Invalid params: signature must be a base58 string")
    try:
        return str(Signature.from_string(value))
    except ValueError:
        raise RpcError(-32602, "Invalid param: Invalid") from None


def _config(params: list, index: int) -> dict:
    if len(params) > index and params[index] is not None:
        cfg = params[index]
        if not isinstance(cfg, dict):
            raise RpcError(-32602, "Invalid params: configuration must be an object")
        return cfg
    return {}


def _arg(params: list, index: int, name: str) -> Any:
    if len(params) <= index:
        raise RpcError(-32602, f"Invalid params: missing `{name}`")
    return params[index]


def _decode_wire(data: Any, encoding: str) -> bytes:
    if not isinstance(data, str):
        raise RpcError(-32602, "Invalid params: transaction must be an encoded string")
    try:
        if encoding == "base64":
            return base64.b64decode(data, validate=True)
        if encoding == "base58":
            return base58.b58decode(data)
    except (ValueError, binascii.Error) as exc:
        raise RpcError(-32602, f"invalid {encoding} encoding: {exc}") from None
    raise RpcError(-32602, f"Invalid params: unknown variant `{encoding}`, expected `base58` or `base64`")


def _decode_tx(data: Any, encoding: str) -> VersionedTransaction:
    raw = _decode_wire(data, encoding)
    try:
        tx = VersionedTransaction.from_bytes(raw)
    except Exception as exc:  # noqa: BLE001 - solders raises its own error types
        raise RpcError(
            -32602, f"failed to deserialize solana_transaction::versioned::VersionedTransaction: {exc}"
        ) from None
    if not tx.signatures:
        raise RpcError(-32602, "invalid transaction: Transaction contains no signatures")
    try:
        tx.sanitize()
    except Exception as exc:  # noqa: BLE001 - solders raises its own error types
        raise RpcError(
            -32602, f"invalid transaction: Transaction failed to sanitize accounts offsets correctly ({exc})"
        ) from None
    return tx


class RpcMethods:
    """Maps method names to handlers; ``handle_payload`` serves one HTTP body."""

    def __init__(self, chain: Chain):
        self.chain = chain
        self.calls: Counter[str] = Counter()  # JSON-RPC methods served (controls not counted)
        self._calls_lock = threading.Lock()
        self.methods: dict[str, Callable[[list], Any]] = {
            "getHealth": lambda p: "ok",
            "getVersion": lambda p: {"solana-core": SOLANA_CORE_VERSION, "feature-set": FEATURE_SET},
            "getSlot": self.get_slot,
            "getBlockHeight": self.get_slot,
            "getLatestBlockhash": self.get_latest_blockhash,
            "isBlockhashValid": self.is_blockhash_valid,
            "getBalance": self.get_balance,
            "getAccountInfo": self.get_account_info,
            "getMultipleAccounts": self.get_multiple_accounts,
            "getMinimumBalanceForRentExemption": self.get_minimum_balance,
            "getFeeForMessage": self.get_fee_for_message,
            "requestAirdrop": self.request_airdrop,
            "sendTransaction": self.send_transaction,
            "simulateTransaction": self.simulate_transaction,
            "getSignatureStatuses": self.get_signature_statuses,
            "getTransaction": self.get_transaction,
            "getSignaturesForAddress": self.get_signatures_for_address,
            "getGenesisHash": lambda p: self.chain.genesis_hash,
            "getEpochInfo": self.get_epoch_info,
            "getBlockTime": self.get_block_time,
            "getTransactionCount": lambda p: self.chain.transaction_count(),
            "getRecentPrioritizationFees": lambda p: [],
            "getFirstAvailableBlock": lambda p: 1,
            "getIdentity": lambda p: {"identity": str(self.chain.faucet.pubkey())},
            # test controls, not Solana methods (README "Test controls"); never failed or slowed
            "localChain_advanceSlots": self.advance_slots,  # older name of si64_advanceSlots
            "si64_advanceSlots": self.advance_slots,
            "si64_advancePastBlockHeight": self.advance_past_block_height,
            "si64_failRpc": self.fail_rpc,
            "si64_slowRpc": self.slow_rpc,
            "si64_dropTransactions": self.drop_transactions,
            "si64_refuseAccount": self.refuse_account,
            "si64_clearFaults": self.clear_faults,
            "si64_faults": lambda p: self.chain.faults.describe(),
            "si64_callCounts": self.call_counts,
        }

    # ---------------------------------------------------------- transport
    UNHEALTHY = {"code": -32005, "message": "Node is unhealthy", "data": {"numSlotsBehind": None}}

    def handle_http(self, body: bytes) -> tuple[int, bytes | None]:
        """One HTTP body in, ``(status, body)`` out, with the test faults applied:
        status 0 means "close the connection without answering"."""
        methods = _methods_of(body)
        delay = self.chain.faults.take_delay(methods)
        if delay:
            time.sleep(delay)
        mode = self.chain.faults.take_fail(methods)
        if mode == "disconnect":
            return 0, None
        if mode == "http503":
            return 503, b'{"jsonrpc":"2.0","error":{"code":-32005,"message":"Service Unavailable"},"id":null}'
        if mode == "error":
            return 200, self._unhealthy(body)
        return 200, self.handle_payload(body)

    def _unhealthy(self, body: bytes) -> bytes | None:
        """Every non-control request answered with the unhealthy-node error."""
        try:
            payload = json.loads(body)
        except (ValueError, UnicodeDecodeError):
            return self.handle_payload(body)
        items = payload if isinstance(payload, list) else [payload]
        out = []
        for item in items:
            if isinstance(item, dict) and is_control(item.get("method")):
                response = self.handle_one(item)
            elif isinstance(item, dict) and "id" in item:
                response = {"jsonrpc": "2.0", "error": dict(self.UNHEALTHY), "id": item.get("id")}
            else:
                response = None
            if response is not None:
                out.append(response)
        if not isinstance(payload, list):
            return self._dump(out[0]) if out else None
        return self._dump(out) if out else None

    def handle_payload(self, body: bytes) -> bytes | None:
        """One HTTP body in, one HTTP body out (None when only notifications were sent)."""
        try:
            payload = json.loads(body)
        except (ValueError, UnicodeDecodeError):
            return self._dump({"jsonrpc": "2.0", "error": {"code": -32700, "message": "Parse error"}, "id": None})
        if isinstance(payload, list):
            if not payload:
                return self._dump(
                    {"jsonrpc": "2.0", "error": {"code": -32600, "message": "Invalid request"}, "id": None}
                )
            responses = [r for r in (self.handle_one(item) for item in payload) if r is not None]
            return self._dump(responses) if responses else None
        response = self.handle_one(payload)
        return self._dump(response) if response is not None else None

    @staticmethod
    def _dump(obj: Any) -> bytes:
        return json.dumps(obj, separators=(",", ":")).encode()

    def handle_one(self, req: Any) -> dict | None:
        if not isinstance(req, dict) or not isinstance(req.get("method"), str) or req.get("jsonrpc") != "2.0":
            return {
                "jsonrpc": "2.0",
                "error": {"code": -32600, "message": "Invalid request"},
                "id": req.get("id") if isinstance(req, dict) else None,
            }
        has_id = "id" in req
        req_id = req.get("id")
        params = req.get("params", [])
        if params is None:
            params = []
        handler = self.methods.get(req["method"])
        if not is_control(req["method"]):
            with self._calls_lock:
                self.calls[req["method"]] += 1
        try:
            if handler is None:
                raise RpcError(-32601, "Method not found")
            if not isinstance(params, list):
                raise RpcError(-32602, "Invalid params: expected an array")
            result = handler(params)
            response = {"jsonrpc": "2.0", "result": result, "id": req_id}
        except RpcError as exc:
            response = {"jsonrpc": "2.0", "error": exc.to_json(), "id": req_id}
        except Exception as exc:  # never leak a traceback to a client
            log.exception("local chain: %s failed", req["method"])
            response = {"jsonrpc": "2.0", "error": {"code": -32603, "message": f"Internal error: {exc}"}, "id": req_id}
        return response if has_id else None

    def call_counts(self, params: list) -> dict:
        """The JSON-RPC requests served so far, by method (test controls excluded);
        `[true]` also starts the count again from zero."""
        with self._calls_lock:
            out = dict(self.calls)
            if params and params[0] is True:
                self.calls.clear()
        return out

    # ------------------------------------------------------------ helpers
    def _ctx(self, value: Any, slot: int | None = None) -> dict:
        return {
            "context": {"apiVersion": SOLANA_CORE_VERSION, "slot": self.chain.slot() if slot is None else slot},
            "value": value,
        }

    def _min_context(self, cfg: dict) -> None:
        min_slot = cfg.get("minContextSlot")
        if min_slot is not None and int(min_slot) > self.chain.slot():
            raise RpcError(-32016, "Minimum context slot has not been reached", {"contextSlot": self.chain.slot()})

    # ------------------------------------------------------------ methods
    def get_slot(self, params: list) -> int:
        cfg = _config(params, 0)
        self._min_context(cfg)
        return self.chain.slot_at(cfg.get("commitment"))

    def get_latest_blockhash(self, params: list) -> dict:
        cfg = _config(params, 0)
        self._min_context(cfg)
        blockhash, last_valid, slot = self.chain.latest_blockhash(cfg.get("commitment"))
        return self._ctx({"blockhash": blockhash, "lastValidBlockHeight": last_valid}, slot)

    def is_blockhash_valid(self, params: list) -> dict:
        blockhash = _arg(params, 0, "blockhash")
        if not isinstance(blockhash, str):
            raise RpcError(-32602, "Invalid params: blockhash must be a string")
        return self._ctx(self.chain.is_blockhash_valid(blockhash))

    def get_balance(self, params: list) -> dict:
        key = _pubkey(_arg(params, 0, "pubkey"))
        self._min_context(_config(params, 1))
        return self._ctx(self.chain.get_balance(key))

    def get_account_info(self, params: list) -> dict:
        key = _pubkey(_arg(params, 0, "pubkey"))
        cfg = _config(params, 1)
        self._min_context(cfg)
        acc = self.chain.get_account(key)
        return self._ctx(encode_account(acc, cfg.get("encoding"), cfg.get("dataSlice")))

    def get_multiple_accounts(self, params: list) -> dict:
        keys = _arg(params, 0, "pubkeys")
        if not isinstance(keys, list) or len(keys) > 100:
            raise RpcError(-32602, "Invalid params: expected at most 100 pubkeys")
        cfg = _config(params, 1)
        self._min_context(cfg)
        return self._ctx(
            [
                encode_account(self.chain.get_account(_pubkey(k)), cfg.get("encoding"), cfg.get("dataSlice"))
                for k in keys
            ]
        )

    def get_minimum_balance(self, params: list) -> int:
        size = _arg(params, 0, "usize")
        if not isinstance(size, int) or isinstance(size, bool) or size < 0:
            raise RpcError(-32602, "Invalid params: usize must be a non-negative integer")
        return self.chain.minimum_balance_for_rent_exemption(size)

    def get_fee_for_message(self, params: list) -> dict:
        raw = _decode_wire(_arg(params, 0, "message"), "base64")
        try:
            msg = from_bytes_versioned(raw)
        except Exception as exc:  # noqa: BLE001 - solders raises its own error types
            raise RpcError(-32602, f"invalid message: {exc}") from None
        if not self.chain.is_blockhash_valid(str(msg.recent_blockhash)):
            return self._ctx(None)
        return self._ctx(LAMPORTS_PER_SIGNATURE * msg.header.num_required_signatures)

    def request_airdrop(self, params: list) -> str:
        key = _pubkey(_arg(params, 0, "pubkey"))
        lamports = _arg(params, 1, "lamports")
        if not isinstance(lamports, int) or isinstance(lamports, bool) or lamports <= 0:
            raise RpcError(-32602, "Invalid params: lamports must be a positive integer")
        return self.chain.request_airdrop(key, lamports)

    def send_transaction(self, params: list) -> str:
        cfg = _config(params, 1)
        tx = _decode_tx(_arg(params, 0, "transaction"), cfg.get("encoding") or "base58")
        self._min_context(cfg)
        return self.chain.send(
            tx, skip_preflight=bool(cfg.get("skipPreflight", False)), drop=self.chain.faults.take_drop()
        )

    def simulate_transaction(self, params: list) -> dict:
        cfg = _config(params, 1)
        tx = _decode_tx(_arg(params, 0, "transaction"), cfg.get("encoding") or "base58")
        self._min_context(cfg)
        sig_verify = bool(cfg.get("sigVerify", False))
        replace = bool(cfg.get("replaceRecentBlockhash", False))
        if sig_verify and replace:
            raise RpcError(-32602, "sigVerify may not be used with replaceRecentBlockhash")
        if sig_verify and not all(tx.verify_with_results()):
            raise RpcError(-32003, "Transaction signature verification failure")
        accounts_cfg = cfg.get("accounts") or None
        addresses = None
        if accounts_cfg is not None:
            addresses = [_pubkey(a) for a in accounts_cfg.get("addresses", [])]
        with self.chain.lock:
            slot = self.chain.slot()
            sim = self.chain.simulate(tx, sig_verify=sig_verify, check_blockhash=not replace, accounts=addresses)
            replacement = None
            if replace:
                blockhash, last_valid, _ = self.chain.latest_blockhash()
                replacement = {"blockhash": blockhash, "lastValidBlockHeight": last_valid}
        accounts = None
        if addresses is not None:
            encoding = accounts_cfg.get("encoding") or "base64"
            accounts = [encode_account(a, encoding) for a in sim["accounts"]]
        inner = None
        if cfg.get("innerInstructions"):
            inner = inner_instructions_json(sim["inner"], [str(k) for k in tx.message.account_keys], parsed=True)
        return self._ctx(
            {
                "err": sim["err"],
                "logs": sim["logs"],
                "accounts": accounts,
                "unitsConsumed": sim["unitsConsumed"],
                "returnData": sim["returnData"],
                "innerInstructions": inner,
                "replacementBlockhash": replacement,
            },
            slot,
        )

    def _status(self, signature: str) -> dict | None:
        record = self.chain.get_record(signature)
        if record is None:
            return None
        level = self.chain.commitment_of(record)
        return {
            "confirmationStatus": level,
            "confirmations": None if level == "finalized" else self.chain.slot() - record.slot,
            "err": record.err,
            "slot": record.slot,
            "status": {"Ok": None} if record.err is None else {"Err": record.err},
        }

    def get_signature_statuses(self, params: list) -> dict:
        sigs = _arg(params, 0, "signatures")
        if not isinstance(sigs, list):
            raise RpcError(-32602, "Invalid params: signatures must be an array")
        if len(sigs) > 256:
            raise RpcError(-32602, "Too many inputs provided; max 256")
        return self._ctx([self._status(_signature(s)) for s in sigs])

    def get_transaction(self, params: list) -> dict | None:
        signature = _signature(_arg(params, 0, "signature"))
        if len(params) > 1 and isinstance(params[1], str):  # legacy form: encoding as 2nd param
            cfg: dict = {"encoding": params[1]}
        else:
            cfg = _config(params, 1)
        if cfg.get("commitment") == "processed":
            raise RpcError(-32602, "Invalid params: commitment `processed` is not supported for getTransaction")
        record = self.chain.get_record(signature)
        if record is None or not self.chain.reached(record, cfg.get("commitment")):
            return None
        max_version = cfg.get("maxSupportedTransactionVersion")
        return get_transaction_result(record, cfg.get("encoding") or "json", max_version)

    def get_signatures_for_address(self, params: list) -> list:
        address = str(_pubkey(_arg(params, 0, "address")))
        cfg = _config(params, 1)
        self._min_context(cfg)
        limit = cfg.get("limit") or 1000
        if not isinstance(limit, int) or not 1 <= limit <= 1000:
            raise RpcError(-32602, "Invalid limit; max 1000")
        before = cfg.get("before")
        until = cfg.get("until")
        commitment = cfg.get("commitment")
        records = [r for r in self.chain.signatures_for_address(address) if self.chain.reached(r, commitment)]
        out = []
        started = before is None
        for record in records:
            if not started:
                if record.signature == before:
                    started = True
                continue
            if until is not None and record.signature == until:
                break
            out.append(
                {
                    "blockTime": record.block_time,
                    "confirmationStatus": self.chain.commitment_of(record),
                    "err": record.err,
                    "memo": record.memo,
                    "signature": record.signature,
                    "slot": record.slot,
                }
            )
            if len(out) >= limit:
                break
        return out

    def get_epoch_info(self, params: list) -> dict:
        slot = self.chain.slot()
        return {
            "absoluteSlot": slot,
            "blockHeight": self.chain.block_height(),
            "epoch": slot // SLOTS_PER_EPOCH,
            "slotIndex": slot % SLOTS_PER_EPOCH,
            "slotsInEpoch": SLOTS_PER_EPOCH,
            "transactionCount": self.chain.transaction_count(),
        }

    def get_block_time(self, params: list) -> int:
        slot = _arg(params, 0, "slot")
        if not isinstance(slot, int) or slot < 1 or slot > self.chain.slot():
            raise RpcError(-32004, f"Block not available for slot {slot}")
        return self.chain.block_time_of_slot(slot)

    def advance_slots(self, params: list) -> int:
        n = _arg(params, 0, "slots")
        if not isinstance(n, int) or n < 0:
            raise RpcError(-32602, "Invalid params: slots must be a non-negative integer")
        return self.chain.advance_slots(n)

    # --------------------------------------------------------- test controls
    def advance_past_block_height(self, params: list) -> int:
        height = _arg(params, 0, "blockHeight")
        if not isinstance(height, int) or isinstance(height, bool) or height < 0:
            raise RpcError(-32602, "Invalid params: blockHeight must be a non-negative integer")
        return self.chain.advance_past_block_height(height)

    def _fault(self, fn: Callable, params: list, allowed: dict) -> dict:
        cfg = _config(params, 0)
        unknown = set(cfg) - set(allowed)
        if unknown:
            raise RpcError(-32602, f"Invalid params: unknown field(s) {sorted(unknown)}")
        try:
            fn(**{allowed[k]: v for k, v in cfg.items()})
        except (TypeError, ValueError) as exc:
            raise RpcError(-32602, f"Invalid params: {exc}") from None
        return self.chain.faults.describe()

    def fail_rpc(self, params: list) -> dict:
        return self._fault(
            self.chain.faults.fail,
            params,
            {"mode": "mode", "seconds": "seconds", "requests": "requests", "methods": "methods"},
        )

    def slow_rpc(self, params: list) -> dict:
        return self._fault(
            self.chain.faults.slow,
            params,
            {"delaySeconds": "delay_seconds", "seconds": "seconds", "requests": "requests", "methods": "methods"},
        )

    def drop_transactions(self, params: list) -> dict:
        return self._fault(self.chain.faults.drop, params, {"seconds": "seconds", "requests": "requests"})

    def refuse_account(self, params: list) -> dict:
        key = str(_pubkey(_arg(params, 0, "pubkey")))
        refused = params[1] if len(params) > 1 else True
        if not isinstance(refused, bool):
            raise RpcError(-32602, "Invalid params: the second parameter must be true or false")
        self.chain.faults.refuse(key, refused)
        return self.chain.faults.describe()

    def clear_faults(self, params: list) -> dict:
        self.chain.faults.clear()
        return self.chain.faults.describe()


def _methods_of(body: bytes) -> list[str]:
    """The method names of one HTTP body (single or batch); [] when it does not parse."""
    try:
        payload = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return []
    items = payload if isinstance(payload, list) else [payload]
    return [item["method"] for item in items if isinstance(item, dict) and isinstance(item.get("method"), str)]


__all__ = ["RpcMethods", "MAX_PROCESSING_AGE"]
