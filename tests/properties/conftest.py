"""Whole-system properties on the fakes: socket-free."""

from tests.unit.conftest import no_network  # noqa: F401  (autouse: sockets blocked)
