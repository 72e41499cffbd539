"""The fakes' own tests (tests/support/test_*.py) run socket-free, like the service tests."""

from tests.support.network import no_network  # noqa: F401  (autouse: sockets blocked)
