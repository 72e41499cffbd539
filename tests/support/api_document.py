"""The API's one OpenAPI document (chalicelib/api/openapi.json, built by local/ops/openapi_spec.py
from chalicelib's constants) as a checker of answers: a body conforms to a component schema
when it validates against it as a client reads it (the JSON text chalicelib.jsontext writes).

The document's objects are closed (`additionalProperties: false`) and list their required
fields, so a field a view adds, drops or retypes without the document fails here."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator

from chalicelib import jsontext

SPEC = Path(__file__).resolve().parents[2] / "chalicelib" / "api" / "openapi.json"


@cache
def document() -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(SPEC.read_text())
    return doc


@cache
def _validator(name: str) -> Draft202012Validator:
    components = document()["components"]
    assert name in components["schemas"], f"the OpenAPI document has no schema {name!r}"
    return Draft202012Validator({"$ref": f"#/components/schemas/{name}", "components": components})


def problems(body: Any, name: str) -> list[str]:
    """Why `body` (a view's dict, or JSON text) does not conform to the schema `name` (empty: it does)."""
    wire = json.loads(body if isinstance(body, str) else jsontext.dumps(body))
    found = sorted(_validator(name).iter_errors(wire), key=lambda err: list(err.absolute_path))
    return [f"{'/'.join(map(str, err.absolute_path)) or '(top)'}: {err.message}" for err in found]


def assert_conforms(body: Any, name: str) -> None:
    bad = problems(body, name)
    assert not bad, f"does not conform to the OpenAPI document's {name}: " + "; ".join(bad)


def field_names(name: str) -> set[str]:
    """The top-level properties of a component schema."""
    return set(document()["components"]["schemas"][name]["properties"])
