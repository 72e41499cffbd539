"""The packaged stage, transformed by SAM and created as a stack on moto's CloudFormation.

`build/sam.yaml` (infra/package.py) goes through aws-sam-translator's transform into
plain CloudFormation, and that template is created as a stack on a private AWS emulator
(`python -m dev.aws_emulator`, moto server) with `deployment.zip` in an artifact bucket.
Then every table and index, queue and redrive policy, role and inline policy, function
and environment, schedule and event-source mapping is read back through the service APIs
and compared with the properties the transformed template gives it.

What moto cannot create is taken out before the stack is created, and listed in
``NOT_CREATED_BY_MOTO`` with the reason; a test checks that the list is exactly what was
taken out, so a moto upgrade that starts supporting one of them is noticed.
"""

from __future__ import annotations

import ast
import copy
import json
import re

import pytest
from samtranslator.translator.transform import transform

from tests.fixtures.aws import start_emulator_process, stop_process

STACK = "si64-prod"
BUCKET = "si64-prod-artifacts"

# resource type -> why moto 5.2 cannot create it from a template (checked in
# test_what_moto_cannot_create_is_listed_with_its_reason).
NOT_CREATED_BY_MOTO = {
    "AWS::ApiGateway::Deployment": (
        "moto's AWS::ApiGateway::RestApi ignores Body (the OpenAPI definition SAM puts there), so the API "
        "has no methods and moto refuses the deployment: 'The REST API doesn't contain any methods'"
    ),
    "AWS::ApiGateway::Stage": "needs the deployment above (throttle settings: tests/infra/test_sam_transform.py)",
    "AWS::CloudWatch::Alarm": "no CloudFormation support in moto ('No Moto CloudFormation support')",
    "AWS::CloudWatch::Dashboard": "its body refers to the alarms' ARNs (Fn::GetAtt), which moto cannot create",
    "AWS::WAFv2::WebACL": "no CloudFormation support in moto; the stack is created with EnableWaf=false",
    "AWS::WAFv2::WebACLAssociation": "no CloudFormation support in moto; the stack is created with EnableWaf=false",
    "AWS::SNS::Subscription": (
        "moto accepts it but creates no subscription (and lists it without a logical id); the stack is created "
        "with AlarmEmail empty, so HasAlarmEmail leaves it out as in a stage without an on-call address"
    ),
}
# properties moto's CloudFormation accepts and does not apply (checked in the template only)
NOT_APPLIED_BY_MOTO = {
    "AWS::DynamoDB::Table.PointInTimeRecoverySpecification": "moto's table model does not read it",
    "AWS::DynamoDB::Table.TimeToLiveSpecification": "moto's table model does not read it (TTL stays DISABLED)",
    "AWS::ApiGateway::RestApi.Body": "the OpenAPI definition is not imported (see AWS::ApiGateway::Deployment)",
}
# outputs that refer to what was taken out
DROPPED_OUTPUTS = {"DashboardName", "ApiWebAclArn"}
TTL_TABLES = {"ClaimsTable", "MetricsTable"}
PARAMETERS = {"EnableWaf": "false", "TreasuryAddress": "Eqa9gTUK9qJGgXfz4sESv7Qg6L9eB57maFPwGCWgzNn7"}


class _NoManagedPolicies:
    def load(self):
        return {}


def sam_transform(template: dict, code_uri: str) -> dict:
    t = copy.deepcopy(template)
    for res in t["Resources"].values():
        if res["Type"] == "AWS::Serverless::Function":
            res["Properties"]["CodeUri"] = code_uri
    return transform(t, {"AWS::Region": "us-east-1"}, _NoManagedPolicies())


@pytest.fixture(scope="module")
def cfn(template, monkeypatch_module):
    monkeypatch_module.setenv("AWS_DEFAULT_REGION", "us-east-1")
    return sam_transform(template, f"s3://{BUCKET}/deployment.zip")


@pytest.fixture(scope="module")
def monkeypatch_module():
    mp = pytest.MonkeyPatch()
    yield mp
    mp.undo()


@pytest.fixture(scope="module")
def creatable(cfn):
    """(template moto can create, {logical id: type} taken out)."""
    t = copy.deepcopy(cfn)
    removed = {k: r["Type"] for k, r in t["Resources"].items() if r["Type"] in NOT_CREATED_BY_MOTO}
    for k in removed:
        del t["Resources"][k]
    t["Outputs"] = {k: v for k, v in t["Outputs"].items() if k not in DROPPED_OUTPUTS}
    return t, removed


@pytest.fixture(scope="module")
def emulator(tmp_path_factory):
    import boto3

    proc, endpoint = start_emulator_process(tmp_path_factory.mktemp("sam-aws") / "aws.log")

    def client(service):
        return boto3.client(
            service,
            endpoint_url=endpoint,
            region_name="us-east-1",
            aws_access_key_id="test",
            aws_secret_access_key="test",
        )

    try:
        yield client
    finally:
        stop_process(proc)


