"""`make bench`: AWS calls per endpoint, HTTP latency, metric write cost, cold import.

    python -m local.bench [--n 50] [--out .local/bench.json] [--no-latency] [--no-import]

1. Starts its own local stack (`python -m local.stack`: AWS emulator, local chain,
   `chalice local`, event runner) on free 127.0.0.1 ports with its state in a
   temporary directory, and stops it at the end whatever happens.
2. AWS calls: serves each endpoint in-process through `chalice.test.Client(app)`
   with a container bound to the stack's emulator, tables and queues and the real
   local chain (payments are real transfers signed with solana-py/solders; no
   fakes), and counts every botocore API call (local/bench_calls.py). The ledger
   page is measured with 300 ACTIVE contracts in the table (seeded by batch writes,
   see `seed_active`). Also shown: botocore clients built per warm request.
3. Latency: N sequential requests per endpoint over HTTP to the stack's
   `chalice local` on 127.0.0.1; p50 / p95 in ms. Bounded: at most N requests and
   `--endpoint-budget` seconds per endpoint, `--latency-budget` in all (the n
   actually sent is reported).
4. Metric writes per 1,000 samples: 1,000 single-sample posts and ceil(1000/120)
   batch posts, in-process, counting write calls and estimating write units from
   item sizes (the emulator reports no consumed capacity for transactions).
5. Cold import of the Lambda handler module (`import app`) in fresh processes,
   median of 5, and the top modules by `-X importtime`.

Writes `.local/bench.json`; exits 1 when an AWS-call target of issue 3 is missed
(the targets are call counts: deterministic, not timings), 2 when the bench
itself could not run.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
from collections import Counter
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
READY_MARK = "SI64 local stack ready"
BULK_ACTIVE = 300
CAPACITY = 64          # slots per device in the bench stack: 12 devices x 64 = 768
SOL = 10**9
SAMPLE = {"cpu_percent": 37.5, "memory_mb": 6144, "disk_io_mbps": 12.25, "network_io_mbps": 3.5}
ORDER = ["health", "pricing", "devices", "rent", "status", "extend", "settle", "metrics",
         "metrics_batch_120", "contract_metrics", "ledger_page", "entries", "stats"]
SCRUB = ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN",
         "AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE", "AWS_ROLE_ARN", "AWS_WEB_IDENTITY_TOKEN_FILE",
         "AWS_ENDPOINT_URL")


class BenchError(RuntimeError):
    pass


def say(msg: str) -> None:
    print(f"[bench] {msg}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------
# the stack

def free_port(taken: set, pair: bool = False) -> int:
    for _ in range(200):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        want = [port, port + 1] if pair else [port]
        if any(p in taken for p in want):
            continue
        if pair:
            with socket.socket() as s:
                try:
                    s.bind(("127.0.0.1", port + 1))
                except OSError:
                    continue
        taken.update(want)
        return port
    raise BenchError("no free port on 127.0.0.1")


@contextmanager
def local_stack(state_dir: Path, timeout: float = 150.0):
    """`python -m local.stack` on free ports; yields stack.json; SIGTERM (then SIGKILL) at exit."""
    taken: set = set()
    env = {k: v for k, v in os.environ.items() if k not in SCRUB}
    env.update(SI64_STATE_DIR=str(state_dir), PYTHONUNBUFFERED="1",
               SI64_AWS_PORT=str(free_port(taken)), SI64_RPC_PORT=str(free_port(taken, pair=True)),
               SI64_API_PORT=str(free_port(taken)),
               SI64_DEVICE_CAPACITY=str(CAPACITY), SI64_RATE_LIMIT="1000000/10", SI64_SWEEP_SECONDS="600")
    out_path = state_dir / "stack.out"
    with open(out_path, "wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "local.stack"], cwd=str(ROOT), env=env,
                                stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)
    try:
        deadline = time.monotonic() + timeout
        while READY_MARK not in out_path.read_text(errors="replace"):
            if proc.poll() is not None:
                raise BenchError(f"local stack exited with {proc.returncode}:\n"
                                 f"{out_path.read_text(errors='replace')[-3000:]}")
            if time.monotonic() > deadline:
                raise BenchError(f"local stack not ready after {timeout:.0f}s")
            time.sleep(0.2)
        yield json.loads((state_dir / "stack.json").read_text())
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)
        say(f"local stack stopped (exit {proc.returncode})")


# ---------------------------------------------------------------------------
# paying on the local chain with solana-py

class Payer:
    """One funded keypair that pays the treasury with real system transfers (solana-py AsyncClient).
    A memo with a counter keeps every transaction (and so every signature) distinct."""

    MEMO = "MemoSq4gqABAXKb96qnH8TysNcWxMyWCqXgDLGmfcHr"

    def __init__(self, rpc_url: str, treasury: str):
        from solana.rpc.async_api import AsyncClient
        from solders.keypair import Keypair
        from solders.pubkey import Pubkey

        self.loop = asyncio.new_event_loop()
        self.client = AsyncClient(rpc_url)
        self.kp = Keypair()
        self.wallet = str(self.kp.pubkey())
        self.treasury = Pubkey.from_string(treasury)
        self._hash, self._hash_at, self._n = None, 0.0, 0

    def run(self, coro):
        return self.loop.run_until_complete(coro)

    def fund(self, lamports: int) -> None:
        sig = self.run(self.client.request_airdrop(self.kp.pubkey(), lamports)).value
        self.run(self.client.confirm_transaction(sig))

    def _blockhash(self):
        if self._hash is None or time.monotonic() - self._hash_at > 20:  # valid ~60 s on the local chain
            self._hash = self.run(self.client.get_latest_blockhash()).value.blockhash
            self._hash_at = time.monotonic()
        return self._hash

    def pay(self, lamports: int) -> str:
        from solders.instruction import AccountMeta, Instruction
        from solders.message import Message
        from solders.pubkey import Pubkey
        from solders.system_program import TransferParams, transfer
        from solders.transaction import Transaction

        self._n += 1
        bh = self._blockhash()
        ixs = [transfer(TransferParams(from_pubkey=self.kp.pubkey(), to_pubkey=self.treasury, lamports=lamports)),
               Instruction(Pubkey.from_string(self.MEMO), f"si64-bench-{self._n}".encode(),
                           [AccountMeta(self.kp.pubkey(), True, True)])]
        tx = Transaction([self.kp], Message.new_with_blockhash(ixs, self.kp.pubkey(), bh), bh)
        return str(self.run(self.client.send_transaction(tx)).value)  # lands when the call returns

    def renter_headers(self, method: str, path: str) -> dict:
        ts = str(int(time.time()))
        sig = self.kp.sign_message(f"si64:{method} {path}:{ts}".encode())
        return {"X-Wallet": self.wallet, "X-Timestamp": ts, "X-Signature": str(sig)}

    def close(self) -> None:
        try:
            self.run(self.client.close())
        finally:
            self.loop.close()


def price(tier: str, hours: int) -> int:
    from chalicelib.domain import money
    return money.TIERS[tier].lamports_per_hour * hours


# ---------------------------------------------------------------------------
# in-process API with call counting

class InProcess:
    """The app in this process (chalice.test.Client) bound to one table prefix of the stack's emulator.
    Building one rebinds the process-wide PynamoDB models: use one at a time."""

    def __init__(self, info: dict, payer: Payer, prefix: str | None = None, queue_url: str | None = None,
                 dlq_url: str | None = None):
        from chalice.test import Client

        from app import app
        from chalicelib import bootstrap
        from chalicelib.config import Settings
        from local.bench_calls import CallRecorder

        self.info, self.payer = info, payer
        s = Settings(stage="local", region="us-east-1", aws_endpoint_url=info["aws_endpoint"],
                     table_prefix=prefix or info["table_prefix"],
                     refund_queue_url=queue_url or info["refund_queue_url"],
                     refund_dlq_url=dlq_url or info["refund_dlq_url"], solana_rpc_url=info["rpc_url"],
                     network="localnet", treasury=info["treasury"], admin_key=info["admin_key"],
                     device_capacity=CAPACITY, rate_limit=(10**9, 10))
        self.container = bootstrap.build(s)
        bootstrap.set_container(self.container)
        self._bootstrap = bootstrap
        self.client = Client(app, stage_name="local", project_dir=str(ROOT))
        self.rec = CallRecorder()
        self.measured: dict = {}
        self.admin = {"X-Admin-Key": info["admin_key"]}
        self.device_keys = dict(info["device_keys"])

    def close(self):
        self.rec.close()
        self._bootstrap.set_container(None)

    def request(self, method: str, path: str, body=None, headers=None):
        h = dict(headers or {})
        if method == "GET":
            r = self.client.http.get(path, headers=h)
        else:
            h.setdefault("Content-Type", "application/json")
            r = self.client.http.post(path, headers=h, body=body if isinstance(body, str) else json.dumps(body))
        return r.status_code, json.loads(r.body or b"null")

    def measure(self, name: str, method: str, path: str, body=None, headers=None, expect=(200,)):
        with self.rec.measure() as m:
            st, out = self.request(method, path, body, headers)
        if st not in expect:
            raise BenchError(f"{name}: {method} {path} answered {st}: {out}")
        self.measured[name] = m
        return out

    def seed_devices(self) -> None:
        """A fresh prefix: the stack's 12 devices and a key each (as local.seed does)."""
        from local.seed import device_dicts
        self.container.operator.seed_devices(device_dicts(), CAPACITY)
        self.device_keys = {d["device_id"]: self.container.operator.issue_device_key(d["device_id"])
                            for d in device_dicts()}

    def rent(self, tier: str, hours: int = 1, name: str | None = None) -> dict:
        sig = self.payer.pay(price(tier, hours))
        body = {"wallet": self.payer.wallet, "tier": tier, "duration_hours": hours, "tx_signature": sig}
        if name:
            return self.measure(name, "POST", "/api/rent", body, expect=(201,))
        st, out = self.request("POST", "/api/rent", body)
        if st != 201:
            raise BenchError(f"rent {tier}: {st} {out}")
        return out


