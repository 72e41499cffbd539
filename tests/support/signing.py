"""Renter request signing, as a browser wallet's signMessage would do it."""
from __future__ import annotations

import time

from solders.keypair import Keypair


def renter_headers(kp: Keypair, method: str, path: str, ts: int | None = None) -> dict:
    ts = int(time.time()) if ts is None else ts
    sig = kp.sign_message(f"si64:{method} {path}:{ts}".encode())
    return {"X-Wallet": str(kp.pubkey()), "X-Timestamp": str(ts), "X-Signature": str(sig)}
