"""Socket-free tests: any socket connect (and any DNS lookup) raises.

A directory of socket-free tests turns the blocker on for every test with, in its conftest.py:

    from tests.support.network import no_network  # noqa: F401  (autouse fixture)

The blocker raises `NetworkBlocked` (not an OSError, so no adapter mistakes it for
an outage) and also fails the test at teardown if a connect was attempted, even
when the code under test swallowed the exception.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, NoReturn

import pytest


class NetworkBlocked(RuntimeError):
    pass


class SocketBlocker:
    def __init__(self) -> None:
        self.attempts: list[str] = []

    def _refuse(self, what: str) -> NoReturn:
        self.attempts.append(what)
        raise NetworkBlocked(f"network access in a socket-free test: {what}")

    @contextmanager
    def active(self) -> Iterator[SocketBlocker]:
        saved = (socket.socket.connect, socket.socket.connect_ex, socket.getaddrinfo, socket.create_connection)

        def connect(sock: socket.socket, address: Any, *a: Any, **k: Any) -> NoReturn:
            self._refuse(f"connect {address!r}")

        def connect_ex(sock: socket.socket, address: Any, *a: Any, **k: Any) -> NoReturn:
            self._refuse(f"connect_ex {address!r}")

        def getaddrinfo(host: Any, *a: Any, **k: Any) -> NoReturn:
            self._refuse(f"getaddrinfo {host!r}")

        def create_connection(address: Any, *a: Any, **k: Any) -> NoReturn:
            self._refuse(f"create_connection {address!r}")

        socket.socket.connect = connect  # type: ignore[method-assign,assignment]
        socket.socket.connect_ex = connect_ex  # type: ignore[method-assign,assignment]
        socket.getaddrinfo = getaddrinfo
        socket.create_connection = create_connection
        try:
            yield self
        finally:
            socket.socket.connect, socket.socket.connect_ex, socket.getaddrinfo, socket.create_connection = saved  # type: ignore[method-assign]


@pytest.fixture(autouse=True)
def no_network() -> Iterator[SocketBlocker]:
    """Autouse: sockets cannot connect for the duration of each test."""
    blocker = SocketBlocker()
    with blocker.active():
        yield blocker
    if blocker.attempts:
        pytest.fail(f"the test tried to reach the network: {blocker.attempts}", pytrace=False)
