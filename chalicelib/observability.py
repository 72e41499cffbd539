"""Structured logs and CloudWatch metrics, standard library only (cheap to import).

Two kinds of line go to stdout, which Lambda ships to CloudWatch Logs:

* **logs** — one JSON object per line: ``{"level", "ts_ms", "logger": "si64", "event", …}``.
  A request's line (`request_log`, or the `observed` wrapper) carries ``request_id``,
  ``method``, ``route``, ``operation``, ``status``, ``outcome``, ``latency_ms`` and, when
  known, ``contract_id`` / ``device_id`` / ``code``. Business events (`log_event`) carry
  ``operation`` and ``outcome``.
* **metrics** — CloudWatch embedded metric format (EMF), one record per `emit`:
  ``{"_aws": {"Timestamp", "CloudWatchMetrics": [{"Namespace": "SI64",
  "Dimensions": [["Stage"]], "Metrics": [{"Name", "Unit"}]}]}, "Stage": stage, name: value}``.
  CloudWatch turns each into a datapoint of metric ``SI64/name`` with dimension
  ``Stage``; the alarms and the dashboard of infra/observability.yaml read exactly these.

No secrets ever reach a line: a field whose name mentions a key, secret, signature,
token, password, authorization, seed or private material is written as
``"[redacted]"``, and so is any string value shaped like a device key (``dk_…``).
Nothing here raises into the caller: a broken log line must not break a request
whose money already moved.

Request context: `observed(route, current_request)` wraps a route's view; while it
runs, `annotate(contract_id=…, outcome=…)` (from a blueprint or a service) adds
fields to that request's one log line. Outside a request `annotate` does nothing.
"""

from __future__ import annotations

import contextvars
import functools
import json
import sys
import time
import uuid
from typing import Any

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
REDACTED = "[redacted]"
_SECRET_WORDS = ("key", "secret", "signature", "token", "password", "authorization", "seed", "private", "credential")
_SAFE_NAMES = {"idempotency_replayed"}

_out = None  # None: whatever sys.stdout is at write time; `capture` sets a buffer in tests
_stage: str | None = None
_current: contextvars.ContextVar[dict | None] = contextvars.ContextVar("si64_request", default=None)


def stage() -> str:
    """The Stage dimension: SI64_STAGE of the function's settings (read once)."""
    global _stage
    if _stage is None:
        try:
            from .config import settings

            _stage = settings().stage
        except Exception:  # noqa: BLE001 - settings that do not parse must not break a log line
            _stage = "unknown"
    return _stage


def set_stage(name: str | None) -> None:
    """For tests: force (or with None, re-read) the Stage dimension."""
    global _stage
    _stage = name


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def _secret_name(name: str) -> bool:
    n = name.lower()
    return n not in _SAFE_NAMES and any(w in n for w in _SECRET_WORDS)


