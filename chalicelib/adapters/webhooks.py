"""ports.WebhookStore in the claims table: one item per owner (`whk#{owner}`), its webhooks as
packed JSON under a write version, so a list is one GetItem and each change one conditional
PutItem. The secrets are stored (a delivery needs them to sign) and never returned by the API
after registration (docs/adr/0018-webhooks.md)."""

from __future__ import annotations

from typing import Any

from .. import jsontext
from ..domain.errors import Conflict
from ..domain.webhooks import Webhook
from .dynamo import guarded, is_conditional_failure
from .models import ClaimItem

KIND = "webhooks"
RACE_RETRIES = 5


def owner_key(owner: str) -> str:
    return f"whk#{owner}"


def _to_json(w: Webhook) -> dict[str, Any]:
    return {
        "id": w.webhook_id,
        "url": w.url,
        "events": list(w.events),
        "secret": w.secret,
        "created_at_ms": w.created_at_ms,
    }


def _from_json(owner: str, d: dict[str, Any]) -> Webhook:
    return Webhook(d["id"], owner, d["url"], tuple(d["events"]), d["secret"], int(d["created_at_ms"]))


class WebhooksRepo:
    def _read(self, owner: str) -> tuple[list[Webhook], int | None]:
        try:
            i = ClaimItem.get(owner_key(owner), consistent_read=True)
        except ClaimItem.DoesNotExist:
            return [], None
        hooks = [_from_json(owner, d) for d in jsontext.loads(i.hooks or "[]")]
        return hooks, int(i.hooks_version or 0)

    def _write(self, owner: str, hooks: list[Webhook], version: int | None, now_ms: int) -> bool:
        item = ClaimItem(
            owner_key(owner),
            kind=KIND,
            hooks=jsontext.dumps([_to_json(w) for w in hooks]),
            hooks_version=(version or 0) + 1,
            created_at_ms=now_ms,
        )
        condition = ClaimItem.pk.does_not_exist() if version is None else (ClaimItem.hooks_version == version)
        try:
            item.save(condition=condition)
        except Exception as exc:
            if not is_conditional_failure(exc):
                raise
            return False
        return True

    @guarded
    def of(self, owner: str) -> list[Webhook]:
        return self._read(owner)[0]

    @guarded
    def add(self, webhook: Webhook, limit: int) -> None:
        for _ in range(RACE_RETRIES):
            hooks, version = self._read(webhook.owner)
            if len(hooks) >= limit:
                raise Conflict(["webhooks"])
            if self._write(webhook.owner, [*hooks, webhook], version, webhook.created_at_ms):
                return
        raise Conflict([], contended=["webhooks"])

    @guarded
    def remove(self, owner: str, webhook_id: str) -> bool:
        for _ in range(RACE_RETRIES):
            hooks, version = self._read(owner)
            kept = [w for w in hooks if w.webhook_id != webhook_id]
            if len(kept) == len(hooks):
                return False
            created = hooks[0].created_at_ms if hooks else 0
            if self._write(owner, kept, version, created):
                return True
        raise Conflict([], contended=["webhooks"])
