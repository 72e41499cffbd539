"""docs/api.md, the project's API reference, against the code's own OpenAPI document
(chalicelib/api/openapi.json) and the errors the code can answer.

- every route (method + path) of the document has its section `### \\`METHOD PATH\\``, with a
  `Credentials:` line that says what the document's security says, and every request field,
  query parameter and top-level answer field of the route named in that section;
- the page names no route the document lacks, except inside its "Planned" region (and a
  planned route that the document now serves must move out of it);
- the table of errors lists exactly the codes the code can answer: the document's error enum,
  the edge's status map (whichever module of chalicelib holds it), every `"code": "…"`
  literal of the code, the local API server and the gateway responses of infra/edge.yaml;
- every payment reason of chalicelib.domain.payments is in the table of payment reasons.

Pure file reads: no sockets, well under a second."""

from __future__ import annotations

import importlib
import inspect
import json
import pkgutil
import re
from pathlib import Path

import pytest

import chalicelib
from chalicelib.domain import errors as domain_errors
from chalicelib.domain import payments

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "api.md"
OTHER_PAGES = [ROOT / "README.md", *sorted(p for p in (ROOT / "docs").rglob("*.md") if p != DOC)]
SPEC = ROOT / "chalicelib" / "api" / "openapi.json"
METHODS = ("get", "post", "put", "patch", "delete")
ROUTE = re.compile(r"""\b(GET|POST|PUT|PATCH|DELETE)\s+(/api/[^\s`"'),?:\]]*)""")
PATH = re.compile(r"(?<![\w/])(/api/[A-Za-z0-9_{}<>$….\-/]*[A-Za-z0-9_}>…])")
SECTION = re.compile(r"^### `(GET|POST|PUT|PATCH|DELETE) (/api/\S+)`\s*$", re.M)
PLANNED = re.compile(r"<!-- planned:start -->(.*?)<!-- planned:end -->", re.S)


# ------------------------------------------------------------------------------ inputs
def spec() -> dict:
    return json.loads(SPEC.read_text())


def operations(doc: dict) -> dict[tuple[str, str], dict]:
    return {(m.upper(), p): op for p, ops in doc["paths"].items() for m, op in ops.items() if m in METHODS}


def split(text: str) -> tuple[str, str]:
    """(the reference, the planned region) of docs/api.md."""
    planned = PLANNED.findall(text)
    assert len(planned) <= 1, "docs/api.md: one planned region at most"
    return PLANNED.sub("", text), (planned[0] if planned else "")


def sections(text: str) -> dict[tuple[str, str], str]:
    """`### `METHOD PATH`` heading → its text, up to the next heading of level ≤ 3."""
    out = {}
    for m in SECTION.finditer(text):
        rest = text[m.end() :]
        end = re.search(r"^#{1,3} ", rest, re.M)
        key = (m.group(1), m.group(2))
        assert key not in out, f"docs/api.md documents {key} twice"
        out[key] = rest[: end.start()] if end else rest
    return out


def template(path: str) -> re.Pattern:
    """A path of the document as a pattern that also matches it with its values filled in."""
    parts = re.split(r"(\{[^}]+\})", path)
    return re.compile("^" + "".join("[^/]+" if p.startswith("{") else re.escape(p) for p in parts) + "$")


def served(path: str, paths: list[str]) -> bool:
    return any(template(p).match(path) for p in paths)


def resolve(doc: dict, schema: dict) -> dict:
    while "$ref" in schema:
        schema = doc["components"]["schemas"][schema["$ref"].split("/")[-1]]
    return schema


def fields(doc: dict, schema: dict | None) -> set[str]:
    """Top-level property names of a schema (its alternatives included; an array's items)."""
    if not schema:
        return set()
    s = resolve(doc, schema)
    if s.get("type") == "array":
        return fields(doc, s.get("items"))
    names = set(s.get("properties", {}))
    for key in ("oneOf", "anyOf", "allOf"):
        for alt in s.get(key, []):
            names |= fields(doc, alt)
    return names


def body_schema(part: dict | None) -> dict | None:
    return ((part or {}).get("content", {}).get("application/json") or {}).get("schema")


def credentials(op: dict) -> str:
    """What the Credentials line must say, from the operation's security."""
    options = [tuple(sorted(req)) for req in op.get("security", [])]
    if not options or options == [()]:
        return "none"
    if options == [("adminKey",)]:
        return "admin key"
    if options == [("deviceKey",)]:
        return "device key"
    renter = ("renterSignature", "renterTimestamp", "renterWallet")
    if options == [renter]:
        return "renter signature"
    if sorted(options) == sorted([renter, ()]):
        return "bound payment"
    if sorted(options) == sorted([renter, ("adminKey",)]):
        return "renter signature or admin key"
    raise AssertionError(f"a security this test does not know: {options}: name it here and in docs/api.md")


