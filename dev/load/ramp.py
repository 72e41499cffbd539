"""`make load` closed-loop ramp (``python -m dev.load --ramp``): find the ceiling.

Closed loop: every worker sends its next request as soon as the previous one is answered
(no think time), so the offered load is the number of workers. Each step adds workers and
holds for ``--step-seconds``:

* renter workers (``RenterActor`` with no pause): rent -> status -> extend -> settle, paying on
  the local chain, again and again;
* metrics workers: a batch of ``--ramp-batch`` samples for one fleet contract, with its
  device's key, again and again;
* a refund watcher (``--refund-every`` seconds): the renter contract settled last, with a
  refund to send, is read every 0.2 s until its refund reads CONFIRMED; the time from the
  settle's answer is recorded as ``settle_to_refund`` (the seed's "settlement in 2-5 s");
* one operator reading the ledger page (``GET /api/billing/ledger?limit=100``, the admin key)
  every ``--ledger-every`` seconds: its p50 at each step is the ledger page's latency at that
  load (not a billing operation; its answers count in the step's checks like any other).

After each step: billing operations per second (rent + extend + settle + metrics batches
answered 2xx in the step, divided by its length), p50/p99 of each operation, and the step's
own checks (no 5xx, every request answered, only the named 409/429, no unexpected answer to
an actor). The ramp stops at the first step whose p99 (any billing operation or status)
passes 1 s or whose checks fail, or after the last step. Then the fleet is settled and the
whole run is judged by the same checks as a timed run (books, slots, actors).

The ceiling reported is the last step that passed, provided the whole-run checks passed too.
"""

from __future__ import annotations

import threading
import time

BILLING = ("rent", "extend", "settle", "metrics_batch")
P99_LIMIT_MS = 1000.0
REFUND_OP = "settle_to_refund"  # settle answered -> GET shows the refund CONFIRMED (not a request)
REFUND_GIVE_UP_S = 60.0
# the seed's own figures, p50 ms at the load: the report says whether each step meets them
TARGETS_P50_MS = {"status": 50.0, "metrics_batch": 100.0, "rent": 200.0, "ledger_page": 100.0, REFUND_OP: 5000.0}


def levels(max_workers: int, first: int = 2) -> list[tuple[int, int]]:
    """(renter workers, metrics workers) per step: 2+2, 4+4, 6+6, 8+8, then +4 each."""
    out, n = [], first
    while n <= max_workers:
        out.append((n, n))
        n += 2 if n < 8 else 4
    return out


def metrics_loop(api, contract_id: str, key: str, batch: int, stop: threading.Event, ledger) -> None:
    import random

    rng = random.Random(contract_id)
    path = f"/api/metrics/{contract_id}"
    headers = {"X-Device-Key": key}
    while not stop.is_set():
        now = int(time.time() * 1000)
        body = {
            "samples": [
                {
                    "timestamp_ms": now - 10 * i,
                    "cpu_percent": round(rng.uniform(0, 100), 1),
                    "memory_mb": rng.randint(512, 8192),
                    "disk_io_mbps": round(rng.uniform(0, 50), 2),
                    "network_io_mbps": round(rng.uniform(0, 20), 2),
                }
                for i in range(batch)
            ]
        }
        status, ans, _ = api.call("metrics_batch", "POST", path, body, headers)
        if status == 0 or status >= 400 and status != 429:
            ledger.fail(f"metrics {contract_id}: {status} {ans if isinstance(ans, dict) else ''}")
            time.sleep(0.2)


LEDGER_PATH = "/api/billing/ledger?limit=100"


def ledger_loop(api, admin_key: str, every: float, stop: threading.Event, ledger, first: threading.Event) -> None:
    """The operator's dashboard: one ledger page now (`first` is set once it is answered: the
    API process of this connection has built the clients the page needs before any step is
    measured), then one every `every` seconds until stopped."""
    while True:
        status, ans, _ = api.read("ledger_page", LEDGER_PATH, headers={"X-Admin-Key": admin_key})
        first.set()
        if status != 200:
            ledger.fail(f"ledger page: {status} {ans if isinstance(ans, dict) else ''}")
        if stop.wait(every):
            return


