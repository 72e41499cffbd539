"""`si64 devices list | issue-key | set-audited` against a real local stack (`local_stack`).

The CLI runs as a subprocess reading the stack's stack.json (SI64_STATE_DIR), as an
operator's shell would; the device reports and the contract go through the HTTP API."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from chalicelib.domain.signing import rent_memo
from tests.e2e.client import Api, Payer, duration_seconds, price_lamports, settle_headers
from tests.ops.test_ops_stack import one_error_line, si64

pytestmark = pytest.mark.e2e

SAMPLE = {"cpu_percent": 12.5, "memory_mb": 1024, "disk_io_mbps": 1, "network_io_mbps": 0.5}


@pytest.fixture(scope="module")
def api(local_stack) -> Api:
    return Api(local_stack["api_url"], local_stack["admin_key"])


@pytest.fixture(scope="module")
def contract(api, local_stack):
    """A THOR contract (its device's key gets rotated below), settled at the end of the module."""
    payer = Payer(local_stack["rpc_url"])
    wallet = payer.new_wallet()
    hours = 0.02
    sig = payer.pay(
        wallet,
        local_stack["treasury"],
        price_lamports("THOR", hours) + 1000,
        memo=rent_memo("THOR", duration_seconds(hours)),
    )
    r = api.post(
        "/api/rent", {"wallet": str(wallet.pubkey()), "tier": "THOR", "duration_hours": hours, "tx_signature": sig}
    )
    assert r.status == 201, r
    yield r.body
    cid = r.body["contract_id"]
    api.post(f"/api/contracts/{cid}/settle", data=b"", headers=settle_headers(wallet, cid))


def _listed(local_stack) -> dict:
    p = si64(local_stack, "devices", "list", "--json")
    assert p.returncode == 0, p.stderr
    return {d["id"]: d for d in json.loads(p.stdout)}


def test_devices_list_shows_last_seen_once_the_device_reported(api, local_stack, contract):
    did, cid = contract["device_id"], contract["contract_id"]
    key = local_stack["device_keys"][did]
    r = api.post(f"/api/metrics/{cid}", SAMPLE, headers={"X-Device-Key": key})
    assert r.status == 200, r
    devices = _listed(local_stack)
    assert len(devices) == 12
    me = devices[did]
    assert isinstance(me["last_seen_ms"], int) and me["leases"] >= 1 and me["key_set"] is True
    p = si64(local_stack, "devices", "list", "--tier", "THOR")
    assert p.returncode == 0, p.stderr
    row = next(line for line in p.stdout.splitlines() if did in line)
    assert " ago)" in row and "n/a" not in row
    assert "\x1b" not in p.stdout and not [line for line in p.stdout.splitlines() if "device-m2" in line]


def test_issue_key_rotates_the_device_key_and_the_old_one_stops_working(api, local_stack, contract):
    did, cid = contract["device_id"], contract["contract_id"]
    old = local_stack["device_keys"][did]
    p = si64(local_stack, "devices", "issue-key", did)
    assert p.returncode == 0, p.stderr
    new = p.stdout.strip()
    local_stack["device_keys"][did] = new  # the rest of the session uses the new key
    assert new.startswith(f"dk_{did}_") and new != old and "shown once" in p.stderr
    stack = json.loads((Path(local_stack["state_dir"]) / "stack.json").read_text())
    assert stack["device_keys"][did] == new  # the local stack's keys stay usable by `si64 agent`
    r = api.post(f"/api/metrics/{cid}", SAMPLE, headers={"X-Device-Key": old})
    assert r.status == 401 and r.body["reason"] == "X-Device-Key", r
    r = api.post(f"/api/metrics/{cid}", dict(SAMPLE, cpu_percent=13), headers={"X-Device-Key": new})
    assert r.status == 200, r


def test_set_audited_round_trip_and_errors(api, local_stack, contract):
    did = contract["device_id"]
    p = si64(local_stack, "devices", "set-audited", did, "false")
    assert p.returncode == 0 and p.stdout.strip() == f"{did}: audited no", p
    assert _listed(local_stack)[did]["audited"] is False
    assert [d["audited"] for d in api.get("/api/devices/THOR").body if d["id"] == did] == [False]
    p = si64(local_stack, "devices", "set-audited", did, "true")
    assert p.returncode == 0 and p.stdout.strip() == f"{did}: audited yes", p
    assert _listed(local_stack)[did]["audited"] is True

    line = one_error_line(si64(local_stack, "devices", "set-audited", "device-nope", "true"))
    assert line.startswith("si64: error: 404 not_found:") and "device_id" in line
    line = one_error_line(si64(local_stack, "devices", "issue-key", "device-nope"))
    assert "404 not_found" in line
    line = one_error_line(si64(local_stack, "--admin-key", "wrong", "devices", "list"))
    assert "401 unauthorized" in line and "--admin-key" in line
