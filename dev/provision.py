"""Create the resources of infra/resources.yaml on any AWS endpoint.

The template is the one source of truth: it is deployed as a CloudFormation
stack named after the prefix (``si64-<stage>``), on the local emulator, on
LocalStack, or on AWS. Afterwards every table/queue is checked against the
template and two things emulators get wrong are repaired:

* moto ignores ``TimeToLiveSpecification`` in CloudFormation -> we call
  ``UpdateTimeToLive`` for every table whose template asks for it;
* a missing GSI or RedrivePolicy is reported as an error (never silently).

Idempotent: when the stack already exists (CREATE/UPDATE_COMPLETE) nothing is
created again; the checks and TTL repair still run and are no-ops.

CLI::

    python -m dev.provision --endpoint-url http://127.0.0.1:4566 --prefix si64-local

(``--endpoint-url`` defaults to $AWS_ENDPOINT_URL; ``--prefix`` to
$SI64_TABLE_PREFIX or si64-$SI64_STAGE or si64-local.) Prints JSON with the
queue URLs.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE = ROOT / "infra" / "resources.yaml"
DEFAULT_REGION = "us-east-1"


class ProvisionError(RuntimeError):
    pass


@dataclass
class Provisioned:
    prefix: str
    stack_name: str
    queue_url: str
    dlq_url: str
    tables: dict = field(default_factory=dict)  # logical id -> table name
    created: bool = False  # False when the stack already existed

    def as_dict(self) -> dict:
        return asdict(self)


# --------------------------------------------------------------------------
# template reading (CloudFormation short-form tags)


class _Tag:
    def __init__(self, tag: str, value):
        self.tag, self.value = tag, value

    def __repr__(self) -> str:  # pragma: no cover - debugging aid
        return f"!{self.tag} {self.value!r}"


def load_template(path: Path | str = TEMPLATE) -> dict:
    """Parse a CFN YAML template, keeping short-form tags as ``_Tag`` objects."""
    import yaml

    class Loader(yaml.SafeLoader):
        pass

    def construct(loader, suffix, node):
        if isinstance(node, yaml.ScalarNode):
            value = loader.construct_scalar(node)
        elif isinstance(node, yaml.SequenceNode):
            value = loader.construct_sequence(node, deep=True)
        else:
            value = loader.construct_mapping(node, deep=True)
        return _Tag(suffix, value)

    Loader.add_multi_constructor("!", construct)
    with open(path) as fh:
        return yaml.load(fh, Loader=Loader)


def _resolve_name(value, prefix: str) -> str:
    """Resolve ``!Sub "${Prefix}-x"`` / ``{"Fn::Sub": ...}`` / plain string."""
    if isinstance(value, _Tag):
        assert value.tag == "Sub", value
        value = value.value
    elif isinstance(value, dict) and "Fn::Sub" in value:
        value = value["Fn::Sub"]
    if not isinstance(value, str):
        raise ProvisionError(f"unsupported name expression {value!r}")
    return value.replace("${Prefix}", prefix)


def expected_resources(prefix: str, template: dict | None = None) -> dict:
    """{'tables': {logical: props+name}, 'queues': {logical: props+name}}."""
    template = template or load_template()
    tables, queues = {}, {}
    for logical, res in template["Resources"].items():
        props = res.get("Properties", {})
        if res["Type"] == "AWS::DynamoDB::Table":
            tables[logical] = dict(props, TableName=_resolve_name(props["TableName"], prefix))
        elif res["Type"] == "AWS::SQS::Queue":
            queues[logical] = dict(props, QueueName=_resolve_name(props["QueueName"], prefix))
    return {"tables": tables, "queues": queues}


# --------------------------------------------------------------------------
# clients


def client_kwargs(endpoint_url: str | None, region: str | None = None) -> dict:
    kw = {"region_name": region or os.environ.get("AWS_DEFAULT_REGION") or DEFAULT_REGION}
    if endpoint_url:
        kw["endpoint_url"] = endpoint_url
        # Dummy credentials are fine for an emulator; never override real ones.
        if not (os.environ.get("AWS_ACCESS_KEY_ID") or os.environ.get("AWS_PROFILE")):
            kw["aws_access_key_id"] = "test"
            kw["aws_secret_access_key"] = "test"
    return kw


def _clients(endpoint_url, region):
    import boto3

    kw = client_kwargs(endpoint_url, region)
    return boto3.client("cloudformation", **kw), boto3.client("dynamodb", **kw), boto3.client("sqs", **kw)


# --------------------------------------------------------------------------
# provisioning

_DONE = {"CREATE_COMPLETE", "UPDATE_COMPLETE", "UPDATE_ROLLBACK_COMPLETE"}
_FAILED = {"CREATE_FAILED", "ROLLBACK_COMPLETE", "ROLLBACK_FAILED", "DELETE_FAILED", "ROLLBACK_IN_PROGRESS"}


def _stack_status(cfn, name: str) -> str | None:
    from botocore.exceptions import ClientError

    try:
        stacks = cfn.describe_stacks(StackName=name)["Stacks"]
    except ClientError as exc:
        if "does not exist" in str(exc):
            return None
        raise
    return stacks[0]["StackStatus"] if stacks else None


def _wait_stack(cfn, name: str, timeout: float = 300.0) -> str:
    deadline = time.monotonic() + timeout
    while True:
        status = _stack_status(cfn, name)
        if status in _DONE:
            return status
        if status is None or status in _FAILED or status.endswith("_FAILED"):
            events = []
            try:
                for ev in cfn.describe_stack_events(StackName=name)["StackEvents"][:10]:
                    if "FAILED" in ev.get("ResourceStatus", ""):
                        events.append(f"{ev['LogicalResourceId']}: {ev.get('ResourceStatusReason')}")
            except Exception:  # noqa: BLE001 - best effort diagnostics
                pass
            raise ProvisionError(f"stack {name} is {status}: {'; '.join(events) or 'no details'}")
        if time.monotonic() > deadline:
            raise ProvisionError(f"stack {name} still {status} after {timeout:.0f}s")
        time.sleep(1.0)


def provision(
    prefix: str = "si64-local",
    endpoint_url: str | None = None,
    region: str | None = None,
    template_path: Path | str = TEMPLATE,
    stack_name: str | None = None,
    dynamodb_endpoint_url: str | None = None,
) -> Provisioned:
    """Create (or find) the stack for ``prefix`` and verify what it made.

    With ``dynamodb_endpoint_url`` (DynamoDB Local: it has no CloudFormation) the template's tables
    are created there through the DynamoDB API, and the stack deployed on ``endpoint_url`` holds
    every other resource (the queues)."""
    cfn, ddb, sqs = _clients(endpoint_url, region)
    stack_name = stack_name or prefix
    body = Path(template_path).read_text()
    template = load_template(template_path)
    if dynamodb_endpoint_url:
        import boto3

        ddb = boto3.client("dynamodb", **client_kwargs(dynamodb_endpoint_url, region))
        create_tables(ddb, expected_resources(prefix, template)["tables"])
        body = json.dumps(_without_tables(template))

    created = False
    status = _stack_status(cfn, stack_name)
    if status in _FAILED:
        # A failed first attempt leaves a stack that can only be deleted.
        cfn.delete_stack(StackName=stack_name)
        for _ in range(120):
            if _stack_status(cfn, stack_name) in (None, "DELETE_COMPLETE"):
                break
            time.sleep(1.0)
        status = None
    if status is None or status == "DELETE_COMPLETE":
        cfn.create_stack(
            StackName=stack_name,
            TemplateBody=body,
            Parameters=[{"ParameterKey": "Prefix", "ParameterValue": prefix}],
        )
        created = True
    _wait_stack(cfn, stack_name)

    expected = expected_resources(prefix, template)
    _check_tables(ddb, expected["tables"])
    queue_urls = _check_queues(sqs, expected["queues"])

    outputs = {
        o["OutputKey"]: o["OutputValue"]
        for o in cfn.describe_stacks(StackName=stack_name)["Stacks"][0].get("Outputs", [])
    }
    queue_url = queue_urls.get("RefundQueue") or outputs.get("RefundQueueUrl")
    dlq_url = queue_urls.get("RefundDeadLetterQueue") or outputs.get("RefundDeadLetterQueueUrl")
    return Provisioned(
        prefix=prefix,
        stack_name=stack_name,
        queue_url=queue_url,
        dlq_url=dlq_url,
        tables={k: v["TableName"] for k, v in expected["tables"].items()},
        created=created,
    )


_TABLE_API_KEYS = (
    "AttributeDefinitions",
    "KeySchema",
    "GlobalSecondaryIndexes",
    "LocalSecondaryIndexes",
    "BillingMode",
)


def create_tables(ddb, tables: dict) -> None:
    """Create the template's tables through the DynamoDB API (idempotent); TTL follows in _check_tables."""
    existing = set(ddb.list_tables()["TableNames"])
    for props in tables.values():
        if props["TableName"] in existing:
            continue
        ddb.create_table(TableName=props["TableName"], **{k: props[k] for k in _TABLE_API_KEYS if k in props})
    for props in tables.values():
        ddb.get_waiter("table_exists").wait(TableName=props["TableName"], WaiterConfig={"Delay": 0.2})


