"""docs/runbook.md runs: every `runbook:run` block, in order, against the local stack with the
stock AWS CLI, each after the runbook's own local set-up block (`runbook:env`: the variables
from the stack's stack.json, `aws` pointed at the emulator) with the contract, wallet and device
of the set-up below in place of its placeholders; every `runbook:aws-only` block fails on the
emulator for the reason the runbook gives (so the day moto serves it, this test says so); the
deployed stage's set-up (`runbook:stage`) is listed, not run.

Set-up: a contract rented with a real payment and settled (so it has ledger postings and a
queued refund), its refund message parked in the dead-letter queue as if it had failed 5
times, and the four alarms of infra/observability.yaml created on the emulator (the local
stack provisions infra/resources.yaml only), one of them set to ALARM."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import boto3
import pytest

from chalicelib.domain.signing import rent_memo
from tests.e2e.client import Api, Payer, duration_seconds, price_lamports, settle_headers

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]
RUNBOOK = ROOT / "docs" / "runbook.md"
STAGE = "local"
BLOCK = re.compile(r'<!-- runbook:(run|env|aws-only|stage)(?: reason="([^"]*)")? -->\n```sh\n(.*?)```', re.S)
# what the emulator answers to each aws-only block: the reason the runbook gives, in its words
REFUSALS = {
    "filter-log-events": "ResourceNotFoundException",  # no log group: the local stack logs to files
    "start-message-move-task": "(500) when calling the StartMessageMoveTask operation",  # moto: NotImplemented
    "describe-alarm-history": "DescribeAlarmHistory operation",
    "update-function-configuration": "exit 22",  # no function to recycle; the stack keeps its key: curl -f → 22
}


def blocks(kind: str | None = None) -> list[tuple[str, str, str]]:
    found = [(k, reason or "", code) for k, reason, code in BLOCK.findall(RUNBOOK.read_text())]
    return [b for b in found if kind is None or b[0] == kind]


def test_the_runbook_has_its_blocks():
    kinds = [k for k, _, _ in blocks()]
    assert kinds.count("env") == 1 and kinds.count("run") >= 12 and kinds.count("aws-only") == 4
    assert kinds.count("stage") == 1 and kinds.index("env") == 0  # the local set-up comes first
    assert all(reason for k, reason, _ in blocks("aws-only") + blocks("stage"))
    env = blocks("env")[0][2]
    assert "STAGE=prod" not in env and "amazonaws.com" not in env and "--endpoint-url" in env
    # every fenced shell block of the runbook is marked (none escapes the test)
    assert RUNBOOK.read_text().count("```sh") == len(blocks())


@pytest.fixture(scope="module")
def world(local_stack, tmp_path_factory):
    api = Api(local_stack["api_url"], local_stack["admin_key"])
    payer = Payer(local_stack["rpc_url"])
    wallet = payer.new_wallet()
    hours = 0.05
    sig = payer.pay(
        wallet,
        local_stack["treasury"],
        price_lamports("M2", hours) + 50_000,
        memo=rent_memo("M2", duration_seconds(hours)),
    )
    r = api.post(
        "/api/rent", {"wallet": str(wallet.pubkey()), "tier": "M2", "duration_hours": hours, "tx_signature": sig}
    )
    assert r.status == 201, r
    cid = r.body["contract_id"]
    s = api.post(f"/api/contracts/{cid}/settle", data=b"", headers=settle_headers(wallet, cid))
    assert s.status == 200, s

    env = {
        **local_stack["env"],
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test",
        "AWS_DEFAULT_REGION": "us-east-1",
    }
    session = boto3.session.Session(aws_access_key_id="test", aws_secret_access_key="test", region_name="us-east-1")
    endpoint = local_stack["aws_endpoint"]
    sqs = session.client("sqs", endpoint_url=endpoint)
    prefix = local_stack["table_prefix"]
    dlq = sqs.get_queue_url(QueueName=f"{prefix}-refunds-dlq")["QueueUrl"]
    parked = {"refund_id": cid, "contract_id": cid, "version": 2}  # what chalicelib/adapters/queue.py sends
    sqs.send_message(QueueUrl=dlq, MessageBody=json.dumps(parked))
    _create_alarms(session.client("cloudwatch", endpoint_url=endpoint), prefix)

    device = r.body["device_id"]
    variables = {"C": cid, "W": str(wallet.pubkey()), "D": device}  # the set-up block's placeholders
    workdir = tmp_path_factory.mktemp("runbook")
    return {
        "vars": variables,
        "env": env,
        "endpoint": endpoint,
        "cwd": workdir,
        "sqs": sqs,
        "dlq": dlq,
        "prefix": prefix,
        "contract": cid,
        "device": device,
        "api": api,
        "local_stack": local_stack,
    }


def _create_alarms(cw, prefix: str) -> None:
    """The alarms of infra/observability.yaml with Prefix/StageName resolved (moto has no CloudFormation
    for them here; the deployed stack creates them)."""
    sys.path.insert(0, str(ROOT / "infra"))
    try:
        import package
    finally:
        sys.path.pop(0)
    overlay = package.load_cfn_yaml(ROOT / "infra" / "observability.yaml")

    def resolve(v):
        if isinstance(v, dict):
            if set(v) == {"Fn::Sub"}:
                return v["Fn::Sub"].replace("${Prefix}", prefix).replace("${StageName}", STAGE)
            if set(v) == {"Ref"}:
                return {
                    "StageName": STAGE,
                    "AlarmTopic": f"arn:aws:sns:us-east-1:123456789012:{prefix}-alarms",
                    "Api5xxRatePercent": 1,
                    "SweepLagThresholdSeconds": 180,
                }[v["Ref"]]
            if set(v) == {"Fn::GetAtt"}:
                return f"{prefix}-refunds-dlq"
            return {k: resolve(x) for k, x in v.items()}
        if isinstance(v, list):
            return [resolve(x) for x in v]
        return v

    for res in overlay["Resources"].values():
        if res["Type"] == "AWS::CloudWatch::Alarm":
            cw.put_metric_alarm(**resolve(res["Properties"]))
    cw.set_alarm_state(
        AlarmName=f"{prefix}-refunds-failed",
        StateValue="ALARM",
        StateReason="Threshold Crossed: 1 datapoint [2.0] was greater than the threshold (0.0).",
    )


def _run(world, code: str, **extra_vars) -> subprocess.CompletedProcess:
    venv_bin = str(Path(sys.executable).parent)
    aws = shutil.which("aws", path=venv_bin) or shutil.which("aws")
    assert aws, "the AWS CLI (make installs it into .venv/bin/aws)"
    prelude = "\n".join(f"{k}={json.dumps(v)}" for k, v in {**world["vars"], **extra_vars}.items())
    script = (
        f"set -euo pipefail\n{blocks('env')[0][2]}\n{prelude}\n"
        f'si64() {{ command {sys.executable} -m si64 "$@"; }}\n{code}'
    )
    env = {
        **os.environ,
        **world["env"],
        "PATH": f"{venv_bin}:{os.environ.get('PATH', '')}",
        "SI64_STATE_DIR": str(world["local_stack"]["state_dir"]),
        "PYTHONPATH": str(ROOT),
    }
    env = {k: v for k, v in env.items() if k not in ("SI64_API_URL", "SI64_ADMIN_KEY", "AWS_ENDPOINT_URL")}
    return subprocess.run(
        ["bash", "-c", script],
        cwd=world["cwd"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
        check=False,
    )


def test_every_run_block_works_on_the_local_stack(world):
    outputs = []
    for i, (_, _, code) in enumerate(blocks("run")):
        p = _run(world, code)
        assert p.returncode == 0, f"runbook block {i + 1} failed ({p.returncode}):\n{code}\n--- stderr:\n{p.stderr}"
        outputs.append(p.stdout)
    cid, prefix = world["contract"], world["prefix"]
    contract, postings, by_wallet, revenue, depths, parked, redrive, alarms, firing, stats, *_ = outputs
    got = json.loads(contract)
    assert got["contract_id"] == cid and got["status"] == "SETTLED"
    assert got["refund_status"] in ("QUEUED", "SENT", "CONFIRMED")  # the refund worker may have paid it already
    assert int(got["received_lamports"]) == int(got["used_lamports"]) + int(got["refund_lamports"])
    rows = [line.split("\t") for line in postings.splitlines()]
    assert rows and all(r[0].startswith(cid) for r in rows)
    assert sum(int(r[2]) for r in rows) == sum(int(r[3]) for r in rows)  # debits = credits
    assert by_wallet.split("\t")[:2] == [cid, "SETTLED"]
    assert any(line.startswith(cid) for line in revenue.splitlines())
    assert f"{prefix}-refunds-dlq\t1\t0" in depths
    assert json.dumps({"refund_id": cid, "contract_id": cid, "version": 2}) in parked
    assert redrive.strip() == f"moved 1 message(s) from {prefix}-refunds-dlq to {prefix}-refunds"
    assert (
        world["sqs"].get_queue_attributes(QueueUrl=world["dlq"], AttributeNames=["ApproximateNumberOfMessages"])[
            "Attributes"
        ]["ApproximateNumberOfMessages"]
        == "0"
    )
    names = sorted(line.split("\t")[0] for line in alarms.splitlines())
    assert names == sorted(
        f"{prefix}-{n}" for n in ("refund-dlq-not-empty", "refunds-failed", "api-5xx-rate", "sweep-lag")
    )
    assert firing.startswith(f"{prefix}-refunds-failed\tThreshold Crossed")
    assert stats.strip() == ""  # no SI64 datapoints on the emulator: EMF lines are not turned into metrics here
    # the device key was rotated twice (si64, then curl): the stack's stack.json holds the si64 one...
    issued = json.loads((world["cwd"] / "new-device-key.json").read_text())
    assert issued["device_id"] == world["device"] and issued["device_key"].startswith(f"dk_{world['device']}_")
    # ...and the key curl got is the one that works now
    world["local_stack"]["device_keys"][world["device"]] = issued["device_key"]
    _refresh_stack_keys(world, issued)
    # the admin key parameter was put and read back on the emulator's SSM
    assert outputs[-1].split() == ["1", "1"]


def _refresh_stack_keys(world, issued) -> None:
    """Keep the session's stack.json in step for the tests that run after this one."""
    path = Path(world["local_stack"]["state_dir"]) / "stack.json"
    stack = json.loads(path.read_text())
    stack["device_keys"][issued["device_id"]] = issued["device_key"]
    path.write_text(json.dumps(stack, indent=2))


def test_aws_only_blocks_are_refused_by_the_emulator_for_the_stated_reason(world):
    for _, reason, code in blocks("aws-only"):
        p = _run(world, code, NEW_ADMIN_KEY="a-key-the-stack-does-not-have")  # set by the block before it
        assert p.returncode != 0, f"the emulator now serves this block — make it a runbook:run block:\n{code}"
        marker = next(v for k, v in REFUSALS.items() if k in code)
        said = p.stderr + p.stdout + f" exit {p.returncode}"
        assert marker in said, f"{reason}\n{code}\n--- stderr:\n{p.stderr}"
