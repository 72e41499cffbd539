"""Claims table: payment claims (`sig#{signature}#{payer}`), Idempotency-Key records (`idem#…`) and the
fleet-wide rate-limit windows (`rl#…`). ADR 0009 describes the last two."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pynamodb.constants import UPDATED_NEW

from .. import jsontext
from ..domain.storage import IDEMPOTENCY_DONE as DONE
from ..domain.storage import IDEMPOTENCY_PENDING as PENDING
from ..domain.storage import IDEMPOTENCY_TTL_MS, rate_key
from .dynamo import guarded, is_conditional_failure
from .models import ClaimItem

if TYPE_CHECKING:  # the records' module loads with the first claim or replay, not with the rate limit
    from ..domain.records import Claim, Replay

RATE_WINDOW_GRACE_S = 60  # a window item lives this long past its window (TTL deletes it later)


def claim_item(c: Claim, now_ms: int) -> ClaimItem:
    from ..domain.records import claim_key

    return ClaimItem(
        claim_key(c.signature, c.wallet),
        kind=c.kind,
        contract_id=c.contract_id,
        wallet=c.wallet,
        request=c.request,
        response=jsontext.dumps(c.response),
        created_at_ms=now_ms,
    )


def _replay(i: ClaimItem) -> Replay:
    from ..domain.records import Replay

    if i.kind == PENDING:
        return Replay(i.request, 0, "", in_progress=True)
    return Replay(i.request, int(i.status), i.response)


class ClaimsRepo:
    @guarded
    def get_claim(self, signature: str, payer: str) -> Claim | None:
        from ..domain.records import Claim, claim_key

        try:
            i = ClaimItem.get(claim_key(signature, payer), consistent_read=True)
        except ClaimItem.DoesNotExist:
            return None
        return Claim(signature, i.kind, i.contract_id, i.wallet, i.request, jsontext.loads(i.response))

    # -- Idempotency-Key records -----------------------------------------------------------
    # One item per scoped key. `expires_at_ms` is when the record stops counting: 24 h after
    # the answer for a finished record (kind DONE), the end of the lease for one in progress
    # (kind PENDING), so "live" is one comparison for both, in the condition and on reads
    # (TTL deletion is best-effort and late). `created_at_ms` of a PENDING record is the
    # start of the request that holds it: finish and release are conditional on it.

    @guarded
    def get_replay(self, key: str, now_ms: int) -> Replay | None:
        try:
            i = ClaimItem.get(f"idem#{key}", consistent_read=True)
        except ClaimItem.DoesNotExist:
            return None
        if i.expires_at_ms is not None and int(i.expires_at_ms) <= now_ms:
            return None  # TTL deletion is best-effort: filter on the expiry ourselves
        return _replay(i)

    @guarded
    def begin_replay(self, key: str, body_hash: str, now_ms: int, lease_ms: int) -> Replay | None:
        """One conditional PutItem: the in-progress record, unless a live one is there."""
        item = ClaimItem(
            f"idem#{key}",
            kind=PENDING,
            request=body_hash,
            created_at_ms=now_ms,
            expires_at_ms=now_ms + lease_ms,
            ttl=(now_ms + IDEMPOTENCY_TTL_MS) // 1000,
        )
        try:
            item.save(condition=ClaimItem.pk.does_not_exist() | (ClaimItem.expires_at_ms <= now_ms))
        except Exception as exc:
            if not is_conditional_failure(exc):
                raise
            from ..domain.records import Replay

            seen = self.get_replay(key, now_ms)
            # gone between our write and our read (released, or just expired): report it as
            # still in progress; the client retries and takes it then
            return seen or Replay(body_hash, 0, "", in_progress=True)
        return None

    @guarded
    def finish_replay(self, key: str, replay: Replay, started_ms: int, now_ms: int) -> bool:
        expires = now_ms + IDEMPOTENCY_TTL_MS
        item = ClaimItem(
            f"idem#{key}",
            kind=DONE,
            request=replay.body_hash,
            status=replay.status,
            response=replay.response,
            created_at_ms=now_ms,
            expires_at_ms=expires,
            ttl=expires // 1000,
        )
        try:
            item.save(condition=(ClaimItem.kind == PENDING) & (ClaimItem.created_at_ms == started_ms))
        except Exception as exc:
            if is_conditional_failure(exc):
                return False
            raise
        return True

    @guarded
    def release_replay(self, key: str, started_ms: int) -> None:
        try:
            ClaimItem(f"idem#{key}").delete(
                condition=(ClaimItem.kind == PENDING) & (ClaimItem.created_at_ms == started_ms)
            )
        except Exception as exc:
            if not is_conditional_failure(exc):
                raise

    # -- rate-limit windows ------------------------------------------------------------------
    @guarded
    def count_request(self, subject: str, window_start_ms: int, window_ms: int, limit: int, n: int = 1) -> int | None:
        """One conditional UpdateItem on `rl#{subject}#{window_start_ms}` (< 100 bytes: 1 WCU):
        ADD hits :n unless that would pass `limit`, the new count returned (UPDATED_NEW). The
        key changes with the window, so no old count is ever read or reset (ADR 0020)."""
        if n < 1:
            raise ValueError(f"n must be >= 1, not {n}")
        if n > limit:
            return None  # cannot fit: `hits <= limit - n` would still pass on a new item
        try:
            data = ClaimItem._get_connection().update_item(
                rate_key(subject, window_start_ms),
                actions=[
                    ClaimItem.hits.add(n),
                    ClaimItem.kind.set("rate"),
                    ClaimItem.created_at_ms.set(window_start_ms),
                    ClaimItem.ttl.set((window_start_ms + window_ms) // 1000 + RATE_WINDOW_GRACE_S),
                ],
                condition=ClaimItem.hits.does_not_exist() | (ClaimItem.hits <= limit - n),
                return_values=UPDATED_NEW,
            )
        except Exception as exc:
            if is_conditional_failure(exc):
                return None
            raise
        return int(data["Attributes"]["hits"]["N"])
