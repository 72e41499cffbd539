"""Ports, child processes and readiness checks of the local stack (dev/stack.py).

Stdlib only: the stack launcher, the bench and the test fixture import it.
"""

from __future__ import annotations

import ctypes
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


class StackError(RuntimeError):
    pass


def write_private(path: Path, text: str) -> None:
    """Write `text` to `path` atomically, readable by its owner only (0600): keys, stack.json."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(text)
    os.replace(tmp, path)


# --------------------------------------------------------------------------
# ports


def port_free(port: int, host: str = "127.0.0.1") -> bool:
    """True when nothing listens on host:port (TIME_WAIT does not count)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def free_port(pair: bool = False, taken: set | None = None) -> int:
    """A free port on 127.0.0.1 not in `taken` (and port + 1 too when pair=True); added to `taken`."""
    taken = taken if taken is not None else set()
    for _ in range(200):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        wanted = [port, port + 1] if pair else [port]
        if any(p in taken for p in wanted) or (pair and not port_free(port + 1)):
            continue
        taken.update(wanted)
        return port
    raise StackError("no free port on 127.0.0.1")


# --------------------------------------------------------------------------
# processes


def die_with_parent() -> None:  # runs in the child between fork and exec
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG: parent killed -9 -> child gets SIGTERM
    except OSError:
        pass


def spawn(argv: list[str], env: dict, out, **kw) -> subprocess.Popen:
    """argv in its own process group (killpg reaches grandchildren), dying with this process."""
    return subprocess.Popen(
        argv,
        cwd=str(ROOT),
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=out,
        stderr=subprocess.STDOUT if out is not None else None,
        start_new_session=True,
        preexec_fn=die_with_parent if sys.platform.startswith("linux") else None,
        **kw,
    )


def stop_group(proc: subprocess.Popen, grace: float = 8.0) -> None:
    """SIGTERM the process group, SIGKILL it after `grace` s; nothing of the group survives."""
    pgid = proc.pid
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(pgid, sig)
        except ProcessLookupError:
            break
        try:
            proc.wait(timeout=wait)
        except subprocess.TimeoutExpired:
            continue
        try:  # the leader is gone; make sure nothing else of its group survives
            os.killpg(pgid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        break
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        pass


class Child:
    """One process of the stack, its output in `log_path`."""

    def __init__(self, name: str, argv: list[str], env: dict, log_path: Path | None):
        self.name = name
        self.log_path = log_path
        out = open(log_path, "ab") if log_path else None  # noqa: SIM115 - handed to the child
        try:
            self.proc = spawn(argv, env, out)
        finally:
            if out:
                out.close()

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self, grace: float = 8.0) -> None:
        stop_group(self.proc, grace)

    def tail(self, lines: int = 20) -> str:
        if not self.log_path or not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def describe_exit(self) -> str:
        text = f"{self.name} exited with {self.proc.returncode}"
        return text + (f"; last lines of {self.log_path}:\n{self.tail()}" if self.log_path else "")


def descendants(pid: int) -> set[int]:
    """PIDs of every live descendant of pid (via /proc)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as fh:
                stat = fh.read()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry))
    out, todo = set(), [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in out:
                out.add(child)
                todo.append(child)
    return out


def pid_alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


# --------------------------------------------------------------------------
# readiness


def wait_until(check, what: str, timeout: float, children: list[Child] = (), interval: float = 0.2):
    """Poll check() until it returns a true value (returned); StackError when a child dies or on timeout."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        for child in children:
            if not child.alive():
                raise StackError(f"{child.describe_exit()}\n(while waiting for {what})")
        try:
            value = check()
            if value:
                return value
        except Exception as exc:  # noqa: BLE001 - not ready yet
            last = exc
        time.sleep(interval)
    raise StackError(f"timed out after {timeout:.0f}s waiting for {what}" + (f" (last error: {last})" if last else ""))


def http_status(url: str, timeout: float = 2.0) -> int:
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return resp.status
    except urllib.error.HTTPError as exc:
        return exc.code


def rpc_call(url: str, method: str, params: list | None = None, timeout: float = 5.0):
    import urllib.request

    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": params or []}).encode()
    req = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=timeout) as resp:
        out = json.loads(resp.read())
    if "error" in out:
        raise StackError(f"{method}: {out['error']}")
    return out["result"]
