#!/usr/bin/env python3
"""Deploy the packaged stage to a LocalStack (or any AWS-compatible) endpoint.

    python infra/localstack.py [--stage prod] [--build build] [--endpoint-url URL]
                               [--stack-name NAME] [--bucket NAME] [--waf]
                               [--package-only] [--dry-run] [KEY=VALUE ...]

The same two stock commands as a real deploy (docs/deploy.md), pointed at the
endpoint the awslocal conventions name:

1. ``infra/package.py`` writes ``<build>/sam.yaml`` (skipped when it is newer than
   its inputs);
2. the artifact bucket is created when missing;
3. ``aws cloudformation package`` uploads ``deployment.zip`` and writes
   ``<build>/packaged.yaml``;
4. the admin key parameter (``/si64/<stage>/admin-key``, SecureString) is created
   with a random key when missing;
5. ``aws cloudformation deploy`` creates or updates the stack (CAPABILITY_IAM,
   CAPABILITY_AUTO_EXPAND for the SAM transform), with ``EnableWaf=false`` unless
   ``--waf`` (LocalStack Community has no WAFv2) and any ``KEY=VALUE`` overrides.

Endpoint: ``--endpoint-url``, else ``$AWS_ENDPOINT_URL``, else what
localstack-client resolves (``LOCALSTACK_HOST`` / ``EDGE_PORT``, default
``http://localhost:4566``). Dummy credentials ``test``/``test`` are used unless
real ones are set. ``--dry-run`` prints the commands without running any.
"""

from __future__ import annotations

import argparse
import os
import secrets
import shlex
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
INFRA = ROOT / "infra"
sys.path.insert(0, str(INFRA))

import package as packager  # noqa: E402 - infra/package.py, found through the path set just above


def resolve_endpoint(explicit: str | None) -> str:
    if explicit:
        return explicit
    if os.environ.get("AWS_ENDPOINT_URL"):
        return os.environ["AWS_ENDPOINT_URL"]
    from localstack_client.config import get_service_endpoint

    return get_service_endpoint("cloudformation")


def aws_env(region: str, endpoint: str) -> dict:
    """Environment of the aws CLI: every client on the endpoint.

    ``--endpoint-url`` alone is not enough: in ``aws cloudformation package`` it only
    moves the CloudFormation client, and the S3 upload still goes to AWS. The
    AWS_ENDPOINT_URL variable (botocore >= 1.31) moves every service's client.
    """
    env = dict(os.environ)
    env["AWS_ENDPOINT_URL"] = endpoint
    env.setdefault("AWS_DEFAULT_REGION", region)
    if not (env.get("AWS_ACCESS_KEY_ID") or env.get("AWS_PROFILE")):
        env["AWS_ACCESS_KEY_ID"] = "test"
        env["AWS_SECRET_ACCESS_KEY"] = "test"
    return env


def aws_cli() -> str:
    exe = Path(sys.executable).parent / "aws"
    return str(exe) if exe.exists() else "aws"


def _stale(sam: Path) -> bool:
    if not sam.exists():
        return True
    inputs = [
        ROOT / "app.py",
        ROOT / ".chalice" / "config.json",
        INFRA / "package.py",
        packager.MERGE_TEMPLATE,
        *packager.OVERLAYS,
        *(ROOT / "chalicelib").rglob("*.py"),
    ]
    newest = max(p.stat().st_mtime for p in inputs if p.exists())
    return sam.stat().st_mtime < newest


def commands(
    stage: str, build: Path, endpoint: str, stack: str, bucket: str, waf: bool, overrides: list[str]
) -> list[list[str]]:
    """The two aws CLI commands of a deploy (also what --dry-run prints)."""
    aws = aws_cli()
    params = [f"Prefix=si64-{stage}", f"StageName={stage}", f"EnableWaf={'true' if waf else 'false'}", *overrides]
    return [
        [
            aws,
            "--endpoint-url",
            endpoint,
            "cloudformation",
            "package",
            "--template-file",
            str(build / "sam.yaml"),
            "--s3-bucket",
            bucket,
            "--output-template-file",
            str(build / "packaged.yaml"),
        ],
        [
            aws,
            "--endpoint-url",
            endpoint,
            "cloudformation",
            "deploy",
            "--template-file",
            str(build / "packaged.yaml"),
            "--stack-name",
            stack,
            "--capabilities",
            "CAPABILITY_IAM",
            "CAPABILITY_AUTO_EXPAND",
            "--no-fail-on-empty-changeset",
            "--parameter-overrides",
            *params,
        ],
    ]


