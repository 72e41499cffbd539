"""SIGTERM stops the AWS emulator at once, whatever it holds.

Its state lives in memory and dies with the process, so after the server stops it exits without
the interpreter's teardown: freeing tens of thousands of moto items took ~8 s, the stack's whole
grace before SIGKILL. An atexit hook stands in for that teardown here: it must never run.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import boto3
from botocore.config import Config

ROOT = Path(__file__).resolve().parents[2]
STACK_GRACE_SECONDS = 8.0  # dev/procs.py stop_group: SIGKILL after this


def test_sigterm_exits_0_skipping_the_teardown_with_a_long_poll_in_flight(tmp_path):
    marker = tmp_path / "teardown-ran"
    code = (
        "import atexit, pathlib, runpy;"
        f"atexit.register(pathlib.Path({str(marker)!r}).write_text, 'ran');"
        "runpy.run_module('dev.aws_emulator', run_name='__main__')"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    proc = subprocess.Popen(
        [sys.executable, "-c", code, "--port", "0"],
        cwd=ROOT,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        start_new_session=True,
    )
    try:
        ready = proc.stdout.readline()
        assert ready.startswith("aws emulator ready http://127.0.0.1:"), ready
        sqs = boto3.client(
            "sqs",
            endpoint_url=ready.split()[-1],
            region_name="us-east-1",
            aws_access_key_id="test",
            aws_secret_access_key="test",
            config=Config(retries={"max_attempts": 0}, read_timeout=30),
        )
        url = sqs.create_queue(QueueName="q")["QueueUrl"]
        polled = threading.Event()

        def long_poll():
            try:
                sqs.receive_message(QueueUrl=url, WaitTimeSeconds=20)
            except Exception:  # noqa: BLE001 - the emulator went away under it: expected
                pass
            polled.set()

        threading.Thread(target=long_poll, daemon=True).start()
        sqs.list_queues()  # the poll is waiting (without the lock): other requests still go through
        os.killpg(proc.pid, signal.SIGTERM)
        assert proc.wait(timeout=STACK_GRACE_SECONDS) == 0
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
    assert not marker.exists(), "the interpreter's teardown ran after SIGTERM"
    assert polled.wait(30), "the in-flight long poll was left hanging"