def _intrinsic(value):
    """Short-form tags (``!Sub``, ``!Ref``, ``!GetAtt``) as the long JSON form CloudFormation reads."""
    if isinstance(value, _Tag):
        if value.tag == "Ref":
            return {"Ref": value.value}
        if value.tag == "GetAtt" and isinstance(value.value, str):
            return {"Fn::GetAtt": value.value.split(".", 1)}
        return {f"Fn::{value.tag}": _intrinsic(value.value)}
    if isinstance(value, dict):
        return {k: _intrinsic(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_intrinsic(v) for v in value]
    return value


def _without_tables(template: dict) -> dict:
    body = _intrinsic(template)
    body["Resources"] = {k: v for k, v in body["Resources"].items() if v["Type"] != "AWS::DynamoDB::Table"}
    return body


def _check_tables(ddb, tables: dict) -> None:
    for props in tables.values():
        name = props["TableName"]
        desc = ddb.describe_table(TableName=name)["Table"]
        want = {g["IndexName"] for g in props.get("GlobalSecondaryIndexes", [])}
        have = {g["IndexName"] for g in desc.get("GlobalSecondaryIndexes", [])}
        if want - have:
            raise ProvisionError(f"table {name}: missing GSIs {sorted(want - have)}")
        ttl = props.get("TimeToLiveSpecification")
        if ttl and ttl.get("Enabled"):
            cur = ddb.describe_time_to_live(TableName=name)["TimeToLiveDescription"]
            if (
                cur.get("TimeToLiveStatus") not in ("ENABLED", "ENABLING")
                or cur.get("AttributeName") != ttl["AttributeName"]
            ):
                ddb.update_time_to_live(
                    TableName=name,
                    TimeToLiveSpecification={"AttributeName": ttl["AttributeName"], "Enabled": True},
                )


def _check_queues(sqs, queues: dict) -> dict:
    urls = {}
    for logical, props in queues.items():
        url = sqs.get_queue_url(QueueName=props["QueueName"])["QueueUrl"]
        urls[logical] = url
        redrive = props.get("RedrivePolicy")
        if redrive:
            attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["RedrivePolicy"])["Attributes"]
            policy = json.loads(attrs.get("RedrivePolicy") or "{}")
            if int(policy.get("maxReceiveCount", 0)) != int(redrive["maxReceiveCount"]):
                raise ProvisionError(f"queue {props['QueueName']}: wrong RedrivePolicy {policy}")
    return urls


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m dev.provision", description=__doc__.split("\n")[0])
    stage = os.environ.get("SI64_STAGE", "local")
    parser.add_argument("--endpoint-url", default=os.environ.get("AWS_ENDPOINT_URL"))
    parser.add_argument("--prefix", default=os.environ.get("SI64_TABLE_PREFIX") or f"si64-{stage}")
    parser.add_argument("--region", default=None)
    parser.add_argument("--template", default=str(TEMPLATE))
    parser.add_argument(
        "--localstack",
        action="store_true",
        help="use the LocalStack edge endpoint that localstack-client resolves (LOCALSTACK_HOST / EDGE_PORT honoured)",
    )
    args = parser.parse_args(argv)
    if args.localstack and not args.endpoint_url:
        from localstack_client.config import get_service_endpoint

        args.endpoint_url = get_service_endpoint("cloudformation")
    try:
        result = provision(args.prefix, args.endpoint_url, args.region, args.template)
    except ProvisionError as exc:
        print(f"provision failed: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(result.as_dict(), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
