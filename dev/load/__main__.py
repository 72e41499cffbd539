"""`make load`: device agents and renters against a local stack of its own, for a bounded time.

    python -m dev.load [--seconds 60] [--agents 200] [--renters 50] [--out .local/load.json]
    python -m dev.load --ramp [--ramp-max 32] [--step-seconds 15] [--api-processes 2]

``--ramp``: the closed-loop search for the ceiling (dev/load/ramp.py) instead of the timed
run below; the stack runs ``--api-processes`` API processes on one port (SO_REUSEPORT), and
DynamoDB Local with tiered C2 (``SI64_DYNAMODB_JIT=c2``), warmed up by running the first level
for ``--warmup-seconds`` (120) before the first step: the warm-up is reported
(``warmup`` in the report) and checked like a step, except its p99. A timed run keeps C1.

1. Starts a local stack (``dev.launch.launch``: ``python -m dev.stack`` on free 127.0.0.1
   ports, state in a temporary directory, a high ``SI64_RATE_LIMIT`` and enough slots per
   device for every agent's contract and every renter) and stops it at the end.
2. Set-up: fleet wallets rent one contract per agent (memo-bound payments).
3. Drive, for ``--seconds``: the agents post metric batches (``MetricsReporter``), the renters
   rent → read → extend → settle; the slot monitor reads every tier's devices every few seconds.
4. Wind-down: the agents flush and stop, the fleet's contracts are settled, the devices read
   once more ("end"), the books read back (every contract, every fixed account).
5. Writes the report (throughput and p50/p99 per operation, status/code counts, the checks,
   the generator's own CPU share, the settings) and exits 0 when every check passed, 1 when
   one failed, 2 when the run itself could not be made.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SCRUBBED_AWS = {
    "AWS_ACCESS_KEY_ID": "test",
    "AWS_SECRET_ACCESS_KEY": "test",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_REGION": "us-east-1",
    "AWS_EC2_METADATA_DISABLED": "true",
}


def say(msg: str) -> None:
    print(f"[load] {msg}", file=sys.stderr, flush=True)


def parse(argv) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="python -m dev.load", description=__doc__.split("\n")[0])
    ap.add_argument("--seconds", type=float, default=60.0, help="length of the drive phase (default 60)")
    ap.add_argument("--agents", type=int, default=200, help="device agents, one contract each (default 200)")
    ap.add_argument("--renters", type=int, default=50, help="renters renting/extending/settling (default 50)")
    ap.add_argument(
        "--capacity",
        type=int,
        default=0,
        help="SI64_DEVICE_CAPACITY (default: enough for agents + renters over 12 devices, + 2)",
    )
    ap.add_argument("--rate-limit", default="1000000/10", help="SI64_RATE_LIMIT of the stack (default 1000000/10)")
    ap.add_argument(
        "--interval", type=float, default=1.0, help="agent sample interval, s (default 1: 30 samples a batch)"
    )
    ap.add_argument(
        "--batch-seconds",
        type=float,
        default=30.0,
        help="agent batch period, s (default 30; what the emulator sustains: docs/capacity.md)",
    )
    ap.add_argument("--think", type=float, default=15.0, help="a renter's mean pause between steps, s (default 15)")
    ap.add_argument("--agent-threads", type=int, default=32, help="HTTP threads (connections) of the agents")
    ap.add_argument("--monitor-every", type=float, default=5.0, help="slot readings period, s (default 5)")
    ap.add_argument("--sweep-seconds", type=int, default=30, help="SI64_SWEEP_SECONDS of the stack (default 30)")
    ap.add_argument("--env", action="append", default=[], metavar="KEY=VALUE", help="more stack environment")
    ap.add_argument("--ramp", action="store_true", help="closed-loop ramp to the ceiling (dev/load/ramp.py)")
    ap.add_argument("--ramp-max", type=int, default=32, help="most renter (and metrics) workers of the ramp")
    ap.add_argument("--step-seconds", type=float, default=15.0, help="length of each ramp step, s")
    ap.add_argument(
        "--warmup-seconds",
        type=float,
        default=120.0,
        help="ramp: run the first level this long before the first step, so DynamoDB Local's C2 "
        "compiler has warmed up (measured and checked, never the ceiling; default 120, 0 for none)",
    )
    ap.add_argument("--ramp-batch", type=int, default=10, help="samples per metrics batch in the ramp")
    ap.add_argument("--ledger-every", type=float, default=2.0, help="ramp: seconds between ledger page reads (0: none)")
    ap.add_argument(
        "--refund-every", type=float, default=1.0, help="ramp: seconds between settle -> refund samples (0: none)"
    )
    ap.add_argument(
        "--api-processes", type=int, default=0, help="API processes on one port (default: 2 with --ramp, else 1)"
    )
    ap.add_argument("--keep-logs", default="", metavar="DIR", help="copy the stack's logs into DIR at the end")
    ap.add_argument("--out", default=str(ROOT / ".local" / "load.json"))
    a = ap.parse_args(argv)
    if not (1 <= a.seconds <= 3600 and 1 <= a.agents <= 2000 and 1 <= a.renters <= 500):
        ap.error("--seconds 1..3600, --agents 1..2000, --renters 1..500")
    return a


def cpu_seconds(pids) -> dict:
    """CPU seconds (user + system) of each process, by its `-m` module (e.g. dev.aws_emulator)."""
    import psutil

    out: dict = {}
    for pid in pids:
        try:
            p = psutil.Process(pid)
            t, argv = p.cpu_times(), p.cmdline()
        except psutil.Error:
            continue
        name = process_name(argv, pid)
        out[name] = out.get(name, 0.0) + t.user + t.system
    return out


def process_name(argv: list[str], pid: int) -> str:
    """A stack process's name in the report: its `-m` module (dev.api_server, ...), `dynamodb_local`
    for the JVM (java ... DynamoDBLocal.jar), else its program."""
    if "-m" in argv[:-1]:
        return argv[argv.index("-m") + 1]
    if argv and any("DynamoDBLocal" in x for x in argv):
        return "dynamodb_local"
    return argv[0] if argv else str(pid)


def self_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def drive(a, info, report: dict) -> dict:
    from chalicelib.domain import money
    from dev.load import actors, checks
    from dev.load.http import Api, Recorder
    from dev.load.monitor import Monitor

    rec = Recorder()
    api = Api(info["api_url"], rec, timeout=30.0)
    ledger = actors.Ledger()
    tiers = list(money.TIERS)
    monitor = Monitor(api, tiers, every=a.monitor_every)
    start = monitor.read("start")
    device_tiers = [r["tier"] for r in start if "device_id" in r]  # one entry per device
    say(f"{len(device_tiers)} devices; renting {a.agents} fleet contracts")
    fleet = actors.Fleet(api, info, ledger)
    t = time.monotonic()
    fleet.rent_all(device_tiers, a.agents, a.seconds, budget=180.0)
    report["setup_seconds"] = round(time.monotonic() - t, 1)
    say(f"{len(fleet.contracts)} fleet contracts in {report['setup_seconds']} s; starting {a.renters} renters")
    renters = [
        actors.RenterActor(api, info, ledger, f"r{i}", device_tiers, seed=i, think=a.think) for i in range(a.renters)
    ]
    funded = time.monotonic() + 20.0  # renters fund their wallets first, then start together
    stop_at = funded + a.seconds
    threads = [
        threading.Thread(target=r.run, args=(funded, stop_at, stop_at + 30.0), daemon=True, name=f"renter-{i}")
        for i, r in enumerate(renters)
    ]
    for th in threads:
        th.start()
    time.sleep(max(0.0, funded - time.monotonic()))
    stack_pids = set(info["started_pids"])
    cpu0, procs0, wall0 = self_cpu(), cpu_seconds(stack_pids), time.monotonic()
    load0 = os.getloadavg()
    rec.open_window(a.seconds)
    monitor.start()
    agents = actors.run_agents(
        api,
        info["device_keys"],
        [c for _, c in fleet.contracts],
        a.seconds,
        interval=a.interval,
        batch_seconds=a.batch_seconds,
        threads=a.agent_threads,
    )
    for th in threads:
        th.join(timeout=max(1.0, stop_at + 60.0 - time.monotonic()))
    window = rec.close_window()
    cpu1, procs1, wall1 = self_cpu(), cpu_seconds(stack_pids), time.monotonic()
    by_proc = {k: round(v - procs0.get(k, 0.0), 2) for k, v in sorted(procs1.items())}
    monitor.stop()
    say(f"drive over ({window:.1f} s); settling the fleet")
    fleet.settle_all(budget=180.0)
    fleet.close()
    monitor.read("end")
    books = checks.read_books(api, info["admin_key"], ledger)
    api.close()
    gen, stack, wall = cpu1 - cpu0, sum(by_proc.values()), wall1 - wall0
    ncpu = os.cpu_count() or 1
    report.update(
        throughput=rec.summary(window),
        generator={
            "cpu_seconds": round(gen, 2),
            "stack_cpu_seconds": round(stack, 2),
            "stack_cpu_seconds_by_process": by_proc,
            "wall_seconds": round(wall, 2),
            "cores": ncpu,
            "share_of_machine": round(gen / (wall * ncpu), 3),
            "share_of_run_cpu": round(gen / (gen + stack), 3) if gen + stack else None,
            "stack_share_of_machine": round(stack / (wall * ncpu), 3),
            "loadavg_1m_before_after": [round(load0[0], 2), round(os.getloadavg()[0], 2)],
            "note": "generator = this process (all threads, getrusage); stack = the launched "
            "processes (psutil); the machine may be shared with other work",
        },
        observations={
            "slot_readings": monitor.readings,
            "books": books,
            "actors": {
                "agents": agents,
                "fleet_contracts": len(fleet.contracts),
                "renter_cycles": sum(r.cycles for r in renters),
                "renter_errors": [r.error for r in renters if r.error],
                "renters_still_running": sum(th.is_alive() for th in threads),
                "orphan_payments": ledger.orphans,
                "contracts": len(ledger.contracts),
                "failures": ledger.failures,
            },
        },
    )
    return report


def main(argv=None) -> int:
    a = parse(argv)
    for k in ("AWS_ENDPOINT_URL", "AWS_PROFILE", "AWS_SESSION_TOKEN"):
        os.environ.pop(k, None)
    os.environ.update(SCRUBBED_AWS)
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    os.chdir(ROOT)
    from dev.launch import launch
    from dev.load.checks import evaluate

    if a.ramp:
        a.agents, a.renters = max(a.ramp_max, 12), a.ramp_max
    capacity = a.capacity or -(-(a.agents + a.renters) // 12) + 2
    env = {
        "SI64_DEVICE_CAPACITY": capacity,
        "SI64_RATE_LIMIT": a.rate_limit,
        "SI64_DEVICE_RATE_LIMIT": a.rate_limit,
        "SI64_RPC_LOOKUP_LIMIT": a.rate_limit,  # ~50 renters share one address here
        "SI64_SWEEP_SECONDS": a.sweep_seconds,
        "SI64_API_PROCESSES": a.api_processes or (2 if a.ramp else 1),
        # the ramp runs for minutes: tiered C2, warmed up first (docs/adr/0010); a timed run is C1's
        "SI64_DYNAMODB_JIT": "c2" if a.ramp else "c1",
    }
    for kv in a.env:
        k, _, v = kv.partition("=")
        env[k] = v
    settings = {
        **{k: v for k, v in vars(a).items() if k != "env"},
        "stack_env": {k: str(v) for k, v in env.items()},
        "host": "127.0.0.1 only",
        "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    report: dict = {"settings": settings}
    out = Path(a.out)
    state_dir = Path(tempfile.mkdtemp(prefix="si64-load-"))
    t0 = time.monotonic()
    code = 0
    try:
        with launch(state_dir, timeout=150.0, **env) as info:
            say(f"stack up at {info['api_url']} (capacity {capacity}/device, rate limit {a.rate_limit})")
            if a.ramp:
                from dev.load.ramp import ramp

                ramp(a, info, report, say)
            else:
                drive(a, info, report)
        report["checks"] = evaluate(report)
        report["ok"] = all(c["ok"] for c in report["checks"].values())
        code = 0 if report["ok"] else 1
    except Exception as exc:  # noqa: BLE001 — the run could not be made: the report says why
        report.update(ok=False, error=f"{type(exc).__name__}: {exc}")
        say(f"error: {report['error']}")
        code = 2
    finally:
        if a.keep_logs and (state_dir / "logs").is_dir():
            shutil.copytree(state_dir / "logs", a.keep_logs, dirs_exist_ok=True)
        shutil.rmtree(state_dir, ignore_errors=True)
        report["seconds_total"] = round(time.monotonic() - t0, 1)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(report, indent=1) + "\n")
    print_summary(report, out)
    return code


def print_summary(report: dict, out: Path) -> None:
    tp = report.get("throughput")
    if tp:
        say(f"{tp['requests_in_window']} requests in {tp['window_seconds']} s = {tp['requests_per_second']} req/s")
        for op, s in tp["operations"].items():
            say(
                f"  {op:<14} {s['in_window']:>6} in window  {s['per_second']:>7}/s  "
                f"p50 {s['p50_ms']} ms  p99 {s['p99_ms']} ms"
            )
        say(f"  statuses: {tp['status_totals']}")
        g = report.get("generator") or {}
        say(
            f"  generator CPU {g['cpu_seconds']} s = {g['share_of_machine']:.0%} of {g['cores']} cores; "
            f"stack {g['stack_cpu_seconds']} s = {g['stack_share_of_machine']:.0%}"
        )
    best = (report.get("ramp") or {}).get("ceiling")
    if "ramp" in report:
        if best:
            ops = best["operations"]
            say(
                f"  ceiling: {best['billing_ops_per_second']} billing ops/s at {best['renters']}+"
                f"{best['metrics_workers']} workers; "
                + ", ".join(f"{op} p50 {ops[op]['p50_ms']} / p99 {ops[op]['p99_ms']} ms" for op in sorted(ops))
            )
        else:
            say("  ceiling: no step passed")
        seed = report["ramp"].get("ceiling_with_seed_p50s")
        say(
            "  with the seed's p50s (status < 50, metrics < 100, rent < 200, ledger < 100, settle->refund < 5,000 ms): "
            + (
                f"{seed['billing_ops_per_second']} billing ops/s at {seed['renters']}+{seed['metrics_workers']}"
                if seed
                else "no step"
            )
        )
    for name, c in (report.get("checks") or {}).items():
        say(f"  {'ok  ' if c['ok'] else 'FAIL'} {name}: {c['detail']}")
    say(f"{'clean' if report.get('ok') else 'NOT clean'}; report: {out}")


if __name__ == "__main__":
    sys.exit(main())
