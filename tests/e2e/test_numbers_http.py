"""Unbounded numbers over real HTTP on the local stack: one of each kind of hostile number
(tests/support/hostile_numbers.py HTTP_TEXTS; the in-process tests/edge/test_numbers_edge.py
sends them all, and generated ones) in every parameter of every route of the OpenAPI
document, the rest of each request valid (a live contract rented with a real payment, its
device's key, the admin key). No answer is a 5xx; every refusal is in the error shape; a
numeric parameter out of bounds is a 400 naming the field (X-Timestamp a 401 naming it); and
the books are what they were."""

from __future__ import annotations

import pytest

from chalicelib.domain import keys
from tests.support import hostile_numbers as hn

from .test_hardening_http import rent

pytestmark = pytest.mark.e2e

PARAMS = hn.parameters()


@pytest.fixture(scope="module")
def ctx(api, payer, local_stack):
    kp, r = rent(api, payer, local_stack["treasury"], hours=1)
    device = r.body["device_id"]
    return hn.Context(
        contract_id=r.body["contract_id"],
        device_id=device,
        device_key=local_stack["device_keys"][device],
        admin_key=local_stack["admin_key"],
        wallet=str(kp.pubkey()),
        signature=keys.encode(bytes(range(64))),
    )


def sendable(param, text) -> bool:
    if param.where == "path" and not text:
        return False  # an empty path segment is another route, not a parameter
    return param.where != "header" or hn.header_safe(text)


def send(api, param, text, ctx):
    method, url, headers, raw = hn.request_for(param, text, ctx)
    r = api.request(method, url, data=raw, headers=headers)
    where = f"{param} = {text[:40]!r}"
    assert r.status < 500, f"{where}: {r}"
    if r.status >= 400:
        assert r.is_error_shape, f"{where}: {r}"
    return r


def test_hostile_numbers_in_every_parameter_over_http(api, ctx):
    before = api.snapshot()
    sent = 0
    for param in PARAMS:
        if hn.numeric(param):
            status_due, reason_due = hn.expected_refusal(param)
            for text in hn.OUT_OF_BOUNDS:
                if sendable(param, text):
                    r = send(api, param, text, ctx)
                    sent += 1
                    assert (r.status, r.body["reason"]) == (status_due, reason_due), f"{param} = {text[:40]!r}: {r}"
        for text in hn.HTTP_TEXTS:
            if sendable(param, text) and not (hn.numeric(param) and text in hn.OUT_OF_BOUNDS):
                send(api, param, text, ctx)
                sent += 1
    assert sent > 600
    assert api.snapshot() == before


def test_the_issue_cases_over_http(api, ctx):
    big = "9" * 5000
    for url, reason in [
        (f"/api/admin/reconcile?orphan_age={big}", "orphan_age"),
        (f"/api/admin/reconcile?baseline_slot={big}", "baseline_slot"),
    ]:
        r = api.get(url, admin=True)
        assert (r.status, r.body["code"], r.body["reason"]) == (400, "invalid_request", reason), r
    r = api.post(f"/api/admin/refunds/redrive?limit={big}", admin=True)
    assert (r.status, r.body["reason"]) == (400, "limit"), r
    samples = api.get(f"/api/contracts/{ctx.contract_id}/metrics").body["samples"]
    raw = '{"cpu_percent": 1.' + "0" * 4999 + ', "memory_mb": 1, "disk_io_mbps": 1, "network_io_mbps": 1}'
    r = api.post(f"/api/metrics/{ctx.contract_id}", data=raw, headers={"X-Device-Key": ctx.device_key})
    assert (r.status, r.body["reason"]) == (400, "cpu_percent"), r
    assert api.get(f"/api/contracts/{ctx.contract_id}/metrics").body["samples"] == samples
