"""infra/package.py post-processing of the chalice-packaged template (no I/O)."""

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
spec = importlib.util.spec_from_file_location("si64_package", ROOT / "infra" / "package.py")
package = importlib.util.module_from_spec(spec)
spec.loader.exec_module(package)


def _template():
    return {
        "Parameters": {"Prefix": {"Type": "String", "Default": "si64-prod"}},
        "Resources": {
            "RefundQueue": {"Type": "AWS::SQS::Queue", "Properties": {"QueueName": {"Fn::Sub": "${Prefix}-refunds"}}},
            "RefundWorker": {
                "Type": "AWS::Serverless::Function",
                "Properties": {
                    "Environment": {"Variables": {"AWS_DEFAULT_REGION": "us-east-1", "SI64_STAGE": "prod"}},
                    "Events": {
                        "RefundWorkerSqsEventSource": {
                            "Type": "SQS",
                            "Properties": {
                                "Queue": {
                                    "Fn::Sub": "arn:${AWS::Partition}:sqs:${AWS::Region}:${AWS::AccountId}"
                                    ":si64-prod-refunds"
                                },
                                "BatchSize": 10,
                            },
                        },
                        "Sweep": {"Type": "Schedule", "Properties": {"Schedule": "rate(1 minute)"}},
                    },
                },
            },
            "Other": {
                "Type": "AWS::Lambda::EventSourceMapping",
                "Properties": {"EventSourceArn": "arn:aws:sqs:us-east-1:1:elsewhere", "FunctionName": "x"},
            },
        },
    }


