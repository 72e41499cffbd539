"""The packaged prod stage (infra/package.py): alarms, dashboard, outer guards, error shape."""

from __future__ import annotations

import copy
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.infra.conftest import ROOT, sub_names

# the codes the API answers with and the status of each, from its one OpenAPI document
_ERROR = json.loads((ROOT / "chalicelib" / "api" / "openapi.json").read_text())["components"]["schemas"]["Error"]
STATUS_OF_CODE: dict[str, int] = _ERROR["x-status-of-code"]
SI64_METRICS = (
    "Rents",
    "Extensions",
    "Settlements",
    "Expirations",
    "RefundsSent",
    "RefundsConfirmed",
    "RefundsFailed",
    "SweepDue",
    "SweepLagSeconds",
    "Http5xx",
)
CFN_LINT = str(Path(sys.executable).parent / "cfn-lint")


# --------------------------------------------------------------------------- alarms

ALARM_ACTIONS = [{"Ref": "AlarmTopic"}]


def test_alarm_topic_with_optional_email(template, resources):
    assert resources["AlarmTopic"]["Type"] == "AWS::SNS::Topic"
    sub = resources["AlarmEmailSubscription"]
    assert sub["Type"] == "AWS::SNS::Subscription" and sub["Condition"] == "HasAlarmEmail"
    assert sub["Properties"] == {
        "TopicArn": {"Ref": "AlarmTopic"},
        "Protocol": "email",
        "Endpoint": {"Ref": "AlarmEmail"},
    }
    assert template["Parameters"]["AlarmEmail"]["Default"] == ""
    assert template["Conditions"]["HasAlarmEmail"] == {"Fn::Not": [{"Fn::Equals": [{"Ref": "AlarmEmail"}, ""]}]}


def _alarm(resources, logical):
    res = resources[logical]
    assert res["Type"] == "AWS::CloudWatch::Alarm"
    props = res["Properties"]
    assert props["AlarmActions"] == ALARM_ACTIONS and props["OKActions"] == ALARM_ACTIONS
    return props


def test_dead_letter_depth_alarm(resources):
    p = _alarm(resources, "RefundDeadLetterAlarm")
    assert (p["Namespace"], p["MetricName"], p["Statistic"]) == (
        "AWS/SQS",
        "ApproximateNumberOfMessagesVisible",
        "Maximum",
    )
    assert p["Dimensions"] == [{"Name": "QueueName", "Value": {"Fn::GetAtt": ["RefundDeadLetterQueue", "QueueName"]}}]
    assert (p["ComparisonOperator"], p["Threshold"]) == ("GreaterThanThreshold", 0)
    assert p["TreatMissingData"] == "notBreaching"


def test_refund_failures_alarm(template, resources):
    p = _alarm(resources, "RefundsFailedAlarm")
    assert (p["Namespace"], p["MetricName"], p["Statistic"]) == ("SI64", "RefundsFailed", "Sum")
    assert p["Dimensions"] == [{"Name": "Stage", "Value": {"Ref": "StageName"}}]
    assert (p["ComparisonOperator"], p["Threshold"]) == ("GreaterThanThreshold", 0)
    assert template["Parameters"]["StageName"]["Default"] == "prod"  # set per stage by package.py


def test_api_5xx_rate_alarm_divides_5xx_by_count_of_the_chalice_api(template, resources):
    p = _alarm(resources, "Api5xxRateAlarm")
    by_id = {m["Id"]: m for m in p["Metrics"]}
    api_dims = [{"Name": "ApiName", "Value": {"Fn::Sub": "${Prefix}-api"}}, {"Name": "Stage", "Value": "api"}]
    for mid, name in (("errors", "5XXError"), ("requests", "Count")):
        stat = by_id[mid]["MetricStat"]
        assert stat["Metric"] == {"Namespace": "AWS/ApiGateway", "MetricName": name, "Dimensions": api_dims}
        assert stat["Stat"] == "Sum" and by_id[mid]["ReturnData"] is False
    rate = by_id["rate"]
    assert rate["ReturnData"] is True
    assert re.sub(r"\s", "", rate["Expression"]) == "IF(requests>0,100*FILL(errors,0)/requests,0)"
    assert p["Threshold"] == {"Ref": "Api5xxRatePercent"} and p["ComparisonOperator"] == "GreaterThanThreshold"
    assert template["Parameters"]["Api5xxRatePercent"]["Default"] == 1
    # the ApiName dimension is the name the chalice RestAPI is given, in both places API Gateway reads it
    api = resources["RestAPI"]["Properties"]
    assert api["Name"] == {"Fn::Sub": "${Prefix}-api"}
    assert api["DefinitionBody"]["info"]["title"] == {"Fn::Sub": "${Prefix}-api"}
    assert api["StageName"] == "api"


