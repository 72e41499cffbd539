"""The call-counting harness of `make bench` (dev/bench_calls.py) on moto: it counts known
operations exactly, names their call sites, and the gated call budgets hold.

A correctness test of the harness and of the call budget, not a timing test."""

from collections import Counter

from solders.keypair import Keypair

from dev.bench.calls import BUDGETS, ApiCall, CallRecorder, item_size, wcu
from si64.renter import renter_headers

from .conftest import ADMIN_KEY
from .test_lifecycle_moto import rent

ADMIN = {"X-Admin-Key": ADMIN_KEY}
SAMPLE = {"cpu_percent": 12.5, "memory_mb": 2048, "disk_io_mbps": 1, "network_io_mbps": 0.5}


def measured(rec, fn):
    with rec.measure() as m:
        out = fn()
    return out, m


def test_status_is_exactly_one_read(api):
    (st, body), _ = rent(api)
    assert st == 201
    rec = CallRecorder()
    try:
        (st, view), m = measured(rec, lambda: api.get(f"/api/contracts/{body['contract_id']}"))
    finally:
        rec.close()
    assert st == 200 and view["contract_id"] == body["contract_id"]
    # the contract and its covered time (a small item of the metrics table) in one BatchGetItem
    assert m.counts == Counter({"dynamodb.BatchGetItem": 1})
    assert m.attempts == 1  # one HTTP try: no retry hidden behind the one call
    assert set(m.calls[0].params["RequestItems"]) == {"si64-test-contracts", "si64-test-metrics"}
    (site,) = m.sites()["dynamodb.BatchGetItem"]
    # from the status use case (services/contract_reads.py; Rentals.status reads through it too)
    assert "chalicelib/adapters/contracts.py" in site and "chalicelib/services/contract_reads.py" in site
    assert BUDGETS["status"].check(m.counts) == (True, [])


def test_nothing_is_counted_outside_measure_and_after_close(api):
    rec = CallRecorder()
    api.get("/api/health")
    with rec.measure() as m:
        pass
    rec.close()
    with rec.measure() as after:
        api.get("/api/health")
    assert m.counts == Counter() and after.counts == Counter()