def scrub(value: Any, name: str = "") -> Any:
    """`value` with every secret-looking field or device-key-shaped string replaced."""
    if name and _secret_name(name):
        return REDACTED if value is not None else None
    if isinstance(value, str):
        return REDACTED if value.startswith("dk_") else value
    if isinstance(value, dict):
        return {str(k): scrub(v, str(k)) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [scrub(v) for v in value]
    if value is None or isinstance(value, (bool, int, float)):
        return value
    return str(value)


def _write(record: dict) -> None:
    try:
        out = _out if _out is not None else sys.stdout
        out.write(json.dumps(record, separators=(",", ":"), default=str) + "\n")
        out.flush()
    except Exception:  # noqa: BLE001 - a closed or broken stdout never breaks the caller
        pass


# ------------------------------------------------------------------ logs
def log_event(event: str, *, level: str = "INFO", **fields: Any) -> None:
    """One JSON log line: ``event`` (e.g. "rent", "settle", "request") plus `fields`, scrubbed.
    Inside a request, its request_id is added."""
    ctx = _current.get()
    record = {"level": level, "ts_ms": _now_ms(), "logger": "si64", "event": event}
    if ctx is not None and "request_id" not in fields:
        record["request_id"] = ctx["request_id"]
    for k, v in fields.items():
        if v is not None:
            record[k] = scrub(v, k)
    _write(record)


def request_log(
    *,
    request_id: str,
    method: str,
    route: str,
    status: int,
    latency_ms: float,
    operation: str | None = None,
    contract_id: str | None = None,
    code: str | None = None,
    **fields: Any,
) -> None:
    """The one line of a finished request. `outcome` is ok (< 400), rejected (4xx) or error (5xx);
    a 5xx also emits the Http5xx metric."""
    outcome = fields.pop("outcome", None) or ("ok" if status < 400 else "rejected" if status < 500 else "error")
    log_event(
        "request",
        level="ERROR" if status >= 500 else "INFO",
        request_id=request_id,
        method=method,
        route=route,
        operation=operation or operation_of(method, route),
        status=status,
        outcome=outcome,
        latency_ms=round(latency_ms, 1),
        contract_id=contract_id,
        code=code,
        **fields,
    )
    if status >= 500:
        emit("Http5xx", 1, request_id=request_id, route=route)


def operation_of(method: str, route: str) -> str:
    """A short stable name of a route: ``POST /api/contracts/{contract_id}/settle`` → ``settle``."""
    known = {
        ("POST", "/api/rent"): "rent",
        ("POST", "/api/contracts/{contract_id}/extend"): "extend",
        ("POST", "/api/contracts/{contract_id}/settle"): "settle",
        ("GET", "/api/contracts/{contract_id}"): "contract_status",
        ("POST", "/api/metrics/{contract_id}"): "report_metrics",
        ("GET", "/api/contracts/{contract_id}/metrics"): "contract_metrics",
    }
    if (method, route) in known:
        return known[(method, route)]
    words = [w for w in route.split("/") if w and w != "api" and not w.startswith("{")]
    return (method.lower() + "_" + "_".join(words)).replace("-", "_").replace(".", "_")


def annotate(**fields: Any) -> None:
    """Add fields (contract_id, device_id, outcome, …) to the current request's log line."""
    ctx = _current.get()
    if ctx is not None:
        ctx["fields"].update({k: v for k, v in fields.items() if v is not None})


def current_request_id() -> str | None:
    ctx = _current.get()
    return None if ctx is None else ctx["request_id"]


def _status_code_of(resp: Any) -> tuple[int, str | None, str | None]:
    """(status, error code, request_id in a 5xx body) of a chalice Response (or anything else)."""
    status = getattr(resp, "status_code", 200)
    code = rid = None
    if status >= 400:
        body = getattr(resp, "body", None)
        try:
            parsed = json.loads(body) if isinstance(body, (str, bytes)) else body
            if isinstance(parsed, dict):
                code, rid = parsed.get("code"), parsed.get("request_id")
        except ValueError:
            pass
    return status, code if isinstance(code, str) else None, rid if isinstance(rid, str) else None


def observed(route: str, current_request):
    """Wrap a route's view so each request writes one log line (and Http5xx on a 5xx).

    `current_request()` returns the chalice request (``lambda: bp.current_request``). The
    request id is API Gateway's (``requestContext.requestId``), or the one a 5xx body names."""

    def wrap(view):
        @functools.wraps(view)
        def observed_view(**params):
            started = time.perf_counter()
            request = current_request()
            method = getattr(request, "method", "?")
            rid = ((getattr(request, "context", None) or {}).get("requestId")) or uuid.uuid4().hex
            ctx = {"request_id": rid, "fields": {}}
            token = _current.set(ctx)
            status, code = 500, "internal"
            try:
                resp = view(**params)
                status, code, body_rid = _status_code_of(resp)
                if body_rid:
                    ctx["request_id"] = body_rid
                return resp
            finally:
                _current.reset(token)
                try:
                    fields = dict(ctx["fields"])
                    cid = fields.pop("contract_id", None) or params.get("contract_id")
                    request_log(
                        request_id=ctx["request_id"],
                        method=method,
                        route=route,
                        status=status,
                        latency_ms=(time.perf_counter() - started) * 1000,
                        contract_id=cid,
                        code=code,
                        **{k: v for k, v in params.items() if k != "contract_id"},
                        **fields,
                    )
                except Exception:  # noqa: BLE001 - the log line never breaks the response
                    pass

        return observed_view

    return wrap


# ------------------------------------------------------------------ metrics
def metric_record(
    name: str,
    value: float,
    unit: str | None = None,
    *,
    at_ms: int | None = None,
    stage_name: str | None = None,
    **properties: Any,
) -> dict:
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
            "Timestamp": at_ms if at_ms is not None else _now_ms(),
            "CloudWatchMetrics": [
                {"Namespace": NAMESPACE, "Dimensions": DIMENSIONS, "Metrics": [{"Name": name, "Unit": unit}]}
            ],
        },
        "Stage": stage_name or stage(),
        name: value,
    }
    ctx = _current.get()
    if ctx is not None:
        record["request_id"] = ctx["request_id"]
    for k, v in properties.items():
        if k not in record and v is not None:
            record[k] = scrub(v, k)
    return record


def emit(name: str, value: float = 1, unit: str | None = None, **properties: Any) -> None:
    """Write one EMF datapoint of metric `name` (one of METRICS) to stdout. Never raises:
    a wrong name is a bug reported as an ERROR log line, not a failed request."""
    try:
        record = metric_record(name, value, unit, **properties)
    except ValueError as exc:
        log_event("metric_rejected", level="ERROR", error=str(exc))
        return
    _write(record)


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
            log_event("metric_rejected", level="ERROR", error=str(exc))
    if not known:
        return
    first, *rest = known
    record = metric_record(first, known[first], **properties)
    directive = record["_aws"]["CloudWatchMetrics"][0]
    for name in rest:
        directive["Metrics"].append({"Name": name, "Unit": METRICS[name]})
        record[name] = known[name]
    _write(record)


class capture:
    """For tests: ``with capture() as cap:`` collects every line written; ``cap.records`` parses them,
    ``cap.text`` is the raw output."""

    def __enter__(self) -> capture:
        import io

        global _out
        self._saved, self._buf = _out, io.StringIO()
        _out = self._buf
        return self

    def __exit__(self, *exc) -> None:
        global _out
        _out = self._saved

    @property
    def text(self) -> str:
        return self._buf.getvalue()

    @property
    def records(self) -> list[dict]:
        return [json.loads(x) for x in self.text.splitlines() if x.strip()]