def refund_loop(api, ledger, stop: threading.Event, every: float) -> None:
    """Settle -> refund CONFIRMED, sampled: every `every` s the renter contract settled last
    (not yet watched, a refund to send: not DUST) is read every 0.2 s until its refund reads
    CONFIRMED; the seconds since its settle answer are recorded as REFUND_OP. A refund not
    CONFIRMED within REFUND_GIVE_UP_S is an actor failure."""
    seen: set[str] = set()
    while not stop.wait(every):
        with ledger.lock:
            done = [
                c
                for c in ledger.contracts.values()
                if c.settled_at is not None and c.contract_id not in seen and c.settled.get("refund_status") == "QUEUED"
            ]
        if not done:
            continue
        c = max(done, key=lambda k: k.settled_at)
        seen.add(c.contract_id)
        while not stop.is_set():
            status, ans, _ = api.read("refund_poll", f"/api/contracts/{c.contract_id}")
            refund = ans.get("refund") if status == 200 and isinstance(ans, dict) else None
            waited = time.monotonic() - c.settled_at
            if refund and refund.get("status") == "CONFIRMED":
                api.recorder.record(REFUND_OP, 200, None, waited)
                break
            if waited > REFUND_GIVE_UP_S:
                ledger.fail(f"refund of {c.contract_id}: not CONFIRMED {REFUND_GIVE_UP_S:.0f} s after its settle")
                break
            time.sleep(0.2)


def targets(step: dict) -> dict:
    """Per seed figure: the step's p50 and whether it is under the figure (ok None: not measured)."""
    out = {}
    for op, limit in TARGETS_P50_MS.items():
        p50 = step["operations"].get(op, {}).get("p50_ms")
        out[op] = {"p50_ms": p50, "limit_ms": limit, "ok": None if p50 is None else p50 < limit}
    return out


def step_checks(step: dict) -> dict:
    from dev.load.checks import ALLOWED

    counts = step["status_counts"]
    bad5 = sum(c["count"] for c in counts if c["status"] >= 500)
    lost = sum(c["count"] for c in counts if c["status"] == 0)
    odd = [c for c in counts if 400 <= c["status"] < 500 and c["code"] not in ALLOWED.get(c["status"], ())]
    ops = step["operations"]
    worst = max((ops[op]["p99_ms"] or 0.0 for op in (*BILLING, "status") if op in ops), default=0.0)
    return {
        "no_5xx": bad5 == 0,
        "every_request_answered": lost == 0,
        "only_named_409_429": not odd,
        "actors_clean": step.get("new_failures", 0) == 0,
        "p99_under_1s": worst <= P99_LIMIT_MS,
    }


def cpu_per_op(before: tuple[float, dict], after: tuple[float, dict], ops: int) -> dict:
    """CPU milliseconds (user + system, /proc) per billing operation of the step, per process:
    each stack process by name (the API processes together), the load client itself, and the
    total. Less sensitive to other work on the machine than ops/s: it is what the stack spends,
    not how fast it gets the cores."""
    n = max(ops, 1)
    out = {k: round((v - before[1].get(k, 0.0)) * 1000 / n, 2) for k, v in sorted(after[1].items())}
    out["load_client"] = round((after[0] - before[0]) * 1000 / n, 2)
    out["total"] = round(sum(out.values()), 2)
    return out


def cpu_line(per_op: dict) -> str:
    short = {"dev.api_server": "api", "dynamodb_local": "ddb", "dev.aws_emulator": "aws", "dev.chain": "chain"}
    short.update({"dev.events": "events", "dev.stack": "stack", "load_client": "client"})
    return " ".join(f"{short.get(k, k)} {v}" for k, v in per_op.items())


