"""Renter request signing, as a browser wallet's signMessage would do it: packages/si64/src/si64/renter.py's."""

from __future__ import annotations

from typing import Any

from solders.keypair import Keypair

from si64 import renter


def renter_headers(
    kp: Keypair, method: str, path: str, ts: int | None = None, body: bytes | str = b""
) -> dict[str, Any]:
    return renter.renter_headers(kp, method, path, body, ts)
