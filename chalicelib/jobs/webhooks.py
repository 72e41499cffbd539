"""Webhook jobs, thin: the dispatcher (`webhook_dispatcher`, every minute: outbox → queue), the
refusal job (`payment_refusals`, every hour: orphan payment shares → payment.refused) and
the delivery function (`webhook_delivery`, SQS si64-{stage}-webhooks). services/webhook_delivery.py
does the work. A delivery that fails is queued again by the service with its backoff, so the
record itself succeeds; only an unanswered queue leaves it to SQS's own redelivery."""

from __future__ import annotations

import json
import logging
from typing import TYPE_CHECKING, Any

from chalice import Blueprint, Rate

from ..config import Settings

if TYPE_CHECKING:  # types only
    from chalice.app import SQSEvent

log = logging.getLogger("si64.webhooks")
bp = Blueprint(__name__)
QUEUE = Settings.from_env().webhook_queue_name  # si64-{stage}-webhooks


@bp.schedule(Rate(1, unit=Rate.MINUTES))
def webhook_dispatcher(event: object) -> dict[str, Any]:
    from .. import bootstrap

    report = bootstrap.container().webhook_delivery.dispatch()
    summary = {"events": report.events, "deliveries": report.deliveries, "unsent": report.unsent}
    (log.warning if report.unsent else log.info)("webhook dispatch %s", summary)
    return summary


@bp.schedule(Rate(1, unit=Rate.HOURS))
def payment_refusals(event: object) -> dict[str, Any]:
    """payment.refused for every orphan share older than SI64_PAYMENT_REFUSED_AGE_SECONDS
    (services/payment_refused.py: the reconciler's orphans, one conditional put each)."""
    from .. import bootstrap

    c = bootstrap.container()
    report = c.payment_refusals.run(c.settings.payment_refused_age_seconds)
    summary = {"orphans": report.orphans, "sent": report.sent, "already": report.already, "complete": report.complete}
    (log.info if report.complete else log.warning)("payment refusals %s %s", summary, report.notes)
    return summary


@bp.on_sqs_message(queue=QUEUE, batch_size=10)
def webhook_delivery(event: SQSEvent) -> dict[str, Any]:
    from .. import bootstrap

    delivery = bootstrap.container().webhook_delivery
    failures = []
    for record in event:
        try:
            delivery.deliver(json.loads(record.body))
        except Exception:
            log.exception("webhook delivery failed; SQS delivers the record again")
            failures.append({"itemIdentifier": record.to_dict().get("messageId")})
    return {"batchItemFailures": failures}
