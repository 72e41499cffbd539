"""Local AWS emulator: moto's server app behind ONE global lock, DynamoDB forwarded.

With ``--dynamodb-endpoint`` (what `make run` uses) every DynamoDB request is forwarded,
unchanged and without the lock, to DynamoDB Local (dev/dynamodb_local.py), so one endpoint
still serves every AWS API a stock client or the AWS CLI calls; moto answers the rest (SQS,
SSM, CloudFormation). Without it (``SI64_DYNAMODB=moto``) moto serves DynamoDB too.

moto is not thread-safe (under concurrent requests it loses committed writes
and leaks writes of failed transactions), so every request -- including the
iteration of its response body -- runs while holding a single
``threading.Lock``. The HTTP server itself is werkzeug's threaded server, so
slow clients never block the accept loop; only moto's work is serialized.

CLI::

    python -m dev.aws_emulator --port 4566     # default: $SI64_AWS_PORT or 4566

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


class DynamoDBForwarder:
    """WSGI middleware: DynamoDB requests (``X-Amz-Target: DynamoDB_*``) go to another endpoint
    (DynamoDB Local) byte for byte, on one keep-alive connection per server thread; the rest to `app`."""

    HOP = {"connection", "keep-alive", "transfer-encoding", "host", "content-length"}

    def __init__(self, app, endpoint: str):
        from urllib.parse import urlsplit

        parts = urlsplit(endpoint)
        self.app = app
        self.target = (parts.hostname, parts.port)
        self._local = threading.local()

    def _conn(self):
        import http.client

        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._local.conn = http.client.HTTPConnection(*self.target, timeout=60)
        return conn

    def __call__(self, environ, start_response):
        if not environ.get("HTTP_X_AMZ_TARGET", "").startswith("DynamoDB_"):
            return self.app(environ, start_response)
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length) if length else b""
        headers = {
            key[5:].replace("_", "-").title(): value
            for key, value in environ.items()
            if key.startswith("HTTP_") and key[5:].replace("_", "-").lower() not in self.HOP
        }
        if environ.get("CONTENT_TYPE"):
            headers["Content-Type"] = environ["CONTENT_TYPE"]
        for attempt in (1, 2):  # a keep-alive connection the server closed meanwhile: once more, fresh
            conn = self._conn()
            try:
                conn.request(environ["REQUEST_METHOD"], environ.get("PATH_INFO") or "/", body=body, headers=headers)
                resp = conn.getresponse()
                data = resp.read()
                break
            except (OSError, ConnectionError) as exc:
                conn.close()
                self._local.conn = None
                if attempt == 2:
                    start_response("503 Service Unavailable", [("Content-Type", "application/x-amz-json-1.0")])
                    return [b'{"__type":"ServiceUnavailable","message":"DynamoDB Local: %s"}' % str(exc).encode()]
        out = [(k, v) for k, v in resp.getheaders() if k.lower() not in self.HOP]
        out.append(("Content-Length", str(len(data))))
        start_response(f"{resp.status} {resp.reason}", out)
        return [data]


def make_app(dynamodb_endpoint: str | None = None):
    from moto.moto_server.werkzeug_app import (
        DomainDispatcherApplication,
        create_backend_app,
    )

    app = SerializedApp(DomainDispatcherApplication(create_backend_app))
    return DynamoDBForwarder(app, dynamodb_endpoint) if dynamodb_endpoint else app


class AwsEmulator:
    """The locked moto server on a background thread of this process."""

    def __init__(self, host: str = "127.0.0.1", port: int = DEFAULT_PORT, dynamodb_endpoint: str | None = None):
        self.host = host
        self.port = port
        self.dynamodb_endpoint = dynamodb_endpoint
        self._server = None
        self._thread: threading.Thread | None = None

    @property
    def endpoint(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> AwsEmulator:
        from moto.moto_server.werkzeug_app import MotoRequestHandler
        from werkzeug.serving import make_server

        app = make_app(self.dynamodb_endpoint)
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
    parser = argparse.ArgumentParser(prog="python -m dev.aws_emulator", description=__doc__.split("\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=int(os.environ.get("SI64_AWS_PORT") or DEFAULT_PORT))
    parser.add_argument("--dynamodb-endpoint", default=None, help="forward DynamoDB requests here (DynamoDB Local)")
    args = parser.parse_args(argv)

    import logging

    # werkzeug logs every request at INFO; keep errors only unless asked.
    logging.basicConfig(level=os.environ.get("SI64_AWS_LOG_LEVEL", "WARNING"))
    logging.getLogger("werkzeug").setLevel(os.environ.get("SI64_AWS_LOG_LEVEL", "WARNING"))

    try:
        emu = AwsEmulator(args.host, args.port, args.dynamodb_endpoint).start()
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
