"""The exact strings a renter signs (docs/api.md, "Credentials" and "Binding a payment").

One source for them: `si64_protocol` (packages/si64/src/si64_protocol, shipped in the
Lambda package through vendor/), used by the server that verifies and by every client
that signs. Pure Python.
"""

from __future__ import annotations

from si64_protocol import MEMO_PREFIX, extend_memo, refund_memo, rent_memo, renter_message

__all__ = ["MEMO_PREFIX", "extend_memo", "refund_memo", "rent_memo", "renter_message"]
