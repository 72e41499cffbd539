"""`make run`'s stack: it comes up complete, the stock AWS CLI sees it, SIGTERM leaves nothing."""

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tests.fixtures.stack import free_port, port_free, start_stack

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]
AWS_CLI = str(Path(sys.executable).parent / "aws")
TABLES = ["contracts", "devices", "ledger", "claims", "metrics"]
KEYS = {
    "api_url",
    "aws_endpoint",
    "rpc_url",
    "ws_url",
    "treasury",
    "admin_key",
    "device_keys",
    "refund_queue_url",
    "refund_dlq_url",
    "table_prefix",
}


def aws(stack, *args):
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(AWS_ACCESS_KEY_ID="test", AWS_SECRET_ACCESS_KEY="test", AWS_DEFAULT_REGION="us-east-1")
    out = subprocess.run(
        [AWS_CLI, "--endpoint-url", stack.aws_endpoint, "--output", "json", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout or "null")


def http_json(url, headers=None):
    import urllib.request

    req = urllib.request.Request(url, headers=headers or {})
    with urllib.request.urlopen(req, timeout=10) as resp:
        return resp.status, json.loads(resp.read())


def test_stack_json_is_complete(local_stack):
    data = json.loads((Path(local_stack.state_dir) / "stack.json").read_text())
    assert set(data) >= KEYS
    assert data["api_url"].startswith("http://127.0.0.1:") and data["rpc_url"].startswith("http://127.0.0.1:")
    assert data["ws_url"] == f"ws://127.0.0.1:{local_stack.ports['SI64_RPC_PORT'] + 1}"
    assert data["table_prefix"] == "si64-local"
    assert sorted(data["device_keys"]) == sorted(
        [
            "device-m2-001",
            "device-m2-002",
            "device-m2-003",
            "device-orin-001",
            "device-orin-002",
            "device-orin-003",
            "device-orin-004",
            "device-m3u-001",
            "device-m3u-002",
            "device-thor-001",
            "device-thor-002",
            "device-thor-003",
        ]
    )
    assert all(k.startswith(f"dk_{d}_") for d, k in data["device_keys"].items())
    assert (Path(local_stack.state_dir) / "admin_key").read_text().strip() == data["admin_key"]
    treasury = json.loads((Path(local_stack.state_dir) / "treasury.json").read_text())
    assert len(treasury) == 64
    out = Path(local_stack.output).read_text()
    assert sum(1 for line in out.splitlines() if "SI64 local stack ready" in line) == 1


def test_api_answers(local_stack):
    assert http_json(local_stack.api_url + "/api/health") == (200, {"status": "ok"})
    status, pricing = http_json(local_stack.api_url + "/api/pricing")
    assert status == 200 and pricing["treasury"] == local_stack.treasury and pricing["network"] == "localnet"
    status, devices = http_json(local_stack.api_url + "/api/devices/ORIN")
    assert status == 200 and len(devices) == 4 and devices[0]["capacity"] == 4


def test_treasury_is_funded(local_stack):
    from dev.stack import rpc_call

    balance = rpc_call(local_stack.rpc_url, "getBalance", [local_stack.treasury])["value"]
    assert balance >= 1_000 * 10**9


def test_stock_aws_cli_sees_tables_and_queues(local_stack):
    tables = aws(local_stack, "dynamodb", "list-tables")["TableNames"]
    assert sorted(tables) == sorted(f"si64-local-{t}" for t in TABLES)
    queues = aws(local_stack, "sqs", "list-queues")["QueueUrls"]
    webhooks = [q.replace("-refunds", "-webhooks") for q in (local_stack.refund_queue_url, local_stack.refund_dlq_url)]
    assert sorted(queues) == sorted([local_stack.refund_queue_url, local_stack.refund_dlq_url, *webhooks])
    attrs = aws(
        local_stack,
        "sqs",
        "get-queue-attributes",
        "--queue-url",
        local_stack.refund_queue_url,
        "--attribute-names",
        "RedrivePolicy",
    )["Attributes"]
    policy = json.loads(attrs["RedrivePolicy"])
    assert policy["maxReceiveCount"] == 5 and policy["deadLetterTargetArn"].endswith(":si64-local-refunds-dlq")
    ttl = aws(local_stack, "dynamodb", "describe-time-to-live", "--table-name", "si64-local-claims")
    assert ttl["TimeToLiveDescription"]["TimeToLiveStatus"] == "ENABLED"


def test_sigterm_stops_everything_and_frees_ports(tmp_path):
    # start_stack's teardown SIGTERMs the stack and asserts exit 0, no survivor, free ports;
    # checked here explicitly too.
    with start_stack(tmp_path / "own") as stack:
        pids = set(stack.started_pids)
        assert len(pids) >= 4  # emulator, chain, chalice local, event runner
        ports = stack.all_ports
        assert not any(port_free(p) for p in ports)
    assert stack.process.returncode == 0
    assert all(port_free(p) for p in ports)
    assert not [
        p
        for p in pids
        if os.path.exists(f"/proc/{p}") and open(f"/proc/{p}/stat").read()  # noqa: SIM115 - one read of a procfs file.rsplit(")", 1)[1].split()[0] != "Z"
    ]


def test_busy_port_fails_fast_naming_the_variable(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        taken = {port}
        env = dict(
            os.environ,
            SI64_STATE_DIR=str(tmp_path),
            SI64_API_PORT=str(port),
            SI64_AWS_PORT=str(free_port(taken=taken)),
            SI64_RPC_PORT=str(free_port(pair=True, taken=taken)),
        )
        out = subprocess.run(
            [sys.executable, "-m", "dev.stack"], cwd=str(ROOT), env=env, capture_output=True, text=True, timeout=30
        )
    assert out.returncode == 1
    assert "SI64_API_PORT" in out.stderr and str(port) in out.stderr
