"""The webhook delivery log: each webhook's newest deliveries and their status, as
`GET /api/webhooks/{id}/deliveries` and `si64 webhooks` show them. Pure Python."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

# --- the delivery log: what `GET /api/webhooks/{id}/deliveries` and `si64 webhooks` show ------
PENDING, DELIVERED, FAILING, GIVEN_UP = "pending", "delivered", "failing", "given_up"
DELIVERY_STATUSES = (PENDING, DELIVERED, FAILING, GIVEN_UP)
DELIVERY_LOG_KEEP = 10  # the newest deliveries kept per webhook (the log item stays under 2 KB: 2 WCU a record)
MAX_ERROR_CHARS = 120


@dataclass(frozen=True)
class Delivery:
    """One event's delivery to one webhook, as last recorded: pending (queued by the dispatcher),
    delivered (a 2xx), failing (`attempts` so far, the next at `next_try_ms`) or given_up (24 h)."""

    event_id: str
    event_type: str
    status: str
    attempts: int
    event_created_ms: int
    updated_ms: int
    next_try_ms: int | None = None
    last_status: int | None = None  # the receiver's HTTP status (None: no answer)
    last_error: str | None = None


def logged(entries: list[Delivery], entry: Delivery, keep: int = DELIVERY_LOG_KEEP) -> list[Delivery]:
    """The log with `entry` recorded, newest first, at most `keep`: it replaces the same event's
    entry, except that `pending` (a dispatch sent again) never hides an outcome already known."""
    old = next((d for d in entries if d.event_id == entry.event_id), None)
    if old is not None and entry.status == PENDING and old.status != PENDING:
        return entries[:keep]
    rest = [d for d in entries if d.event_id != entry.event_id]
    return [entry, *rest][:keep]


def delivery_view(d: Delivery) -> dict[str, Any]:
    """A delivery as the API shows it (times in Unix seconds)."""
    return {
        "event_id": d.event_id,
        "type": d.event_type,
        "status": d.status,
        "attempts": d.attempts,
        "next_try_at": None if d.next_try_ms is None else d.next_try_ms // 1000,
        "last_status": d.last_status,
        "last_error": d.last_error,
        "event_created": d.event_created_ms // 1000,
        "updated_at": d.updated_ms // 1000,
    }


def delivery_to_json(d: Delivery) -> dict[str, Any]:
    return {
        "e": d.event_id,
        "t": d.event_type,
        "s": d.status,
        "n": d.attempts,
        "c": d.event_created_ms,
        "u": d.updated_ms,
        "x": d.next_try_ms,
        "h": d.last_status,
        "r": d.last_error,
    }


def delivery_from_json(j: dict[str, Any]) -> Delivery:
    return Delivery(j["e"], j["t"], j["s"], int(j["n"]), int(j["c"]), int(j["u"]), j.get("x"), j.get("h"), j.get("r"))
