"""Cold import of the Lambda handler module (`import app`) in fresh interpreters."""

from __future__ import annotations

import os
import re
import statistics
import subprocess
import sys

from local.bench.common import ROOT, BenchError
from local.stack import SCRUB

IMPORT_LINE = re.compile(r"^import time:\s+(\d+)\s+\|\s+(\d+)\s+\|(\s*)(\S+)")


def cold_import(runs: int = 5) -> dict:
    """`import app` in fresh interpreters: wall ms (perf_counter around the import), median of
    `runs`; then the same plus `bootstrap.build()` (what the first request adds: pynamodb,
    botocore); top modules from `-X importtime` of the median run's kind."""
    env = {k: v for k, v in os.environ.items() if k not in (*SCRUB, "AWS_ENDPOINT_URL")}
    env.update(AWS_DEFAULT_REGION="us-east-1", PYTHONDONTWRITEBYTECODE="1")
    scenarios = {
        "import_app": "import app",
        "import_app_and_container": (
            "import app\nfrom chalicelib import bootstrap\n"
            "from chalicelib.config import Settings\n"
            "bootstrap.build(Settings(refund_queue_url='http://127.0.0.1:9/q'))"
        ),
    }
    out: dict = {}
    base = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", "pass"],
        cwd=str(ROOT),
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    ).stderr
    startup = {m[0] for m in _importtime(base)}
    for name, code in scenarios.items():
        prog = (
            "import time, sys\nt0 = time.perf_counter()\n"
            + code
            + "\nsys.stdout.write('%.3f' % ((time.perf_counter() - t0) * 1000))\n"
        )
        samples, logs = [], []
        for _ in range(runs):
            p = subprocess.run(
                [sys.executable, "-X", "importtime", "-c", prog],
                cwd=str(ROOT),
                env=env,
                capture_output=True,
                text=True,
                timeout=60,
            )
            if p.returncode != 0:
                raise BenchError(f"cold import {name} failed: {p.stderr[-2000:]}")
            samples.append(float(p.stdout.strip()))
            logs.append(p.stderr)
        med = statistics.median(samples)
        mods = [
            m
            for m in _importtime(logs[samples.index(min(samples, key=lambda x: abs(x - med)))])
            if m[0] not in startup and m[0] != "app"
        ]
        # by top-level package: the cumulative time of its first (outermost) import; nested
        # packages overlap (pynamodb includes botocore)
        packages: dict = {}
        for mod, _self, cum in mods:
            root = mod.split(".")[0]
            packages[root] = max(packages.get(root, 0), cum)
        top = sorted(packages.items(), key=lambda kv: -kv[1])[:5]
        self_top = sorted(mods, key=lambda x: -x[1])[:5]
        out[name] = {
            "median_ms": round(med, 1),
            "runs_ms": [round(x, 1) for x in samples],
            "top5_packages_cumulative_ms": [{"module": k, "ms": round(v / 1000, 1)} for k, v in top],
            "top5_modules_self_ms": [{"module": x[0], "ms": round(x[1] / 1000, 1)} for x in self_top],
        }
    out["handlers"] = lambda_handlers()
    out["method"] = (
        "fresh `python -X importtime -c` per run, perf_counter around the import (interpreter start-up "
        f"excluded), median of {runs}; cwd is the repo, bytecode cached as after a first run"
    )
    return out


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
