"""Helpers of the edge's end-to-end tests (rate limit, idempotency, CORS): a client bound to
its own loopback address, and a second API process serving the same local stack."""

from __future__ import annotations

import contextlib
import os
import sys
import time
from pathlib import Path

import requests
from requests.adapters import HTTPAdapter

from dev.procs import free_port, http_status, spawn, stop_group, wait_until
from dev.stack import EMULATED_AWS, SCRUB


class _SourceAddress(HTTPAdapter):
    def __init__(self, ip: str, **kw):
        self._ip = ip
        super().__init__(**kw)

    def init_poolmanager(self, *args, **kw):
        kw["source_address"] = (self._ip, 0)
        return super().init_poolmanager(*args, **kw)


def client_from(ip: str) -> requests.Session:
    """A keep-alive session whose connections leave from `ip` (any 127.x.y.z is loopback on
    Linux): the API sees it as that client's address (requestContext.identity.sourceIp)."""
    s = requests.Session()
    s.mount("http://", _SourceAddress(ip))
    return s


def api_env(info: dict, **extra) -> dict:
    """The environment dev/stack.py gives its API process, for one more API process."""
    state = Path(info["state_dir"])
    env = {k: v for k, v in os.environ.items() if k not in (*SCRUB, "AWS_ENDPOINT_URL")}
    env.update(EMULATED_AWS, AWS_EC2_METADATA_DISABLED="true", PYTHONUNBUFFERED="1", SI64_STATE_DIR=str(state))
    env.update(
        {
            "AWS_ENDPOINT_URL": info["aws_endpoint"],
            "SI64_STAGE": "local",
            "SI64_TABLE_PREFIX": info["table_prefix"],
            "SI64_REFUND_QUEUE_URL": info["refund_queue_url"],
            "SI64_REFUND_DLQ_URL": info["refund_dlq_url"],
            "SOLANA_RPC_URL": info["rpc_url"],
            "SI64_TREASURY": info["treasury"],
            "SI64_TREASURY_KEYPAIR_FILE": str(state / "treasury.json"),
            "SI64_ADMIN_KEY_FILE": str(state / "admin_key"),
            "SI64_NETWORK": "localnet",
        }
    )
    env.update(extra)
    return env


@contextlib.contextmanager
def second_api(info: dict, log_path: Path, **extra_env):
    """`python -m dev.api_server` on a free port, against the stack's emulator and chain
    (another function instance: its own memory, the same tables). Yields its base URL."""
    port = free_port()
    with open(log_path, "wb") as out:
        proc = spawn(
            [sys.executable, "-m", "dev.api_server", "--host", "127.0.0.1", "--port", str(port)],
            api_env(info, **extra_env),
            out,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        t0 = time.monotonic()
        while http_status_safe(f"{url}/api/health") != 200:
            if proc.poll() is not None or time.monotonic() - t0 > 60:
                raise RuntimeError(f"second API did not start:\n{log_path.read_text(errors='replace')[-3000:]}")
            time.sleep(0.2)
        yield url
    finally:
        stop_group(proc)


def http_status_safe(url: str) -> int:
    try:
        return http_status(url)
    except OSError:
        return 0


def wait_for_window_start(window_s: int, within: float = 0.3) -> float:
    """Sleep until the next fixed window of `window_s` has just begun (wall clock, as the
    server's windows); returns the window's start (s)."""
    now = time.time()
    start = now - now % window_s
    if now - start > within:
        start += window_s
        time.sleep(start - now + 0.02)
    return start


__all__ = ["api_env", "client_from", "free_port", "second_api", "wait_for_window_start", "wait_until"]
