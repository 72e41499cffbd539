"""The quote watcher: a scheduled function (`quote_watcher`, every minute), thin.
services/quote_watch.py does the work. EventBridge fires at most once a minute, so one
invocation runs ticks every `quote_tick_seconds` (2 s) for `quote_watch_seconds` (50 s; the
function's timeout is 60 s): a payment is found within ~2 s of confirmation (docs/adr/0015-quotes.md).
Locally `SI64_QUOTE_WATCH_SECONDS=0` makes each call one tick, and the event runner calls it
every ~1.5 s."""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any

from chalice import Blueprint, Rate

if TYPE_CHECKING:  # types only
    from ..bootstrap import Container

log = logging.getLogger("si64.quotes")
bp = Blueprint(__name__)


def run_quote_watch(c: Container, sleep: Any = time.sleep, monotonic: Any = time.monotonic) -> dict[str, int]:
    """Ticks until `quote_watch_seconds` have passed (at least one); the summed figures."""
    s = c.settings
    deadline = monotonic() + s.quote_watch_seconds
    total = {"ticks": 0, "watched": 0, "paid": 0, "refused": 0, "rpc_calls": 0}
    while True:
        report = c.quote_watcher.tick()
        total["ticks"] += 1
        for name in ("watched", "paid", "refused", "rpc_calls"):
            total[name] += getattr(report, name)
        if monotonic() + s.quote_tick_seconds >= deadline:
            break
        sleep(s.quote_tick_seconds)
    if total["paid"] or total["refused"]:
        log.info("quotes %s", total)
    return total


@bp.schedule(Rate(1, unit=Rate.MINUTES))
def quote_watcher(event: object) -> dict[str, int]:
    from .. import bootstrap

    return run_quote_watch(bootstrap.container())
