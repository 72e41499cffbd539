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

Request context: `observed(route, current_request, operation)` wraps a route's view (the
endpoint decorator applies it and hands over the operation name and, with `annotate(code=…)`,
an error's code); while it runs, `annotate(contract_id=…, outcome=…)` adds fields to that
request's one log line. Outside a request `annotate` does nothing. Stdlib logging goes through
`JsonLogHandler` (`install_json_logging`, called by app.py): one format for every line.
"""

from __future__ import annotations

import contextvars
import functools
import json
import logging
import re
import sys
import time
import uuid
from collections.abc import Callable
from typing import IO, Any

REDACTED = "[redacted]"
_SECRET_WORDS = ("key", "secret", "signature", "token", "password", "authorization", "seed", "private", "credential")
_SAFE_NAMES = {"idempotency_replayed"}

_out: IO[str] | None = None  # None: whatever sys.stdout is at write time; `capture` sets a buffer in tests
_stage: str | None = None
_current: contextvars.ContextVar[dict[str, Any] | None] = contextvars.ContextVar("si64_request", default=None)


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


_DEVICE_KEY_TEXT = re.compile(r"dk_[A-Za-z0-9_-]+")


def _write(record: dict[str, Any]) -> None:
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
    """The generic name of a route an endpoint did not name: ``GET /api/admin/devices`` →
    ``get_admin_devices`` (the endpoint hands its own name over otherwise)."""
    words = [w for w in route.split("/") if w and w != "api" and not w.startswith("{")]
    return (method.lower() + "_" + "_".join(words)).replace("-", "_").replace(".", "_")


class JsonLogHandler(logging.Handler):
    """Every stdlib log record as one JSON line of the same format as `log_event`
    (``"event": "log"``, ``logger_name``, ``message``, ``exception``), scrubbed like every line:
    a device key inside the text is redacted too."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            text = _DEVICE_KEY_TEXT.sub(REDACTED, record.getMessage())
            fields: dict[str, Any] = {"logger_name": record.name, "message": text}
            if record.exc_info:
                trace = logging.Formatter().formatException(record.exc_info)
                fields["exception"] = _DEVICE_KEY_TEXT.sub(REDACTED, trace)
            log_event("log", level=record.levelname, **fields)
        except Exception:  # noqa: BLE001 - a log line never breaks its caller
            pass


def install_json_logging(level: int = logging.INFO) -> None:
    """Route stdlib logging (the service loggers, Chalice's app log, botocore's warnings)
    through `JsonLogHandler`, so stdout carries one format. Replaces the Lambda runtime's
    plain-text root handler; other handlers (a test runner's) are left alone. Idempotent."""
    root = logging.getLogger()
    for h in list(root.handlers):
        if type(h).__name__ == "LambdaLoggerHandler":
            root.removeHandler(h)
    if not any(isinstance(h, JsonLogHandler) for h in root.handlers):
        root.addHandler(JsonLogHandler())
    if root.level > level or root.level == logging.NOTSET:
        root.setLevel(level)


def annotate(**fields: Any) -> None:
    """Add fields (contract_id, device_id, outcome, …) to the current request's log line."""
    ctx = _current.get()
    if ctx is not None:
        ctx["fields"].update({k: v for k, v in fields.items() if v is not None})


def current_request_id() -> str | None:
    ctx = _current.get()
    return None if ctx is None else ctx["request_id"]


def observed(
    route: str, current_request: Callable[[], object], operation: str | None = None
) -> Callable[[Callable[..., object]], Callable[..., object]]:
    """Wrap a route's view so each request writes one log line (and Http5xx on a 5xx).

    `current_request()` returns the chalice request (``lambda: bp.current_request``). The
    request id is API Gateway's (``requestContext.requestId``; `current_request_id()` while the
    view runs, which the view's error bodies carry). The status is the response's; the view
    hands over what it knows with `annotate` (``code`` of an error answer, contract, outcome);
    `operation` is the endpoint's name of the route (its generic name when None)."""

    def wrap(view: Callable[..., object]) -> Callable[..., object]:
        @functools.wraps(view)
        def observed_view(**params: str) -> object:
            started = time.perf_counter()
            request = current_request()
            method = getattr(request, "method", "?")
            rid = ((getattr(request, "context", None) or {}).get("requestId")) or uuid.uuid4().hex
            ctx: dict[str, Any] = {"request_id": rid, "fields": {}}
            token = _current.set(ctx)
            status = 500
            try:
                resp = view(**params)
                status = getattr(resp, "status_code", 200)
                return resp
            finally:
                _current.reset(token)
                try:
                    fields = dict(ctx["fields"])
                    cid = fields.pop("contract_id", None) or params.get("contract_id")
                    code = fields.pop("code", None) or ("internal" if status >= 500 else None)
                    request_log(
                        request_id=ctx["request_id"],
                        method=method,
                        route=route,
                        status=status,
                        latency_ms=(time.perf_counter() - started) * 1000,
                        operation=operation,
                        contract_id=cid,
                        code=code if status >= 400 else None,
                        **{k: v for k, v in params.items() if k != "contract_id"},
                        **fields,
                    )
                except Exception:  # noqa: BLE001 - the log line never breaks the response
                    pass

        return observed_view

    return wrap


class capture:
    """For tests: ``with capture() as cap:`` collects every line written; ``cap.records`` parses them,
    ``cap.text`` is the raw output."""

    def __enter__(self) -> capture:
        import io

        global _out
        self._saved, self._buf = _out, io.StringIO()
        _out = self._buf
        return self

    def __exit__(self, *exc: object) -> None:
        global _out
        _out = self._saved

    @property
    def text(self) -> str:
        return self._buf.getvalue()

    @property
    def records(self) -> list[dict[str, Any]]:
        return [json.loads(x) for x in self.text.splitlines() if x.strip()]


# The metrics half (EMF records), re-exported: `observability.emit`, `METRICS`, … as before.
from .emf import DIMENSIONS, METRICS, NAMESPACE, UNITS, emit, emit_many, metric_record  # noqa: E402

__all__ = [
    "DIMENSIONS",
    "METRICS",
    "NAMESPACE",
    "UNITS",
    "annotate",
    "capture",
    "emit",
    "emit_many",
    "install_json_logging",
    "log_event",
    "metric_record",
    "observed",
    "request_log",
    "scrub",
]
