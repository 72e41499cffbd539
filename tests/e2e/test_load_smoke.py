"""`make load` (python -m dev.load) in small: a few seconds, a handful of agents and renters,
against a stack of its own; the report has its shape; and the checker fails what it must.

The judging tests feed `dev.load.checks.evaluate` a report built here: first a clean one
(every check passes, so the failures below are not vacuous), then one doctored fault each."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from pathlib import Path

import pytest

from dev.load.checks import evaluate

ROOT = Path(__file__).resolve().parents[2]
OPS = ("rent", "status", "extend", "settle", "metrics_batch")


@pytest.mark.e2e
@pytest.mark.slow
def test_a_short_run_is_clean_and_reports_its_figures(tmp_path):
    out = tmp_path / "load.json"
    argv = [
        sys.executable,
        "-m",
        "dev.load",
        "--seconds",
        "4",
        "--agents",
        "6",
        "--renters",
        "3",
        "--monitor-every",
        "1",
        "--batch-seconds",
        "1",
        "--think",
        "0.2",
        "--out",
        str(out),
    ]
    proc = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=280)
    assert out.exists(), proc.stderr[-3000:]
    report = json.loads(out.read_text())
    assert proc.returncode == 0, (
        proc.stderr[-3000:],
        {k: c for k, c in report.get("checks", {}).items() if not c["ok"]},
    )
    assert report["ok"] is True and all(c["ok"] for c in report["checks"].values())
    assert set(report["checks"]) >= {
        "no_5xx",
        "only_named_409_429",
        "books_balance_per_contract",
        "books_balance_whole",
        "slots_within_capacity",
        "slots_released",
    }
    tp = report["throughput"]
    assert tp["requests_per_second"] > 0 and tp["window_seconds"] == pytest.approx(4, abs=1.5)
    for op in OPS:
        s = tp["operations"][op]
        assert s["in_window"] > 0 and s["per_second"] > 0
        assert 0 < s["p50_ms"] <= s["p99_ms"] <= s["max_ms"]
    assert all({"op", "status", "code", "count"} == set(c) for c in tp["status_counts"])
    assert sum(c["count"] for c in tp["status_counts"]) == tp["requests_total"]
    g = report["generator"]
    assert g["cpu_seconds"] > 0 and g["stack_cpu_seconds"] > 0 and 0 < g["share_of_machine"] < 1
    assert report["settings"]["agents"] == 6 and report["settings"]["stack_env"]["SI64_RATE_LIMIT"]
    books = report["observations"]["books"]
    assert len(books["contracts"]) == report["observations"]["actors"]["contracts"] >= 6
    assert report["observations"]["actors"]["agents"]["batches_sent"] > 0
    assert evaluate(report) == report["checks"]  # the verdict is a function of the report alone


def good_report() -> dict:
    counts = [{"op": op, "status": 200, "code": None, "count": 10} for op in OPS]
    counts.append({"op": "rent", "status": 409, "code": "no_capacity", "count": 2})
    contracts = [
        {
            "contract_id": f"CTR-{i:016d}",
            "read": True,
            "entries": 5,
            "debit": 300,
            "credit": 300,
            "escrow_balance": 0,
            "treasury_received": 300,
            "paid_lamports": 300,
            "settled": True,
            "settle_prepaid": 300,
            "settle_used": 120,
            "settle_refund": 180,
        }
        for i in range(3)
    ]
    readings = [
        {"at": at, "tier": "M2", "device_id": f"d{i}", "leases": 0 if at == "end" else 2, "capacity": 4}
        for at in ("start", "t+5s", "end")
        for i in range(2)
    ]
    return {
        "throughput": {
            "status_counts": counts,
            "operations": {op: {"in_window": 10, "p50_ms": 5.0, "p99_ms": 9.0} for op in OPS},
        },
        "observations": {
            "books": {
                "complete": True,
                "contracts": contracts,
                "accounts": {"treasury": {"entries": 3, "debit": 900, "credit": 0}},
                "whole": {"debit": 900 + 900, "credit": 900 + 900, "escrow_entries": 6},
                "coverage": {"only_in_accounts": 0, "only_in_contracts": 0},
            },
            "slot_readings": readings,
            "actors": {"agents": {"fatal": [], "ended_by": {"stopped": 6}}, "failures": [], "renter_errors": []},
        },
    }


def failed(report) -> set[str]:
    return {name for name, c in evaluate(report).items() if not c["ok"]}


def test_a_clean_report_passes_every_check():
    assert failed(good_report()) == set()


def doctor(fn) -> dict:
    r = copy.deepcopy(good_report())
    fn(r)
    return r


@pytest.mark.parametrize(
    "fault, check",
    [
        (
            lambda r: r["throughput"]["status_counts"].append(
                {"op": "settle", "status": 500, "code": "internal", "count": 1}
            ),
            "no_5xx",
        ),
        (
            lambda r: r["throughput"]["status_counts"].append(
                {"op": "rent", "status": 503, "code": "unavailable", "count": 1}
            ),
            "no_5xx",
        ),
        (
            lambda r: r["throughput"]["status_counts"].append(
                {"op": "rent", "status": 402, "code": "payment_invalid", "count": 1}
            ),
            "only_named_409_429",
        ),
        (
            lambda r: r["throughput"]["status_counts"].append(
                {"op": "rent", "status": 409, "code": "made_up", "count": 1}
            ),
            "only_named_409_429",
        ),
        (
            lambda r: r["throughput"]["status_counts"].append(
                {"op": "status", "status": 0, "code": "transport:TimeoutError", "count": 1}
            ),
            "every_request_answered",
        ),
        (lambda r: r["observations"]["books"]["contracts"][1].update(credit=299), "books_balance_per_contract"),
        (lambda r: r["observations"]["books"]["contracts"][1].update(read=False), "books_balance_per_contract"),
        (lambda r: r["observations"]["books"]["whole"].update(debit=1801), "books_balance_whole"),
        (lambda r: r["observations"]["books"]["coverage"].update(only_in_accounts=1), "books_balance_whole"),
        (lambda r: r["observations"]["books"]["contracts"][0].update(treasury_received=600), "payments_booked_once"),
        (lambda r: r["observations"]["books"]["contracts"][2].update(settle_refund=181), "settlements_add_up"),
        (lambda r: r["observations"]["slot_readings"][2].update(leases=5), "slots_within_capacity"),
        (lambda r: r["observations"]["slot_readings"].__setitem__(slice(2, 4), []), "slots_within_capacity"),
        (lambda r: r["observations"]["slot_readings"][-1].update(leases=1), "slots_released"),
        (lambda r: r["observations"]["actors"]["agents"]["ended_by"].update(fatal=1), "actors_clean"),
        (lambda r: r["throughput"]["operations"]["extend"].update(in_window=0), "every_operation_ran"),
    ],
)
def test_a_doctored_report_fails_the_right_check(fault, check):
    assert failed(doctor(fault)) == {check}
