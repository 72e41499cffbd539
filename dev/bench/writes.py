"""Metric write cost: 1,000 samples posted one by one and in batches of 120, in-process,
counting write calls, with the write units DynamoDB Local reports (ConsumedCapacity, table and
indexes: `measured`) and the older estimate from item sizes beside them (`wcu_total`).

`wcu_per_1000_samples` gates `make bench`: <= WCU_TARGETS, on the measured units (the estimate
when the engine reported none: moto). `coverage` is the part of each report that keeps the
covered time (services/telemetry.py `_cover`, docs/adr/0016-covered-time.md). The bench's
samples are a steady reporter's (the same values each time); `batch_120_noisy` posts the
same 1,000 samples with agent-like noise in every value (packages/si64/src/si64/agent.py precision:
cpu 2 decimals, memory 3, rates 6) to show what varied data costs — shown, not gated."""

from __future__ import annotations

import math
import random
import time
from collections import Counter
from contextlib import contextmanager

from dev.bench.common import SAMPLE, BenchError, Wallet
from dev.bench.inprocess import InProcess

# before the packed batch: ~7,000 and ~129. A single sample costs 2 WCU by design (its batch put
# and its coverage write, docs/adr/0016-covered-time.md) plus the device's stamps (2 WCU a minute)
WCU_TARGETS = {"single": 2100, "batch_120": 20}
COVER_GRACE_S = 1


def noisy_sample(rng: random.Random, i: int) -> dict:
    """A sample as a busy device agent reports it (values vary in every digit it sends)."""
    return {
        "cpu_percent": round(rng.uniform(3, 95), 2),
        "memory_mb": round(6000 + rng.uniform(0, 400), 3),
        "disk_io_mbps": round(rng.choice([0.0, 0.0, rng.uniform(0, 40)]), 6),
        "network_io_mbps": round(rng.uniform(0, 5), 6),
    }


def is_cover(call) -> bool:
    """The write that keeps a report's covered time (services/telemetry.py `_cover`), whichever
    item holds it: known by its call site."""
    return any("services/telemetry.py" in s and s.endswith(" _cover") for s in call.site)


def gated_wcu(part: dict) -> float:
    """The write units a part is gated on: measured when the engine reported every call's, else
    the estimate from item sizes."""
    m = part["measured"]
    return m["wcu"] if m["calls_without_capacity"] == 0 else part["wcu_total"]


def _direct(info: dict) -> str | None:
    """The stack's DynamoDB Local endpoint (tables are made there through the DynamoDB API), or None on moto."""
    return info.get("dynamodb_endpoint") if info.get("dynamodb_engine") == "dynamodb-local" else None


def metric_writes(info: dict, payer: Wallet, ddb) -> dict:
    """1,000 samples, single and in batches of 120, on fresh tables (prefix si64-bw) of the same
    emulator, so that moto's per-transaction table copies stay small."""
    from dev.provision import provision

    prefix = "si64-bw"
    res = provision(prefix, info["aws_endpoint"], "us-east-1", dynamodb_endpoint_url=_direct(info))
    # a 1 s grace, and reports from 1.1 s after the rent: every report extends the covered time
    # (one conditional UpdateItem of the contract's coverage item), the steady state of any grace
    # once the start-up allowance has passed
    api = InProcess(
        info, payer, prefix=prefix, queue_url=res.queue_url, dlq_url=res.dlq_url, coverage_grace_seconds=COVER_GRACE_S
    )
    try:
        api.seed_devices()
        with one_transaction_connection() as cached:
            out = _metric_writes(api, ddb, prefix)
        out["bench_reused_transaction_connection"] = cached
        return out
    finally:
        api.close()


@contextmanager
def one_transaction_connection():
    """While counting 1,000 posts only: if chalicelib builds a new PynamoDB Connection (so a new
    botocore session and client, ~0.2 s of CPU) for every transaction, hand it one reused
    Connection instead. The AWS calls and items are the same either way; it only keeps this
    phase within the bench's time. Yields whether it had to."""
    from chalicelib.adapters import dynamo, transactions

    original = transactions.transaction_connection
    if dynamo.transaction_connection() is dynamo.transaction_connection():
        yield False
        return
    shared = original()
    transactions.transaction_connection = lambda: shared
    try:
        yield True
    finally:
        transactions.transaction_connection = original


