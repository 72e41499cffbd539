"""Unit tests run with the network blocked: any socket connect (and any DNS lookup) raises.

Reuse it in another directory of socket-free tests (e.g. tests/services/) with, in
that directory's conftest.py:

    from tests.unit.conftest import no_network  # noqa: F401  (autouse fixture)

The blocker raises `NetworkBlocked` (not an OSError, so no adapter mistakes it for
an outage) and also fails the test at teardown if a connect was attempted, even
when the code under test swallowed the exception.
"""

from __future__ import annotations

import socket
from contextlib import contextmanager

import pytest


class NetworkBlocked(RuntimeError):
    pass


class SocketBlocker:
    def __init__(self):
        self.attempts: list[str] = []

    def _refuse(self, what: str):
        self.attempts.append(what)
        raise NetworkBlocked(f"network access in a socket-free test: {what}")

    @contextmanager
    def active(self):
        saved = (socket.socket.connect, socket.socket.connect_ex, socket.getaddrinfo, socket.create_connection)
        socket.socket.connect = lambda sock, address, *a, **k: self._refuse(f"connect {address!r}")
        socket.socket.connect_ex = lambda sock, address, *a, **k: self._refuse(f"connect_ex {address!r}")
        socket.getaddrinfo = lambda host, *a, **k: self._refuse(f"getaddrinfo {host!r}")
        socket.create_connection = lambda address, *a, **k: self._refuse(f"create_connection {address!r}")
        try:
            yield self
        finally:
            socket.socket.connect, socket.socket.connect_ex, socket.getaddrinfo, socket.create_connection = saved


@pytest.fixture(autouse=True)
def no_network():
    """Autouse: sockets cannot connect for the duration of each test."""
    blocker = SocketBlocker()
    with blocker.active():
        yield blocker
    if blocker.attempts:
        pytest.fail(f"the test tried to reach the network: {blocker.attempts}", pytrace=False)
