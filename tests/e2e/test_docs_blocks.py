"""Every `<!-- docs:run -->` shell block of docs/ (outside the runbook, which
tests/e2e/test_runbook.py runs) works as written against a fresh local stack: `bash -euo
pipefail` from the repository's root, `SI64_STATE_DIR` pointing at the stack's stack.json,
`.venv/bin` first on PATH — what a reader who ran `make run` has. The blocks check their own
answers (`curl -f`, `grep -q`), so a page whose commands drift from the API fails here.
Which blocks exist and which are only shown is checked in tests/unit/test_docs_blocks.py."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.unit.test_docs_blocks import runnable_blocks

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]
BLOCKS = runnable_blocks()


@pytest.mark.parametrize("block", BLOCKS, ids=[f"{b.page}:{b.line}" for b in BLOCKS])
def test_the_docs_block_runs_on_the_local_stack(local_stack, block):
    if shutil.which("curl") is None:
        pytest.skip("curl is not installed")
    venv_bin = str(Path(sys.executable).parent)
    env = {
        **os.environ,
        "SI64_STATE_DIR": str(local_stack.state_dir),
        "PATH": f"{venv_bin}:{os.environ.get('PATH', '')}",
    }
    env = {k: v for k, v in env.items() if k not in ("SI64_API_URL", "SI64_ADMIN_KEY", "AWS_ENDPOINT_URL")}
    proc = subprocess.run(
        ["bash", "-c", "set -euo pipefail\n" + block.code],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
        check=False,
    )
    assert proc.returncode == 0, (
        f"docs/{block.page}:{block.line} failed ({proc.returncode}):\n{block.code}\n"
        f"--- stdout:\n{proc.stdout[-2000:]}\n--- stderr:\n{proc.stderr[-2000:]}"
    )