def seed_active(api: InProcess, n: int) -> int:
    """Put n ACTIVE contracts as /api/rent would leave them -- payment claim, contract, its two
    postings, a device slot -- with the app's own item mapping, in batch writes.

    Not through /api/rent: the emulator (moto) deep-copies every table a TransactWriteItems
    touches, once per item, so 300 rents cost minutes and grow quadratically. The seeded
    claims carry random signatures: no chain transfer backs them (bench data only)."""
    import secrets

    from chalicelib.adapters import contracts as ca
    from chalicelib.adapters import ledger as la
    from chalicelib.adapters.claims import claim_item
    from chalicelib.adapters.models import ClaimItem, ContractItem, DeviceItem, LedgerItem
    from chalicelib.domain import keys as base58
    from chalicelib.domain import ledger, receipts
    from chalicelib.domain import contracts as dc
    from chalicelib.domain.records import Claim

    devices = [d for d in api.container.devices.all() if d.tier in ("M2", "ORIN", "THOR")]
    devices.sort(key=lambda d: d.device_id)
    now = int(time.time() * 1000)
    leases: Counter = Counter()
    contracts, claims, entries = [], [], []
    for i in range(n):
        d = devices[i % len(devices)]
        if d.leases + leases[d.device_id] >= d.capacity:
            raise BenchError("not enough device slots to seed the bench contracts")
        leases[d.device_id] += 1
        sig = base58.encode(secrets.token_bytes(64))
        k = dc.open_contract(contract_id=dc.new_contract_id(), wallet=api.payer.wallet, tier=d.tier,
                             device_id=d.device_id, seconds=3 * 3600, sig=sig, now_ms=now - i,
                             received_lamports=price(d.tier, 3))
        contracts.append(ca.to_item(k, shards=api.container.settings.active_shards))
        claims.append(claim_item(Claim(sig, "rent", k.contract_id, k.wallet, f"rent|{k.wallet}|{k.tier}|{3 * 3600}",
                                       receipts.rent_receipt(k)), now))
        entries += [la.to_item(e) for e in ledger.payment_postings(k, k.payments[0])]
    for model, items in ((ContractItem, contracts), (ClaimItem, claims), (LedgerItem, entries)):
        with model.batch_write() as batch:
            for item in items:
                batch.save(item)
    for device_id, count in leases.items():
        DeviceItem(device_id).update(actions=[DeviceItem.leases.add(count)])
    return sum(1 for k in api.container.contracts.scan_all() if k.status == "ACTIVE")