def test_sweep_lag_alarm(template, resources):
    p = _alarm(resources, "SweepLagAlarm")
    assert (p["Namespace"], p["MetricName"], p["Statistic"]) == ("SI64", "SweepLagSeconds", "Maximum")
    assert p["Dimensions"] == [{"Name": "Stage", "Value": {"Ref": "StageName"}}]
    assert p["Threshold"] == {"Ref": "SweepLagThresholdSeconds"} and p["ComparisonOperator"] == "GreaterThanThreshold"
    assert template["Parameters"]["SweepLagThresholdSeconds"]["Default"] == 180
    assert p["TreatMissingData"] == "breaching"  # a sweep that stopped reporting is an alarm too


# --------------------------------------------------------------------------- dashboard


def _resolved_dashboard(template):
    body = template["Resources"]["OperationsDashboard"]["Properties"]["DashboardBody"]["Fn::Sub"]
    text, variables = body if isinstance(body, list) else (body, {})
    known = set(variables) | set(template["Parameters"]) | {"AWS::Region", "AWS::Partition", "AWS::AccountId"}
    for name in sub_names(text):
        if name in known:
            continue
        logical = name.partition(".")[0]
        assert logical in template["Resources"], f"dashboard refers to unknown ${{{name}}}"
    resolved = re.sub(r"\$\{([^}]+)\}", lambda m: f"<{m.group(1)}>", text)
    return json.loads(resolved), variables


def _metric_rows(doc):
    for w in doc["widgets"]:
        for row in w.get("properties", {}).get("metrics", []):
            yield [x for x in row if not isinstance(x, dict)]


def test_dashboard_shows_every_figure(template):
    assert template["Resources"]["OperationsDashboard"]["Type"] == "AWS::CloudWatch::Dashboard"
    doc, variables = _resolved_dashboard(template)
    rows = list(_metric_rows(doc))
    for name in SI64_METRICS:
        assert ["SI64", name, "Stage", "<StageName>"] in rows, name
    for queue in ("RefundQueue", "RefundDeadLetterQueue"):
        assert ["AWS/SQS", "ApproximateNumberOfMessagesVisible", "QueueName", f"<{queue}.QueueName>"] in rows
    tables = [k for k, r in template["Resources"].items() if r["Type"] == "AWS::DynamoDB::Table"]
    assert len(tables) == 5
    for table in tables:
        for metric in ("ReadThrottleEvents", "WriteThrottleEvents"):
            assert ["AWS/DynamoDB", metric, "TableName", f"<{table}>"] in rows, (table, metric)
    for metric in ("Count", "5XXError", "4XXError"):
        assert ["AWS/ApiGateway", metric, "ApiName", "<Prefix>-api", "Stage", "api"] in rows
    alarms = next(w for w in doc["widgets"] if w["type"] == "alarm")["properties"]["alarms"]
    assert sorted(alarms) == sorted(
        f"<{a}.Arn>" for a in ("RefundDeadLetterAlarm", "RefundsFailedAlarm", "Api5xxRateAlarm", "SweepLagAlarm")
    )
    # package.py adds the Lambda figures of every function chalice packaged
    functions = [k for k, r in template["Resources"].items() if r["Type"] == "AWS::Serverless::Function"]
    assert functions
    for fn in functions:
        assert variables[f"FunctionName{fn}"] == {"Ref": fn}
        for metric in ("Invocations", "Errors", "Throttles", "Duration"):
            assert ["AWS/Lambda", metric, "FunctionName", f"<FunctionName{fn}>"] in rows


def test_dashboard_widgets_fit_the_grid_without_overlap(template):
    doc, _ = _resolved_dashboard(template)
    cells = set()
    for w in doc["widgets"]:
        assert w["x"] >= 0 and w["x"] + w["width"] <= 24
        for x in range(w["x"], w["x"] + w["width"]):
            for y in range(w["y"], w["y"] + w["height"]):
                assert (x, y) not in cells, w["properties"].get("title")
                cells.add((x, y))


