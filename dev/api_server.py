"""The HTTP API of `make run`: Chalice's local server, without the keep-alive stall.

    python -m dev.api_server [--host 127.0.0.1] [--port 8000] [--stage local]

Same app, same `.chalice/config.json` stage environment, same route validation and the
same `LocalGateway` as `chalice local --no-autoreload`, with one difference in the request
handler: `chalice local` writes the status line and headers in one send and the body in
a second, on a socket with Nagle's algorithm on. A client that reuses its connection (a
`requests.Session`, a browser) then gets the body only after its delayed ACK, ~40 ms
per response. Here the handler sets TCP_NODELAY and buffers its output, so each response
leaves in one write when the handler flushes it.

Routes: a path no route matches, or a method its route does not have, is answered 404
`{"detail": "No route for this method and path.", "code": "not_found", "reason": "route"}`
-- the body `infra/edge.yaml` gives API Gateway's MISSING_AUTHENTICATION_TOKEN response on a
deployed stage (API Gateway cannot tell the two apart, so neither does this server), where
`chalice local` answers 403 `{"message": "Missing Authentication Token"}` and 405
`{"Code", "Message"}`. OPTIONS on a known route is left to Chalice (CORS preflight).

Several processes can serve one port (``--reuse-port``: SO_REUSEPORT, the kernel spreads
connections across them), the way Lambda runs concurrent instances of one function;
`make run` starts ``$SI64_API_PROCESSES`` of them (default 1). The listen backlog is 512, not
socketserver's 5: a burst of new keep-alive connections (``make load``'s agents) otherwise
overflows the accept queue and some connections are reset.

The renter web app: `/`, `/web/...` and the local development wallet's `/dev/wallet...` are
answered by dev/web_static.py before any route (never part of the Lambda package).

CPU per route (measurement, off unless asked): with ``SI64_API_CPU_REPORT=PATH`` each process
adds up the CPU time of the thread that serves each request (``time.thread_time``: waiting for
a core does not count) by method and route, and writes ``PATH.<pid>.json`` when it exits:
``{"GET /api/contracts/{contract_id}": {"requests": n, "cpu_ms_per_request": x}, ...}``.

SIGTERM / SIGINT: stop accepting, close the socket, exit 0.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
import time

from chalice.local import ChaliceRequestHandler, RouteMatcher

from dev import web_static
from dev.procs import ROOT

# The same body as infra/edge.yaml's gateway responses MISSING_AUTHENTICATION_TOKEN and
# RESOURCE_NOT_FOUND (docs/api.md error shape); tests/e2e/test_hardening_http.py checks they agree.
NO_ROUTE_STATUS = 404
NO_ROUTE_BODY = {"detail": "No route for this method and path.", "code": "not_found", "reason": "route"}


class CpuTally:
    """Thread CPU seconds and requests per key (thread-safe); `write` saves ms per request as JSON."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by: dict[str, list[float]] = {}

    def add(self, key: str, seconds: float) -> None:
        with self._lock:
            n_s = self._by.setdefault(key, [0, 0.0])
            n_s[0] += 1
            n_s[1] += seconds

    def report(self) -> dict:
        with self._lock:
            return {
                k: {"requests": int(n), "cpu_ms_per_request": round(s * 1000 / n, 3)}
                for k, (n, s) in sorted(self._by.items())
            }

    def write(self, path: str) -> None:
        with open(f"{path}.{os.getpid()}.json", "w") as f:
            json.dump(self.report(), f, indent=1)


CPU: CpuTally | None = None  # set by main() when SI64_API_CPU_REPORT names a file


