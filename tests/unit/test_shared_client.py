"""Every PynamoDB model, and the cross-table calls, make their calls with one botocore client per
process and endpoint settings (each build costs ~0.2 s of CPU): not one client per model class."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pynamodb.connection.base
import pytest

from chalicelib.adapters import dynamo, models


class CountingSession:
    def __init__(self) -> None:
        self.built: list[Any] = []

    def create_client(self, *args: object, **kwargs: object) -> object:
        url = kwargs.get("endpoint_url")
        events = SimpleNamespace(register_first=lambda *a, **k: None)
        client = SimpleNamespace(_request_signer=None, meta=SimpleNamespace(events=events, endpoint_url=url))
        self.built.append((url, client))
        return client


@pytest.fixture
def session(monkeypatch):
    s = CountingSession()
    monkeypatch.setattr(pynamodb.connection.base, "get_session", lambda: s)
    monkeypatch.setattr(dynamo, "_connections", {})
    everything = [*models.MODELS.values(), *models.TABLE_OF]
    for m in everything:
        for name in ("table_name", "region", "host"):
            monkeypatch.setattr(m.Meta, name, getattr(m.Meta, name))
    models.bind("si64-test", "us-east-1", "http://127.0.0.1:9")
    yield s
    for m in everything:
        m._connection = None


def test_every_model_and_the_transactions_share_one_client(session):
    everything = [*models.MODELS.values(), *models.TABLE_OF]
    clients = {id(m._get_connection().connection.client) for m in everything}
    clients.add(id(dynamo.transaction_connection().client))
    assert len(session.built) == 1 and len(clients) == 1
    for m in everything:  # each model keeps its own table connection (key schema, indexes)
        assert m._get_connection().table_name == m.Meta.table_name
    assert len(session.built) == 1


def test_a_model_bound_elsewhere_gets_its_own_client(session, monkeypatch):
    shared = models.ContractItem._get_connection().connection.client
    monkeypatch.setattr(models.DeviceItem.Meta, "host", "http://127.0.0.1:10")
    models.DeviceItem._connection = None
    other = models.DeviceItem._get_connection().connection.client
    assert other is not shared
    assert [url for url, _ in session.built] == ["http://127.0.0.1:9", "http://127.0.0.1:10"]
    assert models.LedgerItem._get_connection().connection.client is shared
