#!/usr/bin/env python3
"""Package a stage: ``chalice package`` merged with infra/resources.yaml, then fixed up.

    python infra/package.py [--stage prod] [--out build]

1. runs ``chalice package --stage <stage> --merge-template infra/resources.yaml <out>``
   (with AWS_DEFAULT_REGION set, which chalice package needs);
2. merges the overlays infra/observability.yaml (alarms, alarm topic, dashboard)
   and infra/edge.yaml (stage throttle, gateway responses, WAF) into ``<out>/sam.yaml``.
   They are kept out of infra/resources.yaml because dev/provision.py creates
   that file as a stack on the local emulator, and because they refer to what only
   chalice writes (``RestAPI``, the functions). Parameters, Conditions, Resources
   and Outputs are added; a name already present is an error, except a resource
   entry without ``Type`` (or with the same Type), whose Properties are deep-merged
   into the existing resource (that is how edge.yaml configures chalice's RestAPI);
3. post-processes ``<out>/sam.yaml`` for what neither can express:
   * every SQS event source gets ``FunctionResponseTypes: [ReportBatchItemFailures]``
     (chalice passes the handler's ``batchItemFailures`` through but never enables it);
   * an SQS event source naming a queue of this template refers to it with
     ``!GetAtt <Queue>.Arn`` so CloudFormation creates the queue first;
   * ``Parameters.Prefix.Default`` is ``si64-<stage>`` and ``Parameters.StageName.Default``
     is ``<stage>`` (the Stage dimension of the SI64 metrics);
   * the dashboard gets one widget with invocations, errors, throttles and p99 duration
     of every function chalice packaged (API handler, sweep, refund worker, ...);
   * Lambda-reserved variables (e.g. AWS_DEFAULT_REGION, set by Lambda itself and
     refused in a function's Environment) are dropped with a warning;
   * every function gets ``SI64_TREASURY`` from the ``TreasuryAddress`` parameter (the
     treasury's public key: payments are checked against it, refunds are paid from it)
     unless the stage's configuration sets it.

The result is what ``make test`` lints with cfn-lint and what a deploy uses
(``aws cloudformation package/deploy --template-file build/sam.yaml``).
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
MERGE_TEMPLATE = ROOT / "infra" / "resources.yaml"
OVERLAYS = (ROOT / "infra" / "observability.yaml", ROOT / "infra" / "edge.yaml")
MERGED_SECTIONS = ("Parameters", "Conditions", "Mappings", "Resources", "Outputs")
DASHBOARD = "OperationsDashboard"
LAMBDA_RESERVED = {
    "_HANDLER",
    "_X_AMZN_TRACE_ID",
    "AWS_DEFAULT_REGION",
    "AWS_REGION",
    "AWS_EXECUTION_ENV",
    "AWS_LAMBDA_FUNCTION_NAME",
    "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
    "AWS_LAMBDA_FUNCTION_VERSION",
    "AWS_LAMBDA_INITIALIZATION_TYPE",
    "AWS_LAMBDA_LOG_GROUP_NAME",
    "AWS_LAMBDA_LOG_STREAM_NAME",
    "AWS_ACCESS_KEY",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_LAMBDA_RUNTIME_API",
    "LAMBDA_TASK_ROOT",
    "LAMBDA_RUNTIME_DIR",
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


def load_cfn_yaml(path: Path | str) -> dict:
    """Parse a CloudFormation YAML file, turning short-form tags into long form.

    ``!Ref X`` -> ``{"Ref": X}``, ``!GetAtt A.B`` -> ``{"Fn::GetAtt": [A, B]}``,
    ``!Sub``/``!If``/``!Not``/... -> ``{"Fn::<Tag>": value}`` (what chalice writes too).
    """

    class Loader(yaml.SafeLoader):
        pass

    def construct(loader, suffix, node):
        if isinstance(node, yaml.ScalarNode):
            value = loader.construct_scalar(node)
        elif isinstance(node, yaml.SequenceNode):
            value = loader.construct_sequence(node, deep=True)
        else:
            value = loader.construct_mapping(node, deep=True)
        if suffix == "Ref":
            return {"Ref": value}
        if suffix == "GetAtt" and isinstance(value, str):
            value = value.split(".", 1)
        if suffix == "Condition":
            return {"Condition": value}
        return {f"Fn::{suffix}": value}

    Loader.add_multi_constructor("!", construct)
    with open(path) as fh:
        return yaml.load(fh, Loader=Loader)


def _deep_merge(base: dict, extra: dict, where: str) -> None:
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict) and not _is_intrinsic(value):
            _deep_merge(base[key], value, f"{where}.{key}")
        else:
            base[key] = copy.deepcopy(value)


def _is_intrinsic(value) -> bool:
    return (
        isinstance(value, dict)
        and len(value) == 1
        and next(iter(value)) in ("Ref", "Condition")
        or (isinstance(value, dict) and len(value) == 1 and next(iter(value)).startswith("Fn::"))
    )


def merge_overlay(template: dict, overlay: dict, name: str = "overlay") -> dict:
    """Add an overlay's sections to a packaged template (see the module docstring)."""
    for section in MERGED_SECTIONS:
        entries = overlay.get(section) or {}
        if not entries:
            continue
        target = template.setdefault(section, {})
        for key, value in entries.items():
            if key not in target:
                if section == "Resources" and "Type" not in value:
                    raise ValueError(f"{name}: {section}.{key} overlays a resource the template does not have")
                target[key] = copy.deepcopy(value)
                continue
            if section != "Resources":
                if target[key] == value:
                    continue
                raise ValueError(f"{name}: {section}.{key} is already defined differently")
            if value.get("Type", target[key].get("Type")) != target[key].get("Type"):
                raise ValueError(f"{name}: Resources.{key} is a {target[key].get('Type')}, not {value['Type']}")
            extra = {k: v for k, v in value.items() if k != "Type"}
            _deep_merge(target[key], extra, f"{name}: Resources.{key}")
    return template


