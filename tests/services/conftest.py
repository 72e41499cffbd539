from tests.unit.conftest import no_network  # noqa: F401
