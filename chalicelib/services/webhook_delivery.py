"""Webhook delivery, after the money moved: never on a money path.

`dispatch()` (a scheduled job) reads the outbox's pending events from its sparse index, finds
the webhooks that asked for each (the operator's, and the contract wallet's), puts one delivery
message per webhook on the webhook queue, and only then takes the event out of the index: a
crash in between sends it again (at least once; receivers dedupe on the event `id`).

`deliver(message)` (the queue's function) POSTs the event, signed, with a 5 s timeout, after
resolving the host and refusing it when ANY address is private/loopback/link-local (unless
local). Not 2xx, a timeout or a refused address: the message is queued again with exponential
backoff (`retry_delay`), the same event id, until 24 h after the event, then given up.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any, Protocol
from urllib.parse import urlsplit

from .. import jsontext
from ..config import Settings
from ..domain import webhooks as W
from ..domain.errors import Conflict, InvalidRequest, Unavailable
from ..ports import Clock, DeliveryLog, Outbox, WebhookStore

log = logging.getLogger("si64.webhooks")
TIMEOUT_SECONDS = 5.0
GIVE_UP_AFTER_MS = 24 * 3600 * 1000
MAX_DELAY_SECONDS = 900  # SQS's longest DelaySeconds; a longer wait is chained


class WebhookQueue(Protocol):
    def send_delivery(self, message: dict[str, Any], delay_seconds: int) -> bool:
        """Queue one delivery message; False (never raises) when the queue did not answer."""


class WebhookSender(Protocol):
    def resolve(self, host: str, port: int) -> list[str]:
        """Every address `host` resolves to (empty when it does not resolve)."""

    def post(self, url: str, address: str, body: bytes, headers: dict[str, str], timeout: float) -> int:
        """POST `body` to `url`, connecting to `address` (the checked one), TLS checked against
        the URL's host; the HTTP status. Raises OSError on a timeout or a refused connection."""


def retry_delay(attempt: int, base_seconds: int) -> int:
    """Seconds before attempt `attempt + 1`: base, 2×base, 4×base, … (capped by the caller's
    chaining at MAX_DELAY_SECONDS per message)."""
    return base_seconds << min(attempt, 20)


@dataclass
class DispatchReport:
    events: int = 0
    deliveries: int = 0
    unsent: int = 0


@dataclass
class DeliveryOutcome:
    outcome: str  # delivered, retry, gave_up, dropped
    status: int | None = None
    detail: str = ""
    attempt: int = 0
    log: list[str] = field(default_factory=list)


