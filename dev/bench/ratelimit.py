"""What the fleet-wide rate limiter adds to a request (ADR 0009, ADR 0020): writes and write units
per request (the slots are reserved in blocks), item size and local latency, measured on the
real app and adapters.

    python -m dev.bench.ratelimit [--n 200] [--endpoint URL] [--out .local/bench.json]
    python -m dev.bench.ratelimit --rpc [--out .local/bench.json]   # RPC calls one address can cause

`GET /api/pricing` is served in-process (`chalice.test.Client(app)`) with the shared limiter
on and off; pricing itself makes no AWS call, so every call counted is the limiter's. Tables
are made from infra/resources.yaml on in-process moto (default) or on `--endpoint` (the local
stack's emulator, prefix si64-rl). `ratelimit_cost(endpoint=None, n=200)` returns the dict, for
`make bench` to merge into its report.

Write units are estimated from the stored item's size (dev/bench/calls.py `wcu`): DynamoDB
bills a standard write 1 WCU per started KB, and a write whose condition fails still 1 WCU.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import re
import statistics
import sys
import time
from collections import Counter
from pathlib import Path

PREFIX = "si64-rl"
REGION = "us-east-1"
# us-east-1 on-demand, per million write request units (the price after AWS's Nov 2024 cut)
USD_PER_MILLION_WRU = 0.625


@contextlib.contextmanager
def _tables(endpoint: str | None):
    from dev.provision import provision

    env = {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test", "AWS_DEFAULT_REGION": REGION}
    saved = {k: os.environ.get(k) for k in (*env, "AWS_ENDPOINT_URL")}
    os.environ.update(env)
    os.environ.pop("AWS_ENDPOINT_URL", None)
    try:
        if endpoint:
            yield provision(PREFIX, endpoint, REGION)
        else:
            from moto import mock_aws

            with mock_aws():
                yield provision(PREFIX, None, REGION)
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


# (label, limit per 10 s, requests of one client on one instance in one window)
SCENARIOS = (
    ("ip 150/10, a client at its limit", 150, 150),
    ("device 200/10, a reporter at its limit", 200, 200),
    ("ip 150/10, a client at 15 requests per window", 150, 15),
    ("load test 1000000/10, 100 req/s on one instance", 10**6, 1_000),
)


def _block(call) -> int:
    """The n of one reservation (`ADD hits :n`) from the UpdateItem's parameters."""
    m = re.search(r"ADD\s+\S+\s+(:\w+)", call.params["UpdateExpression"])
    assert m, call.params["UpdateExpression"]
    return int(call.params["ExpressionAttributeValues"][m.group(1)]["N"])


