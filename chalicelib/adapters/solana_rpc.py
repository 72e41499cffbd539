"""Solana JSON-RPC access for payment verification.

Plain JSON-RPC over `urllib.request` (stdlib only) rather than solana-py's
`AsyncClient`: verification needs two read-only calls whose JSON shapes are
stable and standard, and `make bench` measures cold start — importing
`solana.rpc.async_api` costs ~190 ms in a fresh process, and an event loop per
call (solana-py 0.41 has no sync client) adds more. This module imports
nothing outside the stdlib and the domain (and urllib only on the first
call), so the rent/extend handlers pay no Solana import at all. Sending transactions (refunds) is a different
adapter's job and may use solana-py lazily.

Any failure to get a trustworthy answer — connection refused, timeout, HTTP
error status, a JSON-RPC `error`, a body that is not JSON or not the expected
shape — raises `Unavailable(reason="rpc")`. It is never reported as
`not_found`: a payment must not be refused because the node was down.
"""

from __future__ import annotations

import itertools
import json
from typing import Any

from chalicelib.domain.errors import Unavailable
from chalicelib.domain.payments import PaymentCheck, PaymentResult, verify

_MAX_RESPONSE_BYTES = 8 * 1024 * 1024
_ids = itertools.count(1)


class RpcErrorAnswer(Unavailable):
    """The node answered with a JSON-RPC `error` object (kept in `.error`). Still an
    Unavailable for every caller that does not look closer (e.g. a refused refund)."""

    def __init__(self, detail: str, error: dict[str, Any]) -> None:
        super().__init__(detail, reason="rpc")
        self.error = error


class SolanaRpc:
    def __init__(self, url: str, timeout: float = 5.0) -> None:
        self.url = url
        self.timeout = timeout

    # -- JSON-RPC ----------------------------------------------------------
    def call(self, method: str, params: list[Any] | None = None) -> Any:
        """The `result` of one JSON-RPC call; Unavailable(reason="rpc") on any failure."""
        # imported here: urllib.request pulls in http.client and email (~40-70 ms
        # cold), which only the handlers that verify a payment should pay for
        import http.client
        import urllib.error
        import urllib.request

        request_id = next(_ids)
        body = json.dumps({"jsonrpc": "2.0", "id": request_id, "method": method, "params": params or []}).encode()
        req = urllib.request.Request(
            self.url,
            data=body,
            headers={"Content-Type": "application/json", "Accept": "application/json"},
            method="POST",
        )
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as resp:
                raw = resp.read(_MAX_RESPONSE_BYTES + 1)
        except urllib.error.HTTPError as exc:
            raise Unavailable(f"Solana RPC answered HTTP {exc.code} to {method}", reason="rpc") from exc
        except (
            urllib.error.URLError,
            TimeoutError,
            ConnectionError,
            http.client.HTTPException,
            OSError,
            ValueError,
        ) as exc:
            raise Unavailable(f"Solana RPC unreachable ({method})", reason="rpc") from exc
        if len(raw) > _MAX_RESPONSE_BYTES:
            raise Unavailable(f"Solana RPC answer to {method} is too large", reason="rpc")
        try:
            doc = json.loads(raw)
        except (ValueError, UnicodeDecodeError) as exc:
            raise Unavailable(f"Solana RPC answered non-JSON to {method}", reason="rpc") from exc
        if not isinstance(doc, dict):
            raise Unavailable(f"Solana RPC answered a non-object to {method}", reason="rpc")
        if doc.get("error") is not None:
            err = doc["error"]
            message = err.get("message") if isinstance(err, dict) else str(err)
            raise RpcErrorAnswer(
                f"Solana RPC error on {method}: {message}", err if isinstance(err, dict) else {"message": message}
            )
        if doc.get("id") != request_id or "result" not in doc:
            raise Unavailable(f"Solana RPC answered a malformed response to {method}", reason="rpc")
        return doc["result"]

    # -- queries -----------------------------------------------------------
    def get_transaction(self, signature: str, commitment: str = "confirmed") -> Any:
        return self.call(
            "getTransaction",
            [
                signature,
                {
                    "encoding": "json",
                    "commitment": commitment,
                    "maxSupportedTransactionVersion": 0,
                },
            ],
        )

    def get_signature_status(self, signature: str) -> Any:
        result = self.call("getSignatureStatuses", [[signature], {"searchTransactionHistory": True}])
        try:
            value = result["value"]
            if not isinstance(value, list) or len(value) != 1:
                raise TypeError("value is not a one-element list")
            return value[0]
        except (KeyError, TypeError) as exc:
            raise Unavailable("Solana RPC answered a malformed signature status", reason="rpc") from exc

    def verify_payment(self, check: PaymentCheck) -> PaymentResult:
        """Fetch the payment at `confirmed` and classify it (see domain.payments).

        getSignatureStatuses is asked only when getTransaction returns null, to
        tell a processed-but-not-yet-confirmed transaction from an unknown one.
        """
        return verify(check, self.get_transaction, self.get_signature_status)

    def health(self) -> bool:
        """True when the node answers getHealth with "ok"; never raises."""
        try:
            return bool(self.call("getHealth") == "ok")
        except Unavailable:
            return False
