"""What CloudFormation's SAM transform makes of the packaged stage.

aws-sam-translator is pinned in requirements-dev.txt (never shipped). It checks
what cfn-lint cannot: that the stage throttle lands on the generated
AWS::ApiGateway::Stage, that the gateway responses travel inside the deployed API
definition, and that the WAF association names the generated stage.
"""

from __future__ import annotations

import os

import pytest


class _NoManagedPolicies:
    def load(self):
        return {}


@pytest.fixture(scope="module")
def transformed(template):
    import copy

    from samtranslator.translator.transform import transform

    t = copy.deepcopy(template)
    for res in t["Resources"].values():
        if res["Type"] == "AWS::Serverless::Function":
            res["Properties"]["CodeUri"] = "s3://bucket/deployment.zip"
    old = os.environ.get("AWS_DEFAULT_REGION")
    os.environ["AWS_DEFAULT_REGION"] = "us-east-1"
    try:
        return transform(t, {"AWS::Region": "us-east-1"}, _NoManagedPolicies())["Resources"]
    finally:
        if old is None:
            os.environ.pop("AWS_DEFAULT_REGION")


def test_stage_throttle_and_name_after_transform(transformed):
    stages = {k: r for k, r in transformed.items() if r["Type"] == "AWS::ApiGateway::Stage"}
    assert list(stages) == ["RestAPIapiStage"]
    props = stages["RestAPIapiStage"]["Properties"]
    assert props["StageName"] == "api"
    assert props["MethodSettings"][0]["ThrottlingRateLimit"] == {"Ref": "ApiThrottleRateLimit"}
    api = transformed["RestAPI"]["Properties"]
    assert api["Name"] == {"Fn::Sub": "${Prefix}-api"}
    assert api["Body"]["info"]["title"] == {"Fn::Sub": "${Prefix}-api"}


def test_gateway_responses_are_part_of_the_deployed_definition(transformed):
    responses = transformed["RestAPI"]["Properties"]["Body"]["x-amazon-apigateway-gateway-responses"]
    assert responses["MISSING_AUTHENTICATION_TOKEN"]["statusCode"] == "404"
    assert responses["THROTTLED"]["responseParameters"] == {"gatewayresponse.header.Retry-After": "'1'"}
    assert {"DEFAULT_4XX", "DEFAULT_5XX", "REQUEST_TOO_LARGE", "WAF_FILTERED"} <= set(responses)


def test_waf_association_refers_to_the_generated_stage(transformed):
    arn = transformed["ApiWebAclAssociation"]["Properties"]["ResourceArn"]["Fn::Sub"]
    assert arn == "arn:${AWS::Partition}:apigateway:${AWS::Region}::/restapis/${RestAPI}/stages/${RestAPIapiStage}"