def named(section: str, name: str) -> bool:
    return f"`{name}`" in section or f'"{name}"' in section


# ------------------------------------------------------------------------------ routes
def test_every_route_of_the_openapi_document_has_its_section():
    ref, _ = split(DOC.read_text())
    documented = sections(ref)
    missing = sorted(set(operations(spec())) - set(documented))
    assert not missing, f"docs/api.md has no `### \\`METHOD PATH\\`` section for {missing}"


def test_the_reference_names_no_route_the_document_lacks():
    ref, _ = split(DOC.read_text())
    ops = operations(spec())
    paths = sorted({p for _, p in ops})
    extra = sorted(set(sections(ref)) - set(ops))
    assert not extra, f"docs/api.md documents routes the OpenAPI document does not serve: {extra}"
    for method, path in ROUTE.findall(ref):
        assert any(m == method and template(p).match(path) for m, p in ops), (
            f"docs/api.md names {method} {path}, which the OpenAPI document lacks (or mark it planned)"
        )
    for path in PATH.findall(ref):
        assert served(path, paths), f"docs/api.md names {path}, which the OpenAPI document lacks"


def test_no_other_page_names_a_route_the_document_lacks():
    """The README and every page of docs/ name only routes that exist (the next wave is named
    in docs/api.md's planned region only)."""
    ops = operations(spec())
    paths = sorted({p for _, p in ops})
    unknown = []
    for page in OTHER_PAGES:
        text = page.read_text()
        name = page.relative_to(ROOT).as_posix()
        unknown += [
            f"{name}: {m} {p}"
            for m, p in ROUTE.findall(text)
            if not any(m == o and template(q).match(p) for o, q in ops)
        ]
        unknown += [f"{name}: {p}" for p in PATH.findall(text) if not served(p, paths)]
    assert not unknown, f"routes the OpenAPI document does not serve: {unknown}"


def test_planned_routes_are_marked_and_not_served_yet():
    text = DOC.read_text()
    _, planned = split(text)
    assert planned, "docs/api.md has no planned region (<!-- planned:start --> … <!-- planned:end -->)"
    assert "not yet implemented" in text.lower() and "not served yet" in planned
    paths = sorted({p for _, p in operations(spec())})
    named_paths = set(PATH.findall(planned))
    now_served = sorted(p for p in named_paths if served(p, paths))
    assert not now_served, f"planned routes the code serves now — document them as routes: {now_served}"


def test_each_section_states_the_routes_credentials():
    ref, _ = split(DOC.read_text())
    documented = sections(ref)
    for key, op in operations(spec()).items():
        line = re.search(r"^Credentials: (.+)$", documented[key], re.M)
        assert line, f"docs/api.md {key}: no 'Credentials:' line"
        want = credentials(op)
        assert line.group(1).lower().startswith(want), f"docs/api.md {key}: credentials should be {want!r}"


def test_each_section_names_every_request_field_parameter_and_answer_field():
    doc = spec()
    ref, _ = split(DOC.read_text())
    documented = sections(ref)
    gaps = []
    for key, op in operations(doc).items():
        section = documented.get(key, "")
        wanted = fields(doc, body_schema(op.get("requestBody")))
        wanted |= {p["name"] for p in op.get("parameters", []) if p["in"] == "query"}
        for status, answer in op["responses"].items():
            if status.startswith("2") and key != ("GET", "/api/openapi.json"):
                wanted |= fields(doc, body_schema(answer))
        missing = sorted(n for n in wanted if not named(section, n))
        if missing:
            gaps.append(f"{key[0]} {key[1]}: {missing}")
    assert not gaps, "docs/api.md does not name these fields of the OpenAPI document: " + "; ".join(gaps)


# ------------------------------------------------------------------------------ errors
def _status_maps() -> list[dict]:
    """The edge's error-class → (status, code) map(s), wherever in chalicelib they live."""
    found = []
    for info in pkgutil.walk_packages(chalicelib.__path__, "chalicelib."):
        module = importlib.import_module(info.name)
        for value in vars(module).values():
            if (
                isinstance(value, dict)
                and value
                and all(inspect.isclass(k) and issubclass(k, Exception) for k in value)
                and all(isinstance(v, tuple) and len(v) == 2 and isinstance(v[1], str) for v in value.values())
            ):
                found.append(value)
    return found


