"""`make bench`: AWS calls per endpoint, HTTP latency, metric write cost, cold import.

    python -m dev.bench [--n 50] [--out .local/bench.json] [--no-latency] [--no-import]

1. Starts its own local stack (`dev.launch.launch`: `python -m dev.stack` on free
   127.0.0.1 ports, state in a temporary directory) and stops it at the end whatever happens.
2. AWS calls (dev/bench/inprocess.py): each endpoint served in-process through
   `chalice.test.Client(app)` bound to the stack's emulator and real local chain, every
   botocore call counted (dev/bench/calls.py); the ledger page with 300 ACTIVE contracts.
3. Latency (dev/bench/latency.py): N sequential requests per endpoint over HTTP to the
   stack's API server, on new connections and on one keep-alive session; p50 / p95 in ms.
4. Metric writes per 1,000 samples (dev/bench/writes.py): single and batch posts, write
   calls and estimated write units (`wcu_per_1000_samples`, against `WCU_TARGETS`).
5. Cold import of each Lambda entry point against `import boto3, pynamodb.models, chalice`
   (dev/bench/cold_import.py): `cold_import_ms` and `cold_import_ratio` per entry point.

Writes `.local/bench.json`; exits 1 when an AWS-call target or a write-unit target
is missed (call counts and item sizes: deterministic, not timings; the cold-import
ratio is a timing on a shared machine: reported against its target, never fails the run),
2 when the bench itself could not run.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

from dev.bench.common import CAPACITY, ROOT, SOL, BenchError, Wallet, say
from dev.launch import launch
from dev.stack import SCRUB

KEEP_ALIVE_LIMIT = 1.5  # status p50 on a session within 1.5x of its p50 on new connections


def table(rows, header) -> str:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    line = lambda r: "  ".join(str(c).ljust(w) for c, w in zip(r, widths, strict=True)).rstrip()
    return "\n".join([line(header), line(["-" * w for w in widths])] + [line(r) for r in rows])


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m dev.bench", description=__doc__.split("\n")[0])
    ap.add_argument(
        "--n",
        type=int,
        default=int(os.environ.get("SI64_BENCH_N", "50")),
        help="HTTP requests per endpoint (sequential), default 50",
    )
    ap.add_argument("--out", default=str(ROOT / ".local" / "bench.json"))
    ap.add_argument("--no-latency", action="store_true")
    ap.add_argument("--no-import", action="store_true")
    ap.add_argument("--latency-budget", type=float, default=180.0, help="seconds for the HTTP phase")
    ap.add_argument("--endpoint-budget", type=float, default=8.0, help="seconds per endpoint and mode")
    args = ap.parse_args(argv)
    args.n = max(1, min(args.n, 1000))
    t_start = time.monotonic()
    for k in (*SCRUB, "AWS_ENDPOINT_URL"):
        os.environ.pop(k, None)
    os.environ.update(
        AWS_ACCESS_KEY_ID="test",
        AWS_SECRET_ACCESS_KEY="test",
        AWS_DEFAULT_REGION="us-east-1",
        AWS_REGION="us-east-1",
        AWS_EC2_METADATA_DISABLED="true",
    )
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    os.chdir(ROOT)

    result: dict = {}
    rows, calls_ok = [], False
    state_dir = Path(tempfile.mkdtemp(prefix="si64-bench-"))
    try:
        stack_env = {
            "SI64_DEVICE_CAPACITY": CAPACITY,
            "SI64_RATE_LIMIT": "1000000/10",
            "SI64_RPC_LOOKUP_LIMIT": "1000000/10",
            "SI64_DEVICE_RATE_LIMIT": "1000000/10",
            "SI64_SWEEP_SECONDS": "600",
        }
        with launch(state_dir, timeout=150.0, **stack_env) as info:
            from dev.bench.cold_import import cold_import
            from dev.bench.inprocess import InProcess, count_calls, report_calls
            from dev.bench.latency import latency
            from dev.bench.writes import metric_writes

            say(f"stack up: api={info['api_url']} aws={info['aws_endpoint']} rpc={info['rpc_url']}")
            payer = Wallet(info["rpc_url"], info["treasury"])
            api = None
            try:
                payer.fund(200 * SOL)
                api = InProcess(info, payer)
                t0 = time.monotonic()
                extra = count_calls(api)
                part, rows, calls_ok = report_calls(api)
                result.update(part)
                result["aws_calls_setup"] = {
                    "mode": "in-process chalice.test.Client(app) against the stack's DynamoDB Local (SQS on the "
                    "moto server) and local chain; payments are real solana-py transfers (no FakeRpc); "
                    "the 300 ACTIVE contracts behind the ledger page are seeded by batch writes (see seed_active)",
                    "active_contracts_at_ledger_page": extra["active_at_ledger"],
                    "ledger_page_limit": 100,
                }
                say(f"AWS calls counted in {time.monotonic() - t0:.1f}s")
                result["consumed_capacity"] = {
                    name: d["consumed_capacity"] for name, d in result["aws_calls_detail"].items()
                }
                print("\nDynamoDB capacity units per request, measured (ConsumedCapacity, table + indexes)")
                print(
                    table(
                        [
                            (
                                name,
                                f"{c['read_units']:g}",
                                f"{c['write_units']:g}",
                                "; ".join(
                                    f"{t.split('-')[-1]} r{u['read']:g}/w{u['write']:g}"
                                    + "".join(f" [{i} w{x['write']:g}]" for i, x in u["indexes"].items() if x["write"])
                                    for t, u in c["by_table"].items()
                                ),
                            )
                            for name, c in result["consumed_capacity"].items()
                        ],
                        ("endpoint", "RCU", "WCU", "by table (read/write) [index writes]"),
                    )
                )
                t0 = time.monotonic()
                import boto3

                ddb = boto3.client("dynamodb", endpoint_url=info["aws_endpoint"], region_name="us-east-1")
                api.close()
                api = None
                result["writes_per_1000_samples"] = metric_writes(info, payer, ddb)
                say(f"metric write cost measured in {time.monotonic() - t0:.1f}s")
                from dev.bench.writes import refund_worker_units

                result["refund_worker_capacity"] = rw = refund_worker_units(info, payer)
                for step in rw["steps"]:
                    cu = step["consumed_capacity"]
                    say(
                        f"refund worker step {step['events'] or step['note']}: "
                        f"{cu['read_units']:g} RCU + {cu['write_units']:g} WCU ({step['calls']})"
                    )
            finally:
                if api is not None:
                    api.close()
            try:
                if not args.no_latency:
                    t0 = time.monotonic()
                    result["latency_ms"] = latency(info, payer, args.n, args.latency_budget, args.endpoint_budget)
                    result["latency_setup"] = {
                        "n": args.n,
                        "sequential": True,
                        "target": info["api_url"],
                        "server": "python -m dev.api_server of the local stack (Chalice's local server, TCP_NODELAY)",
                        "new_connection": "http.client, one connection per request (connect timed)",
                        "keep_alive": "one requests.Session, its connection opened before timing",
                        "percentile": "nearest rank",
                        "cap_seconds_per_endpoint": args.endpoint_budget,
                        "cap_seconds_total": args.latency_budget,
                    }
                    say(f"latency measured in {time.monotonic() - t0:.1f}s")
            finally:
                payer.close()
            if not args.no_import:
                t0 = time.monotonic()
                result["cold_import"] = cold_import()
                say(f"cold import measured in {time.monotonic() - t0:.1f}s")
    except BenchError as exc:
        say(f"error: {exc}")
        return 2
    except Exception:  # noqa: BLE001 - the bench broke: not a missed target (exit 1)
        import traceback

        traceback.print_exc()
        say("error: the bench itself failed (exit 2)")
        return 2
    finally:
        shutil.rmtree(state_dir, ignore_errors=True)

    status = result.get("latency_ms", {}).get("status", {})
    if "keep_alive" in status:
        ratio = round(status["keep_alive"]["p50"] / status["p50"], 2)
        result["keep_alive_check"] = {
            "status_p50_new_connection_ms": status["p50"],
            "status_p50_keep_alive_ms": status["keep_alive"]["p50"],
            "ratio": ratio,
            "limit": KEEP_ALIVE_LIMIT,
            "within_limit": ratio <= KEEP_ALIVE_LIMIT,
        }
    wcu = result.get("writes_per_1000_samples", {}).get("wcu_per_1000_samples")
    if wcu:
        result["wcu_per_1000_samples"] = wcu
    result["targets_met"] = calls_ok and bool(wcu and wcu["met"])
    result["seconds"] = round(time.monotonic() - t_start, 1)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")

    lat = result.get("latency_ms", {})

    def fig(name, key, mode=None):
        x = lat.get(name, {})
        x = x.get(mode, {}) if mode else x
        return "-" if key not in x else (str(x[key]) if key == "n" else f"{x[key]:.1f}")

    full = [(*r, *(fig(r[0], k, m) for m in (None, "keep_alive") for k in ("p50", "p95", "n"))) for r in rows]
    header = ("endpoint", "calls", "by operation", "target", "result", "new clients")
    print(table(full, (*header, "p50 ms", "p95 ms", "n", "ka p50", "ka p95", "ka n")))
    print("p50/p95: a new connection per request; ka: one keep-alive requests.Session")
    ka = result.get("keep_alive_check")
    if ka:
        print(
            f"keep-alive: status p50 {ka['status_p50_keep_alive_ms']} ms on a session vs "
            f"{ka['status_p50_new_connection_ms']} ms on new connections (x{ka['ratio']}, limit x{KEEP_ALIVE_LIMIT}: "
            f"{'ok' if ka['within_limit'] else 'STALLED'})"
        )
    print("* the bench's own budget, not a gated target: shown, never fails the run")
    print("new clients: botocore clients built while serving one warm request (no AWS call, ~0.2 s CPU each)")
    sites = sorted({s for d in result["aws_calls_detail"].values() for s in d["client_created_at"]})
    for s in sites:
        print(f"    client built at: {s}")
    w = result.get("writes_per_1000_samples")
    if w:
        from dev.bench.writes import WCU_TARGETS, gated_wcu

        for label in ("single", "batch_120", "batch_120_noisy"):
            x = w[label]
            target = WCU_TARGETS.get(label)
            gated = gated_wcu(x)
            cov = x["coverage"]
            print(
                f"1,000 samples as {label:15}: {x['requests']:4} requests, {x['write_calls']:4} write calls "
                f"({x['device_stamps']} device stamps), {x['items_written']:4} items, {x['measured']['wcu']:g} WCU "
                f"measured (~{x['wcu_total']} estimated: {x['wcu_table']} table + {x['wcu_gsi']} index), "
                f"{x['read_calls']} reads ({x['measured']['rcu']:g} RCU); "
                f"batch item {x['batch_item_bytes']['max']} B max"
                + (f"; target <= {target}: {'ok' if gated <= target else 'MISSED'}" if target else " (info)")
            )
            print(
                f"    coverage of it: {cov['update_calls']} UpdateItem on {'/'.join(cov['tables']) or '-'} "
                f"({cov['update_calls_per_request']:g} per request), {cov['wcu_measured']:g} WCU measured "
                f"({cov['wcu_measured_per_request']:g} per request; ~{cov['wcu']} estimated)"
            )
    ci = result.get("cold_import")
    if ci:
        b = ci["baseline"]
        print(f"cold import baseline ({b['code']}): median {b['median_ms']} ms")
        for name, x in ci["entry_points"].items():
            if "skipped" in x:
                print(f"cold import {name}: skipped ({x['skipped']})")
                continue
            tops = ", ".join(f"{m['module']} {m['ms']}" for m in x["top5_packages_cumulative_ms"])
            print(
                f"cold import {name}: {x['cold_import_ms']} ms, ratio {x['cold_import_ratio']} (target <= "
                f"{ci['target_ratio']}: {'ok' if x['within_target'] else 'over'}); top (ms, cumulative): {tops}"
            )
    failed = [n for n, d in result["aws_calls_detail"].items() if d["gate"] and not d["ok"]]
    for n in failed:
        print(f"MISSED {n}: {'; '.join(result['aws_calls_detail'][n]['problems'])}")
        for op, sites in result["aws_calls_detail"][n]["call_sites"].items():
            for s in sites:
                print(f"    {op}: {s}")
    ok = result["targets_met"]
    verdict = "every AWS-call and write-unit target met" if ok else "TARGET MISSED"
    print(f"wrote {out} in {result['seconds']}s: {verdict}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
