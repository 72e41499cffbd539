"""Pure key functions and record kinds shared by the storage adapters and their fakes, so
both derive the same keys from the same code: the shard of a contract (or refund), and the
claims table's Idempotency-Key records and rate-limit windows (ADR 0009)."""

from __future__ import annotations

IDEMPOTENCY_TTL_MS = 24 * 3600 * 1000  # a finished Idempotency-Key answer is kept this long
IDEMPOTENCY_DONE = "idempotency"  # `kind` of a finished Idempotency-Key record
IDEMPOTENCY_PENDING = "idempotency-pending"  # `kind` of one whose request is still running


def shard_of(contract_id: str, shards: int) -> int:
    """The shard (of the active-by-expiry index and the book's counters) of a contract id."""
    return sum(contract_id.encode()) % max(1, shards)


def rate_key(subject: str, window_start_ms: int) -> str:
    """The claims-table key of `subject`'s rate-limit window starting at `window_start_ms`."""
    return f"rl#{subject}#{window_start_ms}"
