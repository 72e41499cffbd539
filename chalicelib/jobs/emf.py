"""CloudWatch embedded-metric-format records (namespace SI64, dimension Stage), written to
stdout: Lambda ships them to CloudWatch Logs, which turns them into metrics
(infra/observability.yaml alarms on them). No AWS call, no import cost."""
from __future__ import annotations

import json
import sys
import time

NAMESPACE = "SI64"


def record(stage: str, metrics: dict[str, int | float], unit: dict[str, str] | None = None) -> dict:
    unit = unit or {}
    return {
        "_aws": {"Timestamp": int(time.time() * 1000), "CloudWatchMetrics": [{
            "Namespace": NAMESPACE, "Dimensions": [["Stage"]],
            "Metrics": [{"Name": n, "Unit": unit.get(n, "Count")} for n in metrics]}]},
        "Stage": stage, **metrics,
    }


def emit(stage: str, metrics: dict[str, int | float], unit: dict[str, str] | None = None) -> None:
    if metrics:
        sys.stdout.write(json.dumps(record(stage, metrics, unit), separators=(",", ":")) + "\n")
        sys.stdout.flush()
