"""Downtime credit over real HTTP on the local stack (docs/api.md "Proven usage and downtime
credit"): a renter whose device went silent after 4 s of a 30 s contract is refunded, on chain,
everything but the covered time, to the lamport. A 1 s grace and a 1 s minimum duration."""

from __future__ import annotations

import time

import pytest

from tests.fixtures.stack import start_stack

from .client import LPH, Api, Payer, price_lamports, rent_terms

pytestmark = pytest.mark.e2e
GRACE_S = 1


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    with start_stack(
        tmp_path_factory.mktemp("coverage"), SI64_COVERAGE_GRACE_SECONDS=str(GRACE_S), SI64_MIN_DURATION_SECONDS="1"
    ) as info:
        yield info


def wait_for(check, timeout: float = 90.0):
    deadline = time.monotonic() + timeout
    while True:
        got = check()
        if got or time.monotonic() > deadline:
            return got
        time.sleep(0.25)


def test_a_device_silent_after_4_s_of_30_s_is_refunded_all_but_the_covered_time(stack):
    api = Api(stack["api_url"], stack["admin_key"])
    tier, hours = "M2", 30 / 3600
    price = price_lamports(tier, hours)
    with Payer(stack["rpc_url"]) as payer:
        wallet = payer.new_wallet()
        sig = payer.pay(wallet, stack["treasury"], price, memo=rent_terms(tier, hours))
        body = {"wallet": str(wallet.pubkey()), "tier": tier, "duration_hours": hours, "tx_signature": sig}
        r = api.post("/api/rent", body)
        assert r.status == 201, r
        cid, device = r.body["contract_id"], r.body["device_id"]
        paid_balance = payer.balance(wallet.pubkey())
        assert r.body["duration_seconds"] == 30
        key = {"X-Device-Key": stack["device_keys"][device]}
        sample = {"cpu_percent": 40, "memory_mb": 1024, "disk_io_mbps": 1, "network_io_mbps": 1}
        started = time.monotonic()
        while time.monotonic() - started < 4.0:  # a sample every 0.5 s for 4 s, then silence
            assert api.post(f"/api/metrics/{cid}", sample, headers=key).status == 200
            time.sleep(0.5)

        live = api.get(f"/api/contracts/{cid}").body
        assert live["status"] == "ACTIVE" and live["covered_ms"] + live["uncovered_ms"] > 0
        assert live["credit_lamports"] >= 0 and live["refund_available_lamports"] == price - live["used_lamports"]

        # the sweep ends it at its expiry; the refund worker pays it back
        ended = wait_for(lambda: (v := api.get(f"/api/contracts/{cid}").body)["refund"]["status"] == "CONFIRMED" and v)
        assert ended, api.get(f"/api/contracts/{cid}").body
        covered = ended["covered_ms"]
        assert 3_000 <= covered <= 30_000 - 20_000  # about 4 s of reports, nowhere near the 30 s life
        assert covered + ended["uncovered_ms"] == 30_000
        used = LPH[tier] * covered // 3_600_000
        assert (ended["status"], ended["used_lamports"]) == ("EXPIRED", used)
        assert ended["credit_lamports"] == price - used  # elapsed billing would have charged the price
        assert ended["refund"]["lamports"] == price - used
        assert payer.balance(wallet.pubkey()) == paid_balance + price - used  # on chain, to the lamport

        entries = api.entries(cid)
        assert sum(e["debit_lamports"] - e["credit_lamports"] for e in entries) == 0
        credit = [(e["debit_lamports"], e["credit_lamports"]) for e in entries if e["account"] == "downtime_credit"]
        assert sorted(credit) == [(0, price - used), (price - used, 0)]
        revenue = sum(e["credit_lamports"] for e in entries if e["account"] == "revenue")
        assert revenue == used
        stats = api.stats()
        assert stats["downtime_credit_lamports"] == price - used
