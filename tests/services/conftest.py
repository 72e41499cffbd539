"""Service tests run on the fakes of tests/support, with sockets blocked."""
from tests.unit.conftest import no_network  # noqa: F401
