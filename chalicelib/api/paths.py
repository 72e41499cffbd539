"""What the edge checks before any body is parsed: the body's size bound and a path's
contract id. Small on purpose: every request loads it (the body schemas load on first use)."""

from __future__ import annotations

from ..domain.errors import NotFound

MAX_BODY_BYTES = 64 * 1024


def contract_id(value: str) -> str:
    """A path id that cannot name a contract is simply not found (404), like an unknown one."""
    if (
        not isinstance(value, str)
        or not value.startswith("CTR-")
        or not (20 <= len(value) <= 64)
        or not value.isascii()
        or not all(c.isalnum() or c in "-_" for c in value[4:])
    ):
        raise NotFound("No such contract.", reason="contract_id")
    return value