def _client(service: str, endpoint: str, region: str):
    import boto3

    env = aws_env(region, endpoint)
    return boto3.client(
        service,
        endpoint_url=endpoint,
        region_name=region,
        aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
    )


def ensure_bucket(endpoint: str, region: str, bucket: str) -> None:
    from botocore.exceptions import ClientError

    s3 = _client("s3", endpoint, region)
    try:
        s3.head_bucket(Bucket=bucket)
    except ClientError:
        kw = {} if region == "us-east-1" else {"CreateBucketConfiguration": {"LocationConstraint": region}}
        s3.create_bucket(Bucket=bucket, **kw)


def ensure_admin_key(endpoint: str, region: str, stage: str) -> str:
    """Create the admin key SecureString when missing; returns the parameter name."""
    from botocore.exceptions import ClientError

    name = f"/si64/{stage}/admin-key"
    ssm = _client("ssm", endpoint, region)
    try:
        ssm.get_parameter(Name=name)
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") != "ParameterNotFound":
            raise
        ssm.put_parameter(Name=name, Type="SecureString", Value=secrets.token_urlsafe(32))
        print(f"localstack: created {name} (read it with: aws ssm get-parameter --with-decryption --name {name})")
    return name


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--stage", default="prod")
    parser.add_argument("--build", default=str(ROOT / "build"))
    parser.add_argument("--endpoint-url", default=None)
    parser.add_argument("--region", default=os.environ.get("AWS_DEFAULT_REGION") or "us-east-1")
    parser.add_argument("--stack-name", default=None, help="default si64-<stage>")
    parser.add_argument("--bucket", default=None, help="artifact bucket, default si64-<stage>-artifacts")
    parser.add_argument("--waf", action="store_true", help="keep the WAF web ACL (needs WAFv2 on the endpoint)")
    parser.add_argument("--package-only", action="store_true", help="stop after `aws cloudformation package`")
    parser.add_argument("--dry-run", action="store_true", help="print the commands, run nothing")
    parser.add_argument("overrides", nargs="*", help="extra KEY=VALUE parameter overrides")
    args = parser.parse_args(argv)

    build = Path(args.build)
    endpoint = resolve_endpoint(args.endpoint_url)
    stack = args.stack_name or f"si64-{args.stage}"
    bucket = args.bucket or f"si64-{args.stage}-artifacts"
    pkg, deploy = commands(args.stage, build, endpoint, stack, bucket, args.waf, args.overrides)
    if args.dry_run:
        for cmd in (pkg, deploy):
            print(shlex.join(cmd))
        return 0

    if _stale(build / "sam.yaml"):
        packager.package(args.stage, build, args.region)
    env = aws_env(args.region, endpoint)
    ensure_bucket(endpoint, args.region, bucket)
    subprocess.run(pkg, check=True, env=env, cwd=str(ROOT))
    if args.package_only:
        print(build / "packaged.yaml")
        return 0
    ensure_admin_key(endpoint, args.region, args.stage)
    subprocess.run(deploy, check=True, env=env, cwd=str(ROOT))
    out = subprocess.run(
        [
            aws_cli(),
            "--endpoint-url",
            endpoint,
            "cloudformation",
            "describe-stacks",
            "--stack-name",
            stack,
            "--query",
            "Stacks[0].Outputs",
            "--output",
            "table",
        ],
        env=env,
        cwd=str(ROOT),
        check=False,
    )
    return out.returncode


if __name__ == "__main__":
    sys.exit(main())
