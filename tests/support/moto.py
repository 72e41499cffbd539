"""In-process moto (`moto.mock_aws`), the one way a test runs the AWS adapters in the pytest process.

`in_process_aws()` sets dummy credentials and the region, drops any `AWS_ENDPOINT_URL` (so
boto3 talks to moto, never to a real endpoint) and starts `mock_aws`; everything is undone on
exit. `provisioned_aws(prefix)` also makes the resources of infra/resources.yaml under `prefix`
(tables and queues, by dev.provision) and yields what it made. The `moto_aws` fixture is the
bare one for a single test; a conftest builds a provisioned fixture of its own scope from
`provisioned_aws`.

In-process moto is not thread-safe: concurrency tests use the locked emulator (`aws_emulator`).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

REGION = "us-east-1"
DUMMY_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test"}


@contextmanager
def in_process_aws(region: str = REGION) -> Iterator[None]:
    from moto import mock_aws

    with pytest.MonkeyPatch.context() as mp:
        for k, v in {**DUMMY_CREDENTIALS, "AWS_DEFAULT_REGION": region}.items():
            mp.setenv(k, v)
        mp.delenv("AWS_ENDPOINT_URL", raising=False)
        with mock_aws():
            yield


@contextmanager
def provisioned_aws(prefix: str, region: str = REGION) -> Iterator[Any]:
    """In-process moto with infra/resources.yaml provisioned under `prefix`: yields
    dev.provision's `Provisioned` (prefix, tables, queue_url, dlq_url)."""
    with in_process_aws(region):
        from dev.provision import provision

        yield provision(prefix=prefix, endpoint_url=None, region=region)


@pytest.fixture
def moto_aws() -> Iterator[None]:
    """In-process moto for one test, nothing provisioned."""
    with in_process_aws():
        yield