def emitted_codes() -> set[str]:
    codes = set(resolve(spec(), {"$ref": "#/components/schemas/Error"})["properties"]["code"]["enum"])
    maps = _status_maps()
    assert maps, "no error-class → (status, code) map found in chalicelib"
    for mapping in maps:
        codes |= {code for _, code in mapping.values()}
        # every domain error class answers through the map, never as an unmapped 500
        base = domain_errors.DomainError
        for cls in vars(domain_errors).values():
            if inspect.isclass(cls) and issubclass(cls, base) and cls is not base:
                assert any(k in mapping for k in cls.__mro__), f"{cls.__name__} has no status and code"
    literal = re.compile(r"""["']code["']\s*:\s*["']([a-z_]+)["']""")
    tuple_ = re.compile(r"""\(\s*[1-5]\d\d\s*,\s*["']([a-z_]+)["']\s*\)""")
    sources = [*(ROOT / "chalicelib").rglob("*.py"), ROOT / "dev" / "api_server.py", *(ROOT / "infra").glob("*.yaml")]
    for f in sources:
        text = f.read_text()
        codes |= set(literal.findall(text))
        if f.suffix == ".py":
            codes |= set(tuple_.findall(text))
    return codes


def documented_codes(text: str) -> set[str]:
    table = text.split("## Errors", 1)[1].split("\n## ", 1)[0]
    return set(re.findall(r"^\| \d{3} \| `([a-z_]+)` \|", table, re.M))


def test_the_table_of_errors_lists_exactly_the_codes_the_code_can_answer():
    emitted, listed = emitted_codes(), documented_codes(DOC.read_text())
    assert emitted - listed == set(), f"codes the code can answer that docs/api.md does not list: {emitted - listed}"
    assert listed - emitted == set(), f"codes docs/api.md lists that nothing answers: {listed - emitted}"


def test_every_payment_reason_is_documented():
    table = DOC.read_text().split("**Payment reasons**", 1)[1].split("\n\n", 2)[1]
    listed = set(re.findall(r"^\| `([a-z_]+)` \|", table, re.M))
    missing = set(payments.REASONS) - listed
    assert not missing, f"payment reasons docs/api.md does not list: {missing}"


@pytest.mark.parametrize("code", ["no_capacity", "rate_limited", "internal"])
def test_the_code_scan_finds_codes_of_each_source(code):
    assert code in emitted_codes()


# ------------------------------------------------------------------------------ limits and signed strings
def _idempotency_max(doc: dict) -> int:
    params = [p for op in operations(doc).values() for p in op.get("parameters", [])]
    return next(p["schema"]["maxLength"] for p in params if p["name"] == "Idempotency-Key")


def test_the_limits_and_signed_strings_the_page_states_are_the_documents():
    """The numbers a client must respect and the strings it signs, as the page states them, are
    the document's (which takes them from chalicelib's constants)."""
    doc, text = spec(), " ".join(DOC.read_text().split())
    schemas = doc["components"]["schemas"]
    cpu = schemas["Sample"]["properties"]["cpu_percent"]["maximum"]
    batch = schemas["MetricsReport"]["oneOf"][1]["properties"]["samples"]["maxItems"]
    too_large = re.search(r"over (\d+ KiB)", doc["paths"]["/api/rent"]["post"]["responses"]["413"]["description"])
    assert too_large, "the 413 answer of the document names its size"
    page = re.search(r"1 to (\d+) \(default (\d+)\)", str(doc["paths"]["/api/billing/ledger"]["get"]["parameters"]))
    assert page, "the ledger page's `limit` names its range"
    stated = {
        "cpu_percent": f"`cpu_percent` 0–{cpu:,}",
        "batch": f"a batch holds at most {batch};",
        "Idempotency-Key": f"(1–{_idempotency_max(doc)} characters)",
        "body": f"A body over {too_large.group(1)}",
        "page limit": f"`limit` (default {page.group(2)}, at most {int(page.group(1)):,})",
    }
    missing = {what: phrase for what, phrase in stated.items() if phrase not in text}
    assert not missing, f"docs/api.md does not state these as the document does: {missing}"
    signed = set(re.findall(r"`(si64:[^`]+)`", json.dumps(doc, ensure_ascii=False)))
    assert len(signed) >= 2, signed  # the renter's signed message and the rent memo
    assert not {s for s in signed if f"`{s}`" not in text}, "signed strings of the document missing from the page"
