"""The README's walk-through ("Try the API with stock clients") is run as a script, exactly as
written, against a fresh local stack: curl, si64.wallet (stock solana-py) and the stock AWS CLI,
both ways of binding a payment. A README that drifts from the API fails here."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]


def walkthrough() -> str:
    text = (ROOT / "README.md").read_text()
    block = re.search(r"<!-- walkthrough:start -->\s*```sh\n(.*?)```\s*<!-- walkthrough:end -->", text, re.S)
    assert block, "README.md has no walk-through block between the walkthrough markers"
    return block.group(1)


def json_objects(text: str) -> list[dict]:
    """Every top-level JSON object printed (curl prints bodies without a newline)."""
    decoder, out, i = json.JSONDecoder(), [], 0
    while (i := text.find("{", i)) != -1:
        try:
            obj, end = decoder.raw_decode(text, i)
        except ValueError:
            i += 1
            continue
        out.append(obj)
        i = end
    return out


def test_the_readme_walkthrough_runs_as_a_script(local_stack, tmp_path):
    if shutil.which("curl") is None:
        pytest.skip("curl is not installed")
    script = tmp_path / "walkthrough.sh"
    script.write_text("set -euo pipefail\n" + walkthrough())
    env = {
        **os.environ,
        "SI64_STATE_DIR": str(local_stack.state_dir),
        "PATH": f"{ROOT / '.venv' / 'bin'}:{os.environ.get('PATH', '')}",
    }
    proc = subprocess.run(["bash", str(script)], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    out = proc.stdout
    bodies = json_objects(out)
    rents = [
        b
        for b in bodies
        if b.get("status") == "ACTIVE" and "cost_lamports" in b and "created_at" in b and "wallet" not in b
    ]
    assert [r["tier"] for r in rents] == ["M2", "ORIN"], out[-3000:]  # both ways of binding rented
    settled = [b for b in bodies if b.get("status") == "SETTLED" and "refund_lamports" in b]
    assert len(settled) == 2, out[-3000:]
    errors = [b for b in bodies if "code" in b and "detail" in b]
    # the only error is the one the walk-through shows on purpose: the short payment, refused
    assert [(e["code"], e["reason"]) for e in errors] == [("payment_invalid", "insufficient_amount")], out[-3000:]
    confirmed = [b for b in bodies if b.get("contract_id") and b.get("refund", {}).get("status") == "CONFIRMED"]
    assert confirmed and confirmed[-1]["refund"]["tx_signature"], out[-3000:]  # the refund landed on chain
    # ... and the wallet reads it from the chain: the refund's memo, and its amount reached the renter
    [tx] = [b for b in bodies if "transfers" in b]
    c = confirmed[-1]
    assert tx["tx_signature"] == c["refund"]["tx_signature"] and tx["memo"] == f"si64:refund:{c['contract_id']}"
    assert tx["wallet"] == c["wallet"] and tx["wallet_received_lamports"] == c["refund"]["lamports"] > 0
    [balance] = [b for b in bodies if set(b) == {"wallet", "lamports", "sol"}]
    assert balance["wallet"] == c["wallet"] and balance["lamports"] > 0
    paid_back = [b for b in bodies if b.get("refund_id", "").startswith("PAY-")]
    assert paid_back[-1]["refund"]["status"] == "CONFIRMED" and paid_back[-1]["refund_lamports"] == 499_999
    assert "TableNames" in out and "si64" in out