def count_calls(api: InProcess) -> dict:
    """Serve every endpoint once in-process, counting its AWS calls."""
    t0 = time.monotonic()
    n_active = seed_active(api, BULK_ACTIVE)
    say(f"{n_active} ACTIVE contracts in the table ({time.monotonic() - t0:.1f}s)")
    # warm: PynamoDB builds one botocore client per model on its first use in a process; touch
    # every table and the queue first, so "new clients" below shows only per-request ones
    seeded = next(iter(api.container.contracts.page(1, None)[0])).contract_id
    for path in ("/api/health", "/api/stats", f"/api/contracts/{seeded}/metrics",
                 f"/api/billing/entries?contract_id={seeded}"):
        api.request("GET", path, headers=api.admin)
    api.measure("ledger_page", "GET", "/api/billing/ledger?limit=100", headers=api.admin)
    api.measure("stats", "GET", "/api/stats", headers=api.admin)
    api.measure("health", "GET", "/api/health")
    api.measure("pricing", "GET", "/api/pricing")
    api.measure("devices", "GET", "/api/devices/ORIN")
    c = api.rent("THOR", 2, name="rent")
    cid, dev = c["contract_id"], c["device_id"]
    api.measure("status", "GET", f"/api/contracts/{cid}")
    ext = {"additional_hours": 1, "tx_signature": api.payer.pay(price("THOR", 1))}
    api.measure("extend", "POST", f"/api/contracts/{cid}/extend", ext)
    key = {"X-Device-Key": api.device_keys[dev]}
    api.measure("metrics", "POST", f"/api/metrics/{cid}", SAMPLE, key)
    now = int(time.time() * 1000)
    batch = {"samples": [dict(SAMPLE, timestamp_ms=now - 500 * i) for i in range(120)]}
    api.measure("metrics_batch_120", "POST", f"/api/metrics/{cid}", batch, key)
    api.measure("contract_metrics", "GET", f"/api/contracts/{cid}/metrics")
    api.measure("entries", "GET", f"/api/billing/entries?contract_id={cid}", headers=api.admin)
    path = f"/api/contracts/{cid}/settle"
    out = api.measure("settle", "POST", path, "", api.payer.renter_headers("POST", path))
    if out.get("refund_status") != "QUEUED":
        raise BenchError(f"settle: expected a QUEUED refund, got {out}")
    return {"active_at_ledger": n_active}


