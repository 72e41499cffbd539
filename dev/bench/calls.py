"""Call counting for `make bench`: every AWS API call the app makes, by service.operation.

`CallRecorder` wraps `botocore.client.BaseClient._make_api_call` once, process-wide,
so every client is seen whoever created it (PynamoDB's per-thread
`botocore.session.get_session()` clients, the SQS client of adapters/queue.py,
boto3). A call is one logical API call (`dynamodb.GetItem`); retries by botocore
are counted apart as `attempts` (`Endpoint._get_response`, once per try, before
moto's `before-send` hook, so they count under `mock_aws` too).

Each recorded call keeps its parameters (to estimate write units) and the
chalicelib frames of its call site (to say where an extra call comes from).

`BUDGETS` are the per-endpoint call targets (`gate=True`: `make
bench` fails when one is missed) plus the bench's own budgets for the other
endpoints (`gate=False`: shown, never fail the run).

It also counts botocore clients created while serving (`Session.create_client`):
no AWS call, but ~0.1-0.2 s of CPU each, so a warm request should create none.

While a measurement runs, every DynamoDB call asks for `ReturnConsumedCapacity=INDEXES`
and keeps what the engine answered (`ApiCall.consumed`); `capacity(m)` sums it per table and
per index, read and write units apart. DynamoDB Local reports AWS's own accounting for every
call, transactions and indexes included (moto reports none). `wcu()` is the older estimate
from item sizes, kept to cross-check the measured units.
"""

from __future__ import annotations

import math
import os
import threading
import traceback
from collections import Counter
from contextlib import contextmanager
from dataclasses import dataclass, field

_PATCH_LOCK = threading.Lock()
_RECORDERS: list[CallRecorder] = []
_ORIGINAL = {}


@dataclass
class ApiCall:
    op: str  # "dynamodb.GetItem"
    params: dict
    site: list[str]  # chalicelib frames, outermost first
    consumed: list = field(default_factory=list)  # the engine's ConsumedCapacity entries


# the DynamoDB operations that accept ReturnConsumedCapacity, and which of them write
CAPACITY_OPS = frozenset(
    {
        "GetItem",
        "PutItem",
        "UpdateItem",
        "DeleteItem",
        "Query",
        "Scan",
        "BatchGetItem",
        "BatchWriteItem",
        "TransactGetItems",
        "TransactWriteItems",
    }
)
WRITE_OPS = frozenset({"PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem", "TransactWriteItems"})


def _items_per_table(call: ApiCall) -> dict:
    """TransactWriteItems: how many of its items each table holds."""
    out: dict = {}
    for t in call.params.get("TransactItems", []):
        ((_, body),) = t.items()
        out[body["TableName"]] = out.get(body["TableName"], 0) + 1
    return out


def capacity(calls) -> dict:
    """Measured units of `calls` (ApiCall list or a Measurement): {"read_units", "write_units",
    "by_table": {table: {"read", "write", "indexes": {index: {"read", "write"}}}}, "calls_without",
    "engine_write_units"}.

    One correction, for a difference of DynamoDB Local from AWS (docs/adr/0010): for a
    TransactWriteItems it reports, per table, the units of ONE item (2 per KB of the largest),
    where AWS bills every item. Each table's (and its indexes') reported units are multiplied
    by the number of the transaction's items in that table -- exact while every item is under
    1 KB, as every transactional item of this app is (`make bench`'s item sizes).
    `engine_write_units` keeps what the engine said."""
    calls = getattr(calls, "calls", calls)
    out: dict = {"read_units": 0.0, "write_units": 0.0, "by_table": {}, "calls_without": 0, "engine_write_units": 0.0}
    for call in calls:
        service, _, op = call.op.partition(".")
        if service != "dynamodb" or op not in CAPACITY_OPS:
            continue
        if not call.consumed:
            out["calls_without"] += 1
            continue
        kind = "write" if op in WRITE_OPS else "read"
        per_table = _items_per_table(call) if op == "TransactWriteItems" else {}
        for c in call.consumed:
            n = per_table.get(c["TableName"], 1)
            t = out["by_table"].setdefault(c["TableName"], {"read": 0.0, "write": 0.0, "indexes": {}})
            table_units = (c.get("Table") or {}).get("CapacityUnits")
            indexes = {**(c.get("GlobalSecondaryIndexes") or {}), **(c.get("LocalSecondaryIndexes") or {})}
            if table_units is None:  # no breakdown: all of it to the table
                table_units = c.get("CapacityUnits", 0.0) - sum(i.get("CapacityUnits", 0.0) for i in indexes.values())
            t[kind] += n * table_units
            for name, units in indexes.items():
                ix = t["indexes"].setdefault(name, {"read": 0.0, "write": 0.0})
                ix[kind] += n * units.get("CapacityUnits", 0.0)
            out[f"{kind}_units"] += n * c.get("CapacityUnits", 0.0)
            if kind == "write":
                out["engine_write_units"] += c.get("CapacityUnits", 0.0)
    return out


