"""AWS calls per endpoint, served in-process (`chalice.test.Client(app)`) against the stack's
emulator and chain, counted by dev/bench/calls.py; the 300 ACTIVE contracts behind the
ledger page are seeded by batch writes (`seed_active`)."""

from __future__ import annotations

import json
import time
from collections import Counter

from chalicelib.domain.signing import extend_memo, rent_memo
from dev.bench.common import BULK_ACTIVE, CAPACITY, ORDER, ROOT, SAMPLE, BenchError, Wallet, price, say


class InProcess:
    """The app in this process (chalice.test.Client) bound to one table prefix of the stack's emulator.
    Building one rebinds the process-wide PynamoDB models: use one at a time."""

    def __init__(
        self,
        info: dict,
        payer: Wallet,
        prefix: str | None = None,
        queue_url: str | None = None,
        dlq_url: str | None = None,
        treasury_key_file: str | None = None,
        coverage_grace_seconds: int = 60,
    ):
        from chalice.test import Client

        from app import app
        from chalicelib import bootstrap
        from chalicelib.config import Settings
        from dev.bench.calls import CallRecorder

        self.info, self.payer = info, payer
        s = Settings(
            stage="local",
            region="us-east-1",
            aws_endpoint_url=info["aws_endpoint"],
            dynamodb_endpoint_url=info.get("dynamodb_endpoint"),
            table_prefix=prefix or info["table_prefix"],
            refund_queue_url=queue_url or info["refund_queue_url"],
            refund_dlq_url=dlq_url or info["refund_dlq_url"],
            solana_rpc_url=info["rpc_url"],
            network="localnet",
            treasury=info["treasury"],
            admin_key=info["admin_key"],
            treasury_key_file=treasury_key_file,
            rate_limit=(10**9, 10),
            device_rate_limit=(10**9, 10),
            coverage_grace_seconds=coverage_grace_seconds,
        )
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
        """A fresh prefix: the stack's 12 devices and a key each (as dev.seed does)."""
        from dev.seed import device_dicts

        self.container.operator.seed_devices(device_dicts(), CAPACITY)
        self.device_keys = {
            d["device_id"]: self.container.operator.issue_device_key(d["device_id"]) for d in device_dicts()
        }

    def rent(self, tier: str, hours: int = 1, name: str | None = None) -> dict:
        sig = self.payer.pay(price(tier, hours), rent_memo(tier, hours * 3600))
        body = {"wallet": self.payer.wallet, "tier": tier, "duration_hours": hours, "tx_signature": sig}
        if name:
            return self.measure(name, "POST", "/api/rent", body, expect=(201,))
        st, out = self.request("POST", "/api/rent", body)
        if st != 201:
            raise BenchError(f"rent {tier}: {st} {out}")
        return out


def seed_active(api: InProcess, n: int) -> int:
    """Put n ACTIVE contracts as /api/rent would leave them -- payment claim, contract, its
    coverage item, its two postings, a device slot -- with the app's own item mapping, in batch
    writes.

    Not through /api/rent: the emulator (moto) deep-copies every table a TransactWriteItems
    touches, once per item, so 300 rents cost minutes and grow quadratically. The seeded
    claims carry random signatures: no chain transfer backs them (bench data only)."""
    import secrets

    from solders.signature import Signature

    from chalicelib.adapters import contracts as ca
    from chalicelib.adapters import ledger as la
    from chalicelib.adapters.claims import claim_item
    from chalicelib.adapters.models import ClaimItem, ContractItem, CoverageItem, DeviceItem, LedgerItem
    from chalicelib.domain import contracts as dc
    from chalicelib.domain import ledger, receipts
    from chalicelib.domain.metering import COVERAGE_KEY
    from chalicelib.domain.records import Claim

    devices = [d for d in api.container.devices.all() if d.tier in ("M2", "ORIN", "THOR")]
    devices.sort(key=lambda d: d.device_id)
    now = int(time.time() * 1000)
    leases: Counter = Counter()
    contracts, claims, entries, covered = [], [], [], []
    for i in range(n):
        d = devices[i % len(devices)]
        if d.leases + leases[d.device_id] >= d.capacity:
            raise BenchError("not enough device slots to seed the bench contracts")
        leases[d.device_id] += 1
        sig = str(Signature.from_bytes(secrets.token_bytes(64)))
        k = dc.open_contract(
            contract_id=dc.new_contract_id(),
            wallet=api.payer.wallet,
            tier=d.tier,
            device_id=d.device_id,
            seconds=3 * 3600,
            sig=sig,
            now_ms=now - i,
            received_lamports=price(d.tier, 3),
            coverage_grace_ms=api.container.settings.coverage_grace_seconds * 1000,
        )
        contracts.append(ca.to_item(k, shards=api.container.settings.active_shards))
        covered.append(
            CoverageItem(k.contract_id, COVERAGE_KEY, covered_ms=k.covered_ms, covered_end_ms=k.covered_end_ms)
        )
        claims.append(
            claim_item(
                Claim(
                    sig,
                    "rent",
                    k.contract_id,
                    k.wallet,
                    f"rent|{k.wallet}|{k.tier}|{3 * 3600}",
                    receipts.rent_receipt(k),
                ),
                now,
            )
        )
        entries += [la.to_item(e) for e in ledger.payment_postings(k, k.payments[0])]
    for model, items in (
        (ContractItem, contracts),
        (CoverageItem, covered),
        (ClaimItem, claims),
        (LedgerItem, entries),
    ):
        with model.batch_write() as batch:
            for item in items:
                batch.save(item)
    for device_id, count in leases.items():
        DeviceItem(device_id).update(actions=[DeviceItem.leases.add(count)])
    active, token = 0, None
    while True:  # ContractStore.page: the port's paged read (there is no scan_all)
        page, token = api.container.contracts.page(1000, token)
        active += sum(1 for k in page if k.status == "ACTIVE")
        if token is None:
            return active


