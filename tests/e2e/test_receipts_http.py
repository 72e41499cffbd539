"""Device-signed receipts over real HTTP on the local stack (docs/api.md "Device-signed
receipts"): the operator registers device keys, a device signs its batches (solders, as any
device would), the renter reads `/coverage` with their signature and checks every receipt
against the key PUBLISHED in `/api/devices` and the chain with `chain_problem`; a replay does
not change the covered time; each attack is refused and changes nothing. A stack of its own
(its devices get keys) with a 1 s grace."""

from __future__ import annotations

import json
import time

import pytest
from solders.keypair import Keypair

from si64_protocol.receipts import chain_problem
from tests.fixtures.stack import start_stack
from tests.support.device_receipts import SigningDevice, sample, verifies

from .client import Api, Payer, price_lamports, rent_terms, settle_headers

pytestmark = pytest.mark.e2e
GRACE_S = 1
TIER, HOURS = "M2", 60 / 3600


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    with start_stack(
        tmp_path_factory.mktemp("receipts"), SI64_COVERAGE_GRACE_SECONDS=str(GRACE_S), SI64_MIN_DURATION_SECONDS="1"
    ) as info:
        yield info


@pytest.fixture(scope="module")
def world(stack):
    """One key on every M2 device, another on every THOR device; ORIN keeps none."""
    api = Api(stack["api_url"], stack["admin_key"])
    keys = {"M2": Keypair(), "THOR": Keypair()}
    for tier, kp in keys.items():
        for d in api.get(f"/api/devices/{tier}").body:
            r = api.post(f"/api/admin/devices/{d['id']}/pubkey", {"pubkey": str(kp.pubkey())}, admin=True)
            assert r.status == 200 and r.body["pubkey"] == str(kp.pubkey()), r
    with Payer(stack["rpc_url"]) as payer:
        yield api, payer, keys


def rent(stack, api: Api, payer: Payer, tier: str = TIER):
    renter = payer.new_wallet()
    price = price_lamports(tier, HOURS)
    sig = payer.pay(renter, stack["treasury"], price, memo=rent_terms(tier, HOURS))
    r = api.post(
        "/api/rent", {"wallet": str(renter.pubkey()), "tier": tier, "duration_hours": HOURS, "tx_signature": sig}
    )
    assert r.status == 201, r
    return renter, r.body["contract_id"], r.body["device_id"]


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def samples(n: int = 2) -> list[dict]:
    t = now_ms()
    return [sample(t - 100 * (n - 1 - i)) for i in range(n)]


def coverage(api: Api, renter: Keypair, cid: str):
    path = f"/api/contracts/{cid}/coverage"
    return api.get(path, headers=settle_headers(renter, cid, method="GET", path=path))


def test_signed_batches_are_proven_to_the_renter_with_the_published_key_and_a_replay_counts_once(stack, world):
    api, payer, keys = world
    renter, cid, device = rent(stack, api, payer)
    key = {"X-Device-Key": stack["device_keys"][device]}
    dev = SigningDevice(cid, keys[TIER])
    last = None
    for i in range(6):  # three signed batches 0.5 s apart, a 2.5 s silence, three more
        last = dev.batch(samples())
        r = api.post(f"/api/metrics/{cid}", data=json.dumps(last), headers=key)
        assert r.status == 200, r
        time.sleep(2.5 if i == 2 else 0.5)

    before = coverage(api, renter, cid)
    assert before.status == 200, before
    replay = api.post(f"/api/metrics/{cid}", data=json.dumps(last), headers=key)
    assert replay.status == 200, replay
    after = coverage(api, renter, cid).body
    assert after["covered_ms"] == before.body["covered_ms"]  # the resend 1+ s later added nothing
    assert after["receipts"] == before.body["receipts"]

    published = {d["id"]: d["pubkey"] for d in api.get(f"/api/devices/{TIER}").body}[device]
    assert published == str(keys[TIER].pubkey()) and after["device_id"] == device
    assert [x["seq"] for x in after["receipts"]] == list(range(6))
    assert all(verifies(published, cid, x) for x in after["receipts"])
    assert chain_problem(cid, after["receipts"]) is None
    assert after["gaps"], "a 2.5 s silence with a 1 s grace leaves a gap"
    assert after["uncovered_ms"] == sum(g["to_ms"] - g["from_ms"] for g in after["gaps"])

    settled = api.post(f"/api/contracts/{cid}/settle", headers=settle_headers(renter, cid))
    assert settled.status == 200, settled
    final = coverage(api, renter, cid).body
    status = api.get(f"/api/contracts/{cid}").body
    assert final["status"] == "SETTLED" and (final["covered_ms"], final["uncovered_ms"]) == (
        status["covered_ms"],
        status["uncovered_ms"],
    )
    elapsed = status["settled_at_ms"] - status["created_at_ms"]
    assert final["covered_ms"] + sum(g["to_ms"] - g["from_ms"] for g in final["gaps"]) == elapsed