def ramp(a, info, report: dict, say) -> dict:
    import os

    from chalicelib.domain import money
    from dev.load import actors, checks
    from dev.load.__main__ import cpu_seconds, self_cpu
    from dev.load.http import Api, Recorder
    from dev.load.monitor import Monitor

    rec = Recorder()
    api = Api(info["api_url"], rec, timeout=30.0)
    ledger = actors.Ledger()
    monitor = Monitor(api, list(money.TIERS), every=a.monitor_every)
    start = monitor.read("start")
    device_tiers = [r["tier"] for r in start if "device_id" in r]
    plan = levels(a.ramp_max)
    total = len(plan) * a.step_seconds + a.warmup_seconds + 60
    fleet = actors.Fleet(api, info, ledger)
    fleet.rent_all(device_tiers, a.agents, total, budget=180.0)
    say(f"{len(fleet.contracts)} fleet contracts; ramp {plan} x {a.step_seconds:.0f} s")
    stop = threading.Event()
    renters: list = []
    threads: list[threading.Thread] = []
    monitor.start()
    if a.ledger_every > 0:
        first = threading.Event()
        th = threading.Thread(
            target=ledger_loop,
            args=(api, info["admin_key"], a.ledger_every, stop, ledger, first),
            daemon=True,
            name="ledger",
        )
        th.start()
        threads.append(th)
        first.wait(60.0)
    if a.refund_every > 0:
        th = threading.Thread(target=refund_loop, args=(api, ledger, stop, a.refund_every), daemon=True, name="refunds")
        th.start()
        threads.append(th)
    stack_pids = set(info["started_pids"])
    cpu0, procs0, wall0 = self_cpu(), cpu_seconds(stack_pids), time.monotonic()
    steps, best = [], None
    far = time.monotonic() + 10 * total
    for renter_n, metrics_n in plan:
        while len(renters) < renter_n:
            i = len(renters)
            r = actors.RenterActor(api, info, ledger, f"ramp{i}", device_tiers, seed=i, think=0.0)
            renters.append(r)
            th = threading.Thread(target=r.run, args=(time.monotonic(), far, far), daemon=True, name=f"renter-{i}")
            th.start()
            threads.append(th)
        while sum(1 for t in threads if t.name.startswith("metrics")) < metrics_n:
            k = sum(1 for t in threads if t.name.startswith("metrics"))
            _, c = fleet.contracts[k % len(fleet.contracts)]
            th = threading.Thread(
                target=metrics_loop,
                args=(api, c.contract_id, info["device_keys"][c.device_id], a.ramp_batch, stop, ledger),
                daemon=True,
                name=f"metrics-{k}",
            )
            th.start()
            threads.append(th)
        time.sleep(3.0)  # new workers fund wallets and connect before the step is measured

        def measure(seconds: float, renter_n: int = renter_n, metrics_n: int = metrics_n) -> dict:
            failures0 = len(ledger.failures)
            mark = rec.mark()
            cpu_at = (self_cpu(), cpu_seconds(stack_pids))
            time.sleep(seconds)
            step = rec.since(mark)
            cpu_now = (self_cpu(), cpu_seconds(stack_pids))
            step["new_failures"] = len(ledger.failures) - failures0
            ok2xx = sum(c["count"] for c in step["status_counts"] if c["op"] in BILLING and 200 <= c["status"] < 300)
            step.update(
                renters=renter_n,
                metrics_workers=metrics_n,
                billing_ops=ok2xx,
                billing_ops_per_second=round(ok2xx / step["seconds"], 1),
                cpu_ms_per_billing_op=cpu_per_op(cpu_at, cpu_now, ok2xx),
            )
            step["checks"] = step_checks(step)
            step["targets_p50"] = targets(step)
            step["ok"] = all(step["checks"].values())
            return step

        if not steps and a.warmup_seconds > 0:
            # the first level, measured and checked like a step but never the ceiling: the JVM's
            # compilers warm up as on a stack that has run for a while (docs/adr/0010)
            warm = report["warmup"] = measure(a.warmup_seconds)
            say(
                f"warm-up {a.warmup_seconds:.0f} s at {renter_n}+{metrics_n} workers: "
                f"{warm['billing_ops_per_second']} billing ops/s; "
                f"CPU ms/op {cpu_line(warm['cpu_ms_per_billing_op'])}"
                + ("" if warm["ok"] else f"; FAILED {[k for k, v in warm['checks'].items() if not v]}")
            )
            if not all(v for k, v in warm["checks"].items() if k != "p99_under_1s"):
                steps.append(warm)  # an error in the warm-up stops the ramp like a failed step
                break
        step = measure(a.step_seconds)
        steps.append(step)
        ops = step["operations"]
        say(
            f"step {renter_n}+{metrics_n} workers: {step['billing_ops_per_second']} billing ops/s; "
            + ", ".join(
                f"{op} p50 {ops[op]['p50_ms']} p99 {ops[op]['p99_ms']}"
                for op in (*BILLING, "status", "ledger_page")
                if op in ops
            )
            + (f", {REFUND_OP} p50 {ops[REFUND_OP]['p50_ms']}" if REFUND_OP in ops else "")
            + "; seed p50s "
            + ("met" if all(t["ok"] for t in step["targets_p50"].values()) else "NOT met: ")
            + " ".join(op for op, t in step["targets_p50"].items() if not t["ok"])
            + f"; CPU ms/op {cpu_line(step['cpu_ms_per_billing_op'])}"
            + ("" if step["ok"] else f"; FAILED {[k for k, v in step['checks'].items() if not v]}")
        )
        if not step["ok"]:
            break
        best = step
    cpu1, procs1, wall1 = self_cpu(), cpu_seconds(stack_pids), time.monotonic()
    by_proc = {k: round(v - procs0.get(k, 0.0), 2) for k, v in sorted(procs1.items())}
    ncpu = os.cpu_count() or 1
    report["generator"] = {
        "cpu_seconds": round(cpu1 - cpu0, 2),
        "stack_cpu_seconds": round(sum(by_proc.values()), 2),
        "stack_cpu_seconds_by_process": by_proc,
        "wall_seconds": round(wall1 - wall0, 2),
        "cores": ncpu,
        "share_of_machine": round((cpu1 - cpu0) / ((wall1 - wall0) * ncpu), 3),
        "stack_share_of_machine": round(sum(by_proc.values()) / ((wall1 - wall0) * ncpu), 3),
        "loadavg_1m_after": round(os.getloadavg()[0], 2),
    }
    stop.set()
    for r in renters:
        r.stopped.set()
    for th in threads:
        th.join(timeout=90)
    monitor.stop()
    fleet.settle_all(budget=180.0)
    fleet.close()
    monitor.read("end")
    books = checks.read_books(api, info["admin_key"], ledger)
    window = sum(s["seconds"] for s in steps)
    summary = rec.summary(window)
    summary["operations"] = {
        op: dict(v, in_window=v["requests"]) for op, v in summary["operations"].items()
    }  # the whole ramp is the window
    api.close()
    report.update(
        throughput=summary,
        ramp={
            "steps": steps,
            "ceiling": best,
            # the fastest passing step whose p50s also meet the seed's figures (TARGETS_P50_MS)
            "ceiling_with_seed_p50s": max(
                (s for s in steps if s["ok"] and all(t["ok"] for t in s["targets_p50"].values())),
                key=lambda s: s["billing_ops_per_second"],
                default=None,
            ),
            "stopped_by": None if steps[-1]["ok"] else steps[-1]["checks"],
        },
        observations={
            "slot_readings": monitor.readings,
            "books": books,
            "actors": {
                "agents": {"agents": 0, "fatal": [], "ended_by": {}},
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