def test_issue_budgets_hold_for_rent_metrics_settle_and_ledger(api):
    kp = Keypair()
    wallet = str(kp.pubkey())
    rec = CallRecorder()
    try:
        ((st, body), _), m_rent = measured(rec, lambda: rent(api, tier="THOR", wallet=wallet))
        assert st == 201, body
        cid, dev = body["contract_id"], body["device_id"]
        key = api.key_for(dev)
        api.c.clock.advance(60)
        (st, _), m_one = measured(rec, lambda: api.post(f"/api/metrics/{cid}", SAMPLE, {"X-Device-Key": key}))
        assert st == 200
        batch = {"samples": [dict(SAMPLE, timestamp_ms=api.c.clock() - i) for i in range(120)]}
        (st, out), m_batch = measured(rec, lambda: api.post(f"/api/metrics/{cid}", batch, {"X-Device-Key": key}))
        assert st == 200 and out["samples_recorded"] == 120
        (st, _), m_ledger = measured(rec, lambda: api.get("/api/billing/ledger?limit=100", ADMIN))
        assert st == 200
        path = f"/api/contracts/{cid}/settle"
        hdrs = renter_headers(kp, "POST", path, ts=api.c.clock() // 1000)
        (st, settled), m_settle = measured(rec, lambda: api.post(path, raw="", headers=hdrs))
        assert st == 200 and settled["refund_status"] == "QUEUED"
    finally:
        rec.close()
    assert m_rent.counts == Counter({"dynamodb.Query": 1, "dynamodb.TransactWriteItems": 1})
    # one PutItem per report, device + contract in one BatchGetItem, the device stamped once a minute
    assert m_one.counts == Counter({"dynamodb.BatchGetItem": 1, "dynamodb.PutItem": 1, "dynamodb.UpdateItem": 1})
    assert m_batch.counts == Counter({"dynamodb.BatchGetItem": 1, "dynamodb.PutItem": 1})
    assert m_settle.counts == Counter(
        {"dynamodb.BatchGetItem": 1, "dynamodb.TransactWriteItems": 1, "sqs.SendMessage": 1}
    )
    # the page (1 Scan), then the covered time of its ACTIVE contracts and the whole-book totals
    # (the counter items; ADR 0006) in 1 BatchGetItem
    assert m_ledger.counts == Counter({"dynamodb.Scan": 1, "dynamodb.BatchGetItem": 1})
    for name, m in (
        ("rent", m_rent),
        ("metrics", m_one),
        ("metrics_batch_120", m_batch),
        ("settle", m_settle),
        ("ledger_page", m_ledger),
    ):
        assert BUDGETS[name].check(m.counts) == (True, []), name
    # the one write of a batch is a plain conditional put of the packed batch, under 1 KB
    (put,) = [c for c in m_batch.calls if c.op == "dynamodb.PutItem"]
    assert put.params["ConditionExpression"].startswith("attribute_not_exists")
    assert item_size(put.params["Item"]) <= 1024


def test_budgets_flag_extra_and_missing_calls():
    ok, problems = BUDGETS["status"].check(Counter({"dynamodb.GetItem": 2}))
    assert not ok and problems == ["2 read (want 1)"]
    ok, problems = BUDGETS["settle"].check(
        Counter({"dynamodb.GetItem": 1, "dynamodb.TransactWriteItems": 1, "sqs.SendMessage": 1, "sqs.GetQueueUrl": 1})
    )
    assert not ok and problems == ["extra: 1x sqs.GetQueueUrl"]
    ok, problems = BUDGETS["metrics"].check(Counter({"dynamodb.GetItem": 2, "dynamodb.PutItem": 1}))
    assert not ok and problems == ["0 get (want 1)", "extra: 2x dynamodb.GetItem"]
    ok, problems = BUDGETS["metrics"].check(Counter({"dynamodb.BatchGetItem": 1, "dynamodb.TransactWriteItems": 1}))
    assert not ok and problems == ["0 put (want 1)", "extra: 1x dynamodb.TransactWriteItems"]
    assert BUDGETS["metrics"].check(Counter({"dynamodb.BatchGetItem": 1, "dynamodb.PutItem": 1}))[0]
    assert not BUDGETS["ledger_page"].check(Counter({"dynamodb.Scan": 1, "dynamodb.GetItem": 100}))[0]
    assert BUDGETS["ledger_page"].check(Counter({"dynamodb.Scan": 1}))[0]


def test_write_units_of_a_transaction():
    big = {"pk": {"S": "x"}, "samples": {"S": "a" * 3000}}
    small = {"pk": {"S": "y"}, "n": {"N": "120"}}
    call = ApiCall(
        "dynamodb.TransactWriteItems",
        {
            "TransactItems": [
                {"Put": {"TableName": "m", "Item": big}},
                {"Update": {"TableName": "d", "Key": {"pk": {"S": "y"}}}},
                {"ConditionCheck": {"TableName": "c", "Key": {"pk": {"S": "y"}}}},
            ]
        },
        [],
    )
    stored = {("d", "y"): dict(small, tier={"S": "M2"}), ("c", "y"): small}
    out = wcu(call, lambda t, k: stored[(t, k["pk"]["S"])], {"d": [("tier", None)], "m": [], "c": []})
    # "120": 2 significant digits -> 2 bytes
    assert item_size(big) == 2 + 1 + 7 + 3000 and item_size(small) == (2 + 1) + (1 + 2)
    # 3 KB put x2, 1 KB update x2, 1 KB check x2; the device's by-tier index: 1
    assert {k: out[k] for k in ("items", "table_wcu", "gsi_wcu", "sizes")} == {
        "items": 3,
        "table_wcu": 6 + 2 + 2,
        "gsi_wcu": 1,
        "sizes": [3010, 12, 6],
    }
    assert out["detail"] == ["Put m: 3010 B", "Update d: 12 B", "ConditionCheck c: 6 B"]