def ratelimit_cost(endpoint: str | None = None, n: int = 200) -> dict:
    """Writes and write units per request of the shared limiter (docs/adr/0020), per SCENARIOS
    (each on a fresh instance in a window of its own), and the latency it adds (`n` requests)."""
    import boto3
    from chalice.test import Client

    from app import app
    from chalicelib import bootstrap
    from chalicelib.config import Settings
    from chalicelib.services.ratelimit import block_cap
    from dev.bench.calls import CallRecorder, item_size, wcu

    with _tables(endpoint) as res:
        s = Settings(
            stage="bench",
            region=REGION,
            aws_endpoint_url=endpoint,
            table_prefix=res.prefix,
            refund_queue_url=res.queue_url,
            refund_dlq_url=res.dlq_url,
            rate_limit=(10**6, 10),
            rate_limit_shared=True,
        )
        t0 = time.time_ns() // 1_000_000
        now = [t0 - t0 % 10_000]  # frozen inside a window; each scenario moves it to a window of its own
        c = bootstrap.build(s, clock=lambda: now[0])
        bootstrap.set_container(c)
        ddb = boto3.client("dynamodb", region_name=REGION, endpoint_url=endpoint)
        rec = CallRecorder()
        out: dict = {"backend": endpoint or "in-process moto", "scenarios": {}}
        try:
            with Client(app) as client:

                def get():
                    t = time.perf_counter()
                    r = client.http.get("/api/pricing")
                    return r.status_code, (time.perf_counter() - t) * 1000

                def fetch(table, key):
                    return ddb.get_item(TableName=table, Key=key, ConsistentRead=True).get("Item")

                def fresh(limit: int) -> None:  # another instance, in the next window
                    now[0] += 10_000
                    c.settings = Settings(**{**c.settings.__dict__, "rate_limit": (limit, 10)})
                    c.__dict__.pop("rate_limit", None)

                get()  # warm: clients and connections built
                item = None
                for label, limit, requests in SCENARIOS:
                    fresh(limit)
                    calls, units, sizes, blocks = Counter(), [], [], []
                    for _ in range(requests):
                        with rec.measure() as m:
                            st, _ = get()
                        assert st == 200, (label, st)
                        calls.update(m.counts)
                        for call in m.calls:
                            w = wcu(call, fetch, {})
                            units.append(w["table_wcu"] + w["gsi_wcu"])
                            sizes += w["sizes"]
                            blocks.append(_block(call))
                    writes = sum(calls.values())
                    row = {
                        "limit": f"{limit}/10",
                        "block_cap": block_cap(limit),
                        "requests": requests,
                        "writes": writes,
                        "calls_per_kind": dict(calls),
                        "blocks": blocks,
                        "writes_per_request": round(writes / requests, 4),
                        "wcu_per_request": round(sum(units) / requests, 4),
                        "wcu_per_million_requests": round(sum(units) / requests * 1e6),
                        "usd_per_million_requests": round(sum(units) / requests * USD_PER_MILLION_WRU, 4),
                        "item_bytes_max": max(sizes) if sizes else None,
                    }
                    if requests == limit:  # the window is full: what a refusal costs
                        with rec.measure() as known_full:  # this instance knows
                            row["refused_same_instance"] = {"status": get()[0], "calls": dict(known_full.counts)}
                        c.__dict__.pop("rate_limit", None)  # another instance learns it with one refused write
                        with rec.measure() as new_instance:
                            row["refused_new_instance"] = {
                                "status": get()[0],
                                "calls": dict(new_instance.counts),
                                "wcu": 1,
                                "note": "a write whose condition fails is billed 1 WCU",
                            }
                        pk = new_instance.calls[0].params["Key"]["pk"]["S"]
                        item = item or fetch(f"{res.prefix}-claims", {"pk": {"S": pk}})
                    out["scenarios"][label] = row
                fresh(10**6)
                on_ms = [get()[1] for _ in range(n)]
                c.settings = Settings(**{**c.settings.__dict__, "rate_limit_shared": False})
                c.__dict__.pop("rate_limit", None)
                off_ms = [get()[1] for _ in range(n)]
        finally:
            rec.close()
            bootstrap.set_container(None)

    assert item is not None
    out["window_item"] = {"attributes": sorted(item), "bytes": item_size(item), "hits": int(item["hits"]["N"])}
    out["latency_ms"] = {
        "requests": n,
        "p50_limiter_on": round(statistics.median(on_ms), 2),
        "p50_limiter_off": round(statistics.median(off_ms), 2),
        "p50_added": round(statistics.median(on_ms) - statistics.median(off_ms), 2),
        "mean_added": round(statistics.mean(on_ms) - statistics.mean(off_ms), 2),
        "where": "in this process against " + (endpoint or "in-process moto") + "; not AWS; limit 1000000/10",
    }
    return out


