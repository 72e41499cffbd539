"""Integration set-up: in-process moto (tests/support/moto.py), the real template, fakes for chain and clock.

In-process moto is not thread-safe: concurrency tests use the locked emulator
(`aws_emulator` fixture) instead.
"""

from __future__ import annotations

import hashlib
import json

import pytest

from chalicelib import bootstrap
from chalicelib.config import Settings
from tests.support.fakes import ALWAYS_COVERED_SECONDS, FakeClock, FakeRpc
from tests.support.moto import provisioned_aws

TEST_DEVICES = [
    {
        "device_id": f"device-{t.lower()}-00{i}",
        "name": f"{t}-{i}",
        "tier": t,
        "uri": f"n{i}.example",
        "address": "127.0.0.1",
        "region": "Test",
        "ram": "8GB",
    }
    for t, n in (("M2", 2), ("ORIN", 1), ("M3_ULTRA", 1), ("THOR", 1))
    for i in range(1, n + 1)
]
TREASURY = "9xQeWvG816bUx9EPjHmaT23yvVM2ZWbrrpZb9PusVFin"
ADMIN_KEY = "test-admin-key-0123456789"


@pytest.fixture
def aws():
    with provisioned_aws("si64-test") as provisioned:
        yield provisioned


def make_container(provisioned, capacity=2, **overrides):
    s = Settings(
        stage="test",
        region="us-east-1",
        coverage_grace_seconds=ALWAYS_COVERED_SECONDS,
        aws_endpoint_url=overrides.pop("endpoint", None),
        table_prefix=provisioned.prefix,
        refund_queue_url=provisioned.queue_url,
        refund_dlq_url=provisioned.dlq_url,
        treasury=TREASURY,
        admin_key=ADMIN_KEY,
        rate_limit=(100_000, 10),
    )
    clock = FakeClock()
    rpc = FakeRpc(treasury=TREASURY, clock=clock)
    c = bootstrap.build(s, rpc=rpc, clock=clock, **overrides)
    c.operator.seed_devices(TEST_DEVICES, capacity)
    return c


@pytest.fixture
def container(aws):
    c = make_container(aws)
    bootstrap.set_container(c)
    yield c
    bootstrap.set_container(None)


@pytest.fixture
def client(container):
    from chalice.test import Client

    from app import app

    with Client(app) as cl:
        yield cl


class Api:
    """A tiny JSON helper over chalice.test.Client."""

    def __init__(self, client, container):
        self.client, self.c = client, container

    def get(self, path, headers=None):
        r = self.client.http.get(path, headers=headers or {})
        return r.status_code, json.loads(r.body or b"null")

    def post(self, path, body=None, headers=None, raw=None):
        data = raw if raw is not None else json.dumps(body)
        r = self.client.http.post(path, body=data, headers={"Content-Type": "application/json", **(headers or {})})
        return r.status_code, json.loads(r.body or b"null")

    def key_for(self, device_id):
        return self.c.operator.issue_device_key(device_id)


@pytest.fixture
def api(client, container):
    return Api(client, container)


def sha(s):
    return hashlib.sha256(s.encode()).hexdigest()
