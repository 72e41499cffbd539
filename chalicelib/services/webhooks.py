"""Webhook registrations: register (the secret shown once), list, remove. An owner is the
operator (`admin`: every event) or a wallet (`wallet:{address}`: its contracts' events)."""

from __future__ import annotations

import builtins
import secrets
from dataclasses import dataclass
from typing import Any

from ..config import Settings
from ..domain import webhooks as W
from ..domain.errors import Conflict, InvalidRequest, NotFound
from ..ports import Clock, DeliveryLog, WebhookStore

ID_PREFIX = "WH-"
SECRET_PREFIX = "whsec_"


@dataclass(frozen=True)
class Registered:
    webhook: W.Webhook

    def body(self) -> dict[str, Any]:
        return {
            **W.public_view(self.webhook),
            "secret": self.webhook.secret,
            "detail": "The secret is shown once: keep it to verify the SI64-Signature of every delivery.",
        }


class Webhooks:
    def __init__(self, store: WebhookStore, clock: Clock, settings: Settings, log: DeliveryLog | None = None) -> None:
        self.store = store
        self.clock = clock
        self.settings = settings
        self.log = log

    def register(self, owner: str, body: dict[str, Any]) -> Registered:
        unknown = sorted(set(body) - {"url", "events"})
        if unknown:
            raise InvalidRequest(f"Unknown field(s): {', '.join(unknown)}.", reason=unknown[0])
        url = W.check_url(body.get("url"), self.settings.webhook_allow_local)
        events = W.check_events(body.get("events"))
        hook = W.Webhook(
            webhook_id=ID_PREFIX + secrets.token_urlsafe(12),
            owner=owner,
            url=url,
            events=events,
            secret=SECRET_PREFIX + secrets.token_urlsafe(32),
            created_at_ms=self.clock(),
        )
        try:
            self.store.add(hook, W.MAX_WEBHOOKS_PER_OWNER)
        except Conflict as exc:
            if "webhooks" in exc.failed:
                raise InvalidRequest(
                    f"At most {W.MAX_WEBHOOKS_PER_OWNER} webhooks per owner; delete one first.", reason="webhooks"
                ) from exc
            raise
        return Registered(hook)

    def list(self, owner: str) -> list[W.Webhook]:
        return self.store.of(owner)

    def remove(self, owner: str, webhook_id: str) -> None:
        if not self.store.remove(owner, webhook_id):
            raise NotFound(f"No webhook {webhook_id} of yours.", reason="webhook_id")

    def deliveries(self, owner: str, webhook_id: str) -> builtins.list[W.Delivery]:
        """The newest deliveries of one of the owner's webhooks (another owner's is not found)."""
        if not any(w.webhook_id == webhook_id for w in self.store.of(owner)):
            raise NotFound(f"No webhook {webhook_id} of yours.", reason="webhook_id")
        return [] if self.log is None else self.log.of(webhook_id)
