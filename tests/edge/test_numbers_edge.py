"""Unbounded numbers, in process on the fakes: every parameter of every route of the OpenAPI
document (path, query, header, credential header, body field) gets huge, tiny, negative,
NaN/Infinity-like and non-ASCII numbers (tests/support/hostile_numbers.py) while the rest of
the request is valid (a live contract, its device's key, the admin key). No answer is a 5xx;
every refusal is in the error shape and writes nothing; a numeric parameter out of bounds is
a 400 naming the field (a credential, X-Timestamp, a 401 naming the header). The same cases
run over HTTP on the local stack in tests/e2e/test_numbers_http.py."""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chalicelib.domain import keys
from tests.support import hostile_numbers as hn
from tests.support.fake_history import FakeChainHistory
from tests.support.fakes import FakeRefundChain, FakeTreasurySigner

PARAMS = hn.parameters()
NUMERIC = [p for p in PARAMS if hn.numeric(p)]
STORED = ("contracts", "ledger", "metrics", "devices", "book")


@pytest.fixture
def world(edge):
    edge.settings(rate_limit=(10**9, 10), device_rate_limit=(10**9, 10))
    # the operator's orphan refund and reconcile read the chain's history (sockets are blocked)
    edge.c.chain_history = FakeChainHistory(edge.p.rpc, FakeRefundChain(FakeTreasurySigner(edge.p.rpc.treasury)))
    body = edge.rent_body()
    status, rent, _ = edge.post("/api/rent", body)
    assert status == 201, rent
    ctx = hn.Context(
        contract_id=rent["contract_id"],
        device_id=rent["device_id"],
        device_key=edge.device_keys[rent["device_id"]],
        admin_key="admin-key-for-edge-tests-0123456789",
        wallet=body["wallet"],
        signature=keys.encode(bytes(range(64))),
    )
    return edge, ctx


def stored(edge) -> dict:
    return json.dumps({t: sorted(map(repr, edge.p.db.tables[t].items())) for t in STORED}, sort_keys=True)


def send(edge, param, text, ctx, quoted=False):
    if param.where == "path" and not text:
        return None, None  # an empty path segment is another route, not a parameter
    method, url, headers, raw = hn.request_for(param, text, ctx, quoted=quoted)
    before = stored(edge)
    status, body, _ = edge.request(method, url, raw, headers)
    where = f"{param} = {text[:40]!r}{' (quoted)' if quoted else ''}"
    assert status < 500, f"{where}: {status} {body}"
    if status >= 400:
        assert isinstance(body, dict) and set(body) == {"detail", "code", "reason"}, f"{where}: {body}"
        assert stored(edge) == before, f"{where}: a refusal wrote something"
    return status, body


def test_every_route_and_parameter_is_covered():
    routes = {(p.method, p.path) for p in PARAMS}
    assert len(routes) >= 16
    names = {str(p) for p in PARAMS}
    assert "GET /api/admin/reconcile query:orphan_age" in names
    assert "POST /api/metrics/{contract_id} body:samples[0].cpu_percent" in names
    assert "POST /api/contracts/{contract_id}/settle header:X-Timestamp" in names
    assert {(p.method, p.path, p.where, p.name) for p in PARAMS} >= set(hn.NUMERIC), "stale NUMERIC"


def test_every_parameter_of_every_route_answers_hostile_numbers_without_5xx(world):
    edge, ctx = world
    for param in PARAMS:
        for text in hn.HOSTILE_TEXTS:
            send(edge, param, text, ctx)
            if param.where == "body":
                send(edge, param, text, ctx, quoted=True)


@pytest.mark.parametrize("param", NUMERIC, ids=str)
def test_a_number_out_of_bounds_is_refused_naming_its_field(world, param):
    edge, ctx = world
    status_due, reason_due = hn.expected_refusal(param)
    for text in hn.OUT_OF_BOUNDS:
        status, body = send(edge, param, text, ctx)
        assert (status, body["reason"]) == (status_due, reason_due), f"{param} = {text[:40]!r}: {body}"


def test_the_issue_cases_are_400_naming_the_field(world):
    """A metric value with 5,000 significant digits and admin query parameters with 5,000 digits."""
    edge, ctx = world
    big = "9" * 5000
    admin = {"X-Admin-Key": ctx.admin_key}
    for url, reason in [
        (f"/api/admin/reconcile?orphan_age={big}", "orphan_age"),
        (f"/api/admin/reconcile?baseline_slot={big}", "baseline_slot"),
        (f"/api/billing/ledger?limit={big}", "limit"),
    ]:
        status, body, _ = edge.get(url, headers=admin)
        assert (status, body["code"], body["reason"]) == (400, "invalid_request", reason), body
    status, body, _ = edge.post(f"/api/admin/refunds/redrive?limit={big}", headers=admin)
    assert (status, body["reason"]) == (400, "limit"), body
    value = "1." + "0" * 4999
    raw = f'{{"cpu_percent": {value}, "memory_mb": 1, "disk_io_mbps": 1, "network_io_mbps": 1}}'
    status, body, _ = edge.post(f"/api/metrics/{ctx.contract_id}", raw, headers={"X-Device-Key": ctx.device_key})
    assert (status, body["reason"]) == (400, "cpu_percent"), body
    assert edge.p.db.tables["metrics"] == {}


def test_numbers_within_the_bounds_still_work(world):
    """The bound refuses only what no client needs: a double's longest repr and 24 places pass."""
    edge, ctx = world
    raw = (
        '{"cpu_percent": 0.30000000000000004, "memory_mb": 1.2345678901234567e3,'
        ' "disk_io_mbps": 0.000000000000000000000001, "network_io_mbps": 0}'
    )
    status, body, _ = edge.post(f"/api/metrics/{ctx.contract_id}", raw, headers={"X-Device-Key": ctx.device_key})
    assert status == 200, body
    status, body, _ = edge.get(
        "/api/admin/reconcile?orphan_age=315360000&baseline_slot=0", headers={"X-Admin-Key": ctx.admin_key}
    )
    assert status == 200, body


@settings(max_examples=300, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_generated_numbers_in_any_parameter_never_5xx(world, data):
    edge, ctx = world
    param = data.draw(st.sampled_from(PARAMS), label="param")
    text = data.draw(hn.number_texts, label="text")
    quoted = param.where == "body" and data.draw(st.booleans(), label="quoted")
    status, body = send(edge, param, text, ctx, quoted=quoted)
    if status == 400 and hn.numeric(param) and not quoted:
        assert body["reason"] in (param.name, "body"), body
