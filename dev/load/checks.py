"""The verdict of a load run: read the books back, then judge the report.

``read_books(api, admin_key, ledger, budget)`` reads, over HTTP with the admin key, the
postings of every contract the run created (``GET /api/billing/entries?contract_id=``) and
of every fixed account (``?account=``); ``evaluate(report)`` judges a report from its raw
observations only (status counts, books, slot readings), so a report can be judged again,
or a doctored one fed to it (tests/integration/test_load_smoke.py does).
"""

from __future__ import annotations

import time
import urllib.parse

from chalicelib.domain import ledger as book

# docs/api.md names these 409s; `idempotency_in_progress` is the retryable one.
ALLOWED = {
    409: {
        "payment_already_used",
        "contract_not_active",
        "idempotency_mismatch",
        "no_capacity",
        "idempotency_in_progress",
    },
    429: {"rate_limited"},
}
# every account that is not a contract's escrow (the downtime credit's too: a contract settled
# without proven usage books its credit there, and its legs would otherwise be "only in contracts")
FIXED_ACCOUNTS = (
    book.TREASURY,
    book.REVENUE,
    book.REFUNDS_PAYABLE,
    book.RETAINED_DUST,
    book.NETWORK_FEES,
    book.DOWNTIME_CREDIT,
)
PAYMENT_KINDS = ("rent", "extend")
MUST_SUCCEED = ("rent", "status", "extend", "settle", "metrics_batch")


def _all_entries(api, admin_key: str, query: dict, deadline: float) -> list[dict] | None:
    """Every posting of one query, page by page; None when an answer was not 200 or time ran out."""
    out, token = [], None
    for _ in range(10_000):
        q = {**query, "limit": 1000, **({"next_token": token} if token else {})}
        status, ans, _ = api.read(
            "entries", "/api/billing/entries?" + urllib.parse.urlencode(q), headers={"X-Admin-Key": admin_key}
        )
        if status != 200 or time.monotonic() > deadline:
            return None
        out += ans["entries"]
        token = ans.get("next_token")
        if not token:
            return out
    return None


def _refunds_in_flight(api, admin_key: str) -> int | None:
    """Refunds that will still book a payout: QUEUED, SENT, and FAILED (retried by the sweep)."""
    status, ans, _ = api.read("stats", "/api/stats", headers={"X-Admin-Key": admin_key})
    if status != 200:
        return None
    by = ans.get("refunds_by_status") or {}
    return by.get("QUEUED", 0) + by.get("SENT", 0) + by.get("FAILED", 0)


def read_books(api, admin_key: str, ledger, budget: float = 120.0, passes: int = 3) -> dict:
    """The books as two views (per contract, per account), read while the refund worker may
    still book payouts. The views are not one snapshot: a payout booked between the reads
    shows in one view only, and one booked between two account reads splits its legs. So
    wait for the refunds in flight to land, read, and read again (at most `passes` times)
    while the views disagree; `passes_used` says how many it took."""
    deadline = time.monotonic() + budget
    books: dict = {}
    for n in range(1, passes + 1):
        while time.monotonic() < deadline - budget / 3 and _refunds_in_flight(api, admin_key):
            time.sleep(0.5)
        books = _read_books_once(api, admin_key, ledger, deadline)
        books["passes_used"] = n
        w, cov = books["whole"], books["coverage"]
        agree = w["debit"] == w["credit"] and cov["only_in_accounts"] == 0 and cov["only_in_contracts"] == 0
        if (agree and books["complete"]) or time.monotonic() > deadline:
            break
    return books


def _read_books_once(api, admin_key: str, ledger, deadline: float) -> dict:
    from concurrent.futures import ThreadPoolExecutor

    contracts = list(ledger.contracts.values())

    def one(c):
        rows = _all_entries(api, admin_key, {"contract_id": c.contract_id}, deadline)
        if rows is None:
            return {"contract_id": c.contract_id, "read": False}
        escrow = f"escrow:{c.contract_id}"
        settled = c.settled or {}
        return {
            "contract_id": c.contract_id,
            "read": True,
            "entries": len(rows),
            "debit": sum(e["debit_lamports"] for e in rows),
            "credit": sum(e["credit_lamports"] for e in rows),
            "escrow_balance": sum(e["debit_lamports"] - e["credit_lamports"] for e in rows if e["account"] == escrow),
            "treasury_received": sum(
                e["debit_lamports"] for e in rows if e["account"] == "treasury" and e["kind"] in PAYMENT_KINDS
            ),
            "paid_lamports": c.paid_lamports,
            "settled": bool(c.settled),
            "settle_prepaid": settled.get("prepaid_lamports"),
            "settle_used": settled.get("used_lamports"),
            "settle_refund": settled.get("refund_lamports"),
            "_ids": [e["entry_id"] for e in rows if e["account"] != escrow],
            "_escrow": [(e["debit_lamports"], e["credit_lamports"]) for e in rows if e["account"] == escrow],
        }

    with ThreadPoolExecutor(6) as ex:
        per_contract = list(ex.map(one, contracts))
    accounts, account_ids, complete = {}, set(), all(c["read"] for c in per_contract)
    for name in FIXED_ACCOUNTS:
        rows = _all_entries(api, admin_key, {"account": name}, deadline)
        if rows is None:
            complete = False
            continue
        accounts[name] = {
            "entries": len(rows),
            "debit": sum(e["debit_lamports"] for e in rows),
            "credit": sum(e["credit_lamports"] for e in rows),
        }
        account_ids |= {e["entry_id"] for e in rows}
    contract_ids = {i for c in per_contract if c["read"] for i in c.pop("_ids")}
    escrow_legs = [leg for c in per_contract if c["read"] for leg in c.pop("_escrow")]
    whole_debit = sum(a["debit"] for a in accounts.values()) + sum(d for d, _ in escrow_legs)
    whole_credit = sum(a["credit"] for a in accounts.values()) + sum(c for _, c in escrow_legs)
    return {
        "complete": complete,
        "contracts": per_contract,
        "accounts": accounts,
        "whole": {"debit": whole_debit, "credit": whole_credit, "escrow_entries": len(escrow_legs)},
        "coverage": {
            "account_entries": len(account_ids),
            "contract_entries_outside_escrow": len(contract_ids),
            "only_in_accounts": len(account_ids - contract_ids),
            "only_in_contracts": len(contract_ids - account_ids),
        },
    }


