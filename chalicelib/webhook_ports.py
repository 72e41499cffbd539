"""Ports of the webhook side (see `chalicelib/ports.py` for the rules every implementation
honours): registrations and the outbox the money transactions write. `ports` re-exports each."""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:  # pragma: no cover - types only
    from .domain.webhooks import Delivery, Event, Webhook


class WebhookStore(Protocol):
    """Webhook registrations, one small item per owner (`admin` or `wallet:{address}`) holding
    at most `limit` webhooks: listing an owner's, and finding who to tell of an event (the
    admin's and the contract wallet's), is one read each."""

    def of(self, owner: str) -> list[Webhook]:
        """The owner's webhooks (strongly consistent), oldest first; [] when none."""

    def add(self, webhook: Webhook, limit: int) -> None:
        """Add `webhook` to its owner's list in one conditional write; Conflict(["webhooks"]) and
        nothing written when the owner already has `limit`. A lost race is retried inside."""

    def remove(self, owner: str, webhook_id: str) -> bool:
        """Remove one of the owner's webhooks in one conditional write; False (nothing written)
        when the owner has no such webhook."""


class Outbox(Protocol):
    """Webhook events written inside the money transactions (`Transactions` writes them:
    contract.created with `open_rental`, contract.settled/expired with `end_rental`), read
    back by a dispatcher from a sparse index: never a scan."""

    def pending(self, shard: int, limit: int) -> list[Event]:
        """Events of `shard` (domain.webhooks.OUTBOX_SHARDS) not yet dispatched, oldest first."""

    def get(self, event_id: str) -> Event | None:
        """One event (dispatched or not), or None."""

    def add(self, event: Event) -> bool:
        """Put an event that no money transaction carries (payment.refused, derived after the
        fact) in one conditional write: False, and nothing written, when it is already there."""

    def mark_dispatched(self, event_id: str, now_ms: int) -> bool:
        """Take the event out of the pending index (one conditional update); False when it was
        not pending (another dispatcher did it, or no such event)."""


class DeliveryLog(Protocol):
    """Each webhook's newest deliveries (domain.webhooks.DELIVERY_LOG_KEEP), one small item per
    webhook: reading it is one read, recording one conditional write (a lost race is read again
    and retried inside)."""

    def of(self, webhook_id: str) -> list[Delivery]:
        """The webhook's deliveries, newest first; [] when none."""

    def record(self, webhook_id: str, entry: Delivery) -> None:
        """Record `entry` (domain.webhooks.logged: it replaces the same event's entry, the oldest
        beyond the limit drop out) in one conditional write."""