@pytest.fixture(scope="module")
def stack(emulator, creatable, packaged):
    sam, _ = packaged
    template, _ = creatable
    s3 = emulator("s3")
    s3.create_bucket(Bucket=BUCKET)
    s3.upload_file(str(sam.parent / "deployment.zip"), BUCKET, "deployment.zip")
    cf = emulator("cloudformation")
    cf.create_stack(
        StackName=STACK,
        TemplateBody=json.dumps(template),
        Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in PARAMETERS.items()],
        Capabilities=["CAPABILITY_IAM", "CAPABILITY_AUTO_EXPAND"],
    )
    desc = cf.describe_stacks(StackName=STACK)["Stacks"][0]
    summaries = cf.list_stack_resources(StackName=STACK)["StackResourceSummaries"]
    physical = {r["LogicalResourceId"]: r["PhysicalResourceId"] for r in summaries}
    params = {p["ParameterKey"]: p["ParameterValue"] for p in desc["Parameters"]}
    return {"desc": desc, "summaries": summaries, "physical": physical, "params": params, "client": emulator}


def of_type(template: dict, type_: str) -> dict:
    return {k: r for k, r in template["Resources"].items() if r["Type"] == type_}


def sub(value, params: dict) -> str:
    """A string, or a Fn::Sub of parameters and pseudo parameters, resolved."""
    if isinstance(value, str):
        return value
    text = value["Fn::Sub"]
    names = dict(params, **{"AWS::Region": "us-east-1", "AWS::Partition": "aws", "AWS::AccountId": "123456789012"})
    return re.sub(r"\$\{([^}]+)\}", lambda m: names[m.group(1)], text)


# --------------------------------------------------------------------------- the stack


def test_the_stack_is_created_from_the_transformed_template(stack, creatable):
    template, _ = creatable
    assert stack["desc"]["StackStatus"] == "CREATE_COMPLETE"
    expected = {k for k, r in template["Resources"].items() if "Condition" not in r}
    got = {r["LogicalResourceId"]: r["ResourceStatus"] for r in stack["summaries"] if r["LogicalResourceId"]}
    assert set(got) == expected
    assert set(got.values()) == {"CREATE_COMPLETE"}
    assert stack["params"]["Prefix"] == "si64-prod" and stack["params"]["StageName"] == "prod"


def test_what_moto_cannot_create_is_listed_with_its_reason(cfn, creatable):
    _, removed = creatable
    assert set(removed.values()) == set(NOT_CREATED_BY_MOTO)
    # the rest: only types the stack really creates (a new type must be checked or listed)
    left = {r["Type"] for k, r in cfn["Resources"].items() if k not in removed}
    assert left == {
        "AWS::DynamoDB::Table",
        "AWS::SQS::Queue",
        "AWS::IAM::Role",
        "AWS::Lambda::Function",
        "AWS::Lambda::Permission",
        "AWS::Lambda::EventSourceMapping",
        "AWS::Events::Rule",
        "AWS::ApiGateway::RestApi",
        "AWS::SNS::Topic",
    }


# --------------------------------------------------------------------------- tables


def test_every_table_and_index_exists_with_the_template_properties(stack, cfn):
    ddb = stack["client"]("dynamodb")
    tables = of_type(cfn, "AWS::DynamoDB::Table")
    assert len(tables) == 5
    for logical, res in tables.items():
        props = res["Properties"]
        name = sub(props["TableName"], stack["params"])
        assert stack["physical"][logical] == name
        t = ddb.describe_table(TableName=name)["Table"]
        assert t["KeySchema"] == props["KeySchema"], logical
        assert sorted(t["AttributeDefinitions"], key=str) == sorted(props["AttributeDefinitions"], key=str), logical
        assert t["BillingModeSummary"]["BillingMode"] == props["BillingMode"] == "PAY_PER_REQUEST"
        want = {i["IndexName"]: i for i in props.get("GlobalSecondaryIndexes", [])}
        got = {i["IndexName"]: i for i in t.get("GlobalSecondaryIndexes", [])}
        assert set(got) == set(want), logical
        for name_, idx in want.items():
            assert got[name_]["KeySchema"] == idx["KeySchema"], (logical, name_)
            assert got[name_]["Projection"]["ProjectionType"] == idx["Projection"]["ProjectionType"]
            assert sorted(got[name_]["Projection"].get("NonKeyAttributes", [])) == sorted(
                idx["Projection"].get("NonKeyAttributes", [])
            ), (logical, name_)
        # NOT_APPLIED_BY_MOTO: TTL and point-in-time recovery are checked in the template only
        want_ttl = props.get("TimeToLiveSpecification")
        assert want_ttl == ({"AttributeName": "ttl", "Enabled": True} if logical in TTL_TABLES else None), logical
        want_pitr = props.get("PointInTimeRecoverySpecification", {}).get("PointInTimeRecoveryEnabled", False)
        assert want_pitr == (logical != "MetricsTable"), logical


