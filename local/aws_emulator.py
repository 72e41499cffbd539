"""Local AWS emulator: moto's server app behind ONE global lock.

moto is not thread-safe (under concurrent requests it loses committed writes
and leaks writes of failed transactions), so every request -- including the
iteration of its response body -- runs while holding a single
``threading.Lock``. The HTTP server itself is werkzeug's threaded server, so
slow clients never block the accept loop; only moto's work is serialized.

CLI::

    python -m local.aws_emulator --port 4566     # default: $SI64_AWS_PORT or 4566

prints ``aws emulator ready http://127.0.0.1:<port>`` once it accepts requests
and runs until SIGINT/SIGTERM. ``--port 0`` picks a free port (the ready line
tells which).

The stock AWS CLI works against it with dummy credentials::

    export AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_DEFAULT_REGION=us-east-1
    aws --endpoint-url http://127.0.0.1:4566 dynamodb list-tables

Programmatic use (tests)::

    emu = AwsEmulator(port=0).start()
    emu.endpoint          # http://127.0.0.1:<port>
    emu.stop()
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading

DEFAULT_PORT = 4566
DUMMY_ENV = {
    "AWS_ACCESS_KEY_ID": "test",
    "AWS_SECRET_ACCESS_KEY": "test",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_REGION": "us-east-1",
}


# The one lock every emulated request holds while moto works on it.
REQUEST_LOCK = threading.Lock()
_held = threading.local()


class SerializedApp:
    """WSGI middleware: one request at a time through the wrapped app."""

    def __init__(self, app, lock: threading.Lock = REQUEST_LOCK):
        self.app = app
        self.lock = lock
        _patch_sqs_long_poll(lock)

    def __call__(self, environ, start_response):
        with self.lock:
            _held.lock = True
            try:
                result = self.app(environ, start_response)
                try:
                    # Materialize the body while still holding the lock: a
                    # lazy iterable may read backend state.
                    body = list(result)
                finally:
                    close = getattr(result, "close", None)
                    if close is not None:
                        close()
            finally:
                _held.lock = False
        return body


_patched = False


def _patch_sqs_long_poll(lock: threading.Lock) -> None:
    """Let an SQS long poll (WaitTimeSeconds > 0) wait WITHOUT the lock.

    moto implements long polling by waiting inside the request; holding the
    global lock there would stall every other request for up to 20 s. While a
    long poll waits for messages we release the lock and take it back before
    moto looks at the queue again.
    """
    global _patched
    if _patched:
        return
    from moto.sqs.models import Queue

    original = Queue.wait_for_messages

    def wait_for_messages(self, timeout):
        if not getattr(_held, "lock", False):
            return original(self, timeout)
        lock.release()
        try:
            original(self, timeout)
        finally:
            lock.acquire()

    Queue.wait_for_messages = wait_for_messages
    _patched = True


def make_app():
    from moto.moto_server.werkzeug_app import (
        DomainDispatcherApplication,
        create_backend_app,
    )

    return SerializedApp(DomainDispatcherApplication(create_backend_app))


class AwsEmulator:
    """The locked moto server on a background thread of this process."""

    def __init__(self, host: str = "127.0.0.1", port: int = DEFAULT_PORT):
        self.host = host
        self.port = port
        self._server = None
        self._thread: threading.Thread | None = None

    @property
    def endpoint(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> AwsEmulator:
        from moto.moto_server.werkzeug_app import MotoRequestHandler
        from werkzeug.serving import make_server

        app = make_app()
        self._server = make_server(self.host, self.port, app, threaded=True, request_handler=MotoRequestHandler)
        self.port = self._server.server_address[1]
        # moto builds some URLs (e.g. SQS queue URLs) from MOTO_PORT.
        os.environ["MOTO_PORT"] = str(self.port)
        self._thread = threading.Thread(target=self._server.serve_forever, name="aws-emulator", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None

    def __enter__(self) -> AwsEmulator:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m local.aws_emulator", description=__doc__.split("\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=int(os.environ.get("SI64_AWS_PORT") or DEFAULT_PORT))
    args = parser.parse_args(argv)

    import logging

    # werkzeug logs every request at INFO; keep errors only unless asked.
    logging.basicConfig(level=os.environ.get("SI64_AWS_LOG_LEVEL", "WARNING"))
    logging.getLogger("werkzeug").setLevel(os.environ.get("SI64_AWS_LOG_LEVEL", "WARNING"))

    try:
        emu = AwsEmulator(args.host, args.port).start()
    except OSError as exc:
        print(
            f"aws emulator: cannot listen on {args.host}:{args.port} ({exc.strerror}); "
            "set SI64_AWS_PORT to another port",
            file=sys.stderr,
        )
        return 2

    stop = threading.Event()

    def _stop(signum, frame):
        stop.set()

    signal.signal(signal.SIGINT, _stop)
    signal.signal(signal.SIGTERM, _stop)
    print(f"aws emulator ready {emu.endpoint}", flush=True)
    while not stop.wait(0.5):
        pass
    emu.stop()
    return 0


if __name__ == "__main__":
    code = main()
    # The emulated state lives in this process and dies with it: skip the interpreter's teardown,
    # which frees every object moto holds (seconds at tens of thousands of items, longer than the
    # stack's grace before SIGKILL) while request threads may still be running.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
