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
                                "Queue": {"Fn::Sub": "arn:${AWS::Partition}:sqs:${AWS::Region}:${AWS::AccountId}"
                                                     ":si64-prod-refunds"},
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
    assert t["Resources"]["RefundWorker"]["Properties"]["Environment"]["Variables"] == {"SI64_STAGE": "prod"}


def test_idempotent():
    once = package.fix_template(_template(), "prod")
    import copy
    assert package.fix_template(copy.deepcopy(once), "prod") == once
