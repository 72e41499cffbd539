"""build/deployment.zip run the way Lambda runs it, against the local stack's endpoints.

* The zip is unzipped into a clean directory (the task root). A fresh venv of this Python
  (3.11, the template's ``python3.11`` runtime) holds only what the Lambda runtime adds:
  boto3/botocore ``RUNTIME_SDK`` and their dependencies, installed with ``pip --no-index`` from
  a wheel cache (``~/.cache/si64/lambda-runtime``, filled once from PyPI). Nothing from
  requirements-dev.txt; the test checks that none of it is importable.
* tests/infra/lambda_bootstrap.py (standard library only, copied outside the task root) plays
  the runtime's bootstrap: task root first on ``sys.path``, ``$_HANDLER`` imported once (cold
  import, timed), then each event with a context object. Each function runs in its own process
  with the environment the transformed template gives it, pointed at the local stack's
  emulator and chain (a table prefix of its own, so the stack's event runner never sees its
  refunds), the admin and treasury keys in the emulator's SSM as in a deployed stage.
* Real event fixtures: API Gateway REST proxy events (status, rent, settle), an EventBridge
  scheduled event (sweep), an SQS batch of two refund messages received from the queue, one
  of which must come back (``batchItemFailures``).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import uuid
import zipfile
from pathlib import Path

import pytest

from tests.infra.conftest import ROOT

pytestmark = pytest.mark.e2e

# The SDK of the Lambda Python runtime: AWS reported boto3/botocore 1.38.36 in its managed
# python3.12/3.13 runtimes (Aug 2025); AWS updates it without notice. The zip ships its own
# botocore (requirements.txt), which the task root puts first, so the runtime's copy is shadowed.
RUNTIME_SDK = ("boto3==1.38.36", "botocore==1.38.36")
WHEELS = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "si64" / "lambda-runtime"
ZIPPED_LIMIT = 50 * 1024 * 1024
UNZIPPED_LIMIT = 250 * 1024 * 1024
HANDLERS = {
    "APIHandler": "app.app",
    "BillingSweep": "chalicelib.jobs.sweep.billing_sweep",
    "QuoteWatcher": "chalicelib.jobs.quotes.quote_watcher",
    "RefundWorker": "chalicelib.jobs.refunds.refund_worker",
}


# --------------------------------------------------------------------------- the runtime


@pytest.fixture(scope="session")
def runtime_python(tmp_path_factory) -> Path:
    """A venv with only the runtime's SDK (cached per session; wheels cached across sessions)."""
    WHEELS.mkdir(parents=True, exist_ok=True)
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "--quiet"]
    if not all(any(WHEELS.glob(f"{r.split('==')[0]}-{r.split('==')[1]}-*.whl")) for r in RUNTIME_SDK):
        got = subprocess.run([*pip, "download", "-d", str(WHEELS), *RUNTIME_SDK], capture_output=True, text=True)
        if got.returncode != 0:
            pytest.skip(f"the Lambda runtime's SDK {RUNTIME_SDK} is neither cached in {WHEELS} nor downloadable")
    venv = tmp_path_factory.mktemp("lambda-runtime") / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    py = venv / "bin" / "python"
    subprocess.run(
        [*pip, "--python", str(py), "install", "--no-index", "--find-links", str(WHEELS), *RUNTIME_SDK], check=True
    )
    return py


@pytest.fixture(scope="session")
def task_root(packaged, tmp_path_factory) -> Path:
    sam, _ = packaged
    root = tmp_path_factory.mktemp("lambda-task")
    with zipfile.ZipFile(sam.parent / "deployment.zip") as z:
        z.extractall(root)
    return root


