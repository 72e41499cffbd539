"""The unit-test network block (tests/support/network.py) holds, and cannot be swallowed."""

from __future__ import annotations

import socket
import urllib.request

import pytest

from tests.support.network import NetworkBlocked


def test_socket_connect_raises(no_network):
    for attempt in (
        lambda: socket.create_connection(("127.0.0.1", 9)),
        lambda: socket.socket().connect(("127.0.0.1", 9)),
        lambda: socket.socket().connect_ex(("127.0.0.1", 9)),
        lambda: socket.socket(socket.AF_UNIX).connect("/tmp/none.sock"),
        lambda: socket.getaddrinfo("example.com", 443),
        lambda: urllib.request.urlopen("http://127.0.0.1:9/", timeout=1),
    ):
        with pytest.raises(NetworkBlocked):
            attempt()
    assert len(no_network.attempts) == 6
    no_network.attempts.clear()  # this test meant to try; any other test that tries fails at teardown


def test_the_real_rpc_adapter_cannot_leave_the_process(no_network):
    from chalicelib.adapters.solana_rpc import SolanaRpc

    with pytest.raises(NetworkBlocked):
        SolanaRpc("http://127.0.0.1:9", timeout=1).health()  # health() swallows Unavailable, not this
    no_network.attempts.clear()
