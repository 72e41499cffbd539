"""Credentials: the renter's signed request, the operator's admin key."""
from __future__ import annotations

from ..adapters.secrets import verify_ed25519
from ..domain import base58
from ..domain.errors import Unauthorized


def renter_message(method: str, path: str, timestamp: str) -> bytes:
    return f"si64:{method} {path}:{timestamp}".encode()


def renter(c, headers, method: str, path: str) -> str:
    """Check X-Wallet / X-Timestamp / X-Signature; returns the wallet."""
    wallet, ts, sig = (headers.get("x-wallet"), headers.get("x-timestamp"), headers.get("x-signature"))
    if not wallet or not ts or not sig:
        raise Unauthorized("X-Wallet, X-Timestamp and X-Signature are required.", reason="missing")
    if not base58.is_pubkey(wallet):
        raise Unauthorized("X-Wallet is not a base58 public key.", reason="X-Wallet")
    if not ts.isdigit() or len(ts) > 12:
        raise Unauthorized("X-Timestamp must be Unix seconds.", reason="X-Timestamp")
    now_s = c.clock() // 1000
    if abs(now_s - int(ts)) > c.settings.signature_window_seconds:
        raise Unauthorized("X-Timestamp is outside the accepted window of ±300 s.", reason="expired")
    if not base58.is_signature(sig) or not verify_ed25519(wallet, renter_message(method, path, ts), sig):
        raise Unauthorized("X-Signature does not verify for X-Wallet.", reason="X-Signature")
    return wallet


def admin(c, headers) -> None:
    if not c.secrets.is_admin(headers.get("x-admin-key")):
        raise Unauthorized("A valid X-Admin-Key header is required.", reason="X-Admin-Key")
