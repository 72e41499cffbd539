"""What a caller asks for, once the edge has parsed it. Pure Python.

`fingerprint()` is the identity of a request for replays: the same payment
presented again with the same terms gets the first answer, with other terms
409 `payment_already_used`.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class RentRequest:
    wallet: str
    tier: str
    seconds: int
    tx_signature: str

    def fingerprint(self) -> str:
        return f"rent|{self.wallet}|{self.tier}|{self.seconds}"


@dataclass(frozen=True)
class ExtendRequest:
    contract_id: str
    seconds: int
    tx_signature: str

    def fingerprint(self) -> str:
        return f"extend|{self.contract_id}|{self.seconds}"


@dataclass(frozen=True)
class RenterCredentials:
    """The three renter headers (X-Wallet, X-Timestamp, X-Signature), all present;
    services.auth.Auth.renter checks them."""

    wallet: str
    timestamp: str
    signature: str