# --------------------------------------------------------------------------- outer guards


def test_stage_throttle_is_parameterised(template, resources):
    settings = resources["RestAPI"]["Properties"]["MethodSettings"]
    assert settings == [
        {
            "ResourcePath": "/*",
            "HttpMethod": "*",
            "ThrottlingRateLimit": {"Ref": "ApiThrottleRateLimit"},
            "ThrottlingBurstLimit": {"Ref": "ApiThrottleBurstLimit"},
            "MetricsEnabled": False,
        }
    ]
    params = template["Parameters"]
    assert params["ApiThrottleRateLimit"]["Type"] == "Number" and params["ApiThrottleBurstLimit"]["Type"] == "Number"
    assert params["ApiThrottleBurstLimit"]["Default"] >= params["ApiThrottleRateLimit"]["Default"]


def test_waf_rate_rules_per_ip_above_the_application_limit(template, resources):
    acl = resources["ApiWebAcl"]
    assert acl["Type"] == "AWS::WAFv2::WebACL" and acl["Condition"] == "WafEnabled"
    props = acl["Properties"]
    assert props["Scope"] == "REGIONAL" and props["DefaultAction"] == {"Allow": {}}
    rules = {r["Name"]: r for r in props["Rules"]}
    assert set(rules) == {"per-ip-unauthenticated", "per-ip-flood"}
    for name, limit in (("per-ip-unauthenticated", "WafIpRateLimit"), ("per-ip-flood", "WafIpFloodLimit")):
        stmt = rules[name]["Statement"]["RateBasedStatement"]
        assert stmt["AggregateKeyType"] == "IP" and stmt["EvaluationWindowSec"] == 300
        assert stmt["Limit"] == {"Ref": limit}
        block = rules[name]["Action"]["Block"]["CustomResponse"]
        assert block["ResponseCode"] == 429
        body = props["CustomResponseBodies"][block["CustomResponseBodyKey"]]
        assert body["ContentType"] == "APPLICATION_JSON"
        content = json.loads(body["Content"])
        assert set(content) == {"detail", "code", "reason"}
        assert (content["code"], content["reason"]) == ("rate_limited", "waf")
        assert {"Name": "Retry-After", "Value": "60"} in block["ResponseHeaders"]
    scope = rules["per-ip-unauthenticated"]["Statement"]["RateBasedStatement"]["ScopeDownStatement"]
    assert scope["NotStatement"]["Statement"]["SizeConstraintStatement"]["FieldToMatch"] == {
        "SingleHeader": {"Name": "x-device-key"}
    }
    # docs/api.md: 150 requests per 10 s per IP = 4500 per 5-minute WAF window; WAF must sit above it
    app_limit_per_window = 150 * 300 // 10
    params = template["Parameters"]
    assert params["WafIpRateLimit"]["Default"] >= 2 * app_limit_per_window
    assert params["WafIpFloodLimit"]["Default"] > params["WafIpRateLimit"]["Default"]


def test_waf_association_targets_the_api_stage(template, resources):
    assoc = resources["ApiWebAclAssociation"]
    assert assoc["Type"] == "AWS::WAFv2::WebACLAssociation" and assoc["Condition"] == "WafEnabled"
    assert assoc["Properties"] == {
        "ResourceArn": {
            "Fn::Sub": "arn:${AWS::Partition}:apigateway:${AWS::Region}::/restapis/${RestAPI}/stages/${RestAPI.Stage}"
        },
        "WebACLArn": {"Fn::GetAtt": ["ApiWebAcl", "Arn"]},
    }
    assert resources["RestAPI"]["Type"] == "AWS::Serverless::Api"
    assert template["Parameters"]["EnableWaf"]["Default"] == "true"


# --------------------------------------------------------------------------- error shape