def test_sqs_events_report_batch_item_failures_and_reference_the_queue():
    t = package.fix_template(_template(), "prod")
    fn = t["Resources"]["RefundWorker"]["Properties"]
    sqs = fn["Events"]["RefundWorkerSqsEventSource"]["Properties"]
    assert sqs["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert sqs["Queue"] == {"Fn::GetAtt": ["RefundQueue", "Arn"]}
    assert "FunctionResponseTypes" not in fn["Events"]["Sweep"]["Properties"]
    other = t["Resources"]["Other"]["Properties"]
    assert other["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert other["EventSourceArn"] == "arn:aws:sqs:us-east-1:1:elsewhere"


def test_reserved_env_dropped_and_prefix_default_per_stage():
    t = package.fix_template(_template(), "staging")
    assert t["Parameters"]["Prefix"]["Default"] == "si64-staging"
    assert t["Resources"]["RefundWorker"]["Properties"]["Environment"]["Variables"] == {
        "SI64_STAGE": "prod",
        "SI64_TREASURY": {"Ref": "TreasuryAddress"},
    }


def test_treasury_address_is_a_parameter_unless_the_stage_sets_it():
    t = _template()
    t["Resources"]["RefundWorker"]["Properties"]["Environment"]["Variables"]["SI64_TREASURY"] = "Treas1"
    t = package.fix_template(t, "prod")
    assert t["Parameters"]["TreasuryAddress"]["Default"] == ""
    assert t["Resources"]["RefundWorker"]["Properties"]["Environment"]["Variables"]["SI64_TREASURY"] == "Treas1"


def test_idempotent():
    once = package.fix_template(_template(), "prod")
    import copy

    assert package.fix_template(copy.deepcopy(once), "prod") == once


# ---------------------------------------------------------------- overlays (infra/observability.yaml, infra/edge.yaml)


def _packaged():
    return {
        "Parameters": {"Prefix": {"Type": "String", "Default": "si64-prod"}},
        "Resources": {
            "RestAPI": {
                "Type": "AWS::Serverless::Api",
                "Properties": {
                    "StageName": "api",
                    "DefinitionBody": {"info": {"title": "si64-billing"}, "paths": {"/a": {}}},
                },
            },
            "APIHandler": {"Type": "AWS::Serverless::Function", "Properties": {}},
        },
        "Outputs": {"RestAPIId": {"Value": {"Ref": "RestAPI"}}},
    }


def test_overlay_adds_sections_and_deep_merges_an_existing_resource():
    overlay = {
        "Parameters": {"Rate": {"Type": "Number", "Default": 5}},
        "Conditions": {"On": {"Fn::Equals": ["a", "a"]}},
        "Resources": {
            "RestAPI": {
                "Properties": {
                    "Name": {"Fn::Sub": "${Prefix}-api"},
                    "DefinitionBody": {"info": {"title": {"Fn::Sub": "${Prefix}-api"}}},
                    "MethodSettings": [{"ThrottlingRateLimit": {"Ref": "Rate"}}],
                }
            },
            "Topic": {"Type": "AWS::SNS::Topic", "Properties": {}},
        },
        "Outputs": {"TopicArn": {"Value": {"Ref": "Topic"}}},
    }
    t = package.merge_overlay(_packaged(), overlay, "edge.yaml")
    api = t["Resources"]["RestAPI"]
    assert api["Type"] == "AWS::Serverless::Api"
    assert api["Properties"]["StageName"] == "api"
    assert api["Properties"]["DefinitionBody"] == {"info": {"title": {"Fn::Sub": "${Prefix}-api"}}, "paths": {"/a": {}}}
    assert api["Properties"]["MethodSettings"] == [{"ThrottlingRateLimit": {"Ref": "Rate"}}]
    assert t["Resources"]["Topic"]["Type"] == "AWS::SNS::Topic"
    assert t["Parameters"]["Rate"]["Default"] == 5 and "On" in t["Conditions"]
    assert set(t["Outputs"]) == {"RestAPIId", "TopicArn"}
    # merging the same overlay twice is a no-op (package can be re-run on its output)
    import copy

    assert package.merge_overlay(copy.deepcopy(t), overlay) == t


def test_overlay_conflicts_are_errors():
    import pytest

    with pytest.raises(ValueError, match="Outputs.RestAPIId"):
        package.merge_overlay(_packaged(), {"Outputs": {"RestAPIId": {"Value": "x"}}})
    with pytest.raises(ValueError, match="not AWS::SNS::Topic"):
        package.merge_overlay(_packaged(), {"Resources": {"APIHandler": {"Type": "AWS::SNS::Topic"}}})
    with pytest.raises(ValueError, match="does not have"):
        package.merge_overlay(_packaged(), {"Resources": {"Missing": {"Properties": {"A": 1}}}})


def test_short_form_tags_become_long_form(tmp_path):
    path = tmp_path / "o.yaml"
    path.write_text(
        "Conditions:\n  C: !Not [!Equals [!Ref A, '']]\n"
        "Resources:\n  R:\n    Type: X\n    Condition: C\n    Properties:\n"
        "      A: !GetAtt Q.QueueName\n      B: !Sub '${Prefix}-x'\n      C: !GetAtt [Q, Arn]\n"
    )
    t = package.load_cfn_yaml(path)
    assert t["Conditions"]["C"] == {"Fn::Not": [{"Fn::Equals": [{"Ref": "A"}, ""]}]}
    assert t["Resources"]["R"]["Properties"] == {
        "A": {"Fn::GetAtt": ["Q", "QueueName"]},
        "B": {"Fn::Sub": "${Prefix}-x"},
        "C": {"Fn::GetAtt": ["Q", "Arn"]},
    }


def test_dashboard_gets_every_function_once_and_stage_default():
    import json

    t = _packaged()
    t["Parameters"]["StageName"] = {"Type": "String", "Default": "prod"}
    t["Resources"]["Sweep"] = {"Type": "AWS::Serverless::Function", "Properties": {}}
    t["Resources"]["OperationsDashboard"] = {
        "Type": "AWS::CloudWatch::Dashboard",
        "Properties": {
            "DashboardBody": {
                "Fn::Sub": json.dumps(
                    {
                        "widgets": [
                            {
                                "type": "metric",
                                "x": 0,
                                "y": 0,
                                "width": 12,
                                "height": 6,
                                "properties": {"title": "A", "metrics": [["SI64", "Rents", "Stage", "${StageName}"]]},
                            }
                        ]
                    }
                )
            }
        },
    }
    once = package.fix_template(t, "staging")
    assert once["Parameters"]["StageName"]["Default"] == "staging"
    text, variables = once["Resources"]["OperationsDashboard"]["Properties"]["DashboardBody"]["Fn::Sub"]
    assert variables == {"FunctionNameAPIHandler": {"Ref": "APIHandler"}, "FunctionNameSweep": {"Ref": "Sweep"}}
    widgets = json.loads(text)["widgets"]
    assert [w["properties"]["title"] for w in widgets] == ["A", "Lambda functions"]
    lam = widgets[1]
    assert (lam["x"], lam["y"]) == (12, 0)  # the free half of the last row
    names = {row[3] for row in lam["properties"]["metrics"]}
    assert names == {"${FunctionNameAPIHandler}", "${FunctionNameSweep}"}
    import copy

    assert package.fix_template(copy.deepcopy(once), "staging") == once
