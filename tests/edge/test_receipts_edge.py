"""Device-signed receipts through the real app on fakes (docs/api.md "Proven usage and downtime
credit"): the admin registers a device's key, its batches then carry a receipt, and each attack is
refused and writes nothing: a forged signature, another device's key, contract A's receipt on B,
a gap, a fork, tampered samples, a missing receipt, registration without the admin key, another
wallet reading the coverage. A replay is answered and stored once; `/coverage` hands a renter
what they need to check every receipt against the published key."""

from __future__ import annotations

import json

import base58
import pytest
from solders.keypair import Keypair

from chalicelib.domain.signing import renter_message
from si64_protocol.receipts import chain_problem
from tests.edge.conftest import ADMIN_KEY
from tests.support.device_receipts import SigningDevice, sample, verifies
from tests.support.hostile_numbers import conforms

ADMIN = {"X-Admin-Key": ADMIN_KEY}
M2 = ("dev-m2-1", "dev-m2-2")


def signed(edge, kp: Keypair, path: str) -> dict:
    ts = str(edge.p.clock() // 1000)
    sig = kp.sign_message(renter_message("GET", path, ts, b""))
    return {"X-Wallet": str(kp.pubkey()), "X-Timestamp": ts, "X-Signature": str(sig)}


def register(edge, device_id: str, pubkey: object, headers: dict | None = ADMIN):
    return edge.post(f"/api/admin/devices/{device_id}/pubkey", {"pubkey": pubkey}, headers)


class Rented:
    """A contract of `renter` on a keyed device and the device that signs its batches."""

    def __init__(self, edge, keys: dict[str, Keypair], tier: str = "M2") -> None:
        self.renter = Keypair()
        status, body, _ = edge.post("/api/rent", edge.rent_body(tier, wallet=str(self.renter.pubkey())))
        assert status == 201, body
        self.cid, self.device_id = body["contract_id"], body["device_id"]
        self.dev = SigningDevice(self.cid, keys[self.device_id]) if self.device_id in keys else None
        self.key = {"X-Device-Key": edge.device_keys[self.device_id]}
        self.edge = edge

    def post(self, body: object):
        return self.edge.post(f"/api/metrics/{self.cid}", body, self.key)

    def samples(self, n: int = 3) -> list[dict]:
        now = self.edge.p.clock()
        return [sample(now - 1000 * (n - 1 - i)) for i in range(n)]

    def coverage(self, kp: Keypair | None = None):
        path = f"/api/contracts/{self.cid}/coverage"
        return self.edge.get(path, signed(self.edge, kp or self.renter, path))


@pytest.fixture
def keys(edge) -> dict[str, Keypair]:
    """Both M2 devices keyed (each its own key); THOR left without one."""
    pairs = {d: Keypair() for d in M2}
    for d, kp in pairs.items():
        status, body, _ = register(edge, d, str(kp.pubkey()))
        assert status == 200 and body["pubkey"] == str(kp.pubkey()), body
    return pairs


def state(edge) -> dict:
    """Every table but the rate-limit windows (each request is counted, refused or not)."""
    snap = edge.p.db.snapshot()
    snap["claims"] = {k: v for k, v in snap["claims"].items() if not k.startswith("rl#")}
    return snap


def metrics_items(edge) -> dict:
    return dict(edge.p.db.tables["metrics"])


# --- registration ---------------------------------------------------------------------


def test_a_key_is_registered_by_the_admin_only_validated_idempotent_and_published(edge):
    kp = Keypair()
    before = state(edge)
    assert register(edge, "dev-m2-1", str(kp.pubkey()), None)[0] == 401
    assert register(edge, "dev-m2-1", str(kp.pubkey()), {"X-Admin-Key": "wrong"})[0] == 401
    # a key one byte too long (its base58 with a "1" appended decodes to 32 bytes for some keys)
    too_long = base58.b58encode(bytes(kp.pubkey()) + b"\x01").decode()
    for bad in (None, 7, "not-base58-0OIl", "1" * 20, too_long):
        status, err, _ = register(edge, "dev-m2-1", bad)
        assert (status, err["code"], err["reason"]) == (400, "invalid_request", "pubkey"), bad
    status, err, _ = register(edge, "no-such-device", str(kp.pubkey()))
    assert (status, err["code"]) == (404, "not_found")
    assert state(edge) == before  # nothing written by any refusal

    for _ in range(2):  # the same key again is the same answer
        status, body, _ = register(edge, "dev-m2-1", str(kp.pubkey()))
        assert status == 200 and (body["pubkey"], body["previous_pubkeys"]) == (str(kp.pubkey()), [])
    listed = {d["id"]: d for d in edge.get("/api/devices/M2")[1]}
    assert listed["dev-m2-1"]["pubkey"] == str(kp.pubkey()) and listed["dev-m2-2"]["pubkey"] is None


def test_a_key_is_replaced_only_while_the_device_leases_nothing_and_the_old_one_stays_published(edge, keys):
    old = str(keys["dev-m2-1"].pubkey())
    new = str(Keypair().pubkey())
    rented = [Rented(edge, keys) for _ in range(4)]  # both M2 devices full
    leased = rented[0].device_id
    status, err, _ = register(edge, leased, new)
    assert (status, err["code"], err["reason"]) == (403, "forbidden", "leases")
    assert register(edge, leased, str(keys[leased].pubkey()))[0] == 200  # the same key: nothing changes
    for r in rented:
        assert edge.post(f"/api/contracts/{r.cid}/settle", b"", renter_sign(edge, r.renter, r.cid))[0] == 200
    status, body, _ = register(edge, "dev-m2-1", new)
    assert status == 200 and (body["pubkey"], body["previous_pubkeys"]) == (new, [old])


def renter_sign(edge, kp: Keypair, cid: str) -> dict:
    path = f"/api/contracts/{cid}/settle"
    ts = str(edge.p.clock() // 1000)
    sig = kp.sign_message(renter_message("POST", path, ts, b""))
    return {"X-Wallet": str(kp.pubkey()), "X-Timestamp": ts, "X-Signature": str(sig)}


# --- signed batches -------------------------------------------------------------------


def test_signed_batches_are_stored_and_the_coverage_proves_them_with_the_published_key(edge, keys):
    r = Rented(edge, keys)
    for _ in range(3):
        edge.p.clock.advance(2)
        status, body, _ = r.post(r.dev.batch(r.samples()))
        assert status == 200, body
    status, cov, _ = r.coverage()
    assert status == 200, cov
    published = {d["id"]: d["pubkey"] for d in edge.get("/api/devices/M2")[1]}[r.device_id]
    assert [x["seq"] for x in cov["receipts"]] == [0, 1, 2]
    assert all(verifies(published, r.cid, x) and x["pubkey"] == published for x in cov["receipts"])
    assert chain_problem(r.cid, cov["receipts"]) is None
    status_view = edge.get(f"/api/contracts/{r.cid}")[1]
    assert (cov["covered_ms"], cov["uncovered_ms"]) == (status_view["covered_ms"], status_view["uncovered_ms"])
    assert (cov["tier"], cov["device_id"], cov["status"]) == ("M2", r.device_id, "ACTIVE")
    conforms("Coverage", cov)  # every field as the OpenAPI document describes it
    status, device, _ = register(edge, r.device_id, published)  # the same key while leased: unchanged
    assert status == 200
    conforms("AdminDevice", device)


def test_a_replay_is_answered_stored_once_and_not_counted_again(edge, keys):
    edge.settings(coverage_grace_seconds=1)
    edge.c.__dict__.pop("telemetry", None)
    edge.c.__dict__.pop("proofs", None)
    r = Rented(edge, keys)
    edge.p.clock.advance(5)
    body = r.dev.batch(r.samples())
    assert r.post(body)[0] == 200
    stored, covered = metrics_items(edge), r.coverage()[1]["covered_ms"]
    edge.p.clock.advance(3)
    status, again, _ = r.post(body)
    assert status == 200 and again["contract_id"] == r.cid
    assert metrics_items(edge) == stored
    cov = r.coverage()[1]
    assert cov["covered_ms"] == covered == 1_000 + 1_000  # the start-up second and the batch's second
    assert cov["gaps"] == [
        {"from_ms": cov["created_at_ms"] + 1_000, "to_ms": cov["created_at_ms"] + 4_000},
        {"from_ms": cov["created_at_ms"] + 5_000, "to_ms": cov["created_at_ms"] + 8_000},
    ]
    assert cov["uncovered_ms"] == sum(g["to_ms"] - g["from_ms"] for g in cov["gaps"])


def refused(r: Rented, body: object, status: int, code: str, reason: str) -> None:
    before = state(r.edge)
    got, err, _ = r.post(body)
    assert (got, err["code"], err["reason"]) == (status, code, reason), err
    assert state(r.edge) == before  # nothing written


def test_a_keyed_device_without_a_receipt_or_with_a_malformed_one_is_refused(edge, keys):
    r = Rented(edge, keys)
    refused(r, {"samples": r.samples()}, 401, "unauthorized", "receipt")
    refused(
        r, {"cpu_percent": 1, "memory_mb": 1, "disk_io_mbps": 0, "network_io_mbps": 0}, 401, "unauthorized", "receipt"
    )
    good = r.dev.receipt(r.samples())
    for field, bad in (
        ("seq", -1),
        ("seq", "0"),
        ("from_ms", 1.5),
        ("samples_sha256", "AB" * 32),
        ("prev_sha256", "0" * 63),
        ("signature", ""),
    ):
        refused(r, {"samples": r.samples(), "receipt": {**good, field: bad}}, 401, "unauthorized", "receipt")
    refused(r, {"samples": r.samples(), "receipt": "x"}, 401, "unauthorized", "receipt")


def test_a_forged_signature_and_another_devices_key_are_refused(edge, keys):
    r = Rented(edge, keys)
    samples = r.samples()
    forged = SigningDevice(r.cid, Keypair()).batch(samples)  # a key nobody registered
    refused(r, forged, 401, "unauthorized", "receipt")
    other = next(d for d in M2 if d != r.device_id)
    refused(r, SigningDevice(r.cid, keys[other]).batch(samples), 401, "unauthorized", "receipt")
    body = r.dev.batch(samples)
    body["receipt"]["signature"] = SigningDevice(r.cid, keys[other]).receipt(samples)["signature"]
    refused(r, body, 401, "unauthorized", "receipt")


def test_tampered_samples_and_wrong_bounds_are_refused(edge, keys):
    r = Rented(edge, keys)
    body = r.dev.batch(r.samples())
    tampered = json.loads(json.dumps(body))
    tampered["samples"][1]["cpu_percent"] = 99.5
    refused(r, tampered, 401, "unauthorized", "receipt")
    dropped = json.loads(json.dumps(body))
    dropped["samples"].pop()
    refused(r, dropped, 401, "unauthorized", "receipt")
    r.dev.seq, r.dev.prev = 0, body["receipt"]["prev_sha256"]
    samples = r.samples()
    rec = r.dev.receipt(samples)
    wrong = SigningDevice(r.cid, r.dev.keypair)
    bad = {**rec, "to_ms": rec["to_ms"] + 1}  # signed, but not the last sample's time
    bad["signature"] = str(
        wrong.keypair.sign_message(
            f"si64:receipt:{r.cid}:0:{bad['from_ms']}:{bad['to_ms']}:{bad['samples_sha256']}:{bad['prev_sha256']}".encode()
        )
    )
    refused(r, {"samples": samples, "receipt": bad}, 401, "unauthorized", "receipt")
    assert r.post({"samples": samples, "receipt": rec})[0] == 200  # the honest batch still goes through


def test_contract_a_receipt_is_refused_on_contract_b_of_the_same_device(edge):
    kp = Keypair()
    for d in M2:  # one key on both devices: only the contract id in the message tells A from B
        assert register(edge, d, str(kp.pubkey()))[0] == 200
    a, b = Rented(edge, dict.fromkeys(M2, kp)), Rented(edge, dict.fromkeys(M2, kp))
    body = a.dev.batch(a.samples())
    refused(b, body, 401, "unauthorized", "receipt")
    assert a.post(body)[0] == 200


def test_a_gap_and_a_fork_are_409_receipt_sequence_and_write_nothing(edge, keys):
    r = Rented(edge, keys)
    first = r.dev.batch(r.samples())
    assert r.post(first)[0] == 200
    edge.p.clock.advance(2)
    r.dev.batch(r.samples(1))  # seq 1 signed but never sent
    edge.p.clock.advance(2)
    refused(r, r.dev.batch(r.samples()), 409, "receipt_sequence", "receipt.seq")  # seq 2: a gap
    fork = SigningDevice(r.cid, keys[r.device_id]).batch(r.samples(2))  # seq 0 again, other samples
    refused(r, fork, 409, "receipt_sequence", "receipt.seq")
    r.dev.seq, r.dev.prev = 1, "ab" * 32  # seq 1 linked to something that is not receipt 0
    refused(r, r.dev.batch(r.samples()), 409, "receipt_sequence", "receipt.prev_sha256")
    genesis = SigningDevice(r.cid, keys[r.device_id], prev="cd" * 32)  # seq 0 not from 64 zeros
    refused(r, genesis.batch(r.samples()), 409, "receipt_sequence", "receipt.prev_sha256")


def test_a_device_without_a_key_works_as_before_and_its_receipt_is_ignored(edge, keys):
    r = Rented(edge, keys, tier="THOR")
    assert r.dev is None
    plain = {"cpu_percent": 1, "memory_mb": 1, "disk_io_mbps": 0, "network_io_mbps": 0}
    assert r.post(plain)[0] == 200
    stray = SigningDevice(r.cid, Keypair()).batch(r.samples())
    assert r.post(stray)[0] == 200
    assert r.coverage()[1]["receipts"] == []


def test_coverage_is_for_the_renter_or_the_admin_only(edge, keys):
    r = Rented(edge, keys)
    path = f"/api/contracts/{r.cid}/coverage"
    status, err, _ = r.coverage(Keypair())
    assert (status, err["code"], err["reason"]) == (403, "forbidden", "wallet")
    assert edge.get(path)[0] == 401
    assert edge.get(path, {"X-Admin-Key": "wrong"})[0] == 401
    assert edge.get(path, ADMIN)[0] == 200
    assert edge.get("/api/contracts/CTR-AAAAAAAAAAAAAAAAAAAAAA/coverage", ADMIN)[0] == 404


def test_a_signed_batch_on_an_unknown_or_ended_contract_is_refused_before_its_receipt(edge, keys):
    r = Rented(edge, keys)
    body = r.dev.batch(r.samples())
    unknown = "CTR-AAAAAAAAAAAAAAAAAAAAAA"
    status, err, _ = edge.post(f"/api/metrics/{unknown}", body, r.key)
    assert (status, err["code"]) == (404, "not_found")
    assert edge.post(f"/api/contracts/{r.cid}/settle", b"", renter_sign(edge, r.renter, r.cid))[0] == 200
    refused(r, body, 409, "contract_not_active", "status")
