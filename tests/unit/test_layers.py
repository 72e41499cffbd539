"""The layer rules (README "Layout", docs/adr/0005-ports-and-fakes.md), checked on the code itself."""

from __future__ import annotations

import inspect
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
