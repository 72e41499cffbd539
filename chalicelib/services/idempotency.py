"""Idempotency-Key, as a service over ClaimStore and Clock (ADR 0009).

Stripe semantics without check-then-act (as Powertools' idempotency utility): the key is taken
by ONE conditional write of an in-progress record BEFORE the request runs; a concurrent
duplicate meets that record and gets 409 idempotency_in_progress (it never runs); the answer
replaces the record and is replayed for 24 h (same body) or refused with 409
idempotency_mismatch (another body). A failed request (an error answer, a 5xx, an exception)
deletes the record: a retry runs again. A crash leaves the record until its lease ends
(SI64_IDEMPOTENCY_LEASE_SECONDS, above the Lambda timeout); then it may be taken.

HTTP-free: the edge hands over the scope (the principal, method, route, parameters, key), the
raw body and a `run()` giving an answer with `status_code` and a text `body`.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from ..domain import errors as e
from ..domain.errors import IdempotencyInProgress as IdempotencyInProgress  # the edge maps them (api/errors)
from ..domain.errors import IdempotencyMismatch as IdempotencyMismatch
from ..domain.records import Replay

if TYPE_CHECKING:  # types only: importing the Protocols costs cold-start time
    from ..ports import ClaimStore, Clock

log = logging.getLogger("si64.api")
MAX_KEY_CHARS = 255


class Answer(Protocol):
    status_code: int
    body: Any


AnswerT = TypeVar("AnswerT", bound=Answer)


def check_key(key: str | None) -> str | None:
    """The Idempotency-Key as sent (None: none); InvalidRequest unless 1 to MAX_KEY_CHARS characters."""
    if key is not None and (not key or len(key) > MAX_KEY_CHARS):
        raise e.InvalidRequest(f"Idempotency-Key must be 1 to {MAX_KEY_CHARS} characters.", reason="Idempotency-Key")
    return key


@dataclass(frozen=True)
class Idempotency:
    """claims: the replay records (`begin_replay`, `finish_replay`, `release_replay`).
    clock: now, in Unix milliseconds."""

    claims: ClaimStore
    clock: Clock

    def run(
        self, scope: str, raw: bytes, method: str, lease_seconds: int, run: Callable[[], AnswerT]
    ) -> AnswerT | Replay:
        """`run()`'s answer, run at most once per `scope` (which names the key); a stored
        Replay when this scope already answered with the same body."""
        body_hash = hashlib.sha256(method.encode() + b" " + raw).hexdigest()
        scoped = hashlib.sha256(scope.encode()).hexdigest()
        started = self.clock()
        seen = self.claims.begin_replay(scoped, body_hash, started, lease_seconds * 1000)
        if seen is not None:
            return self._replayed(seen, body_hash)
        try:
            answer = run()
        except Exception:
            self._release(scoped, started)
            raise
        if answer.status_code >= 400:
            self._release(scoped, started)
            return answer
        try:
            body = answer.body
            stored = self.claims.finish_replay(
                scoped, Replay(body_hash, answer.status_code, body), started, self.clock()
            )
        except Exception:  # the request committed: its client gets its answer whatever the record does
            log.exception("idempotency: storing the answer failed")
            stored = False
        if not stored:  # committed, answered; the key stays in progress until its lease ends
            log.warning("idempotency: the answer of a request was not stored (lease lost or table down)")
        return answer

    @staticmethod
    def _replayed(seen: Replay, body_hash: str) -> Replay:
        if seen.body_hash != body_hash:
            raise IdempotencyMismatch("This Idempotency-Key was used with a different body.", reason="Idempotency-Key")
        if seen.in_progress:
            raise IdempotencyInProgress(
                "A request with this Idempotency-Key is still in progress; retry shortly.", reason="Idempotency-Key"
            )
        return seen

    def _release(self, scoped: str, started: int) -> None:
        try:
            self.claims.release_replay(scoped, started)
        except Exception:  # the lease ends on its own; never mask the answer
            log.warning("idempotency: could not release a key; it frees itself when its lease ends", exc_info=True)