# --------------------------------------------------------------------------- queues


def test_queues_and_the_redrive_policy(stack, cfn):
    sqs = stack["client"]("sqs")
    queues = of_type(cfn, "AWS::SQS::Queue")
    assert set(queues) == {"RefundQueue", "RefundDeadLetterQueue", "WebhookQueue", "WebhookDeadLetterQueue"}
    attrs = {}
    for logical, res in queues.items():
        props = res["Properties"]
        url = sqs.get_queue_url(QueueName=sub(props["QueueName"], stack["params"]))["QueueUrl"]
        assert stack["physical"][logical].rsplit("/", 1)[1] == url.rsplit("/", 1)[1]
        attrs[logical] = a = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
        for key in ("VisibilityTimeout", "MessageRetentionPeriod"):
            if key in props:
                assert int(a[key]) == props[key], (logical, key)
    redrive = json.loads(attrs["RefundQueue"]["RedrivePolicy"])
    want = queues["RefundQueue"]["Properties"]["RedrivePolicy"]
    assert want["deadLetterTargetArn"] == {"Fn::GetAtt": ["RefundDeadLetterQueue", "Arn"]}
    assert redrive["deadLetterTargetArn"] == attrs["RefundDeadLetterQueue"]["QueueArn"]
    assert int(redrive["maxReceiveCount"]) == want["maxReceiveCount"] == 5
    outputs = {o["OutputKey"]: o["OutputValue"] for o in stack["desc"]["Outputs"]}
    assert outputs["RefundQueueUrl"].endswith("/si64-prod-refunds")
    assert outputs["RefundDeadLetterQueueUrl"].endswith("/si64-prod-refunds-dlq")


# --------------------------------------------------------------------------- roles


def test_each_function_has_its_role_with_the_template_policy(stack, cfn):
    iam = stack["client"]("iam")
    roles = of_type(cfn, "AWS::IAM::Role")
    assert set(roles) == {
        "ApiHandlerRole",
        "RefundWorkerRole",
        "BillingSweepRole",
        "QuoteWatcherRole",
        "WebhookDispatcherRole",
        "WebhookDeliveryRole",
        "PaymentRefusalsRole",
    }
    for logical, res in roles.items():
        props = res["Properties"]
        role = iam.get_role(RoleName=stack["physical"][logical])["Role"]
        assert role["AssumeRolePolicyDocument"] == props["AssumeRolePolicyDocument"], logical
        names = iam.list_role_policies(RoleName=role["RoleName"])["PolicyNames"]
        assert sorted(names) == sorted(p["PolicyName"] for p in props["Policies"]), logical
        for p in props["Policies"]:
            doc = iam.get_role_policy(RoleName=role["RoleName"], PolicyName=p["PolicyName"])["PolicyDocument"]
            if isinstance(doc, str):  # moto hands back the document it stored from the template as repr()
                doc = ast.literal_eval(doc)
            assert doc == p["PolicyDocument"], (logical, p["PolicyName"])
        assert iam.list_attached_role_policies(RoleName=role["RoleName"])["AttachedPolicies"] == []


# --------------------------------------------------------------------------- functions


def test_functions_with_handler_runtime_limits_role_and_environment(stack, cfn):
    lam, iam = stack["client"]("lambda"), stack["client"]("iam")
    functions = of_type(cfn, "AWS::Lambda::Function")
    assert {k: f["Properties"]["Handler"] for k, f in functions.items()} == {
        "APIHandler": "app.app",
        "RefundWorker": "chalicelib.jobs.refunds.refund_worker",
        "BillingSweep": "chalicelib.jobs.sweep.billing_sweep",
        "WebhookDispatcher": "chalicelib.jobs.webhooks.webhook_dispatcher",
        "WebhookDelivery": "chalicelib.jobs.webhooks.webhook_delivery",
        "QuoteWatcher": "chalicelib.jobs.quotes.quote_watcher",
        "PaymentRefusals": "chalicelib.jobs.webhooks.payment_refusals",
    }
    for logical, res in functions.items():
        props = res["Properties"]
        conf = lam.get_function_configuration(FunctionName=stack["physical"][logical])
        for key in ("Handler", "Runtime", "MemorySize", "Timeout"):
            assert conf[key] == props[key], (logical, key)
        role_logical = props["Role"]["Fn::GetAtt"][0]
        assert conf["Role"] == iam.get_role(RoleName=stack["physical"][role_logical])["Role"]["Arn"]
        want = {
            k: stack["params"][v["Ref"]] if isinstance(v, dict) else v
            for k, v in props["Environment"]["Variables"].items()
        }
        assert conf["Environment"]["Variables"] == want, logical
        assert want["SI64_TREASURY"] == PARAMETERS["TreasuryAddress"]
        # the code is the artifact that was uploaded
        code = lam.get_function(FunctionName=stack["physical"][logical])["Configuration"]
        assert code["CodeSize"] > 0
        # the tables the functions are told to use are the ones this stack created
        assert props["Environment"]["Variables"]["SI64_TABLE_PREFIX"] == stack["params"]["Prefix"]
    assert functions["RefundWorker"]["Properties"]["Environment"]["Variables"]["SI64_TREASURY_KEY_PARAMETER"]
    assert "SI64_TREASURY_KEY_PARAMETER" not in functions["APIHandler"]["Properties"]["Environment"]["Variables"]


