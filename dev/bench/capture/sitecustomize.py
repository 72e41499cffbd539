"""Record every AWS request a stack process sends (DynamoDB's with their bodies), for
`python -m dev.bench.jvm_calls`.

Loaded by Python at start-up when this directory is on PYTHONPATH; does nothing unless
SI64_CAPTURE_DIR is set. Each process appends JSON lines `{"t", "proc", "target", "body",
"status"}` to `$SI64_CAPTURE_DIR/<pid>.jsonl` (buffered, written every 2 s and at exit)::

    PYTHONPATH=dev/bench/capture SI64_CAPTURE_DIR=/tmp/cap \\
        python -m dev.load --ramp --ramp-max 4 --step-seconds 15 --out /tmp/cap.json

A measuring aid only (it costs the processes CPU): never on for figures of CPU per operation.
"""

import os

_DIR = os.environ.get("SI64_CAPTURE_DIR")


def _install(directory: str) -> None:
    import atexit
    import json
    import sys
    import threading
    import time

    lock = threading.Lock()
    buf: list[str] = []
    proc = " ".join(sys.argv[1:3]) or sys.argv[0]
    path = os.path.join(directory, f"{os.getpid()}.jsonl")

    def flush() -> None:
        with lock:
            data = "".join(buf)
            buf.clear()
        if data:
            with open(path, "a") as fh:
                fh.write(data)

    def flusher() -> None:
        while True:
            time.sleep(2)
            flush()

    try:
        from botocore import endpoint
    except ImportError:
        return
    original = endpoint.Endpoint._send

    def _send(self, request):  # type: ignore[no-untyped-def]
        resp = original(self, request)
        target = request.headers.get("X-Amz-Target")
        target = target.decode() if isinstance(target, bytes) else target
        body = request.body
        body = body.decode() if isinstance(body, bytes) else body
        if target and target.startswith("DynamoDB_"):
            rec = {"t": time.time(), "proc": proc, "target": target, "body": body, "status": resp.status_code}
        else:  # SQS and the rest: the operation only
            rec = {"t": time.time(), "proc": proc, "target": target or str(body)[:60], "status": resp.status_code}
        with lock:
            buf.append(json.dumps(rec) + "\n")
        return resp

    endpoint.Endpoint._send = _send
    threading.Thread(target=flusher, daemon=True).start()
    atexit.register(flush)


if _DIR:
    _install(_DIR)
