"""`make load`'s books check reads two views of a ledger that the refund worker may still be
writing: a payout booked between the per-contract and the per-account reads used to show in
one view only (`books_balance_whole` failed with entries "only in accounts"). The check was
wrong, not the books: `read_books` re-reads until the views agree."""

from __future__ import annotations

import urllib.parse

from dev.load.actors import Contract, Ledger
from dev.load.checks import read_books

CID = "CTR-a"
BOOKED = [  # rent, then settle: balanced, escrow back to zero
    {"entry_id": "e1", "contract_id": CID, "account": "treasury", "debit_lamports": 100, "credit_lamports": 0},
    {"entry_id": "e2", "contract_id": CID, "account": f"escrow:{CID}", "debit_lamports": 0, "credit_lamports": 100},
    {"entry_id": "e3", "contract_id": CID, "account": f"escrow:{CID}", "debit_lamports": 100, "credit_lamports": 0},
    {"entry_id": "e4", "contract_id": CID, "account": "revenue", "debit_lamports": 0, "credit_lamports": 40},
    {"entry_id": "e5", "contract_id": CID, "account": "refunds_payable", "debit_lamports": 0, "credit_lamports": 60},
]
PAYOUT = [  # the refund worker's payout, booked while the check reads
    {"entry_id": "e6", "contract_id": CID, "account": "refunds_payable", "debit_lamports": 60, "credit_lamports": 0},
    {"entry_id": "e7", "contract_id": CID, "account": "treasury", "debit_lamports": 0, "credit_lamports": 55},
    {"entry_id": "e8", "contract_id": CID, "account": "network_fees", "debit_lamports": 0, "credit_lamports": 5},
]


class LedgerApi:
    """GET /api/stats and /api/billing/entries over an in-memory ledger; the payout lands right
    after the first per-contract read, though the stats said no refund was in flight."""

    def __init__(self):
        self.entries = [dict(e, kind="rent") for e in BOOKED]
        self.contract_reads = 0

    def read(self, op, path, headers=None):
        if path.startswith("/api/stats"):
            return 200, {"refunds_by_status": {}}, {}
        q = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(path).query))
        if "contract_id" in q:
            rows = [e for e in self.entries if e["contract_id"] == q["contract_id"]]
            self.contract_reads += 1
            if self.contract_reads == 1:
                self.entries += [dict(e, kind="refund") for e in PAYOUT]
        else:
            rows = [e for e in self.entries if e["account"] == q["account"]]
        return 200, {"entries": rows, "next_token": None}, {}


def _ledger() -> Ledger:
    led = Ledger()
    led.add(Contract(CID, "M2", "dev", "wallet", 100, settled={"prepaid_lamports": 100}))
    return led


def test_a_payout_booked_mid_read_is_read_again_and_the_views_agree():
    books = read_books(LedgerApi(), "k", _ledger(), budget=30.0)
    assert books["passes_used"] == 2
    assert books["whole"]["debit"] == books["whole"]["credit"] == 260
    assert books["coverage"]["only_in_accounts"] == 0 and books["coverage"]["only_in_contracts"] == 0


def test_one_pass_shows_the_race_the_check_used_to_fail_on():
    books = read_books(LedgerApi(), "k", _ledger(), budget=30.0, passes=1)
    assert books["coverage"]["only_in_accounts"] == 3


CREDITED = "CTR-c"
WITH_CREDIT = [  # settled with a downtime credit: credited out of escrow, then owed back (domain.ledger)
    ("c1", "treasury", 100, 0),
    ("c2", f"escrow:{CREDITED}", 0, 100),
    ("c3", f"escrow:{CREDITED}", 100, 0),
    ("c4", "revenue", 0, 40),
    ("c5", "downtime_credit", 0, 10),
    ("c6", "downtime_credit", 10, 0),
    ("c7", "refunds_payable", 0, 10),
    ("c8", "refunds_payable", 0, 50),
]


class CreditApi(LedgerApi):
    """The same API over a finished ledger (no payout lands while it is read)."""

    def __init__(self):
        self.contract_reads = 1  # LedgerApi books its payout on the first read only
        self.entries = [
            {
                "entry_id": i,
                "contract_id": CREDITED,
                "account": a,
                "debit_lamports": d,
                "credit_lamports": c,
                "kind": "k",
            }
            for i, a, d, c in WITH_CREDIT
        ]


def test_downtime_credit_legs_are_read_with_the_accounts():
    led = Ledger()
    led.add(Contract(CREDITED, "M2", "dev", "wallet", 100, settled={"prepaid_lamports": 100}))
    books = read_books(CreditApi(), "k", led, budget=30.0)
    assert books["coverage"]["only_in_contracts"] == 0 and books["coverage"]["only_in_accounts"] == 0
    assert books["accounts"]["downtime_credit"] == {"entries": 2, "debit": 10, "credit": 10}
    assert books["whole"]["debit"] == books["whole"]["credit"] == 210
