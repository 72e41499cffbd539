"""CloudWatch embedded metric format (EMF): one record per `emit`, on stdout beside the log lines
(chalicelib/observability.py, which re-exports these names).

``{"_aws": {"Timestamp", "CloudWatchMetrics": [{"Namespace": "SI64", "Dimensions": [["Stage"]],
"Metrics": [{"Name", "Unit"}]}]}, "Stage": stage, name: value}``: CloudWatch turns each into a
datapoint of metric ``SI64/name`` with dimension ``Stage``; the alarms and the dashboard of
infra/observability.yaml read exactly these. Metrics are emitted from api/ and jobs/.
"""

from __future__ import annotations

from typing import Any

from . import observability as _obs

NAMESPACE = "SI64"
DIMENSIONS = [["Stage"]]
# every metric the functions write, with its CloudWatch unit (infra/observability.yaml reads them)
METRICS: dict[str, str] = {
    "Rents": "Count",
    "Extensions": "Count",
    "Settlements": "Count",
    "Expirations": "Count",
    "RefundsSent": "Count",
    "RefundsConfirmed": "Count",
    "RefundsFailed": "Count",
    "SweepDue": "Count",
    "SweepLagSeconds": "Seconds",
    "Http5xx": "Count",
}
UNITS = {"Count", "Seconds", "Milliseconds", "None"}


def metric_record(
    name: str,
    value: float,
    unit: str | None = None,
    *,
    at_ms: int | None = None,
    stage_name: str | None = None,
    **properties: Any,
) -> dict[str, Any]:
    """The EMF record of one datapoint (what `emit` writes). ValueError for an unknown name or unit."""
    if name not in METRICS:
        raise ValueError(f"unknown metric {name!r}; known: {', '.join(METRICS)}")
    unit = unit or METRICS[name]
    if unit not in UNITS:
        raise ValueError(f"unknown unit {unit!r}")
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"metric value must be a number, not {type(value).__name__}")
    record = {
        "_aws": {
            "Timestamp": at_ms if at_ms is not None else _obs._now_ms(),
            "CloudWatchMetrics": [
                {"Namespace": NAMESPACE, "Dimensions": DIMENSIONS, "Metrics": [{"Name": name, "Unit": unit}]}
            ],
        },
        "Stage": stage_name or _obs.stage(),
        name: value,
    }
    ctx = _obs._current.get()
    if ctx is not None:
        record["request_id"] = ctx["request_id"]
    for k, v in properties.items():
        if k not in record and v is not None:
            record[k] = _obs.scrub(v, k)
    return record


def emit(name: str, value: float = 1, unit: str | None = None, **properties: Any) -> None:
    """Write one EMF datapoint of metric `name` (one of METRICS) to stdout. Never raises:
    a wrong name is a bug reported as an ERROR log line, not a failed request."""
    try:
        record = metric_record(name, value, unit, **properties)
    except ValueError as exc:
        _obs.log_event("metric_rejected", level="ERROR", error=str(exc))
        return
    _obs._write(record)


def emit_many(metrics: dict[str, float], **properties: Any) -> None:
    """Several datapoints in ONE EMF record (e.g. a sweep run's SweepDue, Expirations and
    SweepLagSeconds), each with its unit from METRICS. Unknown names are dropped with an ERROR
    line; nothing is written for an empty dict. Never raises."""
    known = {}
    for name, value in metrics.items():
        try:
            metric_record(name, value)  # validates name and value
            known[name] = value
        except ValueError as exc:
            _obs.log_event("metric_rejected", level="ERROR", error=str(exc))
    if not known:
        return
    first, *rest = known
    record = metric_record(first, known[first], **properties)
    directive = record["_aws"]["CloudWatchMetrics"][0]
    for name in rest:
        directive["Metrics"].append({"Name": name, "Unit": METRICS[name]})
        record[name] = known[name]
    _obs._write(record)
