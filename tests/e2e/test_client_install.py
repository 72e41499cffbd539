"""`pip install ./packages/si64` into a fresh venv gives a working `si64` and `python -m si64.wallet`,
against the local stack (`local_stack`) by URL and keys, with no chalicelib and no dev in that venv.

Every command runs in an empty working directory outside the repository with a clean environment,
so nothing of the checkout can be imported by accident (no PYTHONPATH, no repo on sys.path)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]


def _clean_env(**extra: str) -> dict[str, str]:
    keep = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "PIP_INDEX_URL", "PIP_FIND_LINKS", "PIP_CONFIG_FILE")
    env = {k: os.environ[k] for k in keep if k in os.environ}
    env.update(PIP_DISABLE_PIP_VERSION_CHECK="1", COLUMNS="160", **extra)
    return env


@pytest.fixture(scope="module")
def client_venv(tmp_path_factory) -> Path:
    venv = tmp_path_factory.mktemp("si64-client") / "venv"
    # a venv without a pip of its own (seeding one costs ~5 CPU-s); the test run's pip installs
    # into it with --python, exactly as `pip install` run inside it would
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = str(venv / "bin" / "python")
    got = subprocess.run(
        [sys.executable, "-m", "pip", "--python", python, "install", "--quiet", str(ROOT / "packages" / "si64")],
        capture_output=True,
        text=True,
        env=_clean_env(),
        timeout=300,
    )
    assert got.returncode == 0, got.stderr[-3000:]
    return venv


@pytest.fixture()
def workdir(tmp_path) -> Path:
    d = tmp_path / "elsewhere"
    d.mkdir()
    return d


def _run(venv: Path, workdir: Path, *argv: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(venv / "bin" / argv[0]), *argv[1:]],
        cwd=workdir,
        env=_clean_env(**env),
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_venv_holds_the_client_and_neither_chalicelib_nor_dev(client_venv, workdir):
    probe = (
        "import importlib.util, json\n"
        "print(json.dumps({m: importlib.util.find_spec(m) is not None"
        " for m in ('si64', 'si64_protocol', 'chalicelib', 'dev', 'local', 'rich', 'psutil', 'solana', 'solders')}))"
    )
    p = _run(client_venv, workdir, "python", "-c", probe)
    assert p.returncode == 0, p.stderr
    found = json.loads(p.stdout)
    assert found == {
        "si64": True,
        "si64_protocol": True,
        "chalicelib": False,
        "dev": False,
        "local": False,
        "rich": True,
        "psutil": True,
        "solana": True,
        "solders": True,
    }
    assert (client_venv / "bin" / "si64").exists()


def test_si64_devices_list_by_url_and_admin_key(client_venv, workdir, local_stack):
    p = _run(
        client_venv,
        workdir,
        "si64",
        "--api",
        local_stack["api_url"],
        "--admin-key",
        local_stack["admin_key"],
        "devices",
        "list",
        "--json",
    )
    assert p.returncode == 0, p.stderr
    devices = json.loads(p.stdout)
    assert len(devices) == 12 and all(d["key_set"] for d in devices), devices[:2]


def test_si64_dashboard_by_environment(client_venv, workdir, local_stack):
    p = _run(
        client_venv,
        workdir,
        "si64",
        "dashboard",
        "--plain",
        SI64_API_URL=local_stack["api_url"],
        SI64_ADMIN_KEY=local_stack["admin_key"],
    )
    assert p.returncode == 0, p.stderr
    assert "Summary" in p.stdout and local_stack["api_url"] in p.stdout


def test_a_wrong_admin_key_is_one_line_and_non_zero(client_venv, workdir, local_stack):
    p = _run(client_venv, workdir, "si64", "--api", local_stack["api_url"], "--admin-key", "nope", "devices", "list")
    assert p.returncode == 1 and p.stderr.startswith("si64: error: 401 unauthorized:"), p.stderr


def test_default_state_dir_is_dot_local_of_the_working_directory(client_venv, workdir, local_stack):
    """Without flags or SI64_STATE_DIR the client reads ./.local/stack.json where it runs, and the
    wallet keeps its keypair there too; the wallet pays on the stack's chain with the rent memo."""
    p = _run(client_venv, workdir, "si64", "devices", "list")
    assert p.returncode == 2 and ".local/stack.json" in p.stderr, p.stderr  # nothing here yet
    (workdir / ".local").mkdir()
    shutil.copy(Path(local_stack["state_dir"]) / "stack.json", workdir / ".local" / "stack.json")
    p = _run(client_venv, workdir, "si64", "devices", "list", "--json")
    assert p.returncode == 0, p.stderr
    assert len(json.loads(p.stdout)) == 12

    p = _run(client_venv, workdir, "python", "-m", "si64.wallet", "pay", "--tier", "M2", "--hours", "0.02")
    assert p.returncode == 0, p.stderr
    paid = json.loads(p.stdout)
    assert paid["memo"] == "si64:rent:M2:72" and paid["lamports"] == 20_000
    assert (workdir / ".local" / "wallets").is_dir()
