"""Cold import of each Lambda entry point, in fresh interpreters, against a baseline.

Every function Chalice builds from app.py imports `app` on a cold start; an *entry point*
is that import plus what its first invocation imports. For each one in ENTRY_POINTS:

1. discovery (one fresh process): `import app`, then the first invocation — for the API a
   real status request (`GET /api/contracts/{id}`) through the Lambda handler
   (`app.app(event, context)`) with the database endpoint pointed at a closed port (the
   request answers 503; only the modules it loads matter), for a job its handler module —
   and the modules it loaded, in load order;
2. timing (`runs` fresh processes each): perf_counter around `import app` + importing those
   modules in that order; the median is `cold_import_ms`;
3. `cold_import_ratio` = that median / the median of the baseline, `import boto3,
   pynamodb.models, chalice` alone, measured in the same run (target <= TARGET_RATIO).

An entry point whose handler module is not in the tree yet is reported as skipped, with a
note, and measured once it is there (the list is data, not code).
"""

from __future__ import annotations

import json
import os
import re
import statistics
import subprocess
import sys

from dev.bench.common import ROOT, BenchError
from dev.stack import SCRUB

IMPORT_LINE = re.compile(r"^import time:\s+(\d+)\s+\|\s+(\d+)\s+\|(\s*)(\S+)")
TARGET_RATIO = 1.2
BASELINE = "import boto3\nimport pynamodb.models\nimport chalice"

_STATUS_EVENT = {
    "resource": "/api/contracts/{contract_id}",
    "path": "/api/contracts/CTR-benchbenchbenchbench",
    "httpMethod": "GET",
    "headers": {"Host": "bench"},
    "multiValueHeaders": {"Host": ["bench"]},
    "queryStringParameters": None,
    "multiValueQueryStringParameters": None,
    "pathParameters": {"contract_id": "CTR-benchbenchbenchbench"},
    "stageVariables": None,
    "requestContext": {
        "resourcePath": "/api/contracts/{contract_id}",
        "httpMethod": "GET",
        "path": "/api/contracts/CTR-benchbenchbenchbench",
        "requestId": "bench-cold-import",
        "stage": "api",
        "identity": {"sourceIp": "192.0.2.1"},
    },
    "body": None,
    "isBase64Encoded": False,
}

# name → how its first invocation is driven. `requires`: the file that must exist (skip if not);
# `first_call`: code run after `import app` whose newly loaded modules belong to the entry point.
ENTRY_POINTS: list[dict] = [
    {
        "name": "api",
        "requires": "app.py",
        "first_call": (
            "import json\nfrom types import SimpleNamespace\n"
            f"event = json.loads({json.dumps(json.dumps(_STATUS_EVENT))})\n"
            "ctx = SimpleNamespace(aws_request_id='bench', function_name='api_handler', memory_limit_in_mb=512,\n"
            "                      log_stream_name='bench', get_remaining_time_in_millis=lambda: 30000)\n"
            "resp = app.app(event, ctx)\n"
            "assert resp['statusCode'] in (200, 404, 503), resp\n"
        ),
        "what": "import app + a status request's path (GET /api/contracts/{id} through the Lambda handler)",
    },
    {
        "name": "sweep",
        "requires": "chalicelib/jobs/sweep.py",
        "first_call": "import chalicelib.jobs.sweep\n",
        "what": "import app + its handler module chalicelib.jobs.sweep",
    },
    {
        "name": "refund_worker",
        "requires": "chalicelib/jobs/refunds.py",
        "first_call": "import chalicelib.jobs.refunds\n",
        "what": "import app + its handler module chalicelib.jobs.refunds",
    },
]


def _env() -> dict:
    env = {k: v for k, v in os.environ.items() if k not in (*SCRUB, "AWS_ENDPOINT_URL")}
    env.update(AWS_DEFAULT_REGION="us-east-1", PYTHONDONTWRITEBYTECODE="1")
    return env


def _run(code: str, env: dict, importtime: bool = False) -> subprocess.CompletedProcess:
    args = [sys.executable, *(["-X", "importtime"] if importtime else []), "-c", code]
    p = subprocess.run(args, cwd=str(ROOT), env=env, capture_output=True, text=True, timeout=120)
    if p.returncode != 0:
        raise BenchError(f"cold import failed: {p.stderr[-2000:]}")
    return p


def _timed(code: str) -> str:
    return (
        "import time, sys\nt0 = time.perf_counter()\n"
        + code
        + "\nsys.stdout.write('\\n%.3f' % ((time.perf_counter() - t0) * 1000))\n"
    )


def discover(first_call: str, env: dict) -> list[str]:
    """Modules that `import app` and then `first_call` load, in load order."""
    code = (
        "import sys\nbefore = set(sys.modules)\nimport app\n"
        + first_call
        + "\nimport json\nsys.stdout.write('\\n' + json.dumps([m for m in sys.modules if m not in before]))\n"
    )
    dead = dict(
        env,
        AWS_ENDPOINT_URL="http://127.0.0.1:9",
        AWS_ACCESS_KEY_ID="bench",
        AWS_SECRET_ACCESS_KEY="bench",
        AWS_MAX_ATTEMPTS="1",
        SI64_TABLE_PREFIX="si64-bench-cold",
    )
    out = _run(code, dead).stdout  # the handler's own log lines come first: the list is the last line
    return json.loads(out.strip().splitlines()[-1])


