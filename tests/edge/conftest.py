"""Edge tests: the real app (`chalice.test.Client`) on a container of in-memory fakes, with the
fleet-wide rate limiter ON (as every stage runs it). Sockets are blocked (tests/support/network.py's `no_network`).

`Edge.instance()` drops the container's per-instance limiter, so one test can play several
Lambda instances that share one database; `Edge.from_ip(ip)` sends as another client address."""

from __future__ import annotations

import json
from dataclasses import dataclass, replace

import pytest

from chalicelib import bootstrap
from chalicelib.config import Settings
from chalicelib.domain.signing import rent_memo
from tests.support.fakes import ALWAYS_COVERED_SECONDS, FakePorts, new_wallet
from tests.support.network import no_network  # noqa: F401  (autouse: sockets blocked)

TREASURY = new_wallet()
ADMIN_KEY = "admin-key-for-edge-tests-0123456789"
DEVICES = [
    {
        "device_id": f"dev-{t.lower()}-{i}",
        "name": f"{t}-{i}",
        "tier": t,
        "uri": f"n{i}.test",
        "address": "10.0.0.1",
        "region": "Test",
        "ram": "8GB",
    }
    for t, n in (("M2", 2), ("THOR", 1))
    for i in range(1, n + 1)
]


@dataclass
class Edge:
    p: FakePorts
    c: bootstrap.Container
    client: object
    ip: str = "127.0.0.1"
    device_keys: dict | None = None

    def settings(self, **changes) -> None:
        self.c.settings = replace(self.c.settings, **changes)

    def instance(self) -> None:
        """Another function instance: a fresh per-instance limiter (the database stays)."""
        self.c.__dict__.pop("rate_limit", None)  # the container builds the next one, as on a cold start

    def request(self, method: str, path: str, body=None, headers=None, ip: str | None = None):
        gw = self.client.http._local_gateway
        gw.event_converter.LOCAL_SOURCE_IP = ip or self.ip
        data = b"" if body is None else (body if isinstance(body, (bytes, str)) else json.dumps(body))
        h = {"Content-Type": "application/json", **(headers or {})} if method == "POST" else dict(headers or {})
        r = self.client.http.request(method, path, headers=h, body=data.encode() if isinstance(data, str) else data)
        try:
            parsed = json.loads(r.body) if r.body else None
        except ValueError:
            parsed = r.body
        return r.status_code, parsed, {k.lower(): v for k, v in r.headers.items()}

    def get(self, path, headers=None, ip=None):
        return self.request("GET", path, None, headers, ip)

    def post(self, path, body=None, headers=None, ip=None):
        return self.request("POST", path, body, headers, ip)

    def rent_body(self, tier: str = "M2", hours: int = 1, wallet: str | None = None) -> dict:
        wallet = wallet or new_wallet()
        seconds = hours * 3600
        sig = self.p.rpc.pay(wallet, 1_000_000 * hours * (35 if tier == "THOR" else 1), memo=rent_memo(tier, seconds))
        return {"wallet": wallet, "tier": tier, "duration_hours": hours, "tx_signature": sig}

    def claims_records(self, prefix: str) -> dict:
        return {k: v for k, v in self.p.db.tables["claims"].items() if k.startswith(prefix)}


@pytest.fixture
def edge(monkeypatch):
    from chalice.test import Client

    from app import app

    p = FakePorts.build(treasury=TREASURY, admin_key=ADMIN_KEY)
    s = Settings(
        stage="test",
        treasury=TREASURY,
        admin_key=ADMIN_KEY,
        coverage_grace_seconds=ALWAYS_COVERED_SECONDS,
        rate_limit=(150, 10),
        device_rate_limit=(200, 10),
        rate_limit_shared=True,
    )
    c = p.container(s)
    c.operator.seed_devices(DEVICES, 2)
    keys = {d["device_id"]: c.operator.issue_device_key(d["device_id"]) for d in DEVICES}
    bootstrap.set_container(c)
    with Client(app) as client:
        yield Edge(p, c, client, device_keys=keys)
    bootstrap.set_container(None)
