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