class CallRecorder:
    """`with rec.measure() as m:` ... `m.counts` -> Counter({"dynamodb.GetItem": 1})."""

    def __init__(self):
        self._local = threading.local()
        install()
        _RECORDERS.append(self)

    def close(self) -> None:
        if self in _RECORDERS:
            _RECORDERS.remove(self)

    @property
    def _current(self):
        return getattr(self._local, "m", None)

    @contextmanager
    def measure(self):
        m = Measurement()
        self._local.m = m
        try:
            yield m
        finally:
            self._local.m = None


@dataclass
class Measurement:
    calls: list[ApiCall] = field(default_factory=list)
    attempts: int = 0
    clients_created: int = 0  # botocore clients built while serving (should be 0 once warm)
    client_sites: list = field(default_factory=list)

    @property
    def counts(self) -> Counter:
        return Counter(c.op for c in self.calls)

    def sites(self) -> dict[str, list[str]]:
        """op -> distinct call sites (innermost chalicelib frames joined with ' <- ')."""
        out: dict[str, list[str]] = {}
        for c in self.calls:
            s = " <- ".join(reversed(c.site)) or "(outside chalicelib)"
            out.setdefault(c.op, [])
            if s not in out[c.op]:
                out[c.op].append(s)
        return out


def _site() -> list[str]:
    frames = traceback.extract_stack()[:-2]
    keep = []
    for f in frames:
        path = f.filename.replace(os.sep, "/")
        if "/chalicelib/" in path:
            keep.append(f"{path[path.rindex('/chalicelib/') + 1 :]}:{f.lineno} {f.name}")
    return keep[-6:]


def install() -> None:
    """Patch botocore once (idempotent)."""
    with _PATCH_LOCK:
        if _ORIGINAL:
            return
        import botocore.client
        import botocore.endpoint
        import botocore.session

        make_call = botocore.client.BaseClient._make_api_call
        get_response = botocore.endpoint.Endpoint._get_response
        create_client = botocore.session.Session.create_client

        def _create_client(self, *args, **kwargs):
            for rec in list(_RECORDERS):
                m = rec._current
                if m is not None:
                    m.clients_created += 1
                    site = " <- ".join(reversed(_site()))
                    if site not in m.client_sites:
                        m.client_sites.append(site)
            return create_client(self, *args, **kwargs)

        def _make_api_call(self, operation_name, api_params):
            service = self.meta.service_model.service_name
            recorded = []
            for rec in list(_RECORDERS):
                m = rec._current
                if m is not None:
                    recorded.append(ApiCall(f"{service}.{operation_name}", api_params, _site()))
                    m.calls.append(recorded[-1])
            if recorded and service == "dynamodb" and operation_name in CAPACITY_OPS:
                api_params = dict(api_params, ReturnConsumedCapacity="INDEXES")
            answer = make_call(self, operation_name, api_params)
            consumed = answer.get("ConsumedCapacity") if recorded and isinstance(answer, dict) else None
            if consumed:
                for call in recorded:
                    call.consumed = consumed if isinstance(consumed, list) else [consumed]
            return answer

        def _get_response(self, *args, **kwargs):
            for rec in list(_RECORDERS):
                m = rec._current
                if m is not None:
                    m.attempts += 1
            return get_response(self, *args, **kwargs)

        _ORIGINAL["make"] = make_call
        _ORIGINAL["get"] = get_response
        _ORIGINAL["client"] = create_client
        botocore.session.Session.create_client = _create_client
        botocore.client.BaseClient._make_api_call = _make_api_call
        botocore.endpoint.Endpoint._get_response = _get_response


