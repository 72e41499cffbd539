"""The billing sweep: a scheduled function (`billing_sweep`, every minute), thin.
services/sweep.py does the work; this writes its figures as metrics
(Expirations, SweepDue, SweepLagSeconds — written on every run, so a missing
datapoint means the sweep did not run) and a log line."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from chalice import Blueprint, Rate

from .. import observability

if TYPE_CHECKING:  # types only
    from ..bootstrap import Container

log = logging.getLogger("si64.sweep")
bp = Blueprint(__name__)


def run_sweep(c: Container) -> dict[str, Any]:
    report = c.sweep.run()
    observability.emit_many(
        {"SweepDue": report.due, "Expirations": report.expired, "SweepLagSeconds": report.lag_seconds}
    )
    summary = {
        "due": report.due,
        "expired": report.expired,
        "lost_races": report.lost_races,
        "refunds_queued": report.refunds_queued,
        "refunds_requeued": report.refunds_requeued,
        "items_read": report.items_read,
        "queries": report.queries,
        "lag_seconds": report.lag_seconds,
        "low_time_sent": report.low_time_sent,
        "errors": report.errors,
    }
    (log.warning if report.errors else log.info)("sweep %s", summary)
    return summary


@bp.schedule(Rate(1, unit=Rate.MINUTES))
def billing_sweep(event: object) -> dict[str, Any]:
    from .. import bootstrap

    return run_sweep(bootstrap.container())
