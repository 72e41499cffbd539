"""The one launcher of the local stack for `make bench` and the tests.

``launch(state_dir, **env)`` runs ``python -m dev.stack`` (what `make run` runs) as a
subprocess on free 127.0.0.1 ports with ``SI64_STATE_DIR=state_dir``, waits for the
``SI64 local stack ready`` line and yields ``stack.json`` as a ``StackInfo``. At exit it
SIGTERMs the stack and checks that it exited 0, left no process behind and freed every port.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from dev.procs import StackError, descendants, free_port, pid_alive, port_free, spawn
from dev.stack import EMULATED_AWS, READY_MARK, SCRUB

__all__ = ["StackError", "StackInfo", "launch"]


class StackInfo(dict):
    """stack.json as a dict that also allows attribute access, plus what the launcher knows:
    process, ports, all_ports, log_dir, output, started_pids, env (for a stock AWS client)."""

    def __getattr__(self, name):
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None


@contextlib.contextmanager
def launch(state_dir: Path | str, timeout: float = 180.0, check_teardown: bool = True, **env_overrides):
    """`python -m dev.stack` as a subprocess on free 127.0.0.1 ports with its state in
    `state_dir`; yields StackInfo once ready. At exit: SIGTERM, and (check_teardown, after a clean
    run) StackError unless it exited 0, left no process behind and freed every port."""
    state_dir = Path(state_dir)
    state_dir.mkdir(parents=True, exist_ok=True)
    taken: set = set()
    ports = {
        "SI64_AWS_PORT": free_port(taken=taken),
        "SI64_RPC_PORT": free_port(pair=True, taken=taken),
        "SI64_API_PORT": free_port(taken=taken),
        "SI64_DYNAMODB_PORT": free_port(taken=taken),
    }
    env = {k: v for k, v in os.environ.items() if k not in (*SCRUB, "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_DYNAMODB")}
    env.update({k: str(v) for k, v in {**ports, **env_overrides}.items()})
    env.update(SI64_STATE_DIR=str(state_dir), PYTHONUNBUFFERED="1")
    env.setdefault("SI64_DYNAMODB_JIT", "c1")  # a stack of a test or a bench lives seconds (docs/adr/0010)
    out_path = state_dir / "stack.out"
    with open(out_path, "wb") as out:
        proc = spawn([sys.executable, "-m", "dev.stack"], env, out)
    all_ports = [
        ports["SI64_AWS_PORT"],
        ports["SI64_RPC_PORT"],
        ports["SI64_RPC_PORT"] + 1,
        ports["SI64_API_PORT"],
        ports["SI64_DYNAMODB_PORT"],
    ]
    started: set[int] = set()
    ready = False
    try:
        deadline = time.monotonic() + timeout
        while READY_MARK not in (text := out_path.read_text(errors="replace")):
            started |= descendants(proc.pid)
            if proc.poll() is not None:
                raise StackError(f"local stack exited with {proc.returncode} before ready:\n{text[-4000:]}")
            if time.monotonic() > deadline:
                raise StackError(f"local stack not ready after {timeout:.0f}s:\n{text[-4000:]}")
            time.sleep(0.2)
        started |= descendants(proc.pid)
        info = StackInfo(json.loads((state_dir / "stack.json").read_text()))
        info.update(
            process=proc,
            ports=ports,
            all_ports=all_ports,
            log_dir=str(state_dir / "logs"),
            output=str(out_path),
            started_pids=started,
            env={"AWS_ENDPOINT_URL": info["aws_endpoint"], **EMULATED_AWS},
        )
        ready = True
        yield info
    except BaseException:
        ready = False  # do not mask the original error with teardown checks
        raise
    finally:
        if proc.poll() is None:
            started |= descendants(proc.pid)
            proc.send_signal(signal.SIGTERM)
        try:
            code = proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
            raise StackError("local stack ignored SIGTERM for 60 s") from None
        if check_teardown and ready:
            if code != 0:
                raise StackError(f"local stack exited with {code}:\n{out_path.read_text(errors='replace')[-3000:]}")
            if survivors := [p for p in started if pid_alive(p)]:
                raise StackError(f"processes left behind: {survivors}")
            if busy := [p for p in all_ports if not port_free(p)]:
                raise StackError(f"ports still in use after stop: {busy}")
