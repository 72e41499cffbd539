"""infra/localstack.py: the `make localstack` deploy path.

LocalStack cannot run on these machines. What is exercised here: the commands it
runs, and its package step (`aws cloudformation package`: artifact bucket created,
deployment.zip uploaded, CodeUri rewritten) against the local moto emulator. The
`aws cloudformation deploy` step is not: moto does not run the SAM transform.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import yaml

from tests.infra.conftest import ROOT

SCRIPT = ROOT / "infra" / "localstack.py"


def _run(args, env_extra=None):
    env = dict(os.environ, AWS_ACCESS_KEY_ID="test", AWS_SECRET_ACCESS_KEY="test", AWS_DEFAULT_REGION="us-east-1")
    env.pop("AWS_PROFILE", None)
    env.update(env_extra or {})
    return subprocess.run(
        [sys.executable, str(SCRIPT), *args],
        capture_output=True,
        text=True,
        check=False,
        env=env,
        cwd=str(ROOT),
        timeout=240,
    )


def test_dry_run_names_the_stock_commands(tmp_path):
    proc = _run(
        ["--dry-run", "--build", str(tmp_path), "ApiThrottleRateLimit=50"],
        {"AWS_ENDPOINT_URL": "http://127.0.0.1:4599"},
    )
    assert proc.returncode == 0, proc.stderr
    package_cmd, deploy_cmd = proc.stdout.strip().splitlines()
    assert "--endpoint-url http://127.0.0.1:4599 cloudformation package" in package_cmd
    assert f"--template-file {tmp_path}/sam.yaml --s3-bucket si64-prod-artifacts" in package_cmd
    assert "cloudformation deploy" in deploy_cmd and "--stack-name si64-prod" in deploy_cmd
    assert "--capabilities CAPABILITY_IAM CAPABILITY_AUTO_EXPAND" in deploy_cmd
    assert deploy_cmd.endswith(
        "--parameter-overrides Prefix=si64-prod StageName=prod EnableWaf=false ApiThrottleRateLimit=50"
    )


def test_package_step_uploads_the_code_to_the_endpoint(aws_emulator, packaged, tmp_path):
    sam, _ = packaged
    build = tmp_path / "build"
    build.mkdir()
    shutil.copy(sam.parent / "deployment.zip", build / "deployment.zip")
    shutil.copy(sam, build / "sam.yaml")  # newer than its inputs: not packaged again
    bucket = "si64-test-artifacts"
    proc = _run(["--endpoint-url", aws_emulator.endpoint, "--build", str(build), "--bucket", bucket, "--package-only"])
    assert proc.returncode == 0, proc.stdout + proc.stderr
    packaged_tpl = yaml.safe_load((build / "packaged.yaml").read_text())
    uri = packaged_tpl["Resources"]["APIHandler"]["Properties"]["CodeUri"]
    assert uri.startswith(f"s3://{bucket}/")
    s3 = aws_emulator.client("s3")
    obj = s3.head_object(Bucket=bucket, Key=uri.split("/", 3)[3])
    assert obj["ContentLength"] == (build / "deployment.zip").stat().st_size
    # everything else of the stage travels unchanged
    assert packaged_tpl["Resources"]["ApiWebAcl"]["Type"] == "AWS::WAFv2::WebACL"
    assert set(packaged_tpl["Resources"]) == set(yaml.safe_load(sam.read_text())["Resources"])
