"""`si64 refunds …` and `si64 reconcile` against a scripted API (no sockets): exit codes,
one-line errors, paging, the redrive loop, what a mismatch prints."""

from __future__ import annotations

import json
import urllib.parse

import pytest

from si64 import cli
from si64 import client as cl

ARGS = ["--api", "http://api.test", "--admin-key", "k"]


def report(ok=True, mismatches=(), orphans=()):
    return {
        "ok": ok,
        "mismatches": list(mismatches),
        "treasury": {
            "address": "T",
            "chain_lamports": 10,
            "chain_slot": 5,
            "baseline_lamports": 4,
            "baseline_slot": 1,
            "baseline_source": "before X",
            "ledger_lamports": 6,
            "unbooked_lamports": sum(o["lamports"] for o in orphans),
            "difference_lamports": 0,
        },
        "orphans": list(orphans),
        "unbooked": list(orphans),
        "refunds": {"confirmed_checked": 3, "problems": []},
        "phantom_refs": [],
        "orphan_age_seconds": 0,
        "complete": True,
        "notes": [],
        "reads": {"signatures": 9, "transactions": 4},
    }


class Scripted:
    def __init__(self, routes):
        self.routes, self.seen = routes, []

    def __call__(self, method, url, body=None, headers=None, timeout=None):
        u = urllib.parse.urlsplit(url)
        q = dict(urllib.parse.parse_qsl(u.query))
        self.seen.append((method, u.path, q))
        if headers.get("X-Admin-Key") != "k":
            return (
                401,
                {"detail": "A valid X-Admin-Key header is required.", "code": "unauthorized", "reason": "X-Admin-Key"},
                {},
            )
        answer = self.routes[(method, u.path)]
        return answer(q) if callable(answer) else answer


@pytest.fixture
def api(monkeypatch):
    def make(routes):
        s = Scripted(routes)
        monkeypatch.setattr(cl, "http_json", s)
        return s

    return make


def test_reconcile_ok_exits_0_and_a_mismatch_exits_1_naming_it(api, capsys):
    api({("GET", "/api/admin/reconcile"): lambda q: (200, report(), {})})
    assert cli.main([*ARGS, "reconcile"]) == 0
    out = capsys.readouterr().out
    assert "OK: the books agree with the chain" in out and "difference" in out
    orphan = {
        "signature": "SIG1",
        "kind": "orphan",
        "lamports": 777,
        "slot": 4,
        "block_time": 1,
        "payer": "P",
        "refund_id": None,
        "note": "",
    }
    s = api(
        {("GET", "/api/admin/reconcile"): lambda q: (200, report(False, ["orphan payment SIG1: 777"], [orphan]), {})}
    )
    assert cli.main([*ARGS, "reconcile", "--orphan-age", "0"]) == 1
    got = capsys.readouterr()
    assert "MISMATCH: orphan payment SIG1: 777" in got.out and "orphan            SIG1  +777 lamports from P" in got.out
    assert got.err == "si64: error: reconciliation failed: 1 difference(s)\n"
    assert s.seen[-1][2] == {"orphan_age": "0"}
    assert cli.main([*ARGS, "reconcile", "--json"]) == 1
    got = capsys.readouterr()
    assert json.loads(got.out)["ok"] is False and "MISMATCH" in got.err