def test_the_api_may_invoke_the_api_handler_only(stack, cfn):
    perms = of_type(cfn, "AWS::Lambda::Permission")
    principals = {p["Properties"]["FunctionName"]["Ref"]: p["Properties"]["Principal"] for p in perms.values()}
    assert principals == {
        "APIHandler": "apigateway.amazonaws.com",
        "BillingSweep": "events.amazonaws.com",
        "WebhookDispatcher": "events.amazonaws.com",
        "QuoteWatcher": "events.amazonaws.com",
        "PaymentRefusals": "events.amazonaws.com",
    }
    lam = stack["client"]("lambda")
    policy = json.loads(lam.get_policy(FunctionName=stack["physical"]["APIHandler"])["Policy"])
    assert [s["Principal"]["Service"] for s in policy["Statement"]] == ["apigateway.amazonaws.com"]
    rest_api = stack["client"]("apigateway").get_rest_api(restApiId=stack["physical"]["RestAPI"])
    assert rest_api["name"] == "si64-prod-api"


# --------------------------------------------------------------------------- triggers


def test_the_sweep_schedule_targets_the_sweep_function(stack, cfn):
    """One rule per scheduled function (the sweep, the quote watcher, the webhook dispatcher every minute, the
    payment refusals every hour), each targeting its own function."""
    events, lam = stack["client"]("events"), stack["client"]("lambda")
    rules = of_type(cfn, "AWS::Events::Rule")
    assert len(rules) == 4
    targeted = set()
    for logical, res in rules.items():
        rule = events.describe_rule(Name=stack["physical"][logical])
        every = "rate(1 hour)" if logical.startswith("PaymentRefusals") else "rate(1 minute)"
        assert rule["ScheduleExpression"] == res["Properties"]["ScheduleExpression"] == every
        assert rule["State"] == "ENABLED"
        targets = events.list_targets_by_rule(Rule=rule["Name"])["Targets"]
        assert len(targets) == 1
        targeted.add(targets[0]["Arn"])
    arns = {
        lam.get_function_configuration(FunctionName=stack["physical"][f])["FunctionArn"]
        for f in ("BillingSweep", "QuoteWatcher", "WebhookDispatcher", "PaymentRefusals")
    }
    assert targeted == arns


def test_the_refund_queue_triggers_the_refund_worker_with_partial_batch_failures(stack, cfn):
    lam, sqs = stack["client"]("lambda"), stack["client"]("sqs")
    mappings = of_type(cfn, "AWS::Lambda::EventSourceMapping")
    assert len(mappings) == 2  # the refund queue's and the webhook queue's
    mappings = {k: m for k, m in mappings.items() if k.startswith("RefundWorker")}
    assert len(mappings) == 1
    ((logical, res),) = mappings.items()
    props = res["Properties"]
    got = lam.get_event_source_mapping(UUID=stack["physical"][logical])
    queue_arn = sqs.get_queue_attributes(QueueUrl=stack["physical"]["RefundQueue"], AttributeNames=["QueueArn"])
    assert got["EventSourceArn"] == queue_arn["Attributes"]["QueueArn"]
    worker = lam.get_function_configuration(FunctionName=stack["physical"]["RefundWorker"])
    assert got["FunctionArn"] == worker["FunctionArn"]
    assert got["BatchSize"] == props["BatchSize"]
    assert props["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert got.get("FunctionResponseTypes") == ["ReportBatchItemFailures"]


def test_alarm_topic_and_subscription(stack):
    sns = stack["client"]("sns")
    topic = stack["physical"]["AlarmTopic"]
    assert topic.endswith(":si64-prod-alarms")
    assert sns.get_topic_attributes(TopicArn=topic)["Attributes"]["TopicArn"] == topic
    assert sns.list_subscriptions_by_topic(TopicArn=topic)["Subscriptions"] == []  # AlarmEmail empty
