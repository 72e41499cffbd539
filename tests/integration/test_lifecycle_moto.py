"""The rental lifecycle through the Chalice app on moto, paying through a fake chain."""

import json
from decimal import Decimal

from solders.keypair import Keypair

from chalicelib.domain import money
from chalicelib.domain.signing import extend_memo, rent_memo
from si64.renter import renter_headers
from tests.support.fakes import new_wallet

from .conftest import ADMIN_KEY

ADMIN = {"X-Admin-Key": ADMIN_KEY}


def rent(api, tier="M2", hours=1, lamports=None, wallet=None):
    wallet = wallet or new_wallet()
    seconds = money.duration_seconds(Decimal(str(hours)))
    price = money.price_lamports(money.TIERS[tier].lamports_per_hour, seconds)
    sig = api.c.rpc.pay(wallet, price if lamports is None else lamports, memo=rent_memo(tier, seconds))
    body = {"wallet": wallet, "tier": tier, "duration_hours": hours, "tx_signature": sig}
    return api.post("/api/rent", body), body


def test_rent_status_and_replay(api):
    (status, body), req = rent(api, hours=2, lamports=2_500_000)
    assert status == 201, body
    assert body["cost_lamports"] == 2_000_000 and body["prepaid_lamports"] == 2_500_000
    assert body["device_id"].startswith("device-m2") and body["contract_id"].startswith("CTR-")
    again = api.post("/api/rent", req)
    assert again == (200, body)
    other = dict(req, duration_hours=1)  # the payment's memo binds 2 h: other terms are refused
    assert api.post("/api/rent", other)[1]["reason"] == "memo_mismatch"
    api.c.clock.advance(1800)
    st, view = api.get(f"/api/contracts/{body['contract_id']}")
    assert st == 200 and view["used_lamports"] == 500_000 and view["refund_available_lamports"] == 2_000_000
    assert view["refund"]["status"] == "NONE" and view["remaining_seconds"] == 5400


def test_least_loaded_device_and_capacity(api):
    devices = [rent(api)[0][1]["device_id"] for _ in range(4)]
    assert sorted(devices) == ["device-m2-001"] * 2 + ["device-m2-002"] * 2
    (st, err), req = rent(api)
    assert st == 409 and err["code"] == "no_capacity"
    _, listing = api.get("/api/devices/M2")
    assert [d["leases"] for d in listing] == [2, 2] and [d["available"] for d in listing] == [0, 0]