def test_reconcile_refuses_a_negative_age_and_a_wrong_key_is_one_line(api, capsys):
    with pytest.raises(SystemExit) as bad:
        cli.main([*ARGS, "reconcile", "--orphan-age", "-5"])
    assert bad.value.code == 2
    assert "must be a whole number of seconds" in capsys.readouterr().err
    api({})
    assert cli.main(["--api", "http://api.test", "--admin-key", "nope", "reconcile"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("si64: error: 401 unauthorized")


def test_refunds_list_pages_with_all_and_stops_at_limit_without(api, capsys):
    def page(q):
        n = int(q.get("next_token") or 0)
        rows = [
            {
                "refund_id": f"CTR-{n + i}",
                "status": "FAILED",
                "lamports": 5000,
                "wallet": "W",
                "tx_signature": None,
                "attempt": 1,
                "reason": "InsufficientFundsForRent: account 1",
            }
            for i in range(int(q["limit"]))
            if n + i < 5
        ]
        nxt = str(n + len(rows)) if n + len(rows) < 5 else None
        return 200, {"status": q["status"], "refunds": rows, "count": len(rows), "next_token": nxt}, {}

    s = api({("GET", "/api/admin/refunds"): page})
    assert cli.main([*ARGS, "refunds", "list", "--limit", "2", "--json"]) == 0
    assert [r["refund_id"] for r in json.loads(capsys.readouterr().out)] == ["CTR-0", "CTR-1"]
    assert cli.main([*ARGS, "refunds", "list", "--all", "--json"]) == 0
    assert len(json.loads(capsys.readouterr().out)) == 5
    assert cli.main([*ARGS, "refunds", "list", "--status", "queued", "--limit", "3"]) == 0
    out = capsys.readouterr().out
    assert "3 QUEUED refund(s) (more: --all)" in out and s.seen[-1][2]["status"] == "QUEUED"


def test_redrive_all_repeats_until_fewer_than_the_limit_moved_and_orphan_prints_the_refund(api, capsys):
    moved = iter([100, 100, 7])
    api(
        {
            ("POST", "/api/admin/refunds/redrive"): lambda q: (
                200,
                {"moved": next(moved), "limit": 100, "detail": ""},
                {},
            ),
            ("POST", "/api/admin/payments/SIG9/refund"): (
                201,
                {
                    "payment": "SIG9",
                    "refund_id": "PAY-SIG9",
                    "wallet": "P",
                    "refund_lamports": 3_210_000,
                    "refund_sol": 0.00321,
                    "refund": {"status": "QUEUED", "lamports": 3_210_000, "tx_signature": None},
                },
                {},
            ),
            ("POST", "/api/refunds/CTR-x/retry"): (
                200,
                {
                    "refund_id": "CTR-x",
                    "wallet": "W",
                    "status": "QUEUED",
                    "lamports": 9000,
                    "tx_signature": None,
                    "attempt": 1,
                },
                {},
            ),
        }
    )
    assert cli.main([*ARGS, "refunds", "redrive-dlq", "--all"]) == 0
    assert (
        capsys.readouterr().out.strip() == "moved 207 message(s) from the refund dead-letter queue to the refund queue"
    )
    assert cli.main([*ARGS, "refunds", "orphan", "SIG9"]) == 0
    assert capsys.readouterr().out.strip() == "PAY-SIG9: 0.003210000 SOL back to P, QUEUED (the refund worker sends it)"
    assert cli.main([*ARGS, "refunds", "retry", "CTR-x"]) == 0
    assert capsys.readouterr().out.startswith("CTR-x: queued again; 0.000009000 SOL to W")


def test_refunds_list_prints_every_id_whole_on_a_narrow_pipe(api, capsys, monkeypatch):
    """The ids are pasted into `refunds retry` and an explorer: never cut, even at COLUMNS=80 on a pipe."""
    monkeypatch.setenv("COLUMNS", "80")
    sig = "5" * 88
    rows = [
        {
            "refund_id": f"PAY-{sig}",
            "status": "FAILED",
            "lamports": 12_345_678_901,
            "wallet": "W" * 44,
            "tx_signature": "4" * 87,
            "attempt": 3,
            "reason": "",
        },
        {
            "refund_id": "CTR-" + "a" * 22,
            "status": "FAILED",
            "lamports": 5_000,
            "wallet": "V" * 43,
            "tx_signature": None,
            "attempt": 1,
            "reason": "",
        },
    ]
    api({("GET", "/api/admin/refunds"): (200, {"refunds": rows, "next_token": None}, {})})
    assert cli.main([*ARGS, "refunds", "list"]) == 0
    out = capsys.readouterr().out
    assert "…" not in out
    for r in rows:
        assert r["refund_id"] in out and r["wallet"] in out
    assert rows[0]["tx_signature"] in out and "12.345678901" in out
    line = next(x for x in out.splitlines() if sig in x)
    assert line.split()[:2] == [f"PAY-{sig}", "FAILED"]  # one row on one line: `awk '{print $1}'` works
