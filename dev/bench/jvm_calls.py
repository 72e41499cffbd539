"""DynamoDB Local's CPU per call, by call type, on the stack's real calls.

    python -m dev.bench.jvm_calls CAPTURE_DIR [--passes 3] [--out .local/jvm_calls.json]

CAPTURE_DIR holds what dev/bench/capture/sitecustomize.py recorded from a stack's processes
(every DynamoDB request, in order: the tables' creation, the seed, then the load). This
replays those requests, one at a time in their recorded order, against a DynamoDB Local of
its own (the stack's JVM options), `--passes` times, each pass on fresh tables (the table
prefix renamed), and measures the JVM's CPU of each call: the sum over all its threads of
/proc/<pid>/task/*/schedstat (nanoseconds on CPU) before and after the call, so GC, the JIT
compilers and Jetty's threads are counted where they happen. The last pass is reported (the
earlier ones warm the JIT), per call type: the operation and its table(s) (and the item
count of a transaction): calls, mean and median CPU µs, request bytes, and the share of the
whole replay. Calls answered 4xx in the replay (e.g. a condition that held at recording
time but not now) are counted apart.

A measuring aid: it reports, it never fails on a figure.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import re
import statistics
import sys
import time
from collections import defaultdict
from pathlib import Path

AUTH = (
    "AWS4-HMAC-SHA256 Credential=test/20260101/us-east-1/dynamodb/aws4_request, "
    "SignedHeaders=host;x-amz-target, Signature=0"
)


def load_capture(directory: Path) -> list[dict]:
    calls = []
    for path in sorted(directory.glob("*.jsonl")):
        for line in path.read_text().splitlines():
            if line.strip():
                call = json.loads(line)
                if (call.get("target") or "").startswith("DynamoDB_"):
                    calls.append(call)
    calls.sort(key=lambda c: c["t"])
    return calls


def jvm_cpu_ns(pid: int) -> int:
    total = 0
    for task in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{task}/schedstat") as fh:
                total += int(fh.read().split()[0])
        except (OSError, ValueError, IndexError):
            continue  # a thread that ended meanwhile
    return total


def tables_of(body: dict) -> list[str]:
    if "TableName" in body:
        return [body["TableName"]]
    if "RequestItems" in body:
        return sorted(body["RequestItems"])
    if "TransactItems" in body:
        return sorted({next(iter(i.values()))["TableName"] for i in body["TransactItems"]})
    return []


def call_type(target: str, body: dict, prefix: str) -> str:
    op = target.split(".", 1)[1]
    names = [t.removeprefix(prefix + "-") for t in tables_of(body)]
    kind = f"{op} {'+'.join(names)}"
    if op == "TransactWriteItems":
        per = defaultdict(int)
        for i in body["TransactItems"]:
            ((action, spec),) = i.items()
            per[f"{action}:{spec['TableName'].removeprefix(prefix + '-')}"] += 1
        kind = f"{op} ({len(body['TransactItems'])}: {', '.join(f'{n} {k}' for k, n in sorted(per.items()))})"
    elif op in ("Query", "Scan") and "IndexName" in body:
        kind += f" [{body['IndexName']}]"
    return kind


def replay(calls: list[dict], endpoint_port: int, pid: int, prefix: str, new_prefix: str) -> list[dict]:
    conn = http.client.HTTPConnection("127.0.0.1", endpoint_port, timeout=60)
    pattern = re.compile(r'"' + re.escape(prefix) + r"-")
    out = []
    for c in calls:
        body = c["body"] or "{}"
        if new_prefix != prefix:
            body = pattern.sub('"' + new_prefix + "-", body)
        if "ClientRequestToken" in body:  # a token seen by an earlier pass, on other tables: a mismatch
            doc = json.loads(body)
            doc.pop("ClientRequestToken", None)
            body = json.dumps(doc)
        headers = {"X-Amz-Target": c["target"], "Content-Type": "application/x-amz-json-1.0", "Authorization": AUTH}
        before = jvm_cpu_ns(pid)
        conn.request("POST", "/", body=body.encode(), headers=headers)
        resp = conn.getresponse()
        resp.read()
        after = jvm_cpu_ns(pid)
        out.append({"status": resp.status, "cpu_ns": after - before, "bytes": len(body)})
        if c["target"].endswith(".CreateTable"):
            time.sleep(0.05)
    conn.close()
    return out


def summarize(calls: list[dict], results: list[dict], prefix: str) -> dict:
    groups: dict[str, list[tuple[dict, dict]]] = defaultdict(list)
    for c, r in zip(calls, results, strict=True):
        groups[call_type(c["target"], json.loads(c["body"] or "{}"), prefix)].append((c, r))
    total = sum(r["cpu_ns"] for r in results) or 1
    rows = []
    for kind, pairs in groups.items():
        ok = [r for _, r in pairs if r["status"] == 200]
        cpu = [r["cpu_ns"] for _, r in pairs]
        rows.append(
            {
                "call": kind,
                "calls": len(pairs),
                "failed_in_replay": len(pairs) - len(ok),
                "failed_when_recorded": sum(1 for c, _ in pairs if (c.get("status") or 200) >= 400),
                "mean_us": round(statistics.fmean(cpu) / 1000, 1),
                "median_us": round(statistics.median(cpu) / 1000, 1),
                "mean_request_bytes": round(statistics.fmean(r["bytes"] for _, r in pairs)),
                "share_of_cpu": round(sum(cpu) / total, 4),
                "by_process": dict(sorted(_count(c["proc"] for c, _ in pairs).items())),
            }
        )
    rows.sort(key=lambda r: -r["share_of_cpu"])
    return {
        "calls": len(results),
        "cpu_ms": round(total / 1e6, 1),
        "mean_us": round(total / len(results) / 1000, 1),
        "types": rows,
    }


def _count(items) -> dict:
    out: dict = defaultdict(int)
    for i in items:
        out[i] += 1
    return out


def find_prefix(calls: list[dict]) -> str:
    for c in calls:
        if c["target"].endswith(".CreateTable"):
            return json.loads(c["body"])["TableName"].rsplit("-", 1)[0]
    raise SystemExit("the capture holds no CreateTable: record from the stack's start")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m dev.bench.jvm_calls", description=__doc__.split("\n")[0])
    ap.add_argument("capture", type=Path)
    ap.add_argument("--passes", type=int, default=3)
    ap.add_argument("--out", default=".local/jvm_calls.json")
    a = ap.parse_args(argv)
    from dev.dynamodb_local import DynamoDBLocal

    calls = load_capture(a.capture)
    prefix = find_prefix(calls)
    report: dict = {
        "capture": str(a.capture),
        "prefix": prefix,
        "java_opts": os.environ.get("SI64_DYNAMODB_JAVA_OPTS", ""),
    }
    with DynamoDBLocal(port=0) as ddb:
        assert ddb.proc is not None
        passes = []
        for n in range(a.passes):
            t0 = time.monotonic()
            results = replay(calls, ddb.port, ddb.proc.pid, prefix, f"{prefix}p{n}")
            s = summarize(calls, results, prefix)
            s["wall_s"] = round(time.monotonic() - t0, 1)
            passes.append({k: s[k] for k in ("calls", "cpu_ms", "mean_us", "wall_s")})
            print(
                f"pass {n + 1}: {s['calls']} calls, JVM {s['cpu_ms']} ms CPU, {s['mean_us']} us/call", file=sys.stderr
            )
        report.update(passes=passes, last=s)
    out = Path(a.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=1) + "\n")
    for r in s["types"][:25]:
        print(
            f"{r['share_of_cpu']:6.1%} {r['calls']:6d} x {r['mean_us']:7.1f} us (median {r['median_us']:7.1f}) "
            f"{r['mean_request_bytes']:6d} B  {r['call']}"
            + (
                f"  [{r['failed_in_replay']} failed in replay, {r['failed_when_recorded']} when recorded]"
                if r["failed_in_replay"] or r["failed_when_recorded"]
                else ""
            )
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
