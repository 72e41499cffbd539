"""Shared pytest set-up. Fixture plugins live in tests/fixtures/."""

import importlib.util
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

pytest_plugins = [
    name
    for name in ("tests.fixtures.chain", "tests.fixtures.aws", "tests.fixtures.dynamodb", "tests.fixtures.stack")
    if importlib.util.find_spec(name) is not None
]


def pytest_configure(config):
    """Under pytest-xdist (`make test`), install DynamoDB Local once in the controller before the
    workers start, so two workers never fetch and unpack the jar into the cache at the same time.
    A failed install is left for the tests that need it to report."""
    if hasattr(config, "workerinput") or not getattr(config.option, "numprocesses", None):
        return
    from dev import dynamodb_local

    try:
        dynamodb_local.ensure()
    except dynamodb_local.InstallError:
        pass
