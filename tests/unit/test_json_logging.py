"""Stdlib logging in the one JSON format of chalicelib/observability.py (JsonLogHandler), scrubbed."""

from __future__ import annotations

import logging

from chalicelib import observability as obs


def _emit(logger: logging.Logger, level: int, msg: str, *args, exc_info=None) -> list[dict]:
    handler, propagate = obs.JsonLogHandler(), logger.propagate
    logger.addHandler(handler)
    logger.propagate = False  # this handler only (the root may hold one too, once app is imported)
    try:
        with obs.capture() as cap:
            logger.log(level, msg, *args, exc_info=exc_info)
    finally:
        logger.removeHandler(handler)
        logger.propagate = propagate
    return cap.records


def test_a_stdlib_record_is_one_json_line_with_the_shared_fields():
    (line,) = _emit(logging.getLogger("si64.api"), logging.WARNING, "rate limiter: %s", "failing open")
    assert (line["level"], line["logger"], line["event"]) == ("WARNING", "si64", "log")
    assert (line["logger_name"], line["message"]) == ("si64.api", "rate limiter: failing open")
    assert isinstance(line["ts_ms"], int)


def test_device_keys_in_the_text_and_the_traceback_are_redacted():
    key = "dk_dev-m2-1_abcdefghijklmnopqrstuvwx"
    try:
        raise ValueError(f"bad {key}")
    except ValueError as exc:
        (line,) = _emit(logging.getLogger("si64.x"), logging.ERROR, "failed for %s", key, exc_info=exc)
    assert key not in str(line) and obs.REDACTED in line["message"] and "ValueError" in line["exception"]


def test_install_replaces_the_lambda_runtime_handler_once_and_keeps_others(monkeypatch):
    root = logging.getLogger()

    class LambdaLoggerHandler(logging.Handler):  # the name of the Python runtime's plain-text handler
        def emit(self, record):
            raise AssertionError("plain text written")

    other = logging.NullHandler()
    monkeypatch.setattr(root, "handlers", [LambdaLoggerHandler(), other])
    obs.install_json_logging()
    obs.install_json_logging()
    assert [type(h).__name__ for h in root.handlers] == ["NullHandler", "JsonLogHandler"]
    with obs.capture() as cap:
        logging.getLogger("si64-billing").info("from the Chalice app log")
    assert [r["message"] for r in cap.records] == ["from the Chalice app log"]


def test_the_app_log_propagates_to_the_json_handler():
    from app import app

    assert app.log.propagate and not app.log.handlers
    assert any(isinstance(h, obs.JsonLogHandler) for h in logging.getLogger().handlers)