class WebhookDelivery:
    def __init__(
        self,
        outbox: Outbox,
        hooks: WebhookStore,
        queue: WebhookQueue,
        sender: WebhookSender,
        clock: Clock,
        settings: Settings,
        delivery_log: DeliveryLog | None = None,
    ) -> None:
        self.outbox, self.hooks, self.queue, self.sender = outbox, hooks, queue, sender
        self.clock, self.settings, self.delivery_log = clock, settings, delivery_log

    def _record(
        self,
        hook: W.Webhook,
        event: W.Event,
        status: str,
        attempts: int,
        next_try_ms: int | None = None,
        last_status: int | None = None,
        last_error: str | None = None,
    ) -> None:
        """Best effort: the log is for people; a delivery never waits on it or fails by it."""
        if self.delivery_log is None:
            return
        entry = W.Delivery(
            event.event_id,
            event.event_type,
            status,
            attempts,
            event.created_ms,
            self.clock(),
            next_try_ms,
            last_status,
            last_error,
        )
        try:
            self.delivery_log.record(hook.webhook_id, entry)
        except (Unavailable, Conflict) as exc:
            log.warning("delivery log not written webhook=%s event=%s: %s", hook.webhook_id, event.event_id, exc)

    def targets(self, event: W.Event, read: dict[str, list[W.Webhook]] | None = None) -> list[W.Webhook]:
        """The webhooks that asked for `event`; `read`: the owners' webhooks already read (by
        this dispatch run), each owner read at most once into it."""
        read = {} if read is None else read
        owners = [W.ADMIN_OWNER, *([W.wallet_owner(event.wallet)] if event.wallet else [])]
        for owner in owners:
            if owner not in read:
                read[owner] = self.hooks.of(owner)
        return [w for owner in owners for w in read[owner] if event.event_type in w.events]

    def dispatch(self, limit: int = 100) -> DispatchReport:
        """One run: every pending event, each owner's webhooks read once for the whole run (a
        webhook added meanwhile gets the events of the next run on)."""
        report = DispatchReport()
        read: dict[str, list[W.Webhook]] = {}
        for shard in range(W.OUTBOX_SHARDS):
            for event in self.outbox.pending(shard, limit):
                sent = True
                for hook in self.targets(event, read):
                    msg = {"event_id": event.event_id, "owner": hook.owner, "webhook_id": hook.webhook_id, "attempt": 0}
                    if self.queue.send_delivery(msg, 0):
                        report.deliveries += 1
                        self._record(hook, event, W.PENDING, 0)
                    else:
                        sent = False
                if not sent:
                    report.unsent += 1  # stays pending: the next run sends it again
                    continue
                self.outbox.mark_dispatched(event.event_id, self.clock())
                report.events += 1
        return report

    def deliver(self, message: dict[str, Any]) -> DeliveryOutcome:
        event = self.outbox.get(str(message["event_id"]))
        hook = next((w for w in self.hooks.of(str(message["owner"])) if w.webhook_id == message["webhook_id"]), None)
        attempt = int(message.get("attempt", 0))
        if event is None or hook is None:
            return DeliveryOutcome("dropped", detail="the event or the webhook is gone", attempt=attempt)
        now = self.clock()
        not_before = int(message.get("not_before_ms", 0))
        if not_before > now:  # a backoff longer than one SQS delay: wait again
            self._requeue(message, attempt, not_before, now)
            return DeliveryOutcome("retry", detail="waiting", attempt=attempt)
        status, detail = self._post(event, hook)
        if status is not None and 200 <= status < 300:
            log.info("webhook delivered event=%s webhook=%s attempt=%d", event.event_id, hook.webhook_id, attempt)
            self._record(hook, event, W.DELIVERED, attempt + 1, last_status=status)
            return DeliveryOutcome("delivered", status, attempt=attempt)
        error = (detail or f"HTTP {status}")[: W.MAX_ERROR_CHARS]
        if now - event.created_ms >= GIVE_UP_AFTER_MS:
            log.warning("webhook given up event=%s webhook=%s: %s", event.event_id, hook.webhook_id, detail)
            self._record(hook, event, W.GIVEN_UP, attempt + 1, last_status=status, last_error=error)
            return DeliveryOutcome("gave_up", status, detail, attempt)
        due = now + retry_delay(attempt, self.settings.webhook_retry_base_seconds) * 1000
        self._requeue(message, attempt + 1, due, now)
        self._record(hook, event, W.FAILING, attempt + 1, next_try_ms=due, last_status=status, last_error=error)
        log.info("webhook retry event=%s webhook=%s attempt=%d: %s", event.event_id, hook.webhook_id, attempt, detail)
        return DeliveryOutcome("retry", status, detail, attempt)

    def _requeue(self, message: dict[str, Any], attempt: int, due_ms: int, now_ms: int) -> None:
        delay = max(0, min(MAX_DELAY_SECONDS, (due_ms - now_ms + 999) // 1000))
        again = {**message, "attempt": attempt, "not_before_ms": due_ms}
        if not self.queue.send_delivery(again, delay):
            raise RuntimeError("the webhook queue did not answer: the message comes back from SQS")

    def _post(self, event: W.Event, hook: W.Webhook) -> tuple[int | None, str]:
        parts = urlsplit(hook.url)
        host = parts.hostname or ""
        port = parts.port or (443 if parts.scheme == "https" else 80)
        try:
            addresses = self.sender.resolve(host, port)
            W.check_delivery_addresses(addresses, self.settings.webhook_allow_local)
        except InvalidRequest as refused:
            return None, f"refused: {refused.detail}"
        except OSError as exc:
            return None, f"resolve failed: {exc}"
        body = jsontext.dumps(event.body()).encode()
        t = self.clock() // 1000
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "SI64-Webhooks/1",
            W.SIGNATURE_HEADER: W.signature_header(hook.secret, t, body),
        }
        try:
            return self.sender.post(hook.url, addresses[0], body, headers, TIMEOUT_SECONDS), ""
        except OSError as exc:
            return None, f"{type(exc).__name__}: {exc}"
