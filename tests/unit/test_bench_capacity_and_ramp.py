"""`make bench`'s measured capacity units and `make load --ramp`'s step verdicts: pure functions
of what the engine answered / what the recorder saw."""

from __future__ import annotations

from dev.bench.calls import ApiCall, capacity
from dev.load.ramp import levels, step_checks


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
