#!/usr/bin/env python3
"""Package a stage: ``chalice package`` merged with infra/resources.yaml, then fixed up.

    python infra/package.py [--stage prod] [--out build]

1. runs ``chalice package --stage <stage> --merge-template infra/resources.yaml <out>``
   (with AWS_DEFAULT_REGION set, which chalice package needs);
2. post-processes ``<out>/sam.yaml`` for what chalice cannot express:
   * every SQS event source gets ``FunctionResponseTypes: [ReportBatchItemFailures]``
     (chalice passes the handler's ``batchItemFailures`` through but never enables it);
   * an SQS event source naming a queue of this template refers to it with
     ``!GetAtt <Queue>.Arn`` so CloudFormation creates the queue first;
   * ``Parameters.Prefix.Default`` is ``si64-<stage>``;
   * Lambda-reserved variables (e.g. AWS_DEFAULT_REGION, set by Lambda itself and
     refused in a function's Environment) are dropped with a warning.

The result is what ``make test`` lints with cfn-lint and what a deploy uses
(``aws cloudformation package/deploy --template-file build/sam.yaml``).
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
MERGE_TEMPLATE = ROOT / "infra" / "resources.yaml"
LAMBDA_RESERVED = {
    "_HANDLER", "_X_AMZN_TRACE_ID", "AWS_DEFAULT_REGION", "AWS_REGION", "AWS_EXECUTION_ENV",
    "AWS_LAMBDA_FUNCTION_NAME", "AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "AWS_LAMBDA_FUNCTION_VERSION",
    "AWS_LAMBDA_INITIALIZATION_TYPE", "AWS_LAMBDA_LOG_GROUP_NAME", "AWS_LAMBDA_LOG_STREAM_NAME",
    "AWS_ACCESS_KEY", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN",
    "AWS_LAMBDA_RUNTIME_API", "LAMBDA_TASK_ROOT", "LAMBDA_RUNTIME_DIR",
}


def warn(msg: str) -> None:
    print(f"package: warning: {msg}", file=sys.stderr)


def _queue_names(template: dict, prefix: str) -> dict:
    """queue name -> logical id, for the SQS queues of the template."""
    out = {}
    for logical, res in template.get("Resources", {}).items():
        if res.get("Type") != "AWS::SQS::Queue":
            continue
        name = res.get("Properties", {}).get("QueueName")
        if isinstance(name, dict) and "Fn::Sub" in name and isinstance(name["Fn::Sub"], str):
            name = name["Fn::Sub"].replace("${Prefix}", prefix)
        if isinstance(name, str):
            out[name] = logical
    return out


def _queue_name_of(ref) -> str | None:
    """Last ':' part of an ARN string or of a Fn::Sub ARN; else None."""
    if isinstance(ref, dict) and "Fn::Sub" in ref and isinstance(ref["Fn::Sub"], str):
        ref = ref["Fn::Sub"]
    if isinstance(ref, str) and ref.startswith("arn:"):
        return ref.rsplit(":", 1)[-1]
    return None


def fix_template(template: dict, stage: str) -> dict:
    prefix = f"si64-{stage}"
    params = template.setdefault("Parameters", {})
    if "Prefix" in params:
        params["Prefix"]["Default"] = prefix
    queues = _queue_names(template, prefix)

    for logical, res in template.get("Resources", {}).items():
        props = res.get("Properties", {})
        if res.get("Type") == "AWS::Serverless::Function":
            variables = (props.get("Environment") or {}).get("Variables") or {}
            for name in sorted(set(variables) & LAMBDA_RESERVED):
                warn(f"{logical}: dropped Lambda-reserved environment variable {name} "
                     "(Lambda sets it; move it to the local stage in .chalice/config.json)")
                del variables[name]
            for event in (props.get("Events") or {}).values():
                if event.get("Type") != "SQS":
                    continue
                eprops = event.setdefault("Properties", {})
                _patch_sqs_mapping(eprops, "Queue", queues)
        elif res.get("Type") == "AWS::Lambda::EventSourceMapping":
            name = _queue_name_of(props.get("EventSourceArn"))
            if name is not None or _is_sqs_getatt(props.get("EventSourceArn"), template):
                _patch_sqs_mapping(props, "EventSourceArn", queues)
    return template


def _is_sqs_getatt(ref, template) -> bool:
    if isinstance(ref, dict) and "Fn::GetAtt" in ref:
        target = ref["Fn::GetAtt"][0] if isinstance(ref["Fn::GetAtt"], list) else ref["Fn::GetAtt"].split(".")[0]
        return template.get("Resources", {}).get(target, {}).get("Type") == "AWS::SQS::Queue"
    return False


def _patch_sqs_mapping(props: dict, key: str, queues: dict) -> None:
    types = props.setdefault("FunctionResponseTypes", [])
    if "ReportBatchItemFailures" not in types:
        types.append("ReportBatchItemFailures")
    name = _queue_name_of(props.get(key))
    if name in queues:
        props[key] = {"Fn::GetAtt": [queues[name], "Arn"]}


def package(stage: str, out: Path, region: str | None = None) -> Path:
    out = Path(out)
    env = dict(os.environ)
    env["AWS_DEFAULT_REGION"] = region or env.get("AWS_DEFAULT_REGION") or "us-east-1"
    exe = Path(sys.executable).parent / "chalice"
    cmd = [str(exe) if exe.exists() else "chalice", "package", "--stage", stage,
           "--merge-template", str(MERGE_TEMPLATE), str(out)]
    subprocess.run(cmd, cwd=str(ROOT), env=env, check=True)
    sam = out / "sam.yaml"
    template = yaml.safe_load(sam.read_text())
    fix_template(template, stage)
    sam.write_text(yaml.safe_dump(template, sort_keys=False, default_flow_style=False))
    return sam


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--stage", default="prod")
    parser.add_argument("--out", default=str(ROOT / "build"))
    parser.add_argument("--region", default=None)
    args = parser.parse_args(argv)
    sam = package(args.stage, Path(args.out), args.region)
    print(sam)
    return 0


if __name__ == "__main__":
    sys.exit(main())