EXPECTED_RESPONSES = {
    # type: (status or None = API Gateway's own, code, Retry-After or None)
    "MISSING_AUTHENTICATION_TOKEN": ("404", "not_found", None),
    "RESOURCE_NOT_FOUND": ("404", "not_found", None),
    "UNAUTHORIZED": ("401", "unauthorized", None),
    "ACCESS_DENIED": ("403", "forbidden", None),
    "BAD_REQUEST_BODY": ("400", "invalid_request", None),
    "BAD_REQUEST_PARAMETERS": ("400", "invalid_request", None),
    "REQUEST_TOO_LARGE": ("413", "payload_too_large", None),
    "THROTTLED": ("429", "rate_limited", "'1'"),
    "QUOTA_EXCEEDED": ("429", "rate_limited", "'60'"),
    "WAF_FILTERED": ("429", "rate_limited", "'60'"),
    "DEFAULT_4XX": (None, "invalid_request", None),
    "DEFAULT_5XX": (None, "internal", None),
}
CONTEXT_SAMPLE = {
    "$context.error.messageString": json.dumps('Missing "Authentication" Token'),
    "$context.error.responseType": "MISSING_AUTHENTICATION_TOKEN",
    "$context.requestId": "c0ffee-0001",
}


def _render(template_text: str) -> dict:
    for var, value in CONTEXT_SAMPLE.items():
        template_text = template_text.replace(var, value)
    assert "$" not in template_text, f"unsupported variable left in {template_text!r}"
    return json.loads(template_text)


@pytest.mark.parametrize("rtype", sorted(EXPECTED_RESPONSES))
def test_gateway_responses_answer_in_the_api_md_shape(resources, rtype):
    responses = resources["RestAPI"]["Properties"]["GatewayResponses"]
    status, code, retry_after = EXPECTED_RESPONSES[rtype]
    resp = responses[rtype]
    assert resp.get("StatusCode") == status
    body = _render(resp["ResponseTemplates"]["application/json"])
    extra = {"request_id"} if rtype == "DEFAULT_5XX" else set()
    assert set(body) == {"detail", "code", "reason"} | extra
    assert body["code"] == code and body["code"] in _ERROR["properties"]["code"]["enum"]
    # the status API Gateway answers with is the one the API answers that code with (DEFAULT_4XX/5XX:
    # API Gateway's own status, of that class)
    if status is None:
        assert str(STATUS_OF_CODE[code])[0] == rtype[len("DEFAULT_")], (rtype, code)
    else:
        assert int(status) == STATUS_OF_CODE[code], (rtype, status, code)
    assert isinstance(body["detail"], str) and body["detail"]
    assert body["reason"] is None or isinstance(body["reason"], str)
    headers = (resp.get("ResponseParameters") or {}).get("Headers") or {}
    assert headers.get("Retry-After") == retry_after


def test_unknown_route_is_not_found_with_reason_route(resources):
    body = _render(
        resources["RestAPI"]["Properties"]["GatewayResponses"]["MISSING_AUTHENTICATION_TOKEN"]["ResponseTemplates"][
            "application/json"
        ]
    )
    assert body == {"detail": "No route for this method and path.", "code": "not_found", "reason": "route"}


# --------------------------------------------------------------------------- lint and separation


def test_cfn_lint_is_clean_on_both_templates(packaged):
    sam, _ = packaged
    proc = subprocess.run(
        [CFN_LINT, str(ROOT / "infra" / "resources.yaml"), str(sam)],
        capture_output=True,
        text=True,
        check=False,
        env={"AWS_DEFAULT_REGION": "us-east-1", "PATH": ""},
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_cfn_lint_would_catch_a_broken_guard(packaged, tmp_path):
    _, template = packaged
    broken = copy.deepcopy(template)
    broken["Resources"]["ApiWebAcl"]["Properties"]["Scope"] = "GLOBAL"
    broken["Resources"]["SweepLagAlarm"]["Properties"]["ComparisonOperator"] = "MoreThan"
    path = tmp_path / "broken.yaml"
    path.write_text(yaml.safe_dump(broken, sort_keys=False))
    proc = subprocess.run(
        [CFN_LINT, str(path)],
        capture_output=True,
        text=True,
        check=False,
        env={"AWS_DEFAULT_REGION": "us-east-1", "PATH": ""},
    )
    assert proc.returncode != 0
    assert "GLOBAL" in proc.stdout and "MoreThan" in proc.stdout


def test_local_provisioning_template_keeps_only_what_the_emulator_creates():
    """dev/provision.py creates infra/resources.yaml on moto; the overlays stay out of it."""
    from dev.provision import TEMPLATE, load_template

    assert Path(TEMPLATE) == ROOT / "infra" / "resources.yaml"
    types = {r["Type"] for r in load_template(TEMPLATE)["Resources"].values()}
    assert types == {"AWS::DynamoDB::Table", "AWS::SQS::Queue"}
