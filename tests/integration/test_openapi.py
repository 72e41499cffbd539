"""The OpenAPI document (chalicelib/api/openapi.json, linked from docs/openapi.json) is valid, is what
dev/openapi_spec.py builds from chalicelib's constants, names exactly the routes the app
serves and the error codes (with their statuses) the edge answers, and is served at
GET /api/openapi.json without credentials. tests/unit/test_views.py checks the views against it,
tests/infra/test_packaged_template.py the gateway responses, tests/unit/test_api_reference.py
docs/api.md."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dev import openapi_spec

ROOT = Path(__file__).resolve().parents[2]
SPEC = ROOT / "chalicelib" / "api" / "openapi.json"
METHODS = {"get", "post", "put", "patch", "delete", "head", "options"}
FIX = "add it in dev/openapi_spec.py (PATHS), then run `python -m dev.openapi_spec`"


def spec() -> dict:
    return json.loads(SPEC.read_text())


def app_routes() -> set[tuple[str, str]]:
    from app import app

    # OPTIONS: the CORS preflight every path answers (api/endpoint.py), not an operation of the API
    return {
        (method.upper(), path)
        for path, entries in app.routes.items()
        for method in entries
        if method.upper() != "OPTIONS"
    }


def spec_routes(doc: dict) -> set[tuple[str, str]]:
    return {(m.upper(), path) for path, item in doc["paths"].items() for m in item if m in METHODS}


def test_every_route_is_in_the_spec_and_every_spec_operation_is_a_route():
    routes, documented = app_routes(), spec_routes(spec())
    undocumented = sorted(routes - documented)
    stale = sorted(documented - routes)
    assert not undocumented, (
        "routes the app serves that the OpenAPI document lacks — "
        + FIX
        + ": "
        + ", ".join(f"{m} {p}" for m, p in undocumented)
    )
    assert not stale, (
        "operations in the OpenAPI document that no route serves — remove them from "
        "dev/openapi_spec.py: " + ", ".join(f"{m} {p}" for m, p in stale)
    )
    assert len(routes) >= 16


def test_the_file_is_what_the_builder_writes_and_docs_links_to_it():
    assert SPEC.read_text() == openapi_spec.render(), (
        "chalicelib/api/openapi.json is stale: run `python -m dev.openapi_spec`"
    )
    assert (ROOT / "docs" / "openapi.json").resolve() == SPEC.resolve()


def test_the_document_is_valid_openapi_3_1():
    from openapi_spec_validator import validate

    doc = spec()
    assert doc["openapi"].startswith("3.1")
    validate(doc)


def test_error_shape_and_codes_match_the_edge():
    from chalicelib.api import errors as http

    doc = spec()
    error = doc["components"]["schemas"]["Error"]
    assert error["required"] == ["detail", "code", "reason"]
    codes = {code for _, code in http.STATUS.values()} | {http.INTERNAL[1]}
    assert set(error["properties"]["code"]["enum"]) == codes, "error codes of api/errors.STATUS vs the spec"
    assert error["x-status-of-code"] == {code: status for status, code in [*http.STATUS.values(), http.INTERNAL]}
    by_status = {}
    for status, code in [*http.STATUS.values(), http.INTERNAL]:
        by_status.setdefault(status, set()).add(code)
    for path, item in doc["paths"].items():
        for method, o in item.items():
            documented = {int(s) for s in o["responses"] if s.isdigit()}
            where = f"{method.upper()} {path}"
            assert {429, 500, 503} <= documented, where
            if method == "post" and o.get("requestBody", {}).get("required"):
                assert {400, 413} <= documented, where
            for s in documented - {200, 201}:
                assert s in by_status, f"{where}: {s} is no status of the edge"
                assert o["responses"][str(s)]["content"]["application/json"]["schema"] == {
                    "$ref": "#/components/schemas/Error"
                }, where


def test_auth_of_each_operation_is_the_credentials_its_route_checks():
    doc = spec()
    sec = {f"{m.upper()} {p}": o["security"] for p, item in doc["paths"].items() for m, o in item.items()}
    auth = openapi_spec.route_auth()  # endpoint(auth=...) of each route the app serves
    for (method, path), mode in auth.items():
        assert sec[f"{method} {path}"] == openapi_spec.SECURITY_OF_AUTH[mode], (method, path, mode)
    # what the modes mean: the operator's paths, and only they, take the admin key
    operator = ("/api/admin/", "/api/billing/", "/api/stats", "/api/refunds/")
    admin = {k for k, v in sec.items() if v == [{"adminKey": []}]}
    assert admin == {k for k in sec if k.split(" ", 1)[1].startswith(operator)}
    assert len(admin) >= 11
    assert sec["POST /api/metrics/{contract_id}"] == [{"deviceKey": []}]
    assert sec["GET /api/openapi.json"] == [] and sec["GET /api/health"] == []
    assert all(sec[k] != [] for k in sec if k.startswith("POST ")), "every POST names its credentials"


@pytest.mark.usefixtures("container")
def test_served_without_credentials_as_the_file(client):
    r = client.http.get("/api/openapi.json")
    assert r.status_code == 200 and r.headers["Content-Type"] == "application/json"
    assert json.loads(r.body) == spec()
