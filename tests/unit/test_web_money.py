"""web/money.js (the web app's price as you type) agrees with chalicelib/domain/money.py on
random and awkward inputs: one node process evaluates the whole batch."""

from __future__ import annotations

import json
import random
import shutil
import subprocess
from decimal import Decimal
from pathlib import Path

import pytest

from chalicelib.domain import money

MONEY_JS = Path(__file__).resolve().parents[2] / "web" / "money.js"

AWKWARD = [
    "1",
    "0.5",
    ".25",
    "2.",
    "0",
    "0.000138888888888888888888888888888",
    "0.00013888888888888888888888888888",
    "0.0001388888888888888888888888889",
    "719.99999999",
    "720",
    "1.0001388",
    "00012.5",
    "0.00125",  # 4.5 s: half up to 5
    "0.01875",  # 67.5 s
    "1.00375",
]


def _inputs() -> list[str]:
    rng = random.Random(17)
    out = list(AWKWARD)
    for _ in range(400):
        whole = str(rng.randrange(0, 800)) if rng.random() < 0.9 else ""
        frac = "".join(rng.choice("0123456789") for _ in range(rng.randrange(0, 30)))
        out.append(f"{whole or '0'}.{frac}" if frac else whole or "0")
    return out


def test_duration_and_price_match_the_server():
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed")
    inputs = _inputs()
    rates = {name: t.lamports_per_hour for name, t in money.TIERS.items()}
    script = (
        f"const m = await import({json.dumps(MONEY_JS.as_uri())});"
        f"const inputs = {json.dumps(inputs)}, rates = {json.dumps(rates)};"
        "const out = inputs.map((h) => { const s = m.durationSeconds(h);"
        " return [s === null ? null : s.toString(), Object.fromEntries(Object.entries(rates).map(([t, r]) =>"
        " [t, s === null ? null : m.priceLamports(r, s).toString()])),"
        " s === null ? null : m.sol(m.priceLamports(rates.THOR, s))]; });"
        "console.log(JSON.stringify(out));"
    )
    proc = subprocess.run(
        [node, "--input-type=module", "-e", script], capture_output=True, text=True, timeout=60, check=True
    )
    got = json.loads(proc.stdout)
    for hours, (seconds, prices, thor_sol) in zip(inputs, got, strict=True):
        expect = money.duration_seconds(Decimal(hours))
        assert seconds == str(expect), hours
        for tier, rate in rates.items():
            assert prices[tier] == str(money.price_lamports(rate, expect)), (hours, tier)
        thor = money.price_lamports(rates["THOR"], expect)
        assert Decimal(thor_sol) * money.LAMPORTS_PER_SOL == thor, (hours, thor_sol)


def test_what_is_not_a_plain_decimal_is_refused():
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed")
    bad = ["", ".", "-1", "1e3", "1,5", "abc", "0x10", "1.2.3", "Infinity", "NaN"]
    script = (
        f"const m = await import({json.dumps(MONEY_JS.as_uri())});"
        f"console.log(JSON.stringify({json.dumps(bad)}.map((h) => m.durationSeconds(h))));"
    )
    proc = subprocess.run(
        [node, "--input-type=module", "-e", script], capture_output=True, text=True, timeout=60, check=True
    )
    assert json.loads(proc.stdout) == [None] * len(bad)