@pytest.fixture(scope="session")
def bootstrap(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("lambda-bootstrap")
    shutil.copy(Path(__file__).with_name("lambda_bootstrap.py"), d / "bootstrap.py")
    return d / "bootstrap.py"


# --------------------------------------------------------------------------- the stage


@pytest.fixture(scope="module")
def stage(local_stack, template):
    """Tables, queues and devices of a fresh prefix on the stack's emulator; the admin and
    treasury keys in its SSM under the names the template gives the functions."""
    prefix = f"si64-art{uuid.uuid4().hex[:6]}"
    script = (
        "import json, sys\n"
        "from dev.provision import provision\n"
        "from dev.seed import seed\n"
        "p, ep, state, ddb = sys.argv[1:5]\n"
        "res = provision(p, ep, 'us-east-1', dynamodb_endpoint_url=ddb)\n"
        "s = seed(p, ep, 4, state, 'us-east-1')\n"
        "print(json.dumps({'queue_url': res.queue_url, 'dlq_url': res.dlq_url, 'admin_key': s['admin_key']}))\n"
    )
    state = Path(local_stack.state_dir) / prefix
    state.mkdir()
    env = dict(os.environ, **local_stack.env)
    out = subprocess.run(
        # the tables go where the stack keeps its own (DynamoDB Local; the emulator forwards to it)
        [sys.executable, "-c", script, prefix, local_stack.aws_endpoint, str(state), local_stack.dynamodb_endpoint],
        cwd=str(ROOT),
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    info = json.loads(out.stdout.strip().splitlines()[-1])
    import boto3

    ssm = boto3.client("ssm", endpoint_url=local_stack.aws_endpoint, **_creds())
    variables = {
        k: r["Properties"]["Environment"]["Variables"] for k, r in template["Resources"].items() if k in HANDLERS
    }
    ssm.put_parameter(
        Name=variables["APIHandler"]["SI64_ADMIN_KEY_PARAMETER"],
        Value=info["admin_key"],
        Type="SecureString",
        Overwrite=True,
    )
    treasury_key = (Path(local_stack.state_dir) / "treasury.json").read_text()
    ssm.put_parameter(
        Name=variables["RefundWorker"]["SI64_TREASURY_KEY_PARAMETER"],
        Value=treasury_key,
        Type="SecureString",
        Overwrite=True,
    )
    return dict(info, prefix=prefix, variables=variables, template=template)


def _creds() -> dict:
    return {"region_name": "us-east-1", "aws_access_key_id": "test", "aws_secret_access_key": "test"}


def function_env(logical: str, stage: dict, local_stack) -> dict:
    """What Lambda would give the function: the template's variables (the stage's values pointed
    at the local stack) plus the runtime's own."""
    variables = {}
    for k, v in stage["variables"][logical].items():
        variables[k] = local_stack.treasury if v == {"Ref": "TreasuryAddress"} else v
    props = stage["template"]["Resources"][logical]["Properties"]
    variables.update(
        SI64_TABLE_PREFIX=stage["prefix"],
        SI64_REFUND_QUEUE_URL=stage["queue_url"],
        SI64_REFUND_DLQ_URL=stage["dlq_url"],
        SOLANA_RPC_URL=local_stack.rpc_url,
        SI64_NETWORK="localnet",
    )
    return {
        **{k: str(v) for k, v in variables.items()},
        "PATH": "/usr/bin:/bin",
        "LANG": "C.UTF-8",
        "TZ": ":UTC",
        "LAMBDA_TASK_ROOT": "",  # set by invoke
        "_HANDLER": props["Handler"],
        "AWS_LAMBDA_FUNCTION_NAME": f"{stage['prefix']}-{logical}",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(props["MemorySize"]),
        "AWS_LAMBDA_FUNCTION_TIMEOUT": str(props["Timeout"]),
        "AWS_EXECUTION_ENV": f"AWS_Lambda_{props['Runtime']}",
        "AWS_REGION": "us-east-1",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test",
        "AWS_SESSION_TOKEN": "test",
        "AWS_ENDPOINT_URL": local_stack.aws_endpoint,  # the only addition: the emulator instead of AWS
    }


def invoke(runtime_python, bootstrap, task_root, env: dict, events: list) -> dict:
    env = dict(env, LAMBDA_TASK_ROOT=str(task_root))
    result = bootstrap.parent / f"result-{uuid.uuid4().hex}.json"
    proc = subprocess.run(
        [str(runtime_python), "-s", str(bootstrap), str(result)],
        input=json.dumps({"events": events}),
        cwd=str(task_root),
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    out = json.loads(result.read_text())
    out["stdout"], out["log"] = proc.stdout, proc.stderr
    return out


# --------------------------------------------------------------------------- events


def rest_event(method: str, path: str, resource: str, params: dict | None, body: str | None, headers=None) -> dict:
    """An API Gateway REST API (v1) proxy integration event, as API Gateway sends it."""
    headers = {"Host": "abc123.execute-api.us-east-1.amazonaws.com", "User-Agent": "si64-test", **(headers or {})}
    return {
        "resource": resource,
        "path": path,
        "httpMethod": method,
        "headers": headers,
        "multiValueHeaders": {k: [v] for k, v in headers.items()},
        "queryStringParameters": None,
        "multiValueQueryStringParameters": None,
        "pathParameters": params,
        "stageVariables": None,
        "requestContext": {
            "resourceId": "abc123",
            "resourcePath": resource,
            "httpMethod": method,
            "extendedRequestId": uuid.uuid4().hex,
            "requestTime": time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime()),
            "path": f"/api{path}",
            "accountId": "123456789012",
            "protocol": "HTTP/1.1",
            "stage": "api",
            "domainPrefix": "abc123",
            "requestTimeEpoch": int(time.time() * 1000),
            "requestId": str(uuid.uuid4()),
            "identity": {"sourceIp": "203.0.113.7", "userAgent": "si64-test"},
            "domainName": "abc123.execute-api.us-east-1.amazonaws.com",
            "apiId": "abc123",
        },
        "body": body,
        "isBase64Encoded": False,
    }


def scheduled_event() -> dict:
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": "123456789012",
        "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "region": "us-east-1",
        "resources": ["arn:aws:events:us-east-1:123456789012:rule/si64-prod-BillingSweepEvent"],
        "detail": {},
    }


def sqs_event(messages: list[dict], queue_arn: str) -> dict:
    """An SQS event source mapping batch, built from messages received from the queue."""
    return {
        "Records": [
            {
                "messageId": m["MessageId"],
                "receiptHandle": m["ReceiptHandle"],
                "body": m["Body"],
                "attributes": {
                    "ApproximateReceiveCount": "1",
                    "SentTimestamp": str(int(time.time() * 1000)),
                    "SenderId": "AIDAEXAMPLE",
                    "ApproximateFirstReceiveTimestamp": str(int(time.time() * 1000)),
                },
                "messageAttributes": {},
                "md5OfBody": m["MD5OfBody"],
                "eventSource": "aws:sqs",
                "eventSourceARN": queue_arn,
                "awsRegion": "us-east-1",
            }
            for m in messages
        ]
    }


def response(inv: dict) -> tuple[int, dict]:
    r = inv["result"]
    return r["statusCode"], json.loads(r["body"]) if r.get("body") else {}


# --------------------------------------------------------------------------- tests


def test_the_zip_stays_within_lambda_limits(packaged, task_root, record_property):
    sam, _ = packaged
    zipped = (sam.parent / "deployment.zip").stat().st_size
    unzipped = sum(p.stat().st_size for p in task_root.rglob("*") if p.is_file())
    record_property("zipped_bytes", zipped)
    record_property("unzipped_bytes", unzipped)
    print(f"deployment.zip {zipped / 2**20:.1f} MiB zipped, {unzipped / 2**20:.1f} MiB unzipped")
    assert zipped < ZIPPED_LIMIT and unzipped < UNZIPPED_LIMIT
    names = {p.name for p in task_root.iterdir()}
    assert {"app.py", "chalicelib"} <= names
    assert not names & {"tests", "local", "infra", "web", "moto", "pytest", "solana", "boto3"}, names


def test_the_three_functions_answer_real_events_like_lambda(
    runtime_python, bootstrap, task_root, stage, local_stack, record_property
):
    from chalicelib.domain import money
    from tests.e2e.client import Payer, settle_headers

    api_env = function_env("APIHandler", stage, local_stack)
    with Payer(local_stack.rpc_url) as payer:
        kps = [payer.new_wallet() for _ in range(3)]
        sigs = [
            payer.pay(
                kp, local_stack.treasury, money.TIERS["M2"].lamports_per_hour // 2 + 1_000_000, "si64:rent:M2:1800"
            )
            for kp in kps
        ]
    rents = [
        rest_event(
            "POST",
            "/api/rent",
            "/api/rent",
            None,
            json.dumps({"wallet": str(kp.pubkey()), "tier": "M2", "duration_hours": 0.5, "tx_signature": sig}),
            {"Content-Type": "application/json"},
        )
        for kp, sig in zip(kps, sigs, strict=True)
    ]
    # cold start: the first rent; then, warm, the other two
    inv = invoke(runtime_python, bootstrap, task_root, api_env, rents)
    assert inv["dev_only_importable"] == []
    assert inv["botocore"]["file"].startswith(str(task_root))  # the zip's botocore, not the runtime's
    assert inv["boto3_file"] and str(runtime_python.parent.parent) in inv["boto3_file"]  # the runtime's boto3
    assert inv["sys_path"][0] == str(task_root)
    cids = []
    for one in inv["invocations"]:
        status, body = response(one)
        assert status == 201, body
        cids.append(body["contract_id"])
    record_property("api_cold_import_s", round(inv["cold_import_s"], 3))
    record_property("api_first_invoke_s", round(inv["invocations"][0]["seconds"], 3))

    # a status (cold again: a new process) and two settles, signed by the renters
    status_ev = rest_event(
        "GET", f"/api/contracts/{cids[0]}", "/api/contracts/{contract_id}", {"contract_id": cids[0]}, None
    )
    settles = [
        rest_event(
            "POST",
            f"/api/contracts/{cid}/settle",
            "/api/contracts/{contract_id}/settle",
            {"contract_id": cid},
            None,
            settle_headers(kp, cid),
        )
        for kp, cid in zip(kps[1:], cids[1:], strict=True)
    ]
    inv2 = invoke(runtime_python, bootstrap, task_root, api_env, [status_ev, *settles])
    status, body = response(inv2["invocations"][0])
    assert status == 200 and body["contract_id"] == cids[0] and body["status"] == "ACTIVE", body
    for one in inv2["invocations"][1:]:
        status, body = response(one)
        assert status == 200 and body["refund_status"] == "QUEUED", body

    # the sweep, on an EventBridge scheduled event
    sweep = invoke(
        runtime_python, bootstrap, task_root, function_env("BillingSweep", stage, local_stack), [scheduled_event()]
    )
    report = sweep["invocations"][0]["result"]
    assert report["errors"] == [] and report["queries"] > 0, report
    assert '"SweepLagSeconds"' in sweep["stdout"]  # the metric record goes to the log, as in Lambda
    record_property("sweep_cold_import_s", round(sweep["cold_import_s"], 3))

    # the refund worker, on an SQS batch of the two refund messages the settles queued; the
    # chain drops the first two sends, so the first record's refund is still pending and
    # comes back, the second lands
    import boto3

    sqs = boto3.client("sqs", endpoint_url=local_stack.aws_endpoint, **_creds())
    messages = []
    for _ in range(10):
        got = sqs.receive_message(QueueUrl=stage["queue_url"], MaxNumberOfMessages=10, WaitTimeSeconds=1)
        messages += got.get("Messages", [])
        if len(messages) >= 2:
            break
    bodies = {json.loads(m["Body"])["refund_id"]: m for m in messages}
    assert set(bodies) == set(cids[1:]), bodies
    pending, lands = bodies[cids[1]], bodies[cids[2]]
    arn = sqs.get_queue_attributes(QueueUrl=stage["queue_url"], AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    worker_env = function_env("RefundWorker", stage, local_stack)
    _chain(local_stack, "si64_dropTransactions", [{"requests": 2}])
    try:
        inv3 = invoke(runtime_python, bootstrap, task_root, worker_env, [sqs_event([pending, lands], arn)])
    finally:
        _chain(local_stack, "si64_clearFaults", [])
    assert inv3["invocations"][0]["result"] == {"batchItemFailures": [{"itemIdentifier": pending["MessageId"]}]}
    record_property("worker_cold_import_s", round(inv3["cold_import_s"], 3))
    # the message that came back, delivered again: the re-sent transaction lands
    inv4 = invoke(runtime_python, bootstrap, task_root, worker_env, [sqs_event([pending], arn)])
    assert inv4["invocations"][0]["result"] == {"batchItemFailures": []}
    assert '"RefundsConfirmed"' in inv4["stdout"]
    statuses = invoke(
        runtime_python,
        bootstrap,
        task_root,
        api_env,
        [
            rest_event("GET", f"/api/contracts/{c}", "/api/contracts/{contract_id}", {"contract_id": c}, None)
            for c in cids[1:]
        ],
    )
    for one in statuses["invocations"]:
        status, body = response(one)
        assert status == 200 and body["refund"]["status"] == "CONFIRMED", body
    timings = [
        (n, x["cold_import_s"], x["invocations"][0]["seconds"])
        for n, x in (("api", inv), ("sweep", sweep), ("worker", inv3))
    ]
    print("cold import / first invoke:", ", ".join(f"{n} {a:.2f} s / {b:.2f} s" for n, a, b in timings))


def _chain(local_stack, method: str, params: list):
    import urllib.request

    req = urllib.request.Request(
        local_stack.rpc_url,
        json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": params}).encode(),
        {"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.loads(r.read())["result"]


def test_the_zip_carries_si64_protocol_from_its_one_source(packaged):
    """chalicelib imports si64_protocol; Chalice copies vendor/ (a symlink to packages/si64/src/si64_protocol)
    into the zip, so the Lambda runs the very file the si64 client installs."""
    sam, _ = packaged
    with zipfile.ZipFile(sam.parent / "deployment.zip") as z:
        names = set(z.namelist())
        assert "si64_protocol/__init__.py" in names
        shipped = z.read("si64_protocol/__init__.py")
    assert shipped == (ROOT / "packages" / "si64" / "src" / "si64_protocol" / "__init__.py").read_bytes()
    assert not any(n.startswith(("si64/", "dev/", "local/", "vendor/")) for n in names)