def count_calls(api: InProcess) -> dict:
    """Serve every endpoint once in-process, counting its AWS calls."""
    t0 = time.monotonic()
    n_active = seed_active(api, BULK_ACTIVE)
    say(f"{n_active} ACTIVE contracts in the table ({time.monotonic() - t0:.1f}s)")
    # warm: PynamoDB builds one botocore client per model on its first use in a process; touch
    # every table and the queue first, so "new clients" below shows only per-request ones
    seeded = next(iter(api.container.contracts.page(1, None)[0])).contract_id
    for path in (
        "/api/health",
        "/api/stats",
        f"/api/contracts/{seeded}/metrics",
        f"/api/billing/entries?contract_id={seeded}",
    ):
        api.request("GET", path, headers=api.admin)
    api.measure("ledger_page", "GET", "/api/billing/ledger?limit=100", headers=api.admin)
    api.measure("stats", "GET", "/api/stats", headers=api.admin)
    api.measure("health", "GET", "/api/health")
    api.measure("pricing", "GET", "/api/pricing")
    api.measure("devices", "GET", "/api/devices/ORIN")
    c = api.rent("THOR", 2, name="rent")
    cid, dev = c["contract_id"], c["device_id"]
    api.measure("status", "GET", f"/api/contracts/{cid}")
    ext = {"additional_hours": 1, "tx_signature": api.payer.pay(price("THOR", 1), extend_memo(cid, 3600))}
    api.measure("extend", "POST", f"/api/contracts/{cid}/extend", ext)
    key = {"X-Device-Key": api.device_keys[dev]}
    api.measure("metrics", "POST", f"/api/metrics/{cid}", SAMPLE, key)
    now = int(time.time() * 1000)
    batch = {"samples": [dict(SAMPLE, timestamp_ms=now - 100 * i) for i in range(120)]}  # within the contract's life
    api.measure("metrics_batch_120", "POST", f"/api/metrics/{cid}", batch, key)
    api.measure("contract_metrics", "GET", f"/api/contracts/{cid}/metrics")
    api.measure("entries", "GET", f"/api/billing/entries?contract_id={cid}", headers=api.admin)
    path = f"/api/contracts/{cid}/settle"
    out = api.measure("settle", "POST", path, "", api.payer.renter_headers("POST", path))
    if out.get("refund_status") != "QUEUED":
        raise BenchError(f"settle: expected a QUEUED refund, got {out}")
    return {"active_at_ledger": n_active}


def report_calls(api: InProcess) -> tuple[dict, list, bool]:
    from dev.bench.calls import BUDGETS, capacity, fmt_counts

    rows, aws_calls, detail, ok_all = [], {}, {}, True
    for name in ORDER:
        m = api.measured.get(name)
        if m is None:
            continue
        budget = BUDGETS[name]
        ok, problems = budget.check(m.counts)
        aws_calls[name] = sum(m.counts.values())
        detail[name] = {
            "calls": dict(sorted(m.counts.items())),
            "attempts": m.attempts,
            "botocore_clients_created": m.clients_created,
            "client_created_at": m.client_sites,
            "target": budget.text,
            "gate": budget.gate,
            "ok": ok,
            "problems": problems,
            "call_sites": m.sites(),
            "consumed_capacity": capacity(m),
        }
        if budget.gate and not ok:
            ok_all = False
        verdict = ("PASS" if ok else "FAIL") if budget.gate else ("ok" if ok else "over")
        rows.append(
            (
                name,
                str(aws_calls[name]),
                fmt_counts(m.counts),
                budget.text + ("" if budget.gate else " *"),
                verdict,
                str(m.clients_created),
            )
        )
    return {"aws_calls": aws_calls, "aws_calls_detail": detail}, rows, ok_all
