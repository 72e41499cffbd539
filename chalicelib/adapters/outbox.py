"""The webhook outbox in the claims table: an event is an item `evt#{event_id}` written INSIDE
the money transaction that causes it (adapters/transactions.py `outbox_put`), found by a
dispatcher through the sparse `outbox` index (`outbox_shard`, `created_at_ms`) and taken out
of the index once dispatched (`outbox_shard` removed)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .. import jsontext
from ..domain.webhooks import Event
from .dynamo import guarded, is_conditional_failure
from .models import ClaimItem

if TYPE_CHECKING:  # types only
    from .transactions import _Tx

KIND = "event"


def event_key(event_id: str) -> str:
    return f"evt#{event_id}"


def event_item(e: Event) -> ClaimItem:
    return ClaimItem(
        event_key(e.event_id),
        kind=KIND,
        contract_id=e.contract_id,
        wallet=e.wallet,
        event_type=e.event_type,
        event_data=jsontext.dumps(e.data),
        outbox_shard=e.outbox_shard,
        created_at_ms=e.created_ms,
    )


def outbox_put(tx: _Tx, e: Event) -> None:
    """One more item of a money transaction: the event, new (a transaction sent twice, or a
    replay, finds it there and fails on the item that guards the money anyway)."""
    tx.save("outbox", event_item(e), ClaimItem.pk.does_not_exist())


def _event(i: ClaimItem) -> Event:
    return Event(
        i.pk.removeprefix("evt#"),
        i.event_type or "",
        i.contract_id or "",
        i.wallet or "",
        int(i.created_at_ms),
        jsontext.loads(i.event_data or "{}"),
    )


class OutboxRepo:
    """ports.Outbox on DynamoDB."""

    @guarded
    def pending(self, shard: int, limit: int) -> list[Event]:
        return [_event(i) for i in ClaimItem.outbox.query(shard, limit=limit, scan_index_forward=True)][:limit]

    @guarded
    def get(self, event_id: str) -> Event | None:
        try:
            return _event(ClaimItem.get(event_key(event_id), consistent_read=True))
        except ClaimItem.DoesNotExist:
            return None

    @guarded
    def add(self, event: Event) -> bool:
        try:
            event_item(event).save(condition=ClaimItem.pk.does_not_exist())
        except Exception as exc:
            if not is_conditional_failure(exc):
                raise
            return False
        return True

    @guarded
    def mark_dispatched(self, event_id: str, now_ms: int) -> bool:
        try:
            ClaimItem(event_key(event_id)).update(
                actions=[ClaimItem.outbox_shard.remove(), ClaimItem.dispatched_at_ms.set(now_ms)],
                condition=ClaimItem.outbox_shard.exists(),
            )
        except Exception as exc:
            if not is_conditional_failure(exc):
                raise
            return False
        return True