def test_extend_settle_and_books(api):
    kp = Keypair()
    (st, body), req = rent(api, tier="ORIN", hours=1, lamports=4_100_000, wallet=str(kp.pubkey()))
    cid, wallet = body["contract_id"], req["wallet"]
    sig = api.c.rpc.pay(wallet, 4_000_000, memo=extend_memo(cid, 3600))
    st, ext = api.post(f"/api/contracts/{cid}/extend", {"additional_hours": 1, "tx_signature": sig})
    assert st == 200 and ext["new_total_cost_lamports"] == 8_000_000
    assert ext["new_expiration"] == body["expires_at"] + 3600
    assert api.post(f"/api/contracts/{cid}/extend", {"additional_hours": 1, "tx_signature": sig}) == (200, ext)
    api.c.clock.advance(900)
    path = f"/api/contracts/{cid}/settle"
    now_s = api.c.clock() // 1000
    st, settled = api.post(path, raw="", headers=renter_headers(kp, "POST", path, ts=now_s))
    assert st == 200, settled
    assert settled["used_lamports"] == 1_000_000 and settled["refund_lamports"] == 7_100_000
    assert settled["refund_status"] == "QUEUED" and settled["status"] == "SETTLED"
    # settling again changes nothing
    api.c.clock.advance(60)
    assert api.post(path, raw="", headers=renter_headers(kp, "POST", path, ts=api.c.clock() // 1000)) == (200, settled)
    st, entries = api.get(f"/api/billing/entries?contract_id={cid}", ADMIN)
    rows = entries["entries"]
    assert sum(r["debit_lamports"] for r in rows) == sum(r["credit_lamports"] for r in rows) == 8_100_000 * 2
    esc = [r for r in rows if r["account"] == f"escrow:{cid}"]
    assert sum(r["credit_lamports"] - r["debit_lamports"] for r in esc) == 0
    _, listing = api.get("/api/devices/ORIN")
    assert listing[0]["leases"] == 0
    st, err = api.post(
        f"/api/contracts/{cid}/extend",
        {"additional_hours": 1, "tx_signature": api.c.rpc.pay(wallet, 4_000_000, memo=extend_memo(cid, 3600))},
    )
    assert st == 409 and err["code"] == "contract_not_active"


def test_errors_are_clean(api):
    assert api.get("/api/devices/NOPE")[0] == 404
    st, err = api.post("/api/rent", raw="not json")
    assert st == 400 and err == {"detail": err["detail"], "code": "invalid_request", "reason": "body"}
    st, err = api.post(
        "/api/rent", {"wallet": new_wallet(), "tier": "M2", "duration_hours": "NaN", "tx_signature": "x"}
    )
    assert st == 400 and err["reason"] == "duration_hours"
    assert api.get("/api/billing/ledger")[0] == 401
    assert api.get("/api/billing/ledger", ADMIN)[0] == 200


def test_metrics_single_batch_and_credentials(api):
    (st, body), req = rent(api, tier="THOR", hours=1)
    cid, dev = body["contract_id"], body["device_id"]
    key = api.key_for(dev)
    other_key = api.key_for("device-m2-001")
    sample = {"cpu_percent": 12.5, "memory_mb": 2048, "disk_io_mbps": 1, "network_io_mbps": 0.5}
    api.c.clock.advance(60)
    st, out = api.post(f"/api/metrics/{cid}", sample, {"X-Device-Key": key})
    assert st == 200 and out["samples_recorded"] == 1 and out["cost_so_far_lamports"] == 583_333
    now = api.c.clock()
    batch = {"samples": [dict(sample, timestamp_ms=now - 500 * i) for i in range(120)]}
    st, out = api.post(f"/api/metrics/{cid}", batch, {"X-Device-Key": key})
    assert st == 200 and out["samples_recorded"] == 120
    assert (
        api.post(f"/api/metrics/{cid}", {"samples": batch["samples"] + [sample]}, {"X-Device-Key": key})[1]["reason"]
        == "samples"
    )
    st, got = api.get(f"/api/contracts/{cid}/metrics")
    assert st == 200 and len(got["samples"]) == 100
    ts = [s["timestamp_ms"] for s in got["samples"]]
    assert ts == sorted(ts)
    assert api.post(f"/api/metrics/{cid}", sample, {})[0] == 401
    assert api.post(f"/api/metrics/{cid}", sample, {"X-Device-Key": key[:-2] + "xx"})[0] == 401
    assert api.post(f"/api/metrics/{cid}", sample, {"X-Device-Key": other_key})[0] == 403
    api.c.clock.advance(3600)
    st, err = api.post(f"/api/metrics/{cid}", sample, {"X-Device-Key": key})
    assert st == 409 and err["code"] == "contract_not_active"


def test_ledger_page_and_stats(api):
    for _ in range(3):
        rent(api)
    st, page = api.get("/api/billing/ledger?limit=2", ADMIN)
    assert st == 200 and len(page["active_contracts"]) == 2 and page["next_token"]
    st, page2 = api.get(f"/api/billing/ledger?limit=2&next_token={page['next_token']}", ADMIN)
    assert st == 200 and len(page2["active_contracts"]) == 1
    assert api.get("/api/billing/ledger?limit=0", ADMIN)[0] == 400
    assert api.get("/api/billing/ledger?next_token=garbage", ADMIN)[0] == 400
    st, stats = api.get("/api/stats", ADMIN)
    assert st == 200 and stats["contracts"]["ACTIVE"] == 3 and stats["devices"]["slots_leased"] == 3
    assert stats["queues"]["refund_queue"] is not None


def test_idempotency_key(api):
    kp = Keypair()  # the extend is signed: a request with credentials stores its key
    (st, body), req = rent(api, tier="M3_ULTRA", wallet=str(kp.pubkey()))
    cid = body["contract_id"]
    sig = api.c.rpc.pay(req["wallet"], 25_000_000, memo=extend_memo(cid, 3600))
    path = f"/api/contracts/{cid}/extend"

    def signed(hours) -> dict:
        raw = json.dumps({"additional_hours": hours, "tx_signature": sig})
        h = {"Idempotency-Key": "abc-1", **renter_headers(kp, "POST", path, raw, api.c.clock() // 1000)}
        return {"raw": raw, "headers": h}

    first = api.post(path, **signed(1))
    assert first[0] == 200
    assert api.post(path, **signed(1)) == first
    st, err = api.post(path, **signed(2))
    assert st == 409 and err["code"] == "idempotency_mismatch"


def test_rpc_down_is_503_and_writes_nothing(api):
    api.c.rpc.down = True
    (st, err), req = rent(api)
    assert st == 503 and err["code"] == "unavailable"
    assert api.get("/api/stats", ADMIN)[1]["contracts"]["ACTIVE"] == 0


def test_database_unreachable_is_503(api, monkeypatch):
    from chalicelib.adapters import models

    for m in models.MODELS.values():
        monkeypatch.setattr(m.Meta, "host", "http://127.0.0.1:9")  # nothing listens on the discard port
        monkeypatch.setattr(m, "_connection", None)
    st, err = api.get("/api/health")
    assert st == 503 and err["code"] == "unavailable" and err["reason"] == "database"
    (st, err), _ = rent(api)
    assert st == 503 and err["code"] == "unavailable"
    for m in models.MODELS.values():
        m._connection = None


def test_a_bug_is_500_with_request_id_and_no_trace(api, monkeypatch):
    def boom(check):
        raise RuntimeError("secret internals")

    monkeypatch.setattr(api.c.rpc, "verify_payment", boom)
    (st, err), _ = rent(api)
    assert st == 500 and err["code"] == "internal" and err["request_id"]
    assert "secret" not in json.dumps(err) and "Traceback" not in json.dumps(err)


def test_rate_limit_per_source_ip(api, monkeypatch):
    from dataclasses import replace

    monkeypatch.setattr(api.c, "settings", replace(api.c.settings, rate_limit=(3, 10)))
    api.c.__dict__.pop("rate_limit", None)  # a fresh instance's limiter, built by the container
    assert [api.get("/api/pricing")[0] for _ in range(3)] == [200, 200, 200]
    r = api.client.http.get("/api/pricing")
    assert r.status_code == 429 and json.loads(r.body)["code"] == "rate_limited"
    assert 1 <= int(r.headers["Retry-After"]) <= 10


def test_body_over_64_kib_is_413(api):
    st, err = api.post("/api/rent", raw='{"wallet": "' + "1" * 70_000 + '"}')
    assert st == 413 and err["code"] == "payload_too_large"


def test_a_retried_metrics_report_is_stored_once(api):
    (st, body), _ = rent(api, tier="M2")
    cid, key = body["contract_id"], api.key_for(body["device_id"])
    now = api.c.clock()
    batch = {
        "samples": [
            {
                "cpu_percent": 10 + i,
                "memory_mb": 1,
                "disk_io_mbps": 0,
                "network_io_mbps": 0,
                "timestamp_ms": now - 500 * i,
            }
            for i in range(5)
        ]
    }
    first = api.post(f"/api/metrics/{cid}", batch, {"X-Device-Key": key})
    again = api.post(f"/api/metrics/{cid}", batch, {"X-Device-Key": key})
    assert first[0] == again[0] == 200 and again[1]["samples_recorded"] == 5
    assert len(api.get(f"/api/contracts/{cid}/metrics")[1]["samples"]) == 5
