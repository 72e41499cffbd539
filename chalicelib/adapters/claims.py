"""Claims table: payment claims (`sig#…`) and idempotency records (`idem#…`)."""
from __future__ import annotations

from .. import jsontext
from ..domain.records import Claim, Replay
from .dynamo import guarded, is_conditional_failure
from .models import ClaimItem

IDEMPOTENCY_TTL_MS = 24 * 3600 * 1000


def claim_item(c: Claim, now_ms: int) -> ClaimItem:
    return ClaimItem(f"sig#{c.signature}", kind=c.kind, contract_id=c.contract_id, wallet=c.wallet,
                     request=c.request, response=jsontext.dumps(c.response),
                     created_at_ms=now_ms)


class ClaimsRepo:
    @guarded
    def get_claim(self, signature: str) -> Claim | None:
        try:
            i = ClaimItem.get(f"sig#{signature}", consistent_read=True)
        except ClaimItem.DoesNotExist:
            return None
        return Claim(signature, i.kind, i.contract_id, i.wallet, i.request, jsontext.loads(i.response))

    @guarded
    def get_replay(self, key: str, now_ms: int) -> Replay | None:
        try:
            i = ClaimItem.get(f"idem#{key}", consistent_read=True)
        except ClaimItem.DoesNotExist:
            return None
        if i.expires_at_ms is not None and int(i.expires_at_ms) <= now_ms:
            return None  # TTL deletion is best-effort: filter on the expiry ourselves
        return Replay(i.request, int(i.status), i.response)

    @guarded
    def put_replay(self, key: str, replay: Replay, now_ms: int) -> Replay | None:
        """Record the first response for `key`; returns the one already there if we lost a race."""
        expires = now_ms + IDEMPOTENCY_TTL_MS
        item = ClaimItem(f"idem#{key}", kind="idempotency", request=replay.body_hash, status=replay.status,
                         response=replay.response, created_at_ms=now_ms, expires_at_ms=expires,
                         ttl=expires // 1000)
        try:
            item.save(condition=ClaimItem.pk.does_not_exist() | (ClaimItem.expires_at_ms <= now_ms))
        except Exception as exc:
            if is_conditional_failure(exc):
                return self.get_replay(key, now_ms)
            raise
        return None