def refused(api: Api, cid: str, key: dict, body: object, status: int, code: str) -> None:
    before = coverage_any(api, cid)
    r = api.post(f"/api/metrics/{cid}", data=json.dumps(body), headers=key)
    assert (r.status, r.body["code"]) == (status, code), r
    assert coverage_any(api, cid)["receipts"] == before["receipts"]  # nothing stored


def coverage_any(api: Api, cid: str) -> dict:
    r = api.get(f"/api/contracts/{cid}/coverage", admin=True)
    assert r.status == 200, r
    return r.body


def test_every_attack_is_refused_over_http(stack, world):
    api, payer, keys = world
    renter, cid, device = rent(stack, api, payer)
    _, other_cid, other_device = rent(stack, api, payer)
    key, other_key = ({"X-Device-Key": stack["device_keys"][d]} for d in (device, other_device))
    dev = SigningDevice(cid, keys[TIER])

    refused(api, cid, key, {"samples": samples()}, 401, "unauthorized")  # a keyed device without a receipt
    refused(api, cid, key, SigningDevice(cid, Keypair()).batch(samples()), 401, "unauthorized")  # forged
    refused(api, cid, key, SigningDevice(cid, keys["THOR"]).batch(samples()), 401, "unauthorized")  # another device's
    tampered = SigningDevice(cid, keys[TIER]).batch(samples())
    tampered["samples"][0]["cpu_percent"] = 12.5
    refused(api, cid, key, tampered, 401, "unauthorized")
    first = dev.batch(samples())
    refused(api, other_cid, other_key, first, 401, "unauthorized")  # contract A's receipt on B (same key)
    assert api.post(f"/api/metrics/{cid}", data=json.dumps(first), headers=key).status == 200
    dev.batch(samples())  # seq 1, never sent
    refused(api, cid, key, dev.batch(samples()), 409, "receipt_sequence")  # seq 2: a gap
    refused(api, cid, key, SigningDevice(cid, keys[TIER]).batch(samples(3)), 409, "receipt_sequence")  # a fork

    path = f"/api/contracts/{cid}/coverage"
    assert coverage(api, Keypair(), cid).status == 403  # another wallet
    assert api.get(path).status == 401
    assert coverage(api, renter, cid).status == 200

    new = str(Keypair().pubkey())
    r = api.post(f"/api/admin/devices/{device}/pubkey", {"pubkey": new})
    assert (r.status, r.body["code"]) == (401, "unauthorized")  # no admin key
    r = api.post(f"/api/admin/devices/{device}/pubkey", {"pubkey": new}, admin=True)
    assert (r.status, r.body["reason"]) == (403, "leases")  # never while it leases a contract
    assert {d["id"]: d["pubkey"] for d in api.get(f"/api/devices/{TIER}").body}[device] == str(keys[TIER].pubkey())


def test_a_device_without_a_key_reports_as_before(stack, world):
    api, payer, _ = world
    _, cid, device = rent(stack, api, payer, tier="ORIN")
    assert {d["id"]: d["pubkey"] for d in api.get("/api/devices/ORIN").body}[device] is None
    body = {"cpu_percent": 41.5, "memory_mb": 2048, "disk_io_mbps": 3.2, "network_io_mbps": 0.7}
    r = api.post(f"/api/metrics/{cid}", body, headers={"X-Device-Key": stack["device_keys"][device]})
    assert r.status == 200, r
    assert coverage_any(api, cid)["receipts"] == []
