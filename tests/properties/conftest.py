"""Whole-system properties on the fakes: socket-free."""

from tests.support.network import no_network  # noqa: F401  (autouse: sockets blocked)