def rpc_calls_per_address(n: int = 200) -> dict:
    """RPC calls per 10 s that one address can cause: `n` anonymous rents with random
    well-formed signatures from one address inside one 10-s window, through the real app and
    adapters (tables on in-process moto, the shared limiter on, the default request limit),
    against a node that knows none of the signatures (as for random ones: getTransaction → null,
    then getSignatureStatuses). Once with the payment-check budget off, once with the default."""
    import base64
    import secrets as _secrets

    from chalice.test import Client

    from app import app
    from chalicelib import bootstrap
    from chalicelib.adapters.solana_rpc import SolanaRpc
    from chalicelib.api import http
    from chalicelib.config import Settings
    from chalicelib.domain.keys import encode as b58encode

    class UnknownSignatures(SolanaRpc):
        """A node that knows no signature; counts what it is asked."""

        def __init__(self):
            super().__init__("http://node.invalid", 1)
            self.asked: Counter = Counter()

        def call(self, method: str, params: list | None = None):
            self.asked[method] += 1
            if method == "getSignatureStatuses":
                return {"context": {"slot": 1}, "value": [None for _ in (params or [[]])[0]]}
            return None

    budget = Settings().rpc_lookup_limit
    out: dict = {"requests": n, "window_s": 10, "lookup_budget": f"{budget[0]}/{budget[1]}"}
    with _tables(None) as res:
        for k, (label, lookups) in enumerate((("budget_off", (10**9, 10)), ("budget_on", budget))):
            s = Settings(
                stage="bench",
                region=REGION,
                table_prefix=res.prefix,
                refund_queue_url=res.queue_url,
                refund_dlq_url=res.dlq_url,
                treasury=b58encode(_secrets.token_bytes(32)),
                rate_limit_shared=True,
                rpc_lookup_limit=lookups,
            )
            t0 = time.time_ns() // 1_000_000
            frozen = t0 - t0 % 10_000 + (k + 1) * 10_000_000  # a window of its own
            node = UnknownSignatures()
            bootstrap.set_container(bootstrap.build(s, rpc=node, clock=lambda f=frozen: f))
            saved = http.limiter
            http.limiter = http.RateLimiter()
            answers: Counter = Counter()
            quiet = logging.getLogger("si64")
            level = quiet.level
            quiet.setLevel(logging.WARNING)  # one request log line each: not the figure
            headers = {"Content-Type": "application/json"}
            try:
                with Client(app) as client:
                    bad = {
                        "wallet": b58encode(_secrets.token_bytes(32)),
                        "tier": "M2",
                        "duration_hours": 1,
                        "tx_signature": base64.b64encode(_secrets.token_bytes(64)).decode(),  # not base58
                    }
                    r = client.http.post("/api/rent", headers=headers, body=json.dumps(bad))
                    malformed = {"status": r.status_code, "rpc_calls": sum(node.asked.values())}
                    for _ in range(n):
                        body = {
                            "wallet": b58encode(_secrets.token_bytes(32)),
                            "tier": "M2",
                            "duration_hours": 1,
                            "tx_signature": b58encode(_secrets.token_bytes(64)),
                        }
                        r = client.http.post("/api/rent", headers=headers, body=json.dumps(body))
                        reason = json.loads(r.body).get("reason") if r.body else None
                        answers[f"{r.status_code} {reason}"] += 1
            finally:
                quiet.setLevel(level)
                http.limiter = saved
                bootstrap.set_container(None)
            out[label] = {
                "answers": dict(answers),
                "rpc_calls": sum(node.asked.values()),
                "rpc_by_method": dict(node.asked),
                "malformed_signature": malformed,
            }
    out["rpc_calls_per_10s_one_address"] = out["budget_on"]["rpc_calls"]
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m dev.bench.ratelimit", description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=200)
    ap.add_argument("--endpoint", default=None, help="an AWS emulator endpoint (default: in-process moto)")
    ap.add_argument("--out", default=None, help="also write the figures to this JSON file")
    ap.add_argument(
        "--rpc",
        action="store_true",
        help="only the RPC calls per 10 s one address can cause; merged into --out (e.g. .local/bench.json)",
    )
    args = ap.parse_args(argv)
    root = Path(__file__).resolve().parents[2]
    if str(root) not in sys.path:
        sys.path.insert(0, str(root))
    if args.rpc:
        return _rpc_main(args)
    out = ratelimit_cost(args.endpoint, args.n)
    print(json.dumps(out, indent=2))
    for label, row in out["scenarios"].items():
        print(
            f"{label}: {row['writes']} writes for {row['requests']} requests "
            f"({row['writes_per_request']} per request, {row['wcu_per_request']} WCU per request, "
            f"{row['wcu_per_million_requests']:,} WCU per million), blocks {row['blocks'][:8]}"
            + ("..." if len(row["blocks"]) > 8 else "")
        )
    if args.out:
        path = Path(args.out)
        report = json.loads(path.read_text()) if path.exists() else {}
        report["rate_limit_cost"] = out
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(report, indent=2) + "\n")
    one = {"dynamodb.UpdateItem": 1}
    ok = all(
        set(row["calls_per_kind"]) <= {"dynamodb.UpdateItem"}
        and row["writes"] <= row["requests"] // 4 + 4
        and row.get("refused_same_instance", {}).get("calls", {}) == {}
        and row.get("refused_new_instance", {"calls": one})["calls"] == one
        for row in out["scenarios"].values()
    )
    return 0 if ok else 1


def _rpc_main(args) -> int:
    out = rpc_calls_per_address(args.n)
    on, off = out["budget_on"], out["budget_off"]
    print(
        f"RPC calls per 10 s that one address can cause ({out['requests']} anonymous rents, random signatures): "
        f"{on['rpc_calls']} with the payment-check budget {out['lookup_budget']} "
        f"({off['rpc_calls']} without it); a malformed signature: {on['malformed_signature']['rpc_calls']} calls"
    )
    if args.out:
        path = Path(args.out)
        report = json.loads(path.read_text()) if path.exists() else {}
        report["rpc_lookups_per_address"] = out
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(report, indent=2) + "\n")
    limit = int(out["lookup_budget"].split("/")[0])
    ok = on["rpc_calls"] <= 2 * limit and on["malformed_signature"]["rpc_calls"] == 0
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
