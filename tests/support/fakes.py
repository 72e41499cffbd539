"""Test doubles for the ports that are not AWS: the chain and the clock."""
from __future__ import annotations

import secrets
from dataclasses import dataclass, field

from chalicelib.domain import keys as base58
from chalicelib.domain.payments import PaymentResult


def new_signature() -> str:
    return base58.encode(secrets.token_bytes(64))


def new_wallet() -> str:
    return base58.encode(secrets.token_bytes(32))


@dataclass
class FakeClock:
    now_ms: int = 1_764_000_000_000

    def __call__(self) -> int:
        return self.now_ms

    def advance(self, seconds: float) -> None:
        self.now_ms += int(seconds * 1000)


@dataclass
class FakeRpc:
    """Payments by signature: (payer wallet, lamports to the treasury, reason override)."""
    payments: dict = field(default_factory=dict)
    calls: int = 0
    down: bool = False

    def pay(self, wallet: str, lamports: int, reason: str | None = None) -> str:
        sig = new_signature()
        self.payments[sig] = (wallet, lamports, reason)
        return sig

    def verify_payment(self, check) -> PaymentResult:
        from chalicelib.domain.errors import Unavailable
        self.calls += 1
        if self.down:
            raise Unavailable("rpc down", reason="rpc")
        if check.signature not in self.payments:
            return PaymentResult(False, 0, "not_found", None, None)
        wallet, lamports, reason = self.payments[check.signature]
        if reason:
            return PaymentResult(False, 0, reason, None, None)
        if wallet != check.wallet:
            return PaymentResult(False, 0, "wrong_payer", None, None)
        if lamports < check.min_lamports:
            return PaymentResult(False, lamports, "insufficient_amount", None, None)
        return PaymentResult(True, lamports, None, check.now_s, 1)

    def health(self) -> bool:
        return not self.down
