"""Unit tests run with the network blocked (tests/support/network.py)."""

from tests.support.network import no_network  # noqa: F401  (autouse: sockets blocked)
