"""RPC errors, timeouts and slow answers through the REAL JSON-RPC adapters (`SolanaRpc`,
`RefundChainRpc` over urllib) against a node on 127.0.0.1 that answers late, wrongly, or
not at all: the one place in the fault suite that opens sockets (loopback only).

The node serves the fake chain's transactions (FakeRpc's in-memory node) over real HTTP, so
a slow answer inside the timeout is a normal payment, and one beyond it is a 503 that wrote
nothing; the refund worker leaves its message for redelivery and records nothing.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from chalicelib.adapters.refund_chain import RefundChainRpc
from chalicelib.adapters.solana_rpc import SolanaRpc
from chalicelib.domain.errors import Unavailable
from tests.support.fakes import FakeRpc, FakeTreasurySigner

from .harness import World, check, check_settled


@pytest.fixture(autouse=True)
def no_network():
    """Overrides the suite's blocker: loopback only (the slow node), nothing else."""
    saved = socket.socket.connect

    def connect(sock, address, *a, **k):
        if not (isinstance(address, tuple) and address[0] in ("127.0.0.1", "::1")):
            raise RuntimeError(f"network access beyond loopback: {address!r}")
        return saved(sock, address, *a, **k)

    socket.socket.connect = connect
    try:
        yield
    finally:
        socket.socket.connect = saved


class SlowNode:
    """JSON-RPC over HTTP on 127.0.0.1, answering from a FakeRpc node; per method: a delay,
    an HTTP status, a JSON-RPC error, or a body that is not JSON."""

    def __init__(self, backing: FakeRpc):
        self.backing = backing
        self.delay: dict[str, float] = {}
        self.http_status: dict[str, int] = {}
        self.rpc_error: dict[str, dict] = {}
        self.garbage: set[str] = set()
        self.extra: dict[str, object] = {}  # methods the fake node does not have
        self.asked: list[str] = []
        node = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                req = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                method = req["method"]
                node.asked.append(method)
                time.sleep(node.delay.get(method, node.delay.get("*", 0)))
                if method in node.http_status:
                    return self._send(node.http_status[method], b"bad gateway")
                if method in node.garbage:
                    return self._send(200, b'{"jsonrpc": "2.0", "res')
                if method in node.rpc_error:
                    doc = {"jsonrpc": "2.0", "id": req["id"], "error": node.rpc_error[method]}
                elif method in node.extra:
                    doc = {"jsonrpc": "2.0", "id": req["id"], "result": node.extra[method]}
                else:
                    doc = {
                        "jsonrpc": "2.0",
                        "id": req["id"],
                        "result": FakeRpc.call(node.backing, method, req.get("params")),
                    }
                self._send(200, json.dumps(doc).encode())

            def _send(self, status, body):
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (its timeout): as a real node sees it

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def w():
    return World()


@pytest.fixture
def node(w):
    with SlowNode(w.rpc) as n:
        yield n


def rentals_over(w: World, node: SlowNode, timeout: float):
    return replace(w.c.rentals, rpc=SolanaRpc(node.url, timeout))


def test_a_slow_answer_within_the_timeout_is_a_normal_payment(w, node):
    node.delay["*"] = 0.15
    receipt = rentals_over(w, node, 1.0).rent(w.rent_request(3600))
    assert receipt.first and "getTransaction" in node.asked
    check(w)


@pytest.mark.parametrize("fault", ["timeout", "http_502", "rpc_error", "not_json"])
def test_a_node_that_times_out_or_answers_wrongly_is_503_and_nothing_is_written(w, node, fault):
    req = w.rent_request(3600)
    k = w.rent(3600)
    ext = w.extend_request(k, 600)
    if fault == "timeout":
        node.delay["getTransaction"] = 1.5
    elif fault == "http_502":
        node.http_status["getTransaction"] = 502
    elif fault == "rpc_error":
        node.rpc_error["getTransaction"] = {"code": -32005, "message": "Node is behind by 120 slots"}
    else:
        node.garbage.add("getTransaction")
    rentals = rentals_over(w, node, 0.4)
    before = w.db.snapshot()
    for call in (lambda: rentals.rent(req), lambda: rentals.extend(ext)):
        t0 = time.monotonic()
        with pytest.raises(Unavailable) as exc:
            call()
        assert exc.value.reason == "rpc" and time.monotonic() - t0 < 1.4  # bounded by the timeout
    assert w.db.snapshot() == before
    node.delay.clear(), node.http_status.clear(), node.rpc_error.clear(), node.garbage.clear()
    assert rentals.rent(req).first and rentals.extend(ext).first  # the same payments, once it answers
    check(w)


@pytest.mark.parametrize("slow", ["getLatestBlockhash", "getBlockHeight"])
def test_a_slow_refund_chain_leaves_the_message_for_redelivery_and_records_nothing(w, node, slow):
    k = w.rent(3600, overpay=80_000)
    w.clock.advance(600)
    w.c.rentals.settle(k.contract_id, k.wallet)
    [m] = w.collect()
    if slow == "getBlockHeight":  # the refund is SENT already (dropped by the node): its status is read first
        w.chain.drop_sends = 100
        assert w.deliver([m]) == [m.message_id]
        w.chain.drop_sends = 0
    node.extra["getLatestBlockhash"] = {
        "context": {"slot": 1},
        "value": {"blockhash": "1" * 32, "lastValidBlockHeight": 10**9},
    }
    node.extra["getBlockHeight"] = 5
    node.delay[slow] = 1.5
    chain = RefundChainRpc(SolanaRpc(node.url, 0.4), FakeTreasurySigner(w.chain.treasury))
    worker = replace(w.c.refund_worker, chain=chain)
    before = w.db.snapshot()
    from chalicelib.jobs.refunds import handle_records

    t0 = time.monotonic()
    out = handle_records([{"messageId": m.message_id, "body": m.body}], worker)
    assert out == {"batchItemFailures": [{"itemIdentifier": m.message_id}]}
    assert time.monotonic() - t0 < 1.4
    assert w.db.snapshot() == before  # nothing recorded: no step without the chain's answer
    assert node.asked == [slow]
    check(w)
    w.drain()  # the message comes back once the node answers (here: the fake chain)
    check_settled(w)
    assert len(w.chain.transfers_to(k.wallet)) == 1
