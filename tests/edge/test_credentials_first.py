"""Every POST names its credentials at the edge, and an Idempotency-Key replay is answered only
after the request's own credentials check out — on every POST route, including
the ones added later (payment refunds, operator retries)."""

from __future__ import annotations

import pytest

import app as application
from chalicelib.api import endpoint

SIG = "5" * 87
CID = "CTR-" + "c" * 22
# a concrete path for each POST route, and whether it may be called without credentials (the
# renter_optional routes: a memo-bound payment needs none, and is then judged on its binding)
POSTS = {
    "/api/rent": (None, True),
    "/api/contracts/{contract_id}/extend": (f"/api/contracts/{CID}/extend", True),
    "/api/contracts/{contract_id}/settle": (f"/api/contracts/{CID}/settle", False),
    "/api/metrics/{contract_id}": (f"/api/metrics/{CID}", False),
    "/api/payments/{tx_signature}/refund": (f"/api/payments/{SIG}/refund", False),
    "/api/refunds/{refund_id}/retry": (f"/api/refunds/{CID}/retry", False),
    "/api/webhooks": (None, False),
    "/api/quotes": (None, True),  # anyone may ask for a quote: it moves no money
}


def post_routes() -> list[str]:
    return sorted(p for p, r in application.app.routes.items() if "POST" in r)


def test_every_post_route_is_listed_here():
    """A new POST route must be added to POSTS (and so to the test below)."""
    unknown = [p for p in post_routes() if p not in POSTS and not p.startswith("/api/admin/")]
    assert unknown == [], f"POST routes this test does not know: {unknown}"


def test_a_post_without_credentials_cannot_be_registered():
    from chalice import Blueprint

    with pytest.raises(ValueError, match="must name its credentials"):
        endpoint.endpoint(Blueprint("x"), "/api/anything", methods=["POST"])(lambda call: {})


@pytest.mark.parametrize("route", [r for r, (_, anonymous) in POSTS.items() if not anonymous])
def test_no_credentials_is_401_even_with_an_idempotency_key_already_answered(edge, route):
    path = POSTS[route][0] or route
    key = {"Idempotency-Key": f"probe-{route}"}
    # the first request (no credentials) is refused and stores nothing; the second too
    for _ in range(2):
        status, body, headers = edge.post(path, {"additional_hours": 1}, headers=key)
        assert status == 401 and body["code"] == "unauthorized", (status, body)
        assert "idempotent-replayed" not in headers
    assert edge.claims_records("idem#") == {}


def test_an_operators_answered_key_is_not_replayed_to_a_caller_without_the_admin_key(edge):
    from tests.edge.conftest import ADMIN_KEY

    status, rent, _ = edge.post("/api/rent", edge.rent_body("M2", 1))
    assert status == 201, rent
    contract = edge.c.contracts.get(rent["contract_id"])
    edge.c.rentals.settle(contract.contract_id, contract.wallet)  # its refund is now owed
    path = f"/api/refunds/{contract.contract_id}/retry"
    key = {"Idempotency-Key": "op-retry-1"}
    status, first, _ = edge.post(path, {}, headers={"X-Admin-Key": ADMIN_KEY, **key})
    assert status == 200, first
    status, body, headers = edge.post(path, {}, headers=key)  # same key, same body, no admin key
    assert (status, body["code"]) == (401, "unauthorized") and "idempotent-replayed" not in headers
    status, again, headers = edge.post(path, {}, headers={"X-Admin-Key": ADMIN_KEY, **key})
    assert (status, again, headers.get("idempotent-replayed")) == (200, first, "true")
