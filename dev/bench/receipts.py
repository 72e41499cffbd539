"""Receipt write cost: 1,000 samples in device-signed batches of 120 (docs/adr/0019), in-process
on a local stack, counted and costed exactly as dev/bench/writes.py costs unsigned batches (the
same `wcu` estimate from item sizes), beside an unsigned run of the same samples.

    python -m dev.bench.receipts [--out .local/bench-receipts.json]

A signed batch is the same one PutItem, its item larger by the receipt (~0.4 KB); the previous
receipt is read in the report's one BatchGetItem, so the calls per report do not change."""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import tempfile
import time
from collections import Counter
from pathlib import Path

from dev.bench.common import ROOT, SAMPLE, SOL, BenchError, Wallet, say
from dev.bench.writes import COVER_GRACE_S, _direct, noisy_sample
from si64_protocol.receipts import GENESIS_PREV, message_sha256, receipt_message, samples_sha256

TIER = "ORIN"  # devices the bench leaves unleased, so their keys can be registered
UNSIGNED_TIER = "THOR"  # devices without a key: the same samples unsigned, for comparison
WRITES = ("dynamodb.TransactWriteItems", "dynamodb.PutItem", "dynamodb.UpdateItem", "dynamodb.BatchWriteItem")


def _signed(keypair, cid: str, seq: int, prev: str, samples: list[dict]) -> tuple[dict, str]:
    times = [s["timestamp_ms"] for s in samples]
    h = samples_sha256(samples)
    message = receipt_message(cid, seq, min(times), max(times), h, prev)
    receipt = {
        "seq": seq,
        "from_ms": min(times),
        "to_ms": max(times),
        "samples_sha256": h,
        "prev_sha256": prev,
        "signature": str(keypair.sign_message(message.encode())),
    }
    return {"samples": samples, "receipt": receipt}, message_sha256(message)


def receipt_writes(info: dict, payer: Wallet, ddb) -> dict:
    from solders.keypair import Keypair

    from dev.bench.calls import table_gsis, wcu
    from dev.bench.inprocess import InProcess
    from dev.provision import provision
    from dev.seed import device_dicts

    prefix = "si64-br"
    res = provision(prefix, info["aws_endpoint"], "us-east-1", dynamodb_endpoint_url=_direct(info))
    api = InProcess(
        info, payer, prefix=prefix, queue_url=res.queue_url, dlq_url=res.dlq_url, coverage_grace_seconds=COVER_GRACE_S
    )
    gsis = table_gsis(ddb, [f"{prefix}-{t}" for t in ("contracts", "devices", "ledger", "claims", "metrics")])

    def fetch(table, key):
        return ddb.get_item(TableName=table, Key=key, ConsistentRead=True).get("Item")

    out: dict = {}
    try:
        api.seed_devices()
        keypair = Keypair()
        for d in device_dicts():
            if d["tier"] == TIER:
                api.container.operator.register_pubkey(d["device_id"], str(keypair.pubkey()))
        runs = (("batch_120", False, False), ("signed_batch_120", False, True))
        runs += (("batch_120_noisy", True, False), ("signed_batch_120_noisy", True, True))
        for label, noisy, signs in runs:
            rng = random.Random(10)  # the same samples signed and unsigned
            c = api.rent(TIER if signs else UNSIGNED_TIER, 2)
            cid, key = c["contract_id"], {"X-Device-Key": api.device_keys[c["device_id"]]}
            time.sleep(COVER_GRACE_S + 0.1)  # past the start-up allowance, as writes.py
            requests, remaining, prev = math.ceil(1000 / 120), 1000, GENESIS_PREV
            base = int(time.time() * 1000) - 10_000
            calls = []
            for r in range(requests):
                k = min(120, remaining)
                remaining -= k
                samples = [
                    dict(noisy_sample(rng, i) if noisy else SAMPLE, timestamp_ms=base + r * 120 + i) for i in range(k)
                ]
                body, prev = _signed(keypair, cid, r, prev, samples) if signs else ({"samples": samples}, prev)
                with api.rec.measure() as m:
                    st, resp = api.request("POST", f"/api/metrics/{cid}", body, key)
                if st != 200 or resp.get("samples_recorded") != k:
                    raise BenchError(f"metrics {label}: {st} {resp}")
                calls.append(m)
            counts = sum((m.counts for m in calls), Counter())
            writes = [c for m in calls for c in m.calls if c.op in WRITES]
            units = [wcu(w, fetch, gsis) for w in writes]
            puts = [u["sizes"][0] for w, u in zip(writes, units, strict=True) if w.op == "dynamodb.PutItem"]
            batch_puts = [u for w, u in zip(writes, units, strict=True) if w.op == "dynamodb.PutItem"]
            out[label] = {
                "samples": 1000,
                "requests": requests,
                "calls_per_request": {op: round(n / requests, 3) for op, n in sorted(counts.items())},
                "write_calls": len(writes),
                "wcu_total": sum(u["table_wcu"] + u["gsi_wcu"] for u in units),
                "wcu_batch_puts": sum(u["table_wcu"] for u in batch_puts),
                "batch_item_bytes": {"min": min(puts), "max": max(puts)} if puts else None,
            }
    finally:
        api.close()
    out["method"] = "as dev/bench/writes.py: write units from item sizes (1 WCU per started KB of a PutItem/UpdateItem)"
    return out


def main(argv: list[str] | None = None) -> int:
    import boto3

    from dev.launch import launch
    from dev.stack import SCRUB

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=str(ROOT / ".local" / "bench-receipts.json"))
    args = ap.parse_args(argv)
    for k in (*SCRUB, "AWS_ENDPOINT_URL"):
        os.environ.pop(k, None)
    os.environ.update(AWS_ACCESS_KEY_ID="test", AWS_SECRET_ACCESS_KEY="test", AWS_DEFAULT_REGION="us-east-1")
    state_dir = Path(tempfile.mkdtemp(prefix="si64-bench-receipts-"))
    env = {"SI64_RATE_LIMIT": "1000000/10", "SI64_DEVICE_RATE_LIMIT": "1000000/10", "SI64_SWEEP_SECONDS": "600"}
    with launch(state_dir, timeout=150.0, **env) as info:
        payer = Wallet(info["rpc_url"], info["treasury"])
        payer.fund(20 * SOL)
        ddb = boto3.client("dynamodb", endpoint_url=info["aws_endpoint"], region_name="us-east-1")
        result = receipt_writes(info, payer, ddb)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2))
    say(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
