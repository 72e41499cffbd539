"""payment.refused, derived after the fact: a refusal (rent, extend, a quote) writes nothing,
so the event is not written there. A scheduled job (`payment_refusals`, jobs/webhooks.py) runs
the reconciler (services/reconcile.py, read-only), and for each ORPHAN share it finds (a payer's
transfer to the treasury that no claim holds, older than the orphan age) puts one
`payment.refused` event (`Outbox.add`: one conditional write, its id from the signature and the
payer). A second run, or two at once, finds the event there and writes nothing more; a share
refunded or claimed since is no orphan, so it is not told.

Cost per run: the reconciler's reads (the treasury's history and its ledger account, and a
getTransaction per unbooked transaction; not its check of every confirmed refund), plus one
conditional PutItem per orphan share (a share already told fails its condition: 1 WCU, nothing
written).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ..domain import webhooks as W

if TYPE_CHECKING:  # types only
    from ..ports import Clock, Outbox
    from .reconcile import Reconciler

log = logging.getLogger("si64.webhooks")


@dataclass
class RefusalReport:
    orphans: int = 0  # orphan shares the reconciler found
    sent: int = 0  # payment.refused events written by this run
    already: int = 0  # shares told by an earlier run
    complete: bool = True  # False: the reconciler did not read everything (its notes say why)
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class PaymentRefusals:
    reconciler: Reconciler
    outbox: Outbox
    clock: Clock

    def run(self, orphan_age_seconds: int) -> RefusalReport:
        rep = self.reconciler.run(orphan_age_seconds=orphan_age_seconds, check_refunds=False)
        report = RefusalReport(complete=rep.complete, notes=list(rep.notes))
        now = self.clock()
        for u in rep.orphans:
            if u.payer is None:
                continue  # every orphan share names its payer; defensive
            report.orphans += 1
            event = W.refused_event(u.signature, u.payer, u.lamports, u.slot, u.block_time, now)
            if self.outbox.add(event):
                report.sent += 1
            else:
                report.already += 1
        return report
