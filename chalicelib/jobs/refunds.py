"""The refund worker: an SQS-triggered function (`refund_worker`), thin.

Each record is `{"refund_id", "version"}` (older messages: `{"contract_id", …}`);
the worker (services/refunds.py) takes the refund as far as it can. A record
whose refund must wait (transaction pending, RPC or database down, fee not
readable yet) is listed in `batchItemFailures`: only it comes back, after the
queue's visibility timeout (no tight loop), and after 5 receives it moves to
the dead-letter queue — the refund stays owed in the table, and the sweep
queues it again. The packaged template enables ReportBatchItemFailures
(infra/package.py), which Chalice does not.
"""

from __future__ import annotations

import json
import logging
from typing import TYPE_CHECKING, Any

from chalice import Blueprint

from .. import observability
from ..config import Settings

if TYPE_CHECKING:  # types only
    from chalice.app import SQSEvent

    from ..services.refunds import RefundWorker

log = logging.getLogger("si64.refunds")
bp = Blueprint(__name__)
BATCH_SIZE = 10
QUEUE = Settings.from_env().refund_queue_name  # si64-{stage}-refunds (chalice loads the stage's env)
EVENT_METRICS = {
    "sent": "RefundsSent",
    "replaced": "RefundsSent",
    "confirmed": "RefundsConfirmed",
    "failed": "RefundsFailed",
}


def refund_id_of(body: str) -> str | None:
    try:
        msg = json.loads(body)
    except ValueError:
        return None
    if not isinstance(msg, dict):
        return None
    rid = msg.get("refund_id") or msg.get("contract_id")
    return rid if isinstance(rid, str) and rid else None


def handle_records(records: list[dict[str, Any]], worker: RefundWorker) -> dict[str, Any]:
    """Lambda SQS records → `{"batchItemFailures": [{"itemIdentifier": messageId}, …]}`."""
    from ..domain.errors import Unavailable

    failures: list[str] = []
    counts: dict[str, float] = {}
    outcomes: dict[str, bool] = {}  # one refund asked twice in a batch is handled once
    for rec in records:
        mid = rec["messageId"]
        rid = refund_id_of(rec.get("body", ""))
        if rid is None or not rid.startswith(("CTR-", "PAY-")):
            log.error("refund message %s is not a refund: dropped (%.80r)", mid, rec.get("body"))
            continue
        if rid not in outcomes:
            try:
                out = worker.handle(rid)
                outcomes[rid] = out.done
                for ev in out.events:
                    if ev in EVENT_METRICS:
                        counts[EVENT_METRICS[ev]] = counts.get(EVENT_METRICS[ev], 0) + 1
                log.info(
                    "refund %s: %s%s%s",
                    rid,
                    out.status,
                    f" {out.events}" if out.events else "",
                    f" ({out.note})" if out.note else "",
                )
            except Unavailable as exc:
                outcomes[rid] = False
                log.warning("refund %s: retry later (%s: %s)", rid, exc.reason, exc.detail)
            except Exception:
                outcomes[rid] = False
                log.exception("refund %s failed", rid)
        if not outcomes[rid]:
            failures.append(mid)
    observability.emit_many(counts)
    return {"batchItemFailures": [{"itemIdentifier": m} for m in failures]}


@bp.on_sqs_message(queue=QUEUE, batch_size=BATCH_SIZE)
def refund_worker(event: SQSEvent) -> dict[str, Any]:
    from .. import bootstrap

    c = bootstrap.container()
    return handle_records([r.to_dict() for r in event], c.refund_worker)
