"""ports.WebhookStore: the fake and the adapter (claims table on DynamoDB Local), same cases."""

from __future__ import annotations

import threading

import pytest

from chalicelib.domain.errors import Conflict
from chalicelib.domain.webhooks import Webhook
from tests.contract.conftest import DUMMY_AWS, _dynamo_store
from tests.support.fakes import FakeDatabase


@pytest.fixture(params=["fake", pytest.param("dynamo", marks=pytest.mark.dynamodb_local)])
def hooks(request):
    if request.param == "fake":
        return FakeDatabase(shards=4).ports()["webhook_store"]
    for k, v in DUMMY_AWS.items():
        request.getfixturevalue("monkeypatch").setenv(k, v)
    _dynamo_store(request.getfixturevalue("ddb_tables"))  # empties the tables, binds the models
    from chalicelib.adapters.webhooks import WebhooksRepo

    return WebhooksRepo()


def hook(n: int, owner: str = "admin") -> Webhook:
    return Webhook(f"WH-{n}", owner, f"https://h{n}.example/x", ("contract.settled",), f"whsec_{n}", 1_000 + n)


def test_add_then_of_returns_them_oldest_first_secret_included(hooks):
    assert hooks.of("admin") == []
    hooks.add(hook(1), 10)
    hooks.add(hook(2), 10)
    hooks.add(hook(3, "wallet:W"), 10)
    assert hooks.of("admin") == [hook(1), hook(2)]
    assert hooks.of("wallet:W") == [hook(3, "wallet:W")]


def test_the_limit_is_a_conflict_that_writes_nothing(hooks):
    hooks.add(hook(1), 2)
    hooks.add(hook(2), 2)
    with pytest.raises(Conflict) as err:
        hooks.add(hook(3), 2)
    assert err.value.failed == {"webhooks"}
    assert hooks.of("admin") == [hook(1), hook(2)]


def test_remove_only_the_owners_webhook(hooks):
    hooks.add(hook(1), 10)
    hooks.add(hook(2), 10)
    assert hooks.remove("wallet:W", "WH-1") is False
    assert hooks.remove("admin", "WH-9") is False
    assert hooks.remove("admin", "WH-1") is True
    assert hooks.of("admin") == [hook(2)]
    assert hooks.remove("admin", "WH-1") is False


def test_concurrent_adds_lose_none(hooks):
    errors: list[BaseException] = []

    def add(n: int) -> None:
        try:
            hooks.add(hook(n), 10)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=add, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert sorted(w.webhook_id for w in hooks.of("admin")) == ["WH-0", "WH-1", "WH-2", "WH-3"]
