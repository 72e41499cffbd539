"""ports.DeliveryLog in the claims table: one item per webhook (`dlv#{webhook_id}`), its newest
deliveries as packed JSON under a write version (the `hooks`/`hooks_version` attributes the
webhook registrations use), written by an UpdateItem conditioned on that version. ~170 bytes a
delivery, at most domain.webhooks.DELIVERY_LOG_KEEP (10) of them: under 2 KB, so a record costs
2 WCU (and its GetItem 1 RCU); `make bench` measures it (dev/bench/webhooks.py)."""

from __future__ import annotations

from .. import jsontext
from ..domain.errors import Conflict
from ..domain.webhooks import Delivery, delivery_from_json, delivery_to_json, logged
from .dynamo import guarded, is_conditional_failure
from .models import ClaimItem

KIND = "deliveries"
RACE_RETRIES = 5


def log_key(webhook_id: str) -> str:
    return f"dlv#{webhook_id}"


class DeliveryLogRepo:
    def _read(self, webhook_id: str) -> tuple[list[Delivery], int | None]:
        try:
            i = ClaimItem.get(log_key(webhook_id), consistent_read=True)
        except ClaimItem.DoesNotExist:
            return [], None
        return [delivery_from_json(j) for j in jsontext.loads(i.hooks or "[]")], int(i.hooks_version or 0)

    @guarded
    def of(self, webhook_id: str) -> list[Delivery]:
        return self._read(webhook_id)[0]

    @guarded
    def record(self, webhook_id: str, entry: Delivery) -> None:
        for _ in range(RACE_RETRIES):
            entries, version = self._read(webhook_id)
            packed = jsontext.dumps([delivery_to_json(d) for d in logged(entries, entry)])
            condition = (
                ClaimItem.hooks_version.does_not_exist() if version is None else (ClaimItem.hooks_version == version)
            )
            try:
                ClaimItem(log_key(webhook_id)).update(
                    actions=[
                        ClaimItem.kind.set(KIND),
                        ClaimItem.hooks.set(packed),
                        ClaimItem.hooks_version.set((version or 0) + 1),
                        ClaimItem.created_at_ms.set(entry.updated_ms),
                    ],
                    condition=condition,
                )
            except Exception as exc:
                if not is_conditional_failure(exc):
                    raise
                continue
            return
        raise Conflict([], contended=["deliveries"])
