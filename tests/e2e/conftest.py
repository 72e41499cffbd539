"""Fixtures shared by the end-to-end modules: an HTTP client and a Solana payer for the stack."""

import pytest

from tests.e2e.client import Api, Payer


@pytest.fixture(scope="module")
def api(local_stack) -> Api:
    return Api(local_stack["api_url"], local_stack["admin_key"])


@pytest.fixture(scope="module")
def payer(local_stack):
    with Payer(local_stack["rpc_url"]) as p:
        yield p
