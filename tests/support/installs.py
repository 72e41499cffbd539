"""One installer at a time across pytest processes.

`make test` runs pytest on several workers (pytest-xdist), and the tests that install what they
need on first use (`npm ci` into tests/e2e/js, `apt-get install` of chromium or tmux) may start at
the same moment in two of them. ``one_at_a_time(name)`` holds an exclusive file lock for the
block, so the second worker waits, then finds the first one's install done.
"""

from __future__ import annotations

import fcntl
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def one_at_a_time(name: str) -> Iterator[None]:
    """Hold the machine-wide lock ``name`` (a file in the temporary directory) for the block."""
    path = Path(tempfile.gettempdir()) / f"si64-tests-{name}.lock"
    with open(path, "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)
