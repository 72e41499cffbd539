"""What `make` tells a new user: the first `make run` installs for about 1.5 minutes, and says so first."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def test_the_install_step_says_what_it_does_before_it_starts():
    if shutil.which("make") is None:
        pytest.skip("make is not installed")
    # -n: print the recipe without running it; -B: as on a fresh clone, where the venv stamp is missing
    plan = subprocess.run(
        ["make", "-n", "-B", ".venv/.si64-installed"], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert plan.returncode == 0, plan.stderr
    lines = plan.stdout.splitlines()
    first_pip = next(i for i, line in enumerate(lines) if "pip install" in line)
    said = [line for line in lines[:first_pip] if line.startswith("echo ")]
    assert said and "installing" in said[0] and "1.5 min" in said[0], lines