def _importable(mods: list[str], env: dict) -> list[str]:
    """The top-level import statements that reproduce `mods` (names that import by themselves)."""
    code = (
        "import importlib, json, sys\nok = []\n"
        f"for m in {mods!r}:\n"
        "    try:\n        importlib.import_module(m)\n        ok.append(m)\n"
        "    except Exception:\n        pass\n"
        "sys.stdout.write('\\n' + json.dumps(ok))\n"
    )
    out = _run(code, env).stdout
    return json.loads(out.strip().splitlines()[-1])


def _summary(samples: list[float], logs: list[str]) -> dict:
    med = statistics.median(samples)
    log = logs[samples.index(min(samples, key=lambda x: abs(x - med)))]
    packages: dict = {}
    for mod, _self, cum in _importtime(log):
        root = mod.split(".")[0]
        packages[root] = max(packages.get(root, 0), cum)
    top = sorted(packages.items(), key=lambda kv: -kv[1])[:5]
    return {
        "median_ms": round(med, 1),
        "runs_ms": [round(x, 1) for x in samples],
        "top5_packages_cumulative_ms": [{"module": k, "ms": round(v / 1000, 1)} for k, v in top],
    }


def _measure_interleaved(codes: dict[str, str], env: dict, runs: int) -> dict[str, dict]:
    """Each program `runs` times, round-robin (baseline, api, sweep, ... then again), so that the
    load of a shared machine falls on every program alike and the ratios stay fair."""
    samples: dict = {k: [] for k in codes}
    logs: dict = {k: [] for k in codes}
    for _ in range(runs):
        for name, code in codes.items():
            p = _run(_timed(code), env, importtime=True)
            samples[name].append(float(p.stdout.strip().splitlines()[-1]))
            logs[name].append(p.stderr)
    return {k: _summary(samples[k], logs[k]) for k in codes}


def cold_import(runs: int = 9) -> dict:
    """{"baseline": {...}, "entry_points": {name: {"cold_import_ms", "cold_import_ratio", ...} |
    {"skipped": note}}, "target_ratio", "method"}."""
    env = _env()
    startup = {m[0] for m in _importtime(_run("pass", env, importtime=True).stderr)}
    codes: dict[str, str] = {"baseline": BASELINE}
    found: dict[str, tuple[dict, list[str]]] = {}
    entry: dict = {}
    for ep in ENTRY_POINTS:
        if not (ROOT / ep["requires"]).exists():
            entry[ep["name"]] = {
                "skipped": f"{ep['requires']} is not in this tree yet; measured once it is "
                "(dev/bench/cold_import.ENTRY_POINTS)"
            }
            continue
        loaded = [m for m in discover(ep["first_call"], env) if m not in startup and m != "__main__"]
        mods = _importable(loaded, env)
        codes[ep["name"]] = "import app\n" + "".join(f"import {m}\n" for m in mods if m != "app")
        found[ep["name"]] = (ep, mods)
    measured = _measure_interleaved(codes, env, runs)
    baseline = measured["baseline"]
    for name, (ep, mods) in found.items():
        m = measured[name]
        ratio = m["median_ms"] / baseline["median_ms"]
        entry[name] = {
            "cold_import_ms": m["median_ms"],
            "cold_import_ratio": round(ratio, 2),
            "within_target": ratio <= TARGET_RATIO,
            "what": ep["what"],
            "modules": len(mods),
            "runs_ms": m["runs_ms"],
            "heavy_packages_loaded": sorted(
                {x.split(".")[0] for x in mods}
                & {"boto3", "botocore", "pynamodb", "solana", "solders", "chalice", "httpx", "requests", "urllib3"}
            ),
            "top5_packages_cumulative_ms": m["top5_packages_cumulative_ms"],
        }
    return {
        "baseline": dict(baseline, code=BASELINE.replace("\n", "; ")),
        "entry_points": {ep["name"]: entry[ep["name"]] for ep in ENTRY_POINTS},
        "target_ratio": TARGET_RATIO,
        "handlers": lambda_handlers(),
        "method": (
            f"fresh `python -X importtime -c` per run, perf_counter around the imports (interpreter start-up "
            f"excluded), median of {runs}, the programs run round-robin; cwd is the repo, bytecode cached as after "
            "a first run. An entry point's modules are found by running its first invocation once in a fresh "
            "process (database endpoint on a closed port), then re-imported in load order in the timed runs. "
            "Ratio: entry point median / baseline median (`import boto3, pynamodb.models, chalice`), same run."
        ),
    }


def _importtime(stderr: str) -> list[tuple[str, int, int]]:
    """(module, self us, cumulative us) of each `-X importtime` line."""
    out = []
    for line in stderr.splitlines():
        m = IMPORT_LINE.match(line)
        if m:
            out.append((m.group(4), int(m.group(1)), int(m.group(2))))
    return out


def lambda_handlers() -> dict:
    """The Lambda functions Chalice builds from app.py: every one imports `app` on a cold start."""
    from app import app

    names = {"api_handler": "app: all HTTP routes"} if app.routes else {}
    for src in getattr(app, "event_sources", []):
        names[src.name] = f"app: {src.handler_string}"
    return names


if __name__ == "__main__":  # python -m dev.bench.cold_import: this part of `make bench` alone
    print(json.dumps(cold_import(), indent=2))