def _metric_writes(api: InProcess, ddb, prefix: str) -> dict:
    from dev.bench.calls import capacity, table_gsis, wcu

    gsis = table_gsis(ddb, [f"{prefix}-{t}" for t in ("contracts", "devices", "ledger", "claims", "metrics")])

    def fetch(table, key):
        return ddb.get_item(TableName=table, Key=key, ConsistentRead=True).get("Item")

    out = {}
    rng = random.Random(10)
    for label, per_request in (("single", 1), ("batch_120", 120), ("batch_120_noisy", 120)):
        c = api.rent("M2", 2)
        cid, key = c["contract_id"], {"X-Device-Key": api.device_keys[c["device_id"]]}
        time.sleep(COVER_GRACE_S + 0.1)  # past the start-up allowance: every report extends the coverage
        requests = math.ceil(1000 / per_request)
        calls, remaining, t0 = [], 1000, time.monotonic()
        base = int(time.time() * 1000) - 10_000  # within the contract's lifetime (its 30 s skew)
        for r in range(requests):
            k = min(per_request, remaining)
            remaining -= k
            if per_request == 1:
                body = SAMPLE
            elif label.endswith("noisy"):
                body = {
                    "samples": [dict(noisy_sample(rng, i), timestamp_ms=base + r * per_request + i) for i in range(k)]
                }
            else:
                body = {"samples": [dict(SAMPLE, timestamp_ms=base + r * per_request + i) for i in range(k)]}
            with api.rec.measure() as m:
                st, resp = api.request("POST", f"/api/metrics/{cid}", body, key)
            if st != 200 or resp.get("samples_recorded") != k:
                raise BenchError(f"metrics {label}: {st} {resp}")
            calls.append(m)
        elapsed = time.monotonic() - t0
        counts = sum((m.counts for m in calls), Counter())
        writes = [
            c
            for m in calls
            for c in m.calls
            if c.op
            in ("dynamodb.TransactWriteItems", "dynamodb.PutItem", "dynamodb.UpdateItem", "dynamodb.BatchWriteItem")
        ]
        units = [wcu(w, fetch, gsis) for w in writes]
        puts = [u["sizes"][0] for w, u in zip(writes, units, strict=True) if w.op == "dynamodb.PutItem"]
        # the covered time's write of each report, wherever it is kept (its call site)
        cover_calls = [w for w in writes if w.op == "dynamodb.UpdateItem" and is_cover(w)]
        covers = [u for w, u in zip(writes, units, strict=True) if any(w is c for c in cover_calls)]
        measured = capacity([c for m in calls for c in m.calls])
        cover_measured = capacity(cover_calls)
        cover_tables = sorted({w.params.get("TableName", "?").removeprefix(f"{prefix}-") for w in cover_calls})
        out[label] = {
            "samples": 1000,
            "requests": requests,
            "write_calls": len(writes),
            "read_calls": sum(
                v
                for k, v in counts.items()
                if k in ("dynamodb.GetItem", "dynamodb.BatchGetItem", "dynamodb.Query", "dynamodb.Scan")
            ),
            "calls": dict(sorted(counts.items())),
            "calls_per_request": {op: round(n / requests, 3) for op, n in sorted(counts.items())},
            "device_stamps": counts.get("dynamodb.UpdateItem", 0) - len(covers),
            "coverage": {  # the covered time kept with each report (domain/coverage.py)
                "tables": cover_tables,
                "update_calls": len(covers),
                "update_calls_per_request": round(len(covers) / requests, 3),
                "wcu": sum(u["table_wcu"] + u["gsi_wcu"] for u in covers),
                "wcu_per_request": round(sum(u["table_wcu"] + u["gsi_wcu"] for u in covers) / requests, 3),
                "wcu_measured": cover_measured["write_units"],
                "wcu_measured_per_request": round(cover_measured["write_units"] / requests, 3),
            },
            "measured": {  # DynamoDB Local's ConsumedCapacity (dev/bench/calls.py `capacity`)
                "wcu": measured["write_units"],
                "rcu": measured["read_units"],
                "calls_without_capacity": measured["calls_without"],
                "by_table": measured["by_table"],
            },
            "items_written": sum(u["items"] for u in units),
            "wcu_table": sum(u["table_wcu"] for u in units),
            "wcu_gsi": sum(u["gsi_wcu"] for u in units),
            "wcu_total": sum(u["table_wcu"] + u["gsi_wcu"] for u in units),
            "batch_item_bytes": {"min": min(puts), "max": max(puts)} if puts else None,
            "items_of_first_request": units[0]["detail"],
            "in_process_seconds": round(elapsed, 2),
        }
    gated = {label: gated_wcu(out[label]) for label in ("single", "batch_120", "batch_120_noisy")}
    out["wcu_per_1000_samples"] = {
        **gated,
        "estimated": {label: out[label]["wcu_total"] for label in gated},
        "source": "measured" if all(out[k]["measured"]["calls_without_capacity"] == 0 for k in gated) else "estimate",
        "targets": dict(WCU_TARGETS),
        "met": all(gated[k] <= v for k, v in WCU_TARGETS.items()),
    }
    out["method"] = (
        "gated on the write units the engine reports (ConsumedCapacity, DynamoDB Local: `measured`); "
        "the estimate from item sizes (`wcu_total`) beside them: a PutItem/UpdateItem costs 1 WCU per started KB, a "
        "TransactWriteItems item 2 WCU per started KB "
        "(Put: size of the item sent; Update/ConditionCheck: size of the stored item read back after "
        "the run); a Put/Update of an item carrying a GSI's keys adds 1 WCU per started KB per index "
        "(projection ALL). The emulator (moto) reports no ConsumedCapacity for TransactWriteItems."
    )
    return out