# ---------------------------------------------------------------------------
# metric write cost

def metric_writes(info: dict, payer: Payer, ddb) -> dict:
    """1,000 samples, single and in batches of 120, on fresh tables (prefix si64-bw) of the same
    emulator, so that moto's per-transaction table copies stay small."""
    from local.provision import provision

    prefix = "si64-bw"
    res = provision(prefix, info["aws_endpoint"], "us-east-1")
    api = InProcess(info, payer, prefix=prefix, queue_url=res.queue_url, dlq_url=res.dlq_url)
    try:
        api.seed_devices()
        with one_transaction_connection() as cached:
            out = _metric_writes(api, ddb, prefix)
        out["bench_reused_transaction_connection"] = cached
        return out
    finally:
        api.close()


@contextmanager
def one_transaction_connection():
    """While counting 1,000 posts only: if chalicelib builds a new PynamoDB Connection (so a new
    botocore session and client, ~0.2 s of CPU) for every transaction, hand it one reused
    Connection instead. The AWS calls and items are the same either way; it only keeps this
    phase within the bench's time. Yields whether it had to."""
    from chalicelib.adapters import dynamo, transactions

    original = transactions.transaction_connection
    if dynamo.transaction_connection() is dynamo.transaction_connection():
        yield False
        return
    shared = original()
    transactions.transaction_connection = lambda: shared
    try:
        yield True
    finally:
        transactions.transaction_connection = original


