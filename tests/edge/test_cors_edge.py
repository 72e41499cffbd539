"""CORS at the edge (ADR 0009): preflights per route exposure, grants on every answer."""

from __future__ import annotations

import pytest

APP = "https://app.example"
PRE = {
    "Origin": APP,
    "Access-Control-Request-Method": "POST",
    "Access-Control-Request-Headers": "content-type, x-wallet, x-timestamp, x-signature, idempotency-key",
}


def options(edge, path, headers):
    return edge.request("OPTIONS", path, headers=headers)


def test_a_renter_preflight_from_a_configured_origin_is_granted(edge):
    edge.settings(cors_origins=(APP, "https://other.example"))
    st, body, h = options(edge, "/api/rent", PRE)
    assert st == 204 and not body
    assert h["access-control-allow-origin"] == APP and h["vary"] == "Origin"
    assert h["access-control-allow-methods"] == "POST, OPTIONS"
    allowed = {x.strip() for x in h["access-control-allow-headers"].split(",")}
    assert {"content-type", "x-wallet", "x-timestamp", "x-signature", "idempotency-key"} <= allowed
    assert "x-admin-key" not in allowed and int(h["access-control-max-age"]) > 0


@pytest.mark.parametrize("origins", [(), ("https://other.example",)])
def test_a_renter_preflight_from_another_origin_is_refused(edge, origins):
    edge.settings(cors_origins=origins)
    st, err, h = options(edge, "/api/rent", PRE)
    assert (st, err["code"], err["reason"]) == (403, "forbidden", "origin")
    assert "access-control-allow-origin" not in h


def test_a_preflight_asking_for_another_header_or_method_is_refused(edge):
    edge.settings(cors_origins=(APP,))
    st, err, _ = options(edge, "/api/rent", dict(PRE, **{"Access-Control-Request-Headers": "x-admin-key"}))
    assert (st, err["reason"]) == (403, "headers")
    st, err, _ = options(edge, "/api/rent", dict(PRE, **{"Access-Control-Request-Method": "DELETE"}))
    assert (st, err["reason"]) == (403, "method")


def test_star_allows_any_origin_on_renter_routes(edge):
    edge.settings(cors_origins=("*",))
    st, _, h = options(edge, "/api/contracts/CTR-AAAAAAAAAAAAAAAAAAAAAA/settle", dict(PRE, Origin="https://x.example"))
    assert st == 204 and h["access-control-allow-origin"] == "*"


def test_public_gets_answer_any_origin_by_default(edge):
    st, _, h = edge.get("/api/pricing", {"Origin": "https://anyone.example"})
    assert st == 200 and h["access-control-allow-origin"] == "*"
    assert "Retry-After" in h["access-control-expose-headers"]
    st, _, h = options(
        edge, "/api/devices/M2", {"Origin": "https://anyone.example", "Access-Control-Request-Method": "GET"}
    )
    assert st == 204 and h["access-control-allow-origin"] == "*"


def test_admin_routes_are_not_exposed_unless_configured(edge):
    from tests.edge.conftest import ADMIN_KEY

    edge.settings(cors_origins=("*",))
    pre = {"Origin": APP, "Access-Control-Request-Method": "GET", "Access-Control-Request-Headers": "x-admin-key"}
    st, err, _ = options(edge, "/api/stats", pre)
    assert (st, err["reason"]) == (403, "origin")
    st, _, h = edge.get("/api/stats", {"Origin": APP, "X-Admin-Key": ADMIN_KEY})
    assert st == 200 and "access-control-allow-origin" not in h
    edge.settings(cors_admin_origins=("https://ops.example",))
    st, _, h = options(edge, "/api/stats", dict(pre, Origin="https://ops.example"))
    assert st == 204 and h["access-control-allow-origin"] == "https://ops.example"
    assert "x-admin-key" in h["access-control-allow-headers"]


def test_device_routes_are_never_exposed(edge):
    edge.settings(cors_origins=("*",), cors_admin_origins=("*",))
    st, err, _ = options(edge, "/api/metrics/CTR-AAAAAAAAAAAAAAAAAAAAAA", PRE)
    assert (st, err["reason"]) == (403, "origin")


def test_the_actual_answer_and_its_errors_carry_the_grant_and_expose_retry_after(edge):
    edge.settings(cors_origins=(APP,), rate_limit=(1, 10))
    st, _, h = edge.post("/api/rent", edge.rent_body(), {"Origin": APP, "Idempotency-Key": "k1"})
    assert st == 201 and h["access-control-allow-origin"] == APP and h["vary"] == "Origin"
    assert {x.strip() for x in h["access-control-expose-headers"].split(",")} == {"Retry-After", "Idempotent-Replayed"}
    st, err, h = edge.post("/api/rent", edge.rent_body(), {"Origin": APP})
    assert st == 429 and h["access-control-allow-origin"] == APP and h["retry-after"]
    st, _, h = edge.post("/api/rent", edge.rent_body(), {"Origin": "https://evil.example"}, ip="192.0.2.9")
    assert "access-control-allow-origin" not in h and h["vary"] == "Origin"


def test_options_without_origin_lists_the_methods(edge):
    st, _, h = options(edge, "/api/rent", {})
    assert st == 204 and h["allow"] == "POST, OPTIONS"
