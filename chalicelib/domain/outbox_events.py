"""The outbox's events: what a money transaction (or the sweep, or the refusal job) writes for
the webhooks to be told, with an id derived from its cause. Pure Python (docs/adr/0018-webhooks.md)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

from .contracts import ACTIVE, EXPIRED, SETTLED, Contract
from .refunds import CONFIRMED, FAILED, Refund, refund_kind

# --- the outbox: events written inside the money transaction that causes them ----------------
OUTBOX_SHARDS = 4  # the sparse outbox index's partitions (a dispatcher reads each)


def envelope(event_id: str, event_type: str, created_s: int, data: dict[str, Any]) -> dict[str, Any]:
    """The body of a delivery (the same `id` on every retry)."""
    return {"id": event_id, "type": event_type, "created": created_s, "data": data}


@dataclass(frozen=True)
class Event:
    """One outbox event. `event_id` is derived from what caused it (type, contract, version),
    so a transaction sent twice writes it once and a delivery retried carries the same id."""

    event_id: str
    event_type: str
    contract_id: str
    wallet: str  # whose webhooks hear of it (with the admin's)
    created_ms: int
    data: dict[str, Any] = field(default_factory=dict)

    @property
    def outbox_shard(self) -> int:
        return int(hashlib.sha256(self.event_id.encode()).hexdigest()[:8], 16) % OUTBOX_SHARDS

    def body(self) -> dict[str, Any]:
        return envelope(self.event_id, self.event_type, self.created_ms // 1000, self.data)


def event_id(event_type: str, contract_id: str, version: int) -> str:
    digest = hashlib.sha256(f"{event_type}:{contract_id}:{version}".encode()).hexdigest()
    return f"evt_{digest[:32]}"


def contract_data(c: Contract) -> dict[str, Any]:
    """What an event says of a contract: lamports as integers, times in Unix milliseconds."""
    return {
        "contract_id": c.contract_id,
        "wallet": c.wallet,
        "tier": c.tier,
        "device_id": c.device_id,
        "status": c.status,
        "version": c.version,
        "prepaid_lamports": c.received_lamports,
        "used_lamports": c.used_lamports,
        "refund_lamports": c.refund_lamports if c.status != ACTIVE else None,
        "refund_status": c.refund_status,
        "created_at_ms": c.created_at_ms,
        "expires_at_ms": c.expires_at_ms,
        "ended_at_ms": c.ended_at_ms,
    }


def contract_event(event_type: str, c: Contract, now_ms: int) -> Event:
    return Event(
        event_id(event_type, c.contract_id, c.version), event_type, c.contract_id, c.wallet, now_ms, contract_data(c)
    )


def opened_event(c: Contract) -> Event:
    """contract.created, written with the rent's transaction."""
    return contract_event("contract.created", c, c.created_at_ms)


def ended_event(after: Contract) -> Event:
    """contract.settled or contract.expired, written with the transaction that ends it."""
    if after.status not in (SETTLED, EXPIRED):
        raise ValueError(f"a contract that ended is SETTLED or EXPIRED, not {after.status}")
    kind = "contract.settled" if after.status == SETTLED else "contract.expired"
    return contract_event(kind, after, after.ended_at_ms if after.ended_at_ms is not None else after.created_at_ms)


def refund_event(before: Refund, after: Refund, now_ms: int) -> Event | None:
    """refund.confirmed or refund.failed when `after` enters that status (None otherwise),
    written with the refund's own transaction (RefundStore.advance)."""
    if after.status == before.status or after.status not in (CONFIRMED, FAILED):
        return None
    kind = "refund.confirmed" if after.status == CONFIRMED else "refund.failed"
    contract_id = after.refund_id if refund_kind(after.refund_id) == "contract" else ""
    data = {
        "refund_id": after.refund_id,
        "contract_id": contract_id or None,
        "wallet": after.wallet,
        "lamports": after.lamports,
        "status": after.status,
        "tx_signature": after.tx_signature,
        "fee_lamports": after.fee_lamports,
        "reason": after.reason,
        "version": after.version,
    }
    return Event(event_id(kind, after.refund_id, after.version), kind, contract_id, after.wallet, now_ms, data)


# --- contract.low_time: found by the sweep, written with the contract's marker ---------------
LOW_TIME_SHARE = 10  # 10 % of the contract's current duration left …
LOW_TIME_CAP_MS = 10 * 60 * 1000  # … but never more than 10 min ahead
LOW_TIME_FLOOR_MS = 60 * 1000  # the sweep's period on AWS: a shorter warning could fall between two runs


def low_time_threshold_ms(duration_seconds: int) -> int:
    """Time left at which contract.low_time is due: 10 % of the current duration (extensions
    included), at most 10 min, and at least the sweep's period (60 s), so a threshold shorter
    than one period is never missed between two runs. 1 h → 6 min; 10 h → 10 min; 5 min → 60 s
    (a contract of 60 s is told at its first sweep)."""
    return max(min(duration_seconds * 1000 // LOW_TIME_SHARE, LOW_TIME_CAP_MS), LOW_TIME_FLOOR_MS)


LOW_TIME_HORIZON_MS = LOW_TIME_CAP_MS  # the largest threshold: the sweep reads expiries within it


def low_time_due(c: Contract, now_ms: int) -> bool:
    """ACTIVE, not yet at its expiry, at or under its threshold, and not yet told for THIS expiry:
    once per expiry, so an extension (a new expiry) arms it again."""
    left = c.expires_at_ms - now_ms
    return (
        c.status == ACTIVE
        and 0 < left <= low_time_threshold_ms(c.duration_seconds)
        and c.low_time_for_ms != c.expires_at_ms
    )


def low_time_event(c: Contract, now_ms: int) -> Event:
    """contract.low_time for `c` as read (its version: the marker write keeps the version, so the
    id is the same for every sweep that finds this expiry)."""
    data = {
        **contract_data(c),
        "remaining_ms": c.expires_at_ms - now_ms,
        "threshold_ms": low_time_threshold_ms(c.duration_seconds),
    }
    kind = "contract.low_time"
    return Event(event_id(kind, c.contract_id, c.version), kind, c.contract_id, c.wallet, now_ms, data)


# --- payment.refused: derived from the orphan shares the reconciler finds ---------------------
def refused_event(signature: str, payer: str, lamports: int, slot: int, block_time: int | None, now_ms: int) -> Event:
    """payment.refused for one payer's share of a transfer to the treasury that no claim holds
    after the orphan age. Its id comes from the signature and the payer only, so every run of
    the job that finds the same share writes (at most) the same event. The payer's webhooks hear
    of it (with the operator's); it is refundable through POST /api/payments/{tx_signature}/refund."""
    kind = "payment.refused"
    data = {
        "tx_signature": signature,
        "payer": payer,
        "lamports": lamports,
        "slot": slot,
        "block_time": block_time,
        "refund_path": f"/api/payments/{signature}/refund",
    }
    return Event(event_id(kind, f"{signature}/{payer}", 0), kind, "", payer, now_ms, data)