class NoDelayHandler(ChaliceRequestHandler):
    """ChaliceRequestHandler whose response (headers and body) goes out in one write, unstalled,
    whose unknown routes and methods answer in the docs/api.md error shape, and whose events carry
    the peer's address as `requestContext.identity.sourceIp` (what API Gateway does; `chalice
    local` writes 127.0.0.1 for every client, so per-IP limits could not tell two clients apart:
    connect from 127.0.0.2, 127.0.0.3, ... to be another client)."""

    disable_nagle_algorithm = True  # socketserver.StreamRequestHandler.setup sets TCP_NODELAY
    wbufsize = -1  # buffered wfile: BaseHTTPRequestHandler.handle_one_request flushes it once per response

    def __init__(self, request, client_address, server, app_object, config):
        self._routes = app_object.routes
        self._matcher = RouteMatcher(list(app_object.routes))
        super().__init__(request, client_address, server, app_object=app_object, config=config)

    def handle_one_request(self) -> None:
        if CPU is None:
            super().handle_one_request()
            return
        self.command = None  # stays None when the client closed the connection: no request
        started = time.thread_time()
        super().handle_one_request()
        if self.command:
            CPU.add(self.route_key(), time.thread_time() - started)

    def route_key(self) -> str:
        """`METHOD /route/{param}` of this request, or `METHOD (no route)`."""
        try:
            route = self._matcher.match_route(self.path).route
        except ValueError:
            route = "(no route)"
        return f"{self.command} {route}"

    def _has_route(self) -> bool:
        try:
            route = self._matcher.match_route(self.path).route
        except ValueError:
            return False
        return self.command == "OPTIONS" or self.command in self._routes[route]

    def _generic_handle(self) -> None:
        self.local_gateway.event_converter.LOCAL_SOURCE_IP = self.client_address[0]  # this connection's only
        if web_static.handles(self.command, self.path):  # the renter web app and its dev wallet (local only)
            web_static.handle(self)
            return
        if self._has_route():
            super()._generic_handle()
            return
        self._parse_payload()  # read the body off the connection, so a keep-alive client stays in step
        body = json.dumps(NO_ROUTE_BODY, separators=(",", ":")).encode()
        self.send_response(NO_ROUTE_STATUS)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    do_GET = do_PUT = do_POST = do_HEAD = do_DELETE = do_PATCH = do_OPTIONS = _generic_handle


class _ThreadLocalRequest:
    """`app.current_request` per thread. Chalice keeps one attribute on the app object (one
    request per Lambda process); the threaded local server runs requests concurrently, so a
    view could read another thread's request."""

    _local = threading.local()

    def __get__(self, obj, owner=None):
        return getattr(self._local, "request", None) if obj is not None else self

    def __set__(self, obj, value):
        self._local.request = value


def _server_cls(reuse_port: bool):
    import socket

    from chalice.local import ThreadedHTTPServer

    class Server(ThreadedHTTPServer):
        request_queue_size = 512
        daemon_threads = True

        def server_bind(self):
            if reuse_port:
                self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            super().server_bind()

    return Server


def create_server(host: str, port: int, stage: str = "local", project_dir: str = str(ROOT), reuse_port: bool = False):
    """What `chalice local` builds (chalice.cli.create_local_server), with NoDelayHandler."""
    from chalice.cli.factory import CLIFactory
    from chalice.deploy.validate import validate_routes
    from chalice.local import CustomLocalChalice, LocalChalice, LocalDevServer

    os.environ["AWS_CHALICE_CLI_MODE"] = "true"  # as the chalice CLI sets it
    config = CLIFactory(project_dir, environ=os.environ).create_config_obj(chalice_stage_name=stage)
    app_obj = config.chalice_app
    validate_routes(app_obj.routes)
    CustomLocalChalice.__bases__ = (LocalChalice, app_obj.__class__)  # as chalice.local.create_local_server
    CustomLocalChalice.current_request = _ThreadLocalRequest()
    app_obj.__dict__.pop("current_request", None)
    app_obj.__class__ = CustomLocalChalice
    return LocalDevServer(app_obj, config, host, port, handler_cls=NoDelayHandler, server_cls=_server_cls(reuse_port))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m dev.api_server", description=__doc__.splitlines()[0])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=8000)
    ap.add_argument("--stage", default="local")
    ap.add_argument("--reuse-port", action="store_true", help="SO_REUSEPORT: several processes on one port")
    args = ap.parse_args(argv)
    from chalicelib import observability

    observability.install_json_logging()  # the deployed format: one JSON line per log record
    global CPU
    if report := os.environ.get("SI64_API_CPU_REPORT"):
        import atexit

        CPU = CpuTally()
        atexit.register(CPU.write, report)
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    os.chdir(ROOT)
    server = create_server(args.host, args.port, args.stage, reuse_port=args.reuse_port)

    def _stop(signum, frame):
        threading.Thread(target=server.shutdown, daemon=True).start()  # shutdown() blocks: not here

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    try:
        server.serve_forever()
    finally:
        server.server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