def _metric_writes(api: InProcess, ddb, prefix: str) -> dict:
    from local.bench_calls import table_gsis, wcu

    gsis = table_gsis(ddb, [f"{prefix}-{t}" for t in ("contracts", "devices", "ledger", "claims", "metrics")])

    def fetch(table, key):
        return ddb.get_item(TableName=table, Key=key, ConsistentRead=True).get("Item")

    out = {}
    for label, per_request in (("single", 1), ("batch_120", 120)):
        c = api.rent("M2", 2)
        cid, key = c["contract_id"], {"X-Device-Key": api.device_keys[c["device_id"]]}
        requests = math.ceil(1000 / per_request)
        calls, remaining, t0 = [], 1000, time.monotonic()
        base = int(time.time() * 1000) - 10_000
        for r in range(requests):
            k = min(per_request, remaining)
            remaining -= k
            body = SAMPLE if per_request == 1 else {
                "samples": [dict(SAMPLE, timestamp_ms=base + r * per_request + i) for i in range(k)]}
            with api.rec.measure() as m:
                st, resp = api.request("POST", f"/api/metrics/{cid}", body, key)
            if st != 200 or resp.get("samples_recorded") != k:
                raise BenchError(f"metrics {label}: {st} {resp}")
            calls.append(m)
        elapsed = time.monotonic() - t0
        counts = sum((m.counts for m in calls), Counter())
        writes = [c for m in calls for c in m.calls if c.op in ("dynamodb.TransactWriteItems", "dynamodb.PutItem",
                                                              "dynamodb.UpdateItem", "dynamodb.BatchWriteItem")]
        units = [wcu(w, fetch, gsis) for w in writes]
        out[label] = {
            "samples": 1000, "requests": requests,
            "write_calls": len(writes), "read_calls": sum(v for k, v in counts.items() if k in (
                "dynamodb.GetItem", "dynamodb.Query", "dynamodb.Scan")),
            "calls": dict(sorted(counts.items())),
            "items_written": sum(u["items"] for u in units),
            "wcu_table": sum(u["table_wcu"] for u in units),
            "wcu_gsi": sum(u["gsi_wcu"] for u in units),
            "wcu_total": sum(u["table_wcu"] + u["gsi_wcu"] for u in units),
            "items_of_first_request": units[0]["detail"],
            "in_process_seconds": round(elapsed, 2),
        }
    out["method"] = ("write units estimated from item sizes: a TransactWriteItems item costs 2 WCU per started KB "
                     "(Put: size of the item sent; Update/ConditionCheck: size of the stored item read back after "
                     "the run); a Put/Update of an item carrying a GSI's keys adds 1 WCU per started KB per index "
                     "(projection ALL). The emulator (moto) reports no ConsumedCapacity for TransactWriteItems.")
    return out


# ---------------------------------------------------------------------------
# latency over HTTP

def http_call(base: str, method: str, path: str, body=None, headers=None, timeout: float = 30.0):
    import http.client

    u = urllib.parse.urlsplit(base)
    if u.hostname not in ("127.0.0.1", "localhost"):
        raise BenchError(f"refusing to send traffic to {u.hostname}: 127.0.0.1 only")
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=timeout)
    data = None if body is None else (body if isinstance(body, str) else json.dumps(body)).encode()
    h = {"Content-Type": "application/json", **(headers or {})}
    try:
        t0 = time.perf_counter()
        conn.request(method, path, body=data, headers=h)
        resp = conn.getresponse()
        raw = resp.read()
        ms = (time.perf_counter() - t0) * 1000
    finally:
        conn.close()
    return resp.status, raw, ms


def pct(values: list[float], p: float) -> float:
    s = sorted(values)
    k = max(0, min(len(s) - 1, math.ceil(p / 100 * len(s)) - 1))  # nearest rank
    return round(s[k], 2)


