"""Hostile numbers for every parameter of every route: the cases of the in-process test
(tests/edge/test_numbers_edge.py, on the fakes) and of the HTTP test on the local stack
(tests/e2e/test_numbers_http.py), from one list.

`parameters(doc)` reads the OpenAPI document (chalicelib/api/openapi.json) and names every
parameter of every operation: path, query and header parameters, the credential headers of
its security schemes, and each field of its JSON body (a batch's sample fields as
`samples[0].name`). A route added to the document is fuzzed without a change here.

`request_for(param, text, ctx)` builds ONE request in which that parameter alone carries
`text` and everything else is what a valid client would send (`ctx`: a live contract, its
device's key, the admin key). Body fields get the text as a raw JSON token (it may then not
be JSON at all: a 400 naming the body) or as a JSON string (`quoted=True`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hypothesis import strategies as st

SPEC = Path(__file__).resolve().parents[2] / "chalicelib" / "api" / "openapi.json"
HOSTILE_MARK = "__HOSTILE_NUMBER__"

# huge, long, tiny, negative, NaN/Infinity-like, exponent, non-ASCII, and odd spellings
HOSTILE_TEXTS = [
    "9" * 5000,
    "1" + "0" * 4400,
    "-" + "9" * 5000,
    "1." + "0" * 5000,
    "0." + "0" * 4999 + "1",
    "1" * 33,
    "1E-999999999",
    "1E+999999999",
    "1e400",
    "1e-400",
    "-1",
    "-0",
    "-1E+30",
    "0",
    "NaN",
    "-NaN",
    "nan",
    "Infinity",
    "-Infinity",
    "inf",
    "1e309",
    "0x10",
    "+1",
    "1_000",
    " 1",
    "1.",
    ".5",
    "",
    "\u0661\u0662\u0663",  # Arabic-Indic digits 123
    "\uff11\uff12",  # full-width 12
    "\u00b2",  # superscript two: a digit to str.isdigit(), not to int()
    "\u0663.\u0665",
    "1\u00a0000",
    "\U0001d7d9",  # mathematical double-struck one
]

# beyond the bounds of every numeric field: what must be a 400 naming the field
OUT_OF_BOUNDS = [
    "9" * 5000,
    "1" + "0" * 4400,
    "1." + "0" * 5000,
    "0." + "0" * 4999 + "1",
    "1" * 33,
    "1E-999999999",
    "1E+999999999",
    "-1",
    "-1E+30",
    "NaN",
    "Infinity",
    "-Infinity",
]

# over HTTP (each request costs a round trip on the shared stack): one of each kind for every
# parameter; the numeric ones get OUT_OF_BOUNDS as well
HTTP_TEXTS = [
    "9" * 5000,
    "1." + "0" * 5000,
    "1E-999999999",
    "1e400",
    "-1",
    "NaN",
    "\u0661\u0662\u0663",
]

# the numeric parameters (with X-Timestamp on every route that takes renter credentials);
# a body field is named by the path its 400 must give as `reason`
NUMERIC = {
    ("GET", "/api/billing/ledger", "query", "limit"),
    ("GET", "/api/billing/entries", "query", "limit"),
    ("GET", "/api/admin/refunds", "query", "limit"),
    ("POST", "/api/admin/refunds/redrive", "query", "limit"),
    ("GET", "/api/admin/reconcile", "query", "orphan_age"),
    ("GET", "/api/admin/reconcile", "query", "baseline_slot"),
    ("POST", "/api/rent", "body", "duration_hours"),
    ("POST", "/api/rent", "body", "amount"),
    ("POST", "/api/contracts/{contract_id}/extend", "body", "additional_hours"),
    *(
        ("POST", "/api/metrics/{contract_id}", "body", f"{prefix}{name}")
        for prefix in ("", "samples[0].")
        for name in ("cpu_percent", "memory_mb", "disk_io_mbps", "network_io_mbps", "timestamp_ms")
    ),
}

_chars = st.sampled_from(list("0123456789-+.eE_ ,x") + ["\u0661", "\uff11", "\u00b2", "\u00a0", "NaN", "Infinity"])
number_texts = st.one_of(
    st.sampled_from(HOSTILE_TEXTS),
    st.integers(-(10**60), 10**60).map(str),
    st.decimals(allow_nan=True, allow_infinity=True, places=None).map(str),
    st.floats().map(repr),
    st.builds(lambda a, b: f"{a}E{b}", st.integers(-(10**6), 10**6), st.integers(-(10**10), 10**10)),
    st.lists(_chars, min_size=1, max_size=40).map("".join),
    st.integers(30, 6000).map(lambda n: "7" * n),
)

if TYPE_CHECKING:  # types only: jsonschema loads lazily
    import jsonschema


@dataclass(frozen=True)
class Param:
    method: str
    path: str
    where: str  # "path" | "query" | "header" | "body"
    name: str  # a body field may be "samples[0].cpu_percent"
    secured_by: tuple[str, ...] = ()  # the credential headers a valid request sends

    def __str__(self) -> str:
        return f"{self.method} {self.path} {self.where}:{self.name}"


def load_spec() -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(SPEC.read_text())
    return doc


def _resolve(doc: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        schema = doc["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
    return schema


def _body_fields(doc: dict[str, Any], schema: dict[str, Any], prefix: str = "") -> list[str]:
    schema = _resolve(doc, schema)
    out: list[str] = []
    for alt in schema.get("oneOf", []):
        out += _body_fields(doc, alt, prefix)
    for name, sub in schema.get("properties", {}).items():
        sub = _resolve(doc, sub)
        if sub.get("type") == "array" and "items" in sub:
            out += _body_fields(doc, sub["items"], f"{prefix}{name}[0].")
        out.append(f"{prefix}{name}")
    return list(dict.fromkeys(out))


def parameters(doc: dict[str, Any] | None = None) -> list[Param]:
    doc = doc or load_spec()
    schemes = doc["components"]["securitySchemes"]
    out: list[Param] = []
    for path, item in doc["paths"].items():
        for method, op in item.items():
            requirements = [tuple(schemes[n]["name"] for n in r) for r in op.get("security", [])] or [()]
            needed = min(requirements, key=len)  # what a valid request sends: the least it may
            m = method.upper()
            for p in op.get("parameters", []):
                out.append(Param(m, path, p["in"], p["name"], needed))
            for h in dict.fromkeys(h for r in requirements for h in r):
                out.append(Param(m, path, "header", h, needed))
            content = op.get("requestBody", {}).get("content", {}).get("application/json", {})
            for field in _body_fields(doc, content.get("schema", {})) if content.get("schema") else []:
                out.append(Param(m, path, "body", field, needed))
    return out


def numeric(param: Param) -> bool:
    if param.where == "header" and param.name == "X-Timestamp":
        return True
    return (param.method, param.path, param.where, param.name) in NUMERIC


@dataclass
class Context:
    """What a valid client would send: a live contract on a device whose key is known."""

    contract_id: str
    device_id: str
    device_key: str
    admin_key: str
    wallet: str
    signature: str  # a well-formed transaction signature (no payment needs to exist)


def _valid_body(method: str, path: str, ctx: Context) -> dict[str, Any] | None:
    sample: dict[str, Any] = {"cpu_percent": 10, "memory_mb": 100, "disk_io_mbps": 1, "network_io_mbps": 1}
    return {
        ("POST", "/api/rent"): {"wallet": ctx.wallet, "tier": "M2", "duration_hours": 1, "tx_signature": ctx.signature},
        ("POST", "/api/contracts/{contract_id}/extend"): {"additional_hours": 1, "tx_signature": ctx.signature},
        ("POST", "/api/metrics/{contract_id}"): sample,
        ("POST", "/api/admin/devices/{device_id}/audited"): {"audited": True},
        ("POST", "/api/webhooks"): {"url": "https://hooks.example.com/x", "events": ["contract.settled"]},
    }.get((method, path))


def _valid_query(method: str, path: str, ctx: Context) -> dict[str, str]:
    """The query parameters a valid request of the route must carry besides the one under test."""
    return {
        ("GET", "/api/billing/entries"): {"contract_id": ctx.contract_id},
        ("GET", "/api/payments/{tx_signature}/refund"): {"payer": ctx.wallet},
    }.get((method, path), {})


def _valid_path(name: str, ctx: Context) -> str:
    return {
        "contract_id": ctx.contract_id,
        "refund_id": ctx.contract_id,
        "device_id": ctx.device_id,
        "tx_signature": ctx.signature,
        "tier": "M2",
        "webhook_id": "WH-none",
    }[name]


def _valid_headers(headers: tuple[str, ...], ctx: Context) -> dict[str, str]:
    values = {
        "X-Admin-Key": ctx.admin_key,
        "X-Device-Key": ctx.device_key,
        "X-Wallet": ctx.wallet,
        "X-Timestamp": "1764070000",
        "X-Signature": ctx.signature,
    }
    return {h: values[h] for h in headers}


def _quote(text: str) -> str:
    from urllib.parse import quote

    return quote(text, safe="")


def request_for(
    param: Param, text: str, ctx: Context, *, quoted: bool = False
) -> tuple[str, str, dict[str, str], str | None]:
    """(method, url path with query, headers, raw body or None) with `text` in `param` only."""
    path_values = {}
    for part in param.path.split("/"):
        if part.startswith("{") and part.endswith("}"):
            name = part[1:-1]
            path_values[name] = (
                _quote(text) if (param.where == "path" and param.name == name) else _valid_path(name, ctx)
            )
    url = param.path.format(**path_values)
    query = {k: v for k, v in _valid_query(param.method, param.path, ctx).items() if k != param.name}
    if param.where == "query":
        query[param.name] = text
    if query:
        url += "?" + "&".join(f"{k}={_quote(v)}" for k, v in query.items())
    headers = _valid_headers(param.secured_by, ctx)
    if param.where == "header":
        if param.name in ("X-Wallet", "X-Timestamp", "X-Signature"):  # renter credentials go together
            headers.update(_valid_headers(("X-Wallet", "X-Timestamp", "X-Signature"), ctx))
        headers[param.name] = text
    body = _valid_body(param.method, param.path, ctx)
    raw = None
    if param.where == "body":
        body = dict(body or {})
        if param.name.startswith("samples[0]."):
            sample = dict(body.items())
            sample[param.name.split(".", 1)[1]] = HOSTILE_MARK
            body = {"samples": [sample]}
        else:
            body[param.name] = HOSTILE_MARK
        token = json.dumps(text) if quoted else text
        raw = json.dumps(body).replace(json.dumps(HOSTILE_MARK), token)
    elif body is not None:
        raw = json.dumps(body)
    if param.method == "POST":
        headers.setdefault("Content-Type", "application/json")
    return param.method, url, headers, raw


def header_safe(text: str) -> bool:
    """Whether an HTTP client can send `text` as a header value at all (Latin-1, no controls)."""
    try:
        text.encode("latin-1")
    except UnicodeEncodeError:
        return False
    return text == text.strip() and all(c >= " " for c in text) and len(text) < 8000


def expected_refusal(param: Param) -> tuple[int, str]:
    """(status, reason) of the answer to an out-of-bounds value: 400 naming the field; a
    credential that does not parse is a 401 naming its header."""
    return (401 if param.where == "header" else 400), param.name


def conforms(schema_name: str, body: object) -> None:
    """`body` fits the component schema `schema_name` of the OpenAPI document (jsonschema raises)."""
    _validator(schema_name).validate(body)


@cache
def _validator(schema_name: str) -> jsonschema.Draft202012Validator:
    """One checked validator per schema (checking the schema itself is the slow part)."""
    import jsonschema

    doc = load_spec()
    schema = {**doc["components"]["schemas"][schema_name], "components": doc["components"]}
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)
