"""The layer rules (README "Layout", docs/adr/0005-ports-and-fakes.md), checked on the code itself."""

from __future__ import annotations

import inspect
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from chalicelib.api import errors as http_errors
from chalicelib.domain import errors

ROOT = Path(__file__).resolve().parents[2]
HEAVY = ("boto3", "botocore", "pynamodb", "solana", "solders", "chalice")


def _loaded_after(imports: str) -> list[str]:
    code = f"import sys\n{imports}\nprint('\\n'.join(sorted(m for m in sys.modules)))"
    out = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"},
    )
    return out.stdout.split()


def test_domain_and_services_import_no_adapter_and_nothing_heavy():
    domain = [f"import chalicelib.domain.{p.stem}" for p in (ROOT / "chalicelib/domain").glob("*.py")]
    services = [f"import chalicelib.services.{p.stem}" for p in (ROOT / "chalicelib/services").glob("*.py")]
    loaded = _loaded_after("\n".join(domain + services + ["import chalicelib.ports"]))
    assert not [m for m in loaded if m.split(".")[0] in HEAVY]
    assert not [m for m in loaded if m.startswith(("chalicelib.adapters", "chalicelib.api"))]


def test_the_lambda_handler_imports_no_solana_client_and_no_database_driver():
    loaded = _loaded_after("import app")
    assert not [m for m in loaded if m.split(".")[0] in ("boto3", "botocore", "pynamodb", "solana", "solders")]


def test_every_domain_error_has_a_status_and_code():
    kinds = [
        c
        for _, c in inspect.getmembers(errors, inspect.isclass)
        if issubclass(c, errors.DomainError) and c is not errors.DomainError
    ]
    assert kinds
    for kind in kinds:
        status, code = http_errors.status_of(kind("x"))
        assert 400 <= status < 600 and code != "internal", kind
    assert http_errors.status_of(errors.DomainError("x")) == (500, "internal")


@pytest.mark.parametrize("needle", ['"si64:', "'si64:", 'f"si64:', "f'si64:"])
def test_the_signing_strings_are_spelled_once(needle):
    spelled = [
        p
        for p in (ROOT / "chalicelib").rglob("*.py")
        if needle in p.read_text() and p.relative_to(ROOT).as_posix() != "chalicelib/domain/signing.py"
    ]
    assert spelled == []


MAX_MODULE_LINES = 300


def test_no_chalicelib_module_is_over_300_lines():
    """Small parts (ADR 0011, "The cold import"): a module that outgrows this is split along its
    seams (the container per area, the views per resource), not grown."""
    sizes = {
        p.relative_to(ROOT).as_posix(): len(p.read_text().splitlines()) for p in (ROOT / "chalicelib").rglob("*.py")
    }
    assert len(sizes) > 50  # the walk found the package
    assert {p: n for p, n in sizes.items() if n > MAX_MODULE_LINES} == {}


# What the API's cold start loads: `import app`, then a status request through the Lambda handler
# (the entry point `make bench` times, dev/bench/cold_import.py), its database on a closed port.
_STATUS_REQUEST = """
import json, os, sys
from types import SimpleNamespace
os.environ.update(AWS_ENDPOINT_URL="http://127.0.0.1:9", AWS_ACCESS_KEY_ID="t", AWS_SECRET_ACCESS_KEY="t",
                  AWS_DEFAULT_REGION="us-east-1", AWS_MAX_ATTEMPTS="1", SI64_TABLE_PREFIX="si64-layers")
import app
at_import = sorted(sys.modules)
cid = "CTR-layerslayerslayers0"
event = {"resource": "/api/contracts/{contract_id}", "path": "/api/contracts/" + cid, "httpMethod": "GET",
         "headers": {"Host": "t"}, "multiValueHeaders": {"Host": ["t"]}, "queryStringParameters": None,
         "multiValueQueryStringParameters": None, "pathParameters": {"contract_id": cid}, "stageVariables": None,
         "requestContext": {"resourcePath": "/api/contracts/{contract_id}", "httpMethod": "GET",
                            "path": "/api/contracts/" + cid, "requestId": "layers", "stage": "api",
                            "identity": {"sourceIp": "192.0.2.1"}},
         "body": None, "isBase64Encoded": False}
ctx = SimpleNamespace(aws_request_id="layers", function_name="api_handler", memory_limit_in_mb=512,
                      log_stream_name="layers", get_remaining_time_in_millis=lambda: 30000)
resp = app.app(event, ctx)
sys.stdout.write("\\n" + json.dumps({"status": resp["statusCode"], "at_import": at_import,
                                     "after_request": sorted(sys.modules)}))
"""


def test_a_cold_status_request_loads_only_what_it_uses():
    """The API's cold start (ADR 0011, "The cold import"): `import app` registers every route but
    loads no body parser, service, adapter or other resource's views; the status request then
    builds only the contracts store (and the claims store of the rate limit), never the refund,
    webhook, quote, queue or Solana adapters, nor the money-moving rental service."""
    out = subprocess.run(
        [sys.executable, "-c", _STATUS_REQUEST],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        env={k: v for k, v in {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}.items() if k != "AWS_PROFILE"},
    )
    got = json.loads(out.stdout.strip().splitlines()[-1])
    assert got["status"] == 503  # the request ran, to the (closed) database
    at_import = {m for m in got["at_import"] if m.startswith("chalicelib")}
    loaded = {m for m in got["after_request"] if m.startswith("chalicelib")}
    assert "chalicelib.api.rentals" in at_import and "chalicelib.adapters.contracts" in loaded  # the walk saw both
    assert not at_import & {
        "chalicelib.api.schemas",
        "chalicelib.api.numbers",
        "chalicelib.domain.commands",
        "chalicelib.domain.ledger",
        "chalicelib.domain.webhooks",
        "chalicelib.domain.refunds",
        "chalicelib.services.idempotency",
        "chalicelib.services.fleet",
    }
    assert not [m for m in at_import if m.startswith(("chalicelib.adapters", "chalicelib.api.views."))]
    assert sorted(m for m in loaded if m.startswith("chalicelib.adapters.")) == [
        "chalicelib.adapters.claims",
        "chalicelib.adapters.contracts",
        "chalicelib.adapters.coverage",  # a live contract is read with its covered time (ADR 0016)
        "chalicelib.adapters.dynamo",
        "chalicelib.adapters.models",
        "chalicelib.adapters.models_base",
        "chalicelib.adapters.models_claims",
        "chalicelib.adapters.models_contracts",
    ]
    assert not loaded & {
        "chalicelib.services.rentals",
        "chalicelib.api.schemas",
        "chalicelib.domain.payments",
        "chalicelib.domain.records",  # the claims' records: not the rate limit's window
    }
