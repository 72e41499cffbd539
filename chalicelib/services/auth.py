"""Credentials: the renter's signed request, a device's key, the operator's admin key."""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..domain import keys
from ..domain.commands import RenterCredentials
from ..domain.errors import Unauthorized
from ..domain.records import hash_device_key
from ..domain.signing import renter_message

if TYPE_CHECKING:  # types only: importing the Protocols costs cold-start time
    from ..domain.devices import Device
    from ..ports import Clock, DeviceStore, Secrets, SignatureVerifier

__all__ = ["Auth", "RenterCredentials"]


@dataclass(frozen=True)
class Auth:
    """Who is calling.

    secrets:          the operator key check (`is_admin`).
    clock:            now, in Unix milliseconds (the signature window).
    verify_signature: ed25519 check of (base58 pubkey, message, base58 signature) → bool.
    window_seconds:   how far X-Timestamp may be from now (docs/api.md: ±300 s).
    devices:          device reads (`get`), for the device-key check of `device`.
    """

    secrets: Secrets
    clock: Clock
    verify_signature: SignatureVerifier
    devices: DeviceStore
    window_seconds: int = 300

    def renter(self, creds: RenterCredentials, method: str, path: str, body: bytes = b"") -> str:
        """The wallet that signed `domain.signing.renter_message(method, path, ts, body)`
        (the body hash is in the message when the raw body is not empty); Unauthorized otherwise."""
        if not keys.is_pubkey(creds.wallet):
            raise Unauthorized("X-Wallet is not a base58 public key.", reason="X-Wallet")
        ts = creds.timestamp
        if not (ts.isascii() and ts.isdigit()) or len(ts) > 12:
            raise Unauthorized("X-Timestamp must be Unix seconds.", reason="X-Timestamp")
        if abs(self.clock() // 1000 - int(ts)) > self.window_seconds:
            raise Unauthorized(
                f"X-Timestamp is outside the accepted window of ±{self.window_seconds} s.", reason="expired"
            )
        message = renter_message(method, path, ts, body)
        if not keys.is_signature(creds.signature) or not self.verify_signature(creds.wallet, message, creds.signature):
            raise Unauthorized("X-Signature does not verify for X-Wallet.", reason="X-Signature")
        return creds.wallet

    def device(self, key: str | None) -> str:
        """The device whose key this is (one read of the device); Unauthorized otherwise."""
        return self.device_record(key).device_id

    def device_record(self, key: str | None) -> Device:
        """The device whose key this is, as read (one read; none for a malformed key);
        Unauthorized otherwise."""
        from .telemetry import device_of_key

        return self.key_of(self.devices.get(device_of_key(key)), key)

    @staticmethod
    def key_of(device: Device | None, key: str | None) -> Device:
        """`device` if `key` is its key (no read: the caller read it); Unauthorized otherwise."""
        if not (key and device and device.key_hash and hmac.compare_digest(device.key_hash, hash_device_key(key))):
            raise Unauthorized("The device key is not valid.", reason="X-Device-Key")
        return device

    def admin(self, presented: str | None) -> None:
        """Unauthorized unless `presented` is the operator key."""
        if not self.secrets.is_admin(presented):
            raise Unauthorized("A valid X-Admin-Key header is required.", reason="X-Admin-Key")
