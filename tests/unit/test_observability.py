"""chalicelib/observability.py: JSON log lines and EMF records, checked against the alarms and
the dashboard of infra/observability.yaml (names, namespace, dimensions), and never a secret."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from chalicelib import observability as obs

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def _stage():
    obs.set_stage("prod")
    yield
    obs.set_stage(None)


def _overlay() -> dict:
    sys.path.insert(0, str(ROOT / "infra"))
    try:
        import package  # infra/package.py: the CloudFormation-tag-aware loader
    finally:
        sys.path.pop(0)
    return package.load_cfn_yaml(ROOT / "infra" / "observability.yaml")


def _sub_text(value) -> str:
    return value["Fn::Sub"] if isinstance(value, dict) else value


def _alarmed_si64_metrics(overlay: dict) -> dict[str, list[str]]:
    """{metric name: dimension names} of every alarm on the SI64 namespace."""
    out = {}
    for res in overlay["Resources"].values():
        if res["Type"] != "AWS::CloudWatch::Alarm":
            continue
        p = res["Properties"]
        if p.get("Namespace") == "SI64":
            out[p["MetricName"]] = [d["Name"] for d in p["Dimensions"]]
    return out


def _dashboard_si64_metrics(overlay: dict) -> set[str]:
    body = _sub_text(overlay["Resources"]["OperationsDashboard"]["Properties"]["DashboardBody"])
    doc = json.loads(body)
    names = set()
    for w in doc["widgets"]:
        for m in (w.get("properties") or {}).get("metrics") or []:
            if m[0] == "SI64":
                assert m[2] == "Stage" and m[3] == "${StageName}", m  # the one dimension set [Stage]
                names.add(m[1])
    return names


# ---------------------------------------------------------------- EMF against the alarms


def test_every_metric_the_alarms_and_dashboard_read_is_one_we_emit_with_the_same_dimensions():
    overlay = _overlay()
    alarmed = _alarmed_si64_metrics(overlay)
    assert set(alarmed) == {"RefundsFailed", "SweepLagSeconds"}
    for name, dims in alarmed.items():
        assert name in obs.METRICS
        assert [dims] == obs.DIMENSIONS
    shown = _dashboard_si64_metrics(overlay)
    assert shown == set(obs.METRICS), "the dashboard and observability.METRICS must name the same metrics"
    # the header comment of the overlay lists the names too
    header = (ROOT / "infra" / "observability.yaml").read_text().split("Parameters:")[0]
    assert set(obs.METRICS) <= set(re.findall(r"[A-Z][A-Za-z0-9]+", header))


@pytest.mark.parametrize("name", sorted(obs.METRICS))
def test_emf_record_shape(name):
    with obs.capture() as cap:
        obs.emit(name, 3)
    (rec,) = cap.records
    aws = rec["_aws"]
    assert isinstance(aws["Timestamp"], int) and aws["Timestamp"] > 1_700_000_000_000
    (directive,) = aws["CloudWatchMetrics"]
    assert directive == {
        "Namespace": "SI64",
        "Dimensions": [["Stage"]],
        "Metrics": [{"Name": name, "Unit": obs.METRICS[name]}],
    }
    assert rec["Stage"] == "prod" and rec[name] == 3
    # EMF: every dimension and metric named in the directive is a top-level member
    for dim in directive["Dimensions"][0]:
        assert isinstance(rec[dim], str)
    assert "\n" not in cap.text.rstrip("\n")


def test_sweep_lag_is_in_seconds_and_alarm_statistics_fit():
    overlay = _overlay()["Resources"]
    assert obs.METRICS["SweepLagSeconds"] == "Seconds"
    assert overlay["SweepLagAlarm"]["Properties"]["Statistic"] == "Maximum"
    assert overlay["RefundsFailedAlarm"]["Properties"]["Statistic"] == "Sum"
    with obs.capture() as cap:
        obs.emit("SweepLagSeconds", 12.5)
    assert cap.records[0]["SweepLagSeconds"] == 12.5


def test_stage_dimension_comes_from_settings(monkeypatch):
    from chalicelib import config

    obs.set_stage(None)
    monkeypatch.setenv("SI64_STAGE", "staging7")
    config.settings.cache_clear()
    try:
        with obs.capture() as cap:
            obs.emit("Rents")
        assert cap.records[0]["Stage"] == "staging7"
    finally:
        config.settings.cache_clear()


def test_unknown_metric_or_bad_value_is_an_error_line_never_an_exception():
    with obs.capture() as cap:
        obs.emit("Rentz", 1)
        obs.emit("Rents", "1")
        obs.emit("Rents", True)
    recs = cap.records
    assert [r["event"] for r in recs] == ["metric_rejected"] * 3
    assert all("_aws" not in r and r["level"] == "ERROR" for r in recs)
    with pytest.raises(ValueError):
        obs.metric_record("Rentz", 1)


def test_metric_inside_a_request_carries_its_request_id():
    class Req:
        method, context = "POST", {"requestId": "req-42"}

    @obs.observed("/api/rent", lambda: Req())
    def view():
        obs.emit("Rents", 1, tier="M2")
        return {"ok": True}

    with obs.capture() as cap:
        view()
    metric, line = cap.records
    assert metric["request_id"] == "req-42" and metric["tier"] == "M2" and metric["Rents"] == 1
    assert line["event"] == "request" and line["request_id"] == "req-42"


# ---------------------------------------------------------------- request log lines


class FakeResponse:
    def __init__(self, status, body):
        self.status_code, self.body = status, json.dumps(body)


def operations() -> dict:
    """(METHOD, route) → the operation name each endpoint hands to its log line."""
    from app import app

    return {
        (m, path): e.view_function.operation for path, ms in app.routes.items() for m, e in ms.items() if m != "OPTIONS"
    }


def _view_returning(resp, route="/api/contracts/{contract_id}/settle", ctx=None, **annotations):
    class Req:
        method = "POST"
        context = ctx if ctx is not None else {"requestId": "rid-1"}

    @obs.observed(route, lambda: Req(), operations()[("POST", route)])
    def view(**params):
        obs.annotate(**annotations)
        return resp

    return view


def test_one_line_per_request_with_the_fields_operators_search_on():
    view = _view_returning(FakeResponse(200, {"status": "SETTLED"}))
    with obs.capture() as cap:
        view(contract_id="CTR-abcdefghijklmnop")
    (line,) = cap.records
    assert line["event"] == "request" and line["logger"] == "si64" and line["level"] == "INFO"
    assert line["request_id"] == "rid-1" and line["method"] == "POST"
    assert line["route"] == "/api/contracts/{contract_id}/settle" and line["operation"] == "settle"
    assert line["contract_id"] == "CTR-abcdefghijklmnop"
    assert line["status"] == 200 and line["outcome"] == "ok"
    assert isinstance(line["latency_ms"], (int, float)) and line["latency_ms"] >= 0


def test_annotations_name_the_contract_of_a_rent_and_the_outcome():
    view = _view_returning(FakeResponse(201, {}), route="/api/rent", contract_id="CTR-new", outcome="rented", tier="M2")
    with obs.capture() as cap:
        view()
    (line,) = cap.records
    assert (line["operation"], line["contract_id"], line["outcome"], line["tier"]) == (
        "rent",
        "CTR-new",
        "rented",
        "M2",
    )


def test_error_lines_carry_the_code_and_5xx_emits_http5xx_with_the_body_request_id():
    with obs.capture() as cap:
        _view_returning(
            FakeResponse(402, {"code": "payment_invalid", "detail": "x", "reason": "not_found"}),
            route="/api/rent",
            code="payment_invalid",  # the endpoint hands the code over; the body is not re-read
        )()
    (line,) = cap.records
    assert (line["status"], line["outcome"], line["code"], line["level"]) == (
        402,
        "rejected",
        "payment_invalid",
        "INFO",
    )

    with obs.capture() as cap:
        # the body's request_id is the line's: the endpoint writes the id of the request's line
        _view_returning(
            FakeResponse(500, {"code": "internal", "request_id": "body-rid"}), ctx={"requestId": "body-rid"}
        )()
    line, metric = cap.records
    assert (line["status"], line["outcome"], line["level"], line["request_id"]) == (500, "error", "ERROR", "body-rid")
    assert metric["Http5xx"] == 1 and metric["_aws"]["CloudWatchMetrics"][0]["Namespace"] == "SI64"
    assert metric["request_id"] == "body-rid" and metric["route"] == "/api/contracts/{contract_id}/settle"


def test_a_view_that_raises_still_writes_its_line_as_500():
    class Req:
        method, context = "GET", {}

    @obs.observed("/api/stats", lambda: Req())
    def view():
        raise RuntimeError("boom")

    with obs.capture() as cap, pytest.raises(RuntimeError):
        view()
    line, metric = cap.records
    assert line["status"] == 500 and line["operation"] == "get_stats" and metric["Http5xx"] == 1


def test_annotate_outside_a_request_is_a_no_op_and_log_event_shape():
    obs.annotate(contract_id="x")
    with obs.capture() as cap:
        obs.log_event("sweep", operation="sweep", outcome="ok", due=3)
    (line,) = cap.records
    assert line == {
        "level": "INFO",
        "ts_ms": line["ts_ms"],
        "logger": "si64",
        "event": "sweep",
        "operation": "sweep",
        "outcome": "ok",
        "due": 3,
    }


def test_operation_names():
    ops = operations()  # named by the endpoints; the generic name where they do not
    assert ops[("POST", "/api/rent")] == "rent"
    assert ops[("POST", "/api/contracts/{contract_id}/extend")] == "extend"
    assert ops[("GET", "/api/admin/devices")] == "get_admin_devices"
    assert ops[("POST", "/api/admin/devices/{device_id}/key")] == "post_admin_devices_key"


# ---------------------------------------------------------------- no secrets


SECRETS = {
    "device_key": "dk_device-m2-001_s3cr3tS3cr3tS3cr3tS3cr3t",
    "admin_key": "admin-0123456789abcdef",
    "x_signature": "5VfYmVp1Zk7cEQ9qsigsigsig",
    "private_key": [1, 2, 3, 4],
    "next_token": "eyJ0b2tlbiI6MX0",
    "Authorization": "Bearer abc.def",
    "treasury_secret": "the-seed-words",
}


def test_secret_fields_and_device_key_values_are_redacted_everywhere():
    with obs.capture() as cap:
        obs.log_event(
            "request",
            **SECRETS,
            headers={
                "X-Admin-Key": "admin-0123456789abcdef",
                "X-Device-Key": "dk_a_bbbbbbbbbbbbbbbbbbbb",
                "Accept": "*/*",
            },
            note="dk_device-m2-001_s3cr3tS3cr3tS3cr3tS3cr3t",
            nested=[{"api_key": "k"}],
        )
        obs.emit("Rents", 1, device_key="dk_device-m2-001_s3cr3tS3cr3tS3cr3tS3cr3t", signature="sig")
    text = cap.text
    for secret in (
        "s3cr3t",
        "admin-0123456789abcdef",
        "sigsigsig",
        "Bearer",
        "seed-words",
        "eyJ0b2tlbiI6MX0",
        "bbbbbbbbbbbbbbbb",
        '"k"',
        '"sig"',
    ):
        assert secret not in text, secret
    line, metric = cap.records
    assert line["device_key"] == obs.REDACTED and line["headers"]["Accept"] == "*/*"
    assert line["headers"]["X-Admin-Key"] == obs.REDACTED and line["private_key"] == obs.REDACTED
    assert metric["device_key"] == obs.REDACTED


def test_a_request_line_never_carries_a_key_from_path_params_or_annotations():
    view = _view_returning(
        FakeResponse(201, {"device_id": "device-m2-001", "device_key": "dk_x"}),
        route="/api/admin/devices/{device_id}/key",
        device_key="dk_device-m2-001_s3cr3tS3cr3tS3cr3tS3cr3t",
    )
    with obs.capture() as cap:
        view(device_id="device-m2-001", tx_signature="5sig")
    (line,) = cap.records
    assert line["device_id"] == "device-m2-001"
    assert "s3cr3t" not in cap.text and "5sig" not in cap.text


# ---------------------------------------------------------------- cheap to import


def test_import_is_cheap_and_pulls_nothing_heavy():
    code = (
        "import sys, time; t=time.perf_counter(); import chalicelib.observability; "
        "d=time.perf_counter()-t; heavy=[m for m in ('boto3','botocore','pynamodb','chalice','solders') "
        "if m in sys.modules]; print(d, heavy)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    seconds, heavy = out.stdout.split(" ", 1)
    assert heavy.strip() == "[]"
    assert float(seconds) < 0.5  # measured ≈ 12 ms cold (json/re/uuid included); loose for a busy 2-core box


def test_emit_many_writes_one_record_with_each_unit_and_drops_unknown_names():
    with obs.capture() as cap:
        obs.emit_many({"SweepDue": 3, "Expirations": 2, "SweepLagSeconds": 0.5, "Nope": 1}, run="r1")
        obs.emit_many({})
    err, rec = cap.records
    assert err["event"] == "metric_rejected" and "Nope" in err["error"]
    (directive,) = rec["_aws"]["CloudWatchMetrics"]
    assert directive["Namespace"] == "SI64" and directive["Dimensions"] == [["Stage"]]
    assert directive["Metrics"] == [
        {"Name": "SweepDue", "Unit": "Count"},
        {"Name": "Expirations", "Unit": "Count"},
        {"Name": "SweepLagSeconds", "Unit": "Seconds"},
    ]
    assert (rec["SweepDue"], rec["Expirations"], rec["SweepLagSeconds"], rec["Stage"], rec["run"]) == (
        3,
        2,
        0.5,
        "prod",
        "r1",
    )
    assert "Nope" not in rec
