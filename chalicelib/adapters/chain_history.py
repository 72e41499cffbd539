"""ports.ChainHistory over plain JSON-RPC (the same stdlib client as payment verification).

Three read-only calls: getBalance, getSignaturesForAddress, getTransaction (json,
`confirmed`). Any answer that is not the documented shape is Unavailable("rpc"):
reconciliation must never report a difference because the node answered badly.
"""

from __future__ import annotations

from ..domain.errors import Unavailable
from ..domain.payments import MalformedRpcResult
from ..domain.reconcile import ChainTx, SignatureInfo, signature_info, summarize
from .solana_rpc import SolanaRpc

MAX_PAGE = 1000  # getSignaturesForAddress's own maximum


class ChainHistoryRpc:
    def __init__(self, rpc: SolanaRpc, commitment: str = "confirmed") -> None:
        self.rpc = rpc
        self.commitment = commitment

    def balance(self, address: str) -> tuple[int, int]:
        result = self.rpc.call("getBalance", [address, {"commitment": self.commitment}])
        try:
            value, slot = result["value"], result["context"]["slot"]
        except (KeyError, TypeError) as exc:
            raise Unavailable("Solana RPC answered a malformed balance", reason="rpc") from exc
        if any(isinstance(v, bool) or not isinstance(v, int) for v in (value, slot)):
            raise Unavailable("Solana RPC answered a malformed balance", reason="rpc")
        return value, slot

    def signatures(self, address: str, before: str | None, limit: int) -> list[SignatureInfo]:
        opts = {"limit": max(1, min(int(limit), MAX_PAGE)), "commitment": self.commitment}
        if before:
            opts["before"] = before
        result = self.rpc.call("getSignaturesForAddress", [address, opts])
        if not isinstance(result, list):
            raise Unavailable("Solana RPC answered a malformed signature list", reason="rpc")
        try:
            return [signature_info(e) for e in result]
        except MalformedRpcResult as exc:
            raise Unavailable(f"Solana RPC answered a malformed signature list: {exc}", reason="rpc") from exc

    def transaction(self, signature: str) -> ChainTx | None:
        tx = self.rpc.get_transaction(signature, self.commitment)
        if tx is None:
            return None
        try:
            return summarize(signature, tx)
        except MalformedRpcResult as exc:
            raise Unavailable(f"Solana RPC answered a malformed transaction: {exc}", reason="rpc") from exc