def latency(info: dict, payer: Payer, n: int, budget_s: float, per_endpoint_s: float = 8.0) -> dict:
    base = info["api_url"]
    admin = {"X-Admin-Key": info["admin_key"]}
    deadline = time.monotonic() + budget_s
    results: dict = {}

    def run(name, make, expect=(200,), keep=None):
        """make(i) -> (method, path, body, headers), prepared outside the timer; keep(body) sees answers."""
        times, bad = [], Counter()
        stop = min(deadline, time.monotonic() + per_endpoint_s)
        for i in range(n):
            if time.monotonic() > stop:
                say(f"time cap reached: {name} stopped after {i} requests")
                break
            method, path, body, headers = make(i)
            st, raw, ms = http_call(base, method, path, body, headers)
            if st not in expect:
                bad[st] += 1
                if sum(bad.values()) == 1:
                    say(f"{name}: {method} {path} -> {st} {raw[:200]!r}")
            elif keep is not None:
                keep(json.loads(raw))
            times.append(ms)
        if not times:
            return
        results[name] = {"p50": pct(times, 50), "p95": pct(times, 95), "n": len(times),
                         "mean": round(statistics.fmean(times), 2)}
        if bad:
            results[name]["unexpected_status"] = dict(bad)

    def rent_one(tier, hours=1):
        sig = payer.pay(price(tier, hours))
        return {"wallet": payer.wallet, "tier": tier, "duration_hours": hours, "tx_signature": sig}

    run("health", lambda i: ("GET", "/api/health", None, None))
    run("pricing", lambda i: ("GET", "/api/pricing", None, None))
    run("devices", lambda i: ("GET", f"/api/devices/{['M2', 'ORIN', 'M3_ULTRA', 'THOR'][i % 4]}", None, None))
    rented: list[str] = []
    run("rent", lambda i: ("POST", "/api/rent", rent_one(["ORIN", "M3_ULTRA"][i % 2]), None), expect=(201,),
        keep=lambda body: rented.append(body["contract_id"]))
    target = json.loads(http_call(base, "POST", "/api/rent", rent_one("THOR", 2))[1])
    cid, dev = target["contract_id"], target["device_id"]
    key = {"X-Device-Key": info["device_keys"][dev]}
    run("status", lambda i: ("GET", f"/api/contracts/{cid}", None, None))
    run("extend", lambda i: ("POST", f"/api/contracts/{cid}/extend",
                             {"additional_hours": 1, "tx_signature": payer.pay(price("THOR", 1))}, None))
    run("metrics", lambda i: ("POST", f"/api/metrics/{cid}", SAMPLE, key))

    def batch(i):
        now = int(time.time() * 1000)
        return "POST", f"/api/metrics/{cid}", {"samples": [dict(SAMPLE, timestamp_ms=now - 500 * j)
                                                          for j in range(120)]}, key
    run("metrics_batch_120", batch)
    run("contract_metrics", lambda i: ("GET", f"/api/contracts/{cid}/metrics", None, None))
    run("ledger_page", lambda i: ("GET", "/api/billing/ledger?limit=100", None, admin))
    run("entries", lambda i: ("GET", f"/api/billing/entries?contract_id={cid}", None, admin))
    run("stats", lambda i: ("GET", "/api/stats", None, admin))

    def settle(i):
        path = f"/api/contracts/{rented[i % len(rented)]}/settle"
        return "POST", path, "", payer.renter_headers("POST", path)
    if rented:  # each settles one of the contracts rented above (a fresh one per request)
        run("settle", settle)
    return results


# ---------------------------------------------------------------------------
# cold import

IMPORT_LINE = re.compile(r"^import time:\s+(\d+)\s+\|\s+(\d+)\s+\|(\s*)(\S+)")


def cold_import(runs: int = 5) -> dict:
    """`import app` in fresh interpreters: wall ms (perf_counter around the import), median of
    `runs`; then the same plus `bootstrap.build()` (what the first request adds: pynamodb,
    botocore); top modules from `-X importtime` of the median run's kind."""
    env = {k: v for k, v in os.environ.items() if k not in SCRUB}
    env.update(AWS_DEFAULT_REGION="us-east-1", PYTHONDONTWRITEBYTECODE="1")
    scenarios = {
        "import_app": "import app",
        "import_app_and_container": ("import app\nfrom chalicelib import bootstrap\n"
                                     "from chalicelib.config import Settings\n"
                                     "bootstrap.build(Settings(refund_queue_url='http://127.0.0.1:9/q'))"),
    }
    out: dict = {}
    base = subprocess.run([sys.executable, "-X", "importtime", "-c", "pass"], cwd=str(ROOT), env=env,
                          capture_output=True, text=True, timeout=60).stderr
    startup = {m[0] for m in _importtime(base)}
    for name, code in scenarios.items():
        prog = ("import time, sys\nt0 = time.perf_counter()\n" + code +
                "\nsys.stdout.write('%.3f' % ((time.perf_counter() - t0) * 1000))\n")
        samples, logs = [], []
        for _ in range(runs):
            p = subprocess.run([sys.executable, "-X", "importtime", "-c", prog], cwd=str(ROOT), env=env,
                               capture_output=True, text=True, timeout=60)
            if p.returncode != 0:
                raise BenchError(f"cold import {name} failed: {p.stderr[-2000:]}")
            samples.append(float(p.stdout.strip()))
            logs.append(p.stderr)
        med = statistics.median(samples)
        mods = [m for m in _importtime(logs[samples.index(min(samples, key=lambda x: abs(x - med)))])
                if m[0] not in startup and m[0] != "app"]
        # by top-level package: the cumulative time of its first (outermost) import; nested
        # packages overlap (pynamodb includes botocore)
        packages: dict = {}
        for mod, _self, cum in mods:
            root = mod.split(".")[0]
            packages[root] = max(packages.get(root, 0), cum)
        top = sorted(packages.items(), key=lambda kv: -kv[1])[:5]
        self_top = sorted(mods, key=lambda x: -x[1])[:5]
        out[name] = {
            "median_ms": round(med, 1), "runs_ms": [round(x, 1) for x in samples],
            "top5_packages_cumulative_ms": [{"module": k, "ms": round(v / 1000, 1)} for k, v in top],
            "top5_modules_self_ms": [{"module": x[0], "ms": round(x[1] / 1000, 1)} for x in self_top],
        }
    out["handlers"] = lambda_handlers()
    out["method"] = ("fresh `python -X importtime -c` per run, perf_counter around the import (interpreter start-up "
                     f"excluded), median of {runs}; cwd is the repo, bytecode cached as after a first run")
    return out