def _check(ok: bool, detail: str) -> dict:
    return {"ok": bool(ok), "detail": detail}


def evaluate(report: dict) -> dict:
    """{check name: {"ok", "detail"}} from the report's raw observations."""
    counts = report["throughput"]["status_counts"]
    obs = report["observations"]
    checks = {}
    bad5 = [c for c in counts if c["status"] >= 500]
    checks["no_5xx"] = _check(not bad5, f"{sum(c['count'] for c in bad5)} answers ≥ 500: {bad5[:5]}")
    lost = [c for c in counts if c["status"] == 0]
    checks["every_request_answered"] = _check(
        not lost, f"{sum(c['count'] for c in lost)} without an answer: {lost[:5]}"
    )
    odd = [c for c in counts if 400 <= c["status"] < 500 and c["code"] not in ALLOWED.get(c["status"], ())]
    seen = sorted({f"{c['status']} {c['code']}" for c in counts if c["status"] in ALLOWED})
    checks["only_named_409_429"] = _check(not odd, f"other 4xx: {odd[:5]}" if odd else f"seen: {seen or 'none'}")
    ops = report["throughput"]["operations"]
    ok2xx = {c["op"]: 0 for c in counts}
    for c in counts:
        if 200 <= c["status"] < 300:
            ok2xx[c["op"]] += c["count"]
    idle = [op for op in MUST_SUCCEED if ok2xx.get(op, 0) == 0 or ops.get(op, {}).get("in_window", 0) == 0]
    checks["every_operation_ran"] = _check(
        not idle, f"no success in the window: {idle}" if idle else ", ".join(f"{op} {ok2xx[op]}" for op in MUST_SUCCEED)
    )

    books = obs["books"]
    rows = books["contracts"]
    unread = [c["contract_id"] for c in rows if not c["read"]]
    unbalanced = [c["contract_id"] for c in rows if c["read"] and c["debit"] != c["credit"]]
    checks["books_balance_per_contract"] = _check(
        rows and not unread and not unbalanced and books["complete"],
        f"{len(rows)} contracts, {len(unbalanced)} unbalanced {unbalanced[:5]}, {len(unread)} unread",
    )
    w, cov = books["whole"], books["coverage"]
    checks["books_balance_whole"] = _check(
        w["debit"] == w["credit"]
        and cov["only_in_accounts"] == 0
        and cov["only_in_contracts"] == 0
        and books["complete"],
        f"debits {w['debit']} credits {w['credit']} over {len(books['accounts'])} accounts + "
        f"{w['escrow_entries']} escrow legs; entries only in accounts {cov['only_in_accounts']}, "
        f"only in contracts {cov['only_in_contracts']}",
    )
    unbooked = [c["contract_id"] for c in rows if c["read"] and c["treasury_received"] != c["paid_lamports"]]
    checks["payments_booked_once"] = _check(
        rows and not unbooked,
        f"{len(unbooked)} contracts whose treasury receipts differ from what was paid: {unbooked[:5]}",
    )
    settled = [c for c in rows if c["read"] and c["settled"]]
    wrong = [
        c["contract_id"]
        for c in settled
        if c["settle_prepaid"] != c["paid_lamports"]
        or c["escrow_balance"] != 0
        or c["settle_used"] + c["settle_refund"] != c["settle_prepaid"]
    ]
    checks["settlements_add_up"] = _check(
        settled and not wrong,
        f"{len(settled)} settled; {len(wrong)} where received ≠ used + refund or escrow ≠ 0: {wrong[:5]}",
    )

    readings = obs["slot_readings"]
    over = [r for r in readings if "error" in r or not 0 <= r["leases"] <= r["capacity"]]
    points = sorted({r["at"] for r in readings})
    checks["slots_within_capacity"] = _check(
        not over and len(points) >= 3 and "end" in points,
        f"{len(readings)} readings at {len(points)} points; over capacity or unreadable: {over[:5]}",
    )
    final = [r for r in readings if r["at"] == "end" and "error" not in r]
    leased = sum(r["leases"] for r in final)
    open_contracts = sum(1 for c in rows if not c.get("settled"))  # an unread row fails the books checks
    checks["slots_released"] = _check(
        final and leased == open_contracts, f"{leased} slots leased at the end, {open_contracts} contracts not settled"
    )
    act = obs["actors"]
    agents = act["agents"]
    problems = (
        act["failures"]
        + agents["fatal"]
        + [f"{k}: {v}" for k, v in agents["ended_by"].items() if k not in ("stopped",)]
    )
    checks["actors_clean"] = _check(
        not problems and not act["renter_errors"],
        f"{len(problems)} problems: {problems[:5]}; renter errors {act['renter_errors'][:3]}",
    )
    return checks
