"""Settle-to-CONFIRMED on a chain that takes real time, merged into `.local/bench.json` under
"chain_timing".

A local stack with `SI64_CHAIN_TIMING=real` (400 ms slots, confirmed after 1 slot, finalized
after 32) and the refund message back every `--retry-seconds` (as a visibility timeout
would); N contracts are rented one by one and settled one by one, and for each the time
from the settle answer until `GET /api/contracts/{id}` shows the refund CONFIRMED
(finalized on chain) is recorded: min, median, max, and how much of it the 32-slot
finalization accounts for. The seed's target is "settlement 2-5 s"; with `finalized`
as the refund commitment (`SI64_REFUND_COMMITMENT`) the floor is 32 x 400 ms = 12.8 s.

    python -m dev.bench.chain_timing [--out .local/bench.json] [--refunds 5] [--retry-seconds 4]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

from dev.bench.common import ROOT, say

FINALIZE_SECONDS = 32 * 0.4
SEED_TARGET_SECONDS = (2.0, 5.0)


def settle_to_confirmed(n: int, retry_seconds: int, commitment: str = "finalized") -> dict:
    import requests

    from dev.launch import launch
    from si64.renter import Renter, renter_headers

    state = Path(tempfile.mkdtemp(prefix="si64-bench-chain-"))
    env = {
        "SI64_CHAIN_TIMING": "real",
        "SI64_RATE_LIMIT": "1000000/10",
        "SI64_DEVICE_RATE_LIMIT": "1000000/10",
        "SI64_SWEEP_SECONDS": "600",
        "SI64_REFUND_RETRY_SECONDS": str(retry_seconds),
        "SI64_REFUND_COMMITMENT": commitment,
    }
    took = []
    with launch(state, timeout=150.0, **env) as info, Renter(info["rpc_url"]) as renter:
        api = info["api_url"]
        s = requests.Session()
        payer = renter.new_wallet(20 * 10**9)
        for _ in range(n):
            sig = renter.pay(payer, info["treasury"], 3_000_000)
            body = json.dumps({"wallet": str(payer.pubkey()), "tier": "M2", "duration_hours": 1, "tx_signature": sig})
            headers = {"Content-Type": "application/json", **renter_headers(payer, "POST", "/api/rent", body.encode())}
            r = s.post(f"{api}/api/rent", data=body, headers=headers)
            r.raise_for_status()
            cid = r.json()["contract_id"]
            path = f"/api/contracts/{cid}/settle"
            s.post(api + path, headers=renter_headers(payer, "POST", path, b"")).raise_for_status()
            t0 = time.monotonic()
            while s.get(f"{api}/api/contracts/{cid}").json()["refund"]["status"] != "CONFIRMED":
                if time.monotonic() - t0 > 120:
                    raise RuntimeError(f"refund of {cid} not CONFIRMED after 120 s")
                time.sleep(0.1)
            took.append(time.monotonic() - t0)
            say(f"settle -> CONFIRMED {took[-1]:.1f} s (commitment {commitment})")
    return {
        "commitment": commitment,
        "refunds": n,
        "retry_seconds": retry_seconds,
        "min_s": round(min(took), 2),
        "median_s": round(statistics.median(took), 2),
        "max_s": round(max(took), 2),
        "finalization_floor_s": FINALIZE_SECONDS if commitment == "finalized" else 0.4,
        "seed_target_s": list(SEED_TARGET_SECONDS),
        "within_seed_target": max(took) <= SEED_TARGET_SECONDS[1],
    }


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m dev.bench.chain_timing")
    ap.add_argument("--out", default=str(ROOT / ".local" / "bench.json"))
    ap.add_argument("--refunds", type=int, default=5)
    ap.add_argument("--retry-seconds", type=int, default=4)
    ap.add_argument("--also-confirmed", action="store_true", help="measure with SI64_REFUND_COMMITMENT=confirmed too")
    args = ap.parse_args(argv)
    os.environ.pop("AWS_ENDPOINT_URL", None)
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    result = {"finalized": settle_to_confirmed(args.refunds, args.retry_seconds)}
    if args.also_confirmed:
        result["confirmed"] = settle_to_confirmed(args.refunds, args.retry_seconds, "confirmed")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    data = json.loads(out.read_text()) if out.exists() else {}
    data["chain_timing"] = result
    out.write_text(json.dumps(data, indent=2))
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
