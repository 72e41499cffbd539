"""Service tests run on the in-memory fakes, with the network blocked."""
from tests.unit.conftest import no_network  # noqa: F401
