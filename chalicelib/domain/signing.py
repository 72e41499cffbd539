"""The exact strings a renter signs (docs/api.md, "Credentials" and "Binding a payment").

One place for them, used by the server that verifies and by every client
(`local/`, tests) that signs. Pure Python.
"""

from __future__ import annotations

import hashlib

MEMO_PREFIX = "si64"


def renter_message(method: str, path: str, timestamp: str, body: bytes = b"") -> bytes:
    """`si64:{METHOD} {PATH}:{X-Timestamp}`, plus `:{sha256 hex of the raw body}` when the
    body is not empty. PATH is the route's path as docs/api.md writes it (no stage, no query)."""
    text = f"{MEMO_PREFIX}:{method.upper()} {path}:{timestamp}"
    if body:
        text += ":" + hashlib.sha256(body).hexdigest()
    return text.encode()


def rent_memo(tier: str, duration_seconds: int) -> str:
    """The memo that binds a payment to a rental of `tier` for `duration_seconds`."""
    return f"{MEMO_PREFIX}:rent:{tier}:{duration_seconds}"


def extend_memo(contract_id: str, additional_seconds: int) -> str:
    """The memo that binds a payment to an extension of `contract_id`."""
    return f"{MEMO_PREFIX}:extend:{contract_id}:{additional_seconds}"


def refund_memo(refund_id: str) -> str:
    """The memo the treasury puts on a refund transfer (a contract id, or a payment refund id)."""
    return f"{MEMO_PREFIX}:refund:{refund_id}"