def fmt_counts(counts: Counter) -> str:
    if not counts:
        return "none"
    return ", ".join(f"{n}x {op}" for op, n in sorted(counts.items()))


# ---------------------------------------------------------------------------
# budgets

READS = frozenset(
    {"dynamodb.GetItem", "dynamodb.BatchGetItem", "dynamodb.TransactGetItems", "dynamodb.Query", "dynamodb.Scan"}
)
GETS = frozenset({"dynamodb.GetItem", "dynamodb.BatchGetItem", "dynamodb.TransactGetItems"})
QUERY = frozenset({"dynamodb.Query"})
TX = frozenset({"dynamodb.TransactWriteItems"})
WRITES = frozenset(
    {
        "dynamodb.PutItem",
        "dynamodb.UpdateItem",
        "dynamodb.DeleteItem",
        "dynamodb.BatchWriteItem",
        "dynamodb.TransactWriteItems",
    }
)
SEND = frozenset({"sqs.SendMessage", "sqs.SendMessageBatch"})


@dataclass(frozen=True)
class Limit:
    label: str
    ops: frozenset
    lo: int
    hi: int


@dataclass(frozen=True)
class Budget:
    text: str
    limits: tuple = ()
    total_max: int | None = None  # when set: any calls allowed, up to this many in all
    gate: bool = True

    def check(self, counts: Counter) -> tuple[bool, list[str]]:
        """(ok, problems). Calls of an operation no limit names are extra, unless total_max is used."""
        problems = []
        total = sum(counts.values())
        if self.total_max is not None and total > self.total_max:
            problems.append(f"{total} calls > {self.total_max}")
        covered = set()
        for lim in self.limits:
            n = sum(v for k, v in counts.items() if k in lim.ops)
            covered |= lim.ops
            if not lim.lo <= n <= lim.hi:
                want = f"{lim.lo}" if lim.lo == lim.hi else f"{lim.lo}..{lim.hi}"
                problems.append(f"{n} {lim.label} (want {want})")
        if self.total_max is None:
            extra = {k: v for k, v in counts.items() if k not in covered}
            if extra:
                problems.append("extra: " + fmt_counts(Counter(extra)))
        return not problems, problems


METRICS_LIMITS = (
    Limit("put", frozenset({"dynamodb.PutItem"}), 1, 1),
    Limit("stamp", frozenset({"dynamodb.UpdateItem"}), 0, 1),
    Limit("get", frozenset({"dynamodb.BatchGetItem"}), 1, 1),
)

BUDGETS: dict[str, Budget] = {
    # the gated targets: these fail the run
    "status": Budget("1 read", (Limit("read", READS, 1, 1),)),
    # one plain conditional PutItem per report (no transaction), the device and the contract
    # read by ONE BatchGetItem, and the device's last-seen UpdateItem at most once a minute (the
    # bench's first report on a device pays it)
    "metrics": Budget("1 put + 1 batch get (+<=1 stamp/min)", METRICS_LIMITS),
    "metrics_batch_120": Budget("1 put + 1 batch get (+<=1 stamp/min)", METRICS_LIMITS),
    "rent": Budget("<=1 query + 1 tx", (Limit("query", QUERY, 0, 1), Limit("tx", TX, 1, 1))),
    "settle": Budget(
        "<=1 read + 1 tx + <=1 send", (Limit("read", READS, 0, 1), Limit("tx", TX, 1, 1), Limit("send", SEND, 0, 1))
    ),
    "ledger_page": Budget("<=5 calls (300 active)", total_max=5),
    # the bench's own budgets: shown, never fail the run
    "health": Budget("1 read", (Limit("read", GETS, 1, 1),), gate=False),
    "pricing": Budget("0", (), gate=False),
    "devices": Budget("1 query", (Limit("query", QUERY, 1, 1),), gate=False),
    "extend": Budget("<=1 read + 1 tx", (Limit("read", GETS, 0, 1), Limit("tx", TX, 1, 1)), gate=False),
    "contract_metrics": Budget(
        "<=1 read + <=1 query", (Limit("read", GETS, 0, 1), Limit("query", QUERY, 0, 1)), gate=False
    ),
    "entries": Budget("1 query", (Limit("query", QUERY, 1, 1),), gate=False),
    "stats": Budget(
        "book counters + devices + queues (ADR 0006)",
        total_max=None,
        limits=(
            Limit("counters", frozenset({"dynamodb.BatchGetItem"}), 1, 1),
            Limit("devices", frozenset({"dynamodb.Scan"}), 0, 1),
            Limit("queue", frozenset({"sqs.GetQueueAttributes", "sqs.GetQueueUrl"}), 0, 4),
        ),
        gate=False,
    ),
}


