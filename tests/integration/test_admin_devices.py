"""The admin device routes through the Chalice app on moto (real adapters, fake chain)."""

from __future__ import annotations

from chalicelib import observability
from chalicelib.domain.records import hash_device_key
from tests.integration.conftest import ADMIN_KEY, TEST_DEVICES
from tests.integration.test_lifecycle_moto import rent

ADMIN = {"X-Admin-Key": ADMIN_KEY}


def test_devices_list_needs_the_admin_key(api):
    st, err = api.get("/api/admin/devices")
    assert st == 401 and err["code"] == "unauthorized" and err["reason"] == "X-Admin-Key"
    st, err = api.get("/api/admin/devices", {"X-Admin-Key": "wrong"})
    assert st == 401
    for path in ("/api/admin/devices/device-m2-001/key", "/api/admin/devices/device-m2-001/audited"):
        st, err = api.post(path, {"audited": False}, {"X-Admin-Key": "wrong"})
        assert st == 401 and err["code"] == "unauthorized"


def test_devices_list_shows_leases_and_last_seen_after_a_report(api):
    (st, body), _ = rent(api, tier="M2")
    cid, did = body["contract_id"], body["device_id"]
    key = api.key_for(did)
    st, out = api.post(
        f"/api/metrics/{cid}",
        {"cpu_percent": 1, "memory_mb": 2, "disk_io_mbps": 0, "network_io_mbps": 0},
        {"X-Device-Key": key},
    )
    assert st == 200
    st, listed = api.get("/api/admin/devices", ADMIN)
    assert st == 200 and listed["count"] == len(TEST_DEVICES) == len(listed["devices"])
    assert [d["id"] for d in listed["devices"]] == [d["device_id"] for d in TEST_DEVICES]
    by_id = {d["id"]: d for d in listed["devices"]}
    me = by_id[did]
    assert me["leases"] == 1 and me["available"] == me["capacity"] - 1
    assert me["last_seen_ms"] == api.c.clock() and me["last_seen"] == api.c.clock() // 1000
    assert me["key_set"] is True and me["audited"] is True and me["uptime"].endswith("%")
    assert set(me) >= {
        "id",
        "name",
        "tier",
        "uri",
        "address",
        "region",
        "ram",
        "leases",
        "capacity",
        "available",
        "uptime",
        "audited",
        "last_seen_ms",
        "last_seen",
        "key_set",
    }
    assert "key_hash" not in str(listed) and hash_device_key(key) not in str(listed)
    others = [d for d in listed["devices"] if d["id"] != did]
    assert all(d["last_seen_ms"] is None and d["last_seen"] is None for d in others)


def test_issue_key_returns_it_once_and_the_old_key_stops_working(api):
    (st, body), _ = rent(api, tier="ORIN")
    cid, did = body["contract_id"], body["device_id"]
    old = api.key_for(did)
    sample = {"cpu_percent": 1, "memory_mb": 2, "disk_io_mbps": 0, "network_io_mbps": 0}
    assert api.post(f"/api/metrics/{cid}", sample, {"X-Device-Key": old})[0] == 200
    with observability.capture() as cap:
        st, issued = api.post(f"/api/admin/devices/{did}/key", None, ADMIN)
    assert st == 201 and issued["device_id"] == did and issued["device_key"].startswith(f"dk_{did}_")
    new = issued["device_key"]
    assert new not in cap.text and old not in cap.text  # never logged
    api.c.clock.advance(1)
    st, err = api.post(f"/api/metrics/{cid}", dict(sample, cpu_percent=2), {"X-Device-Key": old})
    assert st == 401 and err["reason"] == "X-Device-Key"
    assert api.post(f"/api/metrics/{cid}", dict(sample, cpu_percent=3), {"X-Device-Key": new})[0] == 200
    # only the hash is stored
    from chalicelib.adapters.models import DeviceItem

    assert DeviceItem.get(did).key_hash == hash_device_key(new)


def test_issue_key_refuses_an_idempotency_key_so_the_key_is_never_stored_for_replay(api):
    st, err = api.post("/api/admin/devices/device-m2-001/key", None, {**ADMIN, "Idempotency-Key": "k1"})
    assert st == 400 and err["reason"] == "Idempotency-Key"
    from chalicelib.adapters.models import ClaimItem

    assert list(ClaimItem.scan()) == []


def test_set_audited(api):
    st, d = api.post("/api/admin/devices/device-thor-001/audited", {"audited": False}, ADMIN)
    assert st == 200 and d["id"] == "device-thor-001" and d["audited"] is False
    st, listed = api.get("/api/devices/THOR")
    assert [x["audited"] for x in listed if x["id"] == "device-thor-001"] == [False]
    st, d = api.post("/api/admin/devices/device-thor-001/audited", {"audited": True}, ADMIN)
    assert d["audited"] is True
    for bad in ({}, {"audited": "false"}, {"audited": 0}, {"audited": None}):
        st, err = api.post("/api/admin/devices/device-thor-001/audited", bad, ADMIN)
        assert st == 400 and err == {
            "detail": "'audited' must be true or false.",
            "code": "invalid_request",
            "reason": "audited",
        }
    st, err = api.post("/api/admin/devices/device-thor-001/audited", None, ADMIN, raw="nope")
    assert st == 400 and err["reason"] == "body"


def test_unknown_or_malformed_device_ids_are_404(api):
    for did in ("device-nope", "a_b", "x" * 70):
        st, err = api.post(f"/api/admin/devices/{did}/key", None, ADMIN)
        assert st == 404 and err["code"] == "not_found" and err["reason"] == "device_id", did
        st, err = api.post(f"/api/admin/devices/{did}/audited", {"audited": True}, ADMIN)
        assert st == 404 and err["code"] == "not_found", did