def _importtime(stderr: str) -> list[tuple[str, int, int]]:
    """(module, self us, cumulative us) of each `-X importtime` line."""
    out = []
    for line in stderr.splitlines():
        m = IMPORT_LINE.match(line)
        if m:
            out.append((m.group(4), int(m.group(1)), int(m.group(2))))
    return out


def lambda_handlers() -> dict:
    """The Lambda functions Chalice builds from app.py: every one imports `app` on a cold start."""
    from app import app
    names = {"api_handler": "app: all HTTP routes"} if app.routes else {}
    for src in getattr(app, "event_sources", []):
        names[src.name] = f"app: {src.handler_string}"
    return names


# ---------------------------------------------------------------------------
# report

def report_calls(api: InProcess) -> tuple[dict, list, bool]:
    from local.bench_calls import BUDGETS, fmt_counts

    rows, aws_calls, detail, ok_all = [], {}, {}, True
    for name in ORDER:
        m = api.measured.get(name)
        if m is None:
            continue
        budget = BUDGETS[name]
        ok, problems = budget.check(m.counts)
        aws_calls[name] = sum(m.counts.values())
        detail[name] = {"calls": dict(sorted(m.counts.items())), "attempts": m.attempts,
                        "botocore_clients_created": m.clients_created, "client_created_at": m.client_sites,
                        "target": budget.text, "gate": budget.gate, "ok": ok, "problems": problems,
                        "call_sites": m.sites()}
        if budget.gate and not ok:
            ok_all = False
        verdict = ("PASS" if ok else "FAIL") if budget.gate else ("ok" if ok else "over")
        rows.append((name, str(aws_calls[name]), fmt_counts(m.counts), budget.text + ("" if budget.gate else " *"),
                     verdict, str(m.clients_created)))
    return {"aws_calls": aws_calls, "aws_calls_detail": detail}, rows, ok_all