# ---------------------------------------------------------------------------
# write units (estimated from item sizes)


def attr_size(v) -> int:
    """Bytes DynamoDB bills for one attribute value (AWS's published sizing rules)."""
    ((t, x),) = v.items()
    if t == "S":
        return len(x.encode())
    if t == "N":
        digits = x.lstrip("-").replace(".", "").lstrip("0").rstrip("0") if x.strip("-0.") else "0"
        return (len(digits) + 1) // 2 + 1
    if t == "B":
        return len(x)
    if t in ("BOOL", "NULL"):
        return 1
    if t == "L":
        return 3 + sum(attr_size(e) + 1 for e in x)
    if t == "M":
        return 3 + sum(len(k.encode()) + attr_size(e) + 1 for k, e in x.items())
    if t == "SS":
        return sum(len(s.encode()) for s in x)
    if t == "NS":
        return sum(attr_size({"N": n}) for n in x)
    if t == "BS":
        return sum(len(b) for b in x)
    raise ValueError(t)


def item_size(item: dict) -> int:
    return sum(len(k.encode()) + attr_size(v) for k, v in item.items())


def kb(size: int) -> int:
    return max(1, math.ceil(size / 1024))


def wcu(call: ApiCall, fetch, gsis: dict) -> dict:
    """Write units of one call: {"items", "table_wcu", "gsi_wcu", "sizes"}.

    Put: the item in the request. Update / ConditionCheck / Delete: the stored item
    (`fetch(table, key) -> item | None`, read after the call). A transactional item
    costs 2 WCU per started KB, a standard write 1; a Put or Update of an item that
    carries an index's key attributes also writes that index (projection ALL):
    1 WCU per started KB per index. A ConditionCheck writes no index.
    """
    entries = []
    if call.op == "dynamodb.TransactWriteItems":
        factor = 2
        for t in call.params["TransactItems"]:
            ((kind, body),) = t.items()
            entries.append((kind, body))
    elif call.op in ("dynamodb.PutItem", "dynamodb.UpdateItem", "dynamodb.DeleteItem"):
        factor = 1
        entries.append((call.op.split(".")[1].replace("Item", ""), call.params))
    elif call.op == "dynamodb.BatchWriteItem":
        factor = 1
        for table, reqs in call.params["RequestItems"].items():
            for r in reqs:
                if "PutRequest" in r:
                    entries.append(("Put", {"TableName": table, "Item": r["PutRequest"]["Item"]}))
                else:
                    entries.append(("Delete", {"TableName": table, "Key": r["DeleteRequest"]["Key"]}))
    else:
        return {"items": 0, "table_wcu": 0, "gsi_wcu": 0, "sizes": [], "detail": []}
    table_units = gsi_units = 0
    sizes, detail = [], []
    for kind, body in entries:
        table = body["TableName"]
        item = body["Item"] if kind == "Put" else (fetch(table, body["Key"]) or body["Key"])
        size = item_size(item)
        sizes.append(size)
        detail.append(f"{kind} {table}: {size} B")
        table_units += factor * kb(size)
        if kind in ("Put", "Update"):
            for hash_key, range_key in gsis.get(table, []):
                if hash_key in item and (range_key is None or range_key in item):
                    gsi_units += kb(size)
    return {"items": len(entries), "table_wcu": table_units, "gsi_wcu": gsi_units, "sizes": sizes, "detail": detail}


def table_gsis(ddb, table_names) -> dict:
    """{table: [(hash_key, range_key|None), ...]} from DescribeTable."""
    out = {}
    for name in table_names:
        desc = ddb.describe_table(TableName=name)["Table"]
        keys = []
        for g in desc.get("GlobalSecondaryIndexes", []) or []:
            h = next(k["AttributeName"] for k in g["KeySchema"] if k["KeyType"] == "HASH")
            r = next((k["AttributeName"] for k in g["KeySchema"] if k["KeyType"] == "RANGE"), None)
            keys.append((h, r))
        out[name] = keys
    return out
