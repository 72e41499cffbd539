"""`make bench`'s measured capacity units and `make load --ramp`'s step verdicts: pure functions
of what the engine answered / what the recorder saw."""

from __future__ import annotations

import threading
import time

from dev.bench.calls import ApiCall, capacity
from dev.load.actors import Contract, Ledger
from dev.load.http import Recorder
from dev.load.ramp import REFUND_OP, levels, refund_loop, step_checks, targets


def _call(op: str, consumed: list) -> ApiCall:
    return ApiCall(f"dynamodb.{op}", {}, [], consumed)


def test_capacity_sums_table_and_index_units_reads_and_writes_apart():
    calls = [
        _call(
            "TransactWriteItems",
            [
                {
                    "TableName": "p-contracts",
                    "CapacityUnits": 6.0,
                    "Table": {"CapacityUnits": 2.0},
                    "GlobalSecondaryIndexes": {
                        "active-by-expiry": {"CapacityUnits": 2.0},
                        "by-wallet": {"CapacityUnits": 2.0},
                    },
                },
                {
                    "TableName": "p-ledger",
                    "CapacityUnits": 4.0,
                    "Table": {"CapacityUnits": 2.0},
                    "GlobalSecondaryIndexes": {"by-account": {"CapacityUnits": 2.0}},
                },
            ],
        ),
        _call(
            "BatchGetItem",
            [{"TableName": "p-devices", "CapacityUnits": 0.5}, {"TableName": "p-contracts", "CapacityUnits": 1.0}],
        ),
        _call("PutItem", []),  # an answer without ConsumedCapacity is counted, not guessed
        ApiCall("sqs.SendMessage", {}, []),
    ]
    got = capacity(calls)
    assert got["write_units"] == 10.0 and got["read_units"] == 1.5 and got["calls_without"] == 1
    contracts = got["by_table"]["p-contracts"]
    assert contracts["write"] == 2.0 and contracts["read"] == 1.0
    assert contracts["indexes"] == {
        "active-by-expiry": {"read": 0.0, "write": 2.0},
        "by-wallet": {"read": 0.0, "write": 2.0},
    }
    assert got["by_table"]["p-devices"] == {"read": 0.5, "write": 0.0, "indexes": {}}


def test_a_transaction_counts_every_item_of_a_table_where_dynamodb_local_reports_one():
    """DynamoDB Local reports one item's units per table of a TransactWriteItems (ADR 0010)."""
    put = lambda table: {"Put": {"TableName": table, "Item": {}}}
    call = ApiCall(
        "dynamodb.TransactWriteItems",
        {"TransactItems": [put("p-ledger"), put("p-ledger"), put("p-ledger"), put("p-contracts")]},
        [],
        [
            {
                "TableName": "p-ledger",
                "CapacityUnits": 4.0,
                "Table": {"CapacityUnits": 2.0},
                "GlobalSecondaryIndexes": {"by-account": {"CapacityUnits": 2.0}},
            },
            {"TableName": "p-contracts", "CapacityUnits": 2.0, "Table": {"CapacityUnits": 2.0}},
        ],
    )
    got = capacity([call])
    assert got["write_units"] == 14.0 and got["engine_write_units"] == 6.0
    assert got["by_table"]["p-ledger"] == {
        "read": 0.0,
        "write": 6.0,
        "indexes": {"by-account": {"read": 0.0, "write": 6.0}},
    }


def _step(p99: float, statuses: list[tuple[str, int, str | None]], failures: int = 0) -> dict:
    return {
        "operations": {
            op: {"p50_ms": 10.0, "p99_ms": p99} for op in ("rent", "extend", "settle", "metrics_batch", "status")
        },
        "status_counts": [{"op": op, "status": st, "code": code, "count": 1} for op, st, code in statuses],
        "new_failures": failures,
    }


def test_a_step_passes_only_under_1s_p99_with_clean_answers():
    ok = [("rent", 201, None), ("settle", 409, "contract_not_active")]
    assert all(step_checks(_step(999.0, ok)).values())
    assert step_checks(_step(1000.1, ok)) == dict.fromkeys(step_checks(_step(1, ok)), True) | {"p99_under_1s": False}
    assert not step_checks(_step(10.0, [*ok, ("metrics_batch", 503, "unavailable")]))["no_5xx"]
    assert not step_checks(_step(10.0, [*ok, ("rent", 0, "transport:ConnectionResetError")]))["every_request_answered"]
    assert not step_checks(_step(10.0, [*ok, ("rent", 400, "invalid_request")]))["only_named_409_429"]
    assert not step_checks(_step(10.0, ok, failures=1))["actors_clean"]


def test_levels_grow_to_the_maximum():
    assert levels(16) == [(2, 2), (4, 4), (6, 6), (8, 8), (12, 12), (16, 16)]


def test_targets_judge_each_seed_p50_and_say_what_was_not_measured():
    step = {"operations": {"status": {"p50_ms": 49.9}, "rent": {"p50_ms": 200.0}, REFUND_OP: {"p50_ms": 1200.0}}}
    t = targets(step)
    assert t["status"] == {"p50_ms": 49.9, "limit_ms": 50.0, "ok": True}
    assert t["rent"]["ok"] is False  # the figure is "under 200 ms"
    assert t[REFUND_OP]["ok"] is True
    assert t["ledger_page"] == {"p50_ms": None, "limit_ms": 100.0, "ok": None}


class _RefundApi:
    """GET /api/contracts/{id}: QUEUED for the first `queued` reads of each contract, then CONFIRMED."""

    def __init__(self, queued: int):
        self.recorder, self.queued, self.reads = Recorder(), queued, []

    def read(self, op, path, headers=None, tries=5):
        self.reads.append(path)
        n = self.reads.count(path)
        return 200, {"refund": {"status": "QUEUED" if n <= self.queued else "CONFIRMED"}}, {}


def _settled(cid: str, refund_status: str, ago: float) -> Contract:
    c = Contract(cid, "M2", "m2-1", "w", 10)
    c.settled, c.settled_at = {"refund_status": refund_status}, time.monotonic() - ago
    return c


def test_the_refund_watcher_times_the_last_settled_refund_from_its_settle_and_skips_dust():
    ledger, api, stop = Ledger(), _RefundApi(queued=2), threading.Event()
    for c in (_settled("K-old", "QUEUED", 5.0), _settled("K-new", "QUEUED", 1.0), _settled("K-dust", "DUST", 0.0)):
        ledger.add(c)
    th = threading.Thread(target=refund_loop, args=(api, ledger, stop, 0.01))
    th.start()
    deadline = time.monotonic() + 10
    while len(api.recorder.latencies[REFUND_OP]) < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    stop.set()
    th.join(5)
    waited = api.recorder.latencies[REFUND_OP]
    assert len(waited) == 2 and 1.0 <= waited[0] < 5.0 <= waited[1]  # the newest first, timed from its settle
    assert "/api/contracts/K-dust" not in api.reads  # a DUST refund is never sent
    assert api.reads.count("/api/contracts/K-new") == 3 and not ledger.failures