def refund_worker_units(info: dict, payer: Wallet) -> dict:
    """Measured capacity units of the refund worker's steps for one settled contract: the
    worker (services/refunds.py RefundWorker, built as the refund function builds it) run
    in-process on a prefix of its own, so the stack's event runner never races it; each
    `handle` call with the events it took (sent, confirmed) and its ConsumedCapacity."""
    import time
    from pathlib import Path

    from dev.bench.calls import capacity
    from dev.provision import provision

    prefix = "si64-rw"
    res = provision(prefix, info["aws_endpoint"], "us-east-1", dynamodb_endpoint_url=_direct(info))
    key_file = str(Path(info["state_dir"]) / "treasury.json")
    api = InProcess(
        info, payer, prefix=prefix, queue_url=res.queue_url, dlq_url=res.dlq_url, treasury_key_file=key_file
    )
    try:
        api.seed_devices()
        cid = api.rent("M2", 1)["contract_id"]
        path = f"/api/contracts/{cid}/settle"
        st, out = api.request("POST", path, "", payer.renter_headers("POST", path))
        if st != 200 or out.get("refund_status") != "QUEUED":
            raise BenchError(f"settle for the refund worker: {st} {out}")
        worker = api.container.refund_worker
        steps = []
        for _ in range(60):
            with api.rec.measure() as m:
                done = worker.handle(cid)
            steps.append(
                {
                    "events": list(done.events),
                    "status_before": done.status,
                    "note": done.note,
                    "calls": dict(m.counts),
                    "consumed_capacity": capacity(m),
                    "per_call": [
                        {
                            "op": c.op,
                            "write_units": capacity([c])["write_units"],
                            "read_units": capacity([c])["read_units"],
                        }
                        for c in m.calls
                    ],
                }
            )
            if done.done:
                break
            time.sleep(0.25)
        return {"contract_id": cid, "steps": steps, "done": bool(steps) and steps[-1]["events"] == [] and done.done}
    finally:
        api.close()