def add_function_widget(template: dict) -> None:
    """Append (or refresh) the dashboard widget with every packaged function's figures."""
    resources = template.get("Resources", {})
    dashboard = resources.get(DASHBOARD)
    if not dashboard:
        return
    body = dashboard["Properties"]["DashboardBody"]
    sub = body.get("Fn::Sub") if isinstance(body, dict) else None
    if isinstance(sub, str):
        text, variables = sub, {}
    elif isinstance(sub, list) and len(sub) == 2:
        text, variables = sub[0], dict(sub[1])
    else:
        raise ValueError(f"{DASHBOARD}: DashboardBody must be a Fn::Sub of a JSON string")
    doc = json.loads(text)
    functions = sorted(
        k for k, r in resources.items() if r.get("Type") in ("AWS::Serverless::Function", "AWS::Lambda::Function")
    )
    metrics = []
    for logical in functions:
        var = f"FunctionName{logical}"
        variables[var] = {"Ref": logical}
        for metric, stat in (("Invocations", "Sum"), ("Errors", "Sum"), ("Throttles", "Sum")):
            metrics.append(
                [
                    "AWS/Lambda",
                    metric,
                    "FunctionName",
                    f"${{{var}}}",
                    {"stat": stat, "label": f"{logical} {metric.lower()}"},
                ]
            )
        metrics.append(
            [
                "AWS/Lambda",
                "Duration",
                "FunctionName",
                f"${{{var}}}",
                {"stat": "p99", "label": f"{logical} p99 ms", "yAxis": "right"},
            ]
        )
    widgets = [w for w in doc["widgets"] if w.get("properties", {}).get("title") != "Lambda functions"]
    if metrics:
        bottom = max((w.get("y", 0) + w.get("height", 6) for w in widgets), default=0)
        last_row = [w for w in widgets if w.get("y", 0) + w.get("height", 6) == bottom]
        free_right = last_row and max(w.get("x", 0) + w.get("width", 6) for w in last_row) <= 12
        x, y = (12, bottom - 6) if free_right else (0, bottom)
        widgets.append(
            {
                "type": "metric",
                "x": x,
                "y": y,
                "width": 12,
                "height": 6,
                "properties": {
                    "title": "Lambda functions",
                    "region": "${AWS::Region}",
                    "view": "timeSeries",
                    "period": 60,
                    "metrics": metrics,
                },
            }
        )
    doc["widgets"] = widgets
    text = json.dumps(doc, indent=1)
    dashboard["Properties"]["DashboardBody"] = {"Fn::Sub": [text, variables] if variables else text}


TREASURY_PARAMETER = {
    "Type": "String",
    "Default": "",
    "AllowedPattern": "^$|^[1-9A-HJ-NP-Za-km-z]{32,44}$",
    "Description": "Treasury public key (base58); empty answers 503 configuration on every payment",
}


def fix_template(template: dict, stage: str) -> dict:
    prefix = f"si64-{stage}"
    params = template.setdefault("Parameters", {})
    params.setdefault("TreasuryAddress", dict(TREASURY_PARAMETER))
    if "Prefix" in params:
        params["Prefix"]["Default"] = prefix
    if "StageName" in params:
        params["StageName"]["Default"] = stage
    add_function_widget(template)
    queues = _queue_names(template, prefix)

    for logical, res in template.get("Resources", {}).items():
        props = res.get("Properties", {})
        if res.get("Type") == "AWS::Serverless::Function":
            variables = (props.get("Environment") or {}).get("Variables") or {}
            for name in sorted(set(variables) & LAMBDA_RESERVED):
                warn(
                    f"{logical}: dropped Lambda-reserved environment variable {name} "
                    "(Lambda sets it; move it to the local stage in .chalice/config.json)"
                )
                del variables[name]
            if "Environment" in props:
                variables.setdefault("SI64_TREASURY", {"Ref": "TreasuryAddress"})
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
    cmd = [
        str(exe) if exe.exists() else "chalice",
        "package",
        "--stage",
        stage,
        "--merge-template",
        str(MERGE_TEMPLATE),
        str(out),
    ]
    subprocess.run(cmd, cwd=str(ROOT), env=env, check=True)
    sam = out / "sam.yaml"
    template = yaml.safe_load(sam.read_text())
    for overlay in OVERLAYS:
        merge_overlay(template, load_cfn_yaml(overlay), overlay.name)
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