def table(rows, header) -> str:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    line = lambda r: "  ".join(str(c).ljust(w) for c, w in zip(r, widths)).rstrip()  # noqa: E731
    return "\n".join([line(header), line(["-" * w for w in widths])] + [line(r) for r in rows])


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m local.bench", description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=int(os.environ.get("SI64_BENCH_N", "50")),
                    help="HTTP requests per endpoint (sequential), default 50")
    ap.add_argument("--out", default=str(ROOT / ".local" / "bench.json"))
    ap.add_argument("--no-latency", action="store_true")
    ap.add_argument("--no-import", action="store_true")
    ap.add_argument("--latency-budget", type=float, default=90.0, help="seconds for the HTTP phase")
    ap.add_argument("--endpoint-budget", type=float, default=8.0, help="seconds per endpoint in the HTTP phase")
    args = ap.parse_args(argv)
    args.n = max(1, min(args.n, 1000))
    t_start = time.monotonic()
    for k in SCRUB:
        os.environ.pop(k, None)
    os.environ.update(AWS_ACCESS_KEY_ID="test", AWS_SECRET_ACCESS_KEY="test", AWS_DEFAULT_REGION="us-east-1",
                      AWS_REGION="us-east-1", AWS_EC2_METADATA_DISABLED="true")
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    os.chdir(ROOT)

    result: dict = {}
    rows, calls_ok = [], False
    state_dir = Path(tempfile.mkdtemp(prefix="si64-bench-"))
    try:
        with local_stack(state_dir) as info:
            say(f"stack up: api={info['api_url']} aws={info['aws_endpoint']} rpc={info['rpc_url']}")
            payer = Payer(info["rpc_url"], info["treasury"])
            api = None
            try:
                payer.fund(200 * SOL)
                api = InProcess(info, payer)
                t0 = time.monotonic()
                extra = count_calls(api)
                part, rows, calls_ok = report_calls(api)
                result.update(part)
                result["aws_calls_setup"] = {
                    "mode": "in-process chalice.test.Client(app) against the stack's AWS emulator (moto server) "
                            "and local chain; payments are real solana-py transfers (no FakeRpc); the 300 ACTIVE contracts "
                            "behind the ledger page are seeded by batch writes (see seed_active)",
                    "active_contracts_at_ledger_page": extra["active_at_ledger"],
                    "ledger_page_limit": 100}
                say(f"AWS calls counted in {time.monotonic() - t0:.1f}s")
                t0 = time.monotonic()
                import boto3
                ddb = boto3.client("dynamodb", endpoint_url=info["aws_endpoint"], region_name="us-east-1")
                api.close()
                api = None
                result["writes_per_1000_samples"] = metric_writes(info, payer, ddb)
                say(f"metric write cost measured in {time.monotonic() - t0:.1f}s")
            finally:
                if api is not None:
                    api.close()
            try:
                if not args.no_latency:
                    t0 = time.monotonic()
                    result["latency_ms"] = latency(info, payer, args.n, args.latency_budget,
                                                    args.endpoint_budget)
                    result["latency_setup"] = {"n": args.n, "sequential": True, "target": info["api_url"],
                                               "server": "chalice local --no-autoreload of the local stack",
                                               "percentile": "nearest rank",
                                               "cap_seconds_per_endpoint": args.endpoint_budget,
                                               "cap_seconds_total": args.latency_budget}
                    say(f"latency measured in {time.monotonic() - t0:.1f}s")
            finally:
                payer.close()
        if not args.no_import:
            t0 = time.monotonic()
            result["cold_import_ms"] = cold_import()
            say(f"cold import measured in {time.monotonic() - t0:.1f}s")
    except BenchError as exc:
        say(f"error: {exc}")
        return 2
    except Exception:  # noqa: BLE001 - the bench broke: not a missed target (exit 1)
        import traceback
        traceback.print_exc()
        say("error: the bench itself failed (exit 2)")
        return 2
    finally:
        shutil.rmtree(state_dir, ignore_errors=True)

    result["targets_met"] = calls_ok
    result["seconds"] = round(time.monotonic() - t_start, 1)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")

    lat = result.get("latency_ms", {})
    full = [(*r, f"{lat[r[0]]['p50']:.1f}" if r[0] in lat else "-",
             f"{lat[r[0]]['p95']:.1f}" if r[0] in lat else "-",
             str(lat[r[0]]["n"]) if r[0] in lat else "-") for r in rows]
    print(table(full, ("endpoint", "calls", "by operation", "target", "result", "new clients",
                       "p50 ms", "p95 ms", "n")))
    print("* the bench's own budget, not a target of issue 3: shown, never fails the run")
    print("new clients: botocore clients built while serving one warm request (no AWS call, ~0.2 s CPU each)")
    sites = sorted({s for d in result["aws_calls_detail"].values() for s in d["client_created_at"]})
    for s in sites:
        print(f"    client built at: {s}")
    w = result.get("writes_per_1000_samples")
    if w:
        for label in ("single", "batch_120"):
            x = w[label]
            print(f"1,000 samples as {label:9}: {x['requests']:4} requests, {x['write_calls']:4} write calls, "
                  f"{x['items_written']:4} items, ~{x['wcu_total']} WCU ({x['wcu_table']} table + "
                  f"{x['wcu_gsi']} index), {x['read_calls']} reads")
    ci = result.get("cold_import_ms")
    if ci:
        for name in ("import_app", "import_app_and_container"):
            x = ci[name]
            tops = ", ".join(f"{m['module']} {m['ms']}" for m in x["top5_packages_cumulative_ms"])
            print(f"cold {name}: median {x['median_ms']} ms; top packages (ms, cumulative): {tops}")
    failed = [n for n, d in result["aws_calls_detail"].items() if d["gate"] and not d["ok"]]
    for n in failed:
        print(f"MISSED {n}: {'; '.join(result['aws_calls_detail'][n]['problems'])}")
        for op, sites in result["aws_calls_detail"][n]["call_sites"].items():
            for s in sites:
                print(f"    {op}: {s}")
    print(f"wrote {out} in {result['seconds']}s: {'every AWS-call target met' if calls_ok else 'TARGET MISSED'}")
    return 0 if calls_ok else 1


if __name__ == "__main__":
    sys.exit(main())
