"""The fleet-wide rate limit at the edge, on fakes (ADR 0009, ADR 0020): per-subject window items
shared by every instance, whose slots each instance reserves in blocks; device keys count apart."""

from __future__ import annotations

import logging

from chalicelib.domain.errors import Unavailable
from chalicelib.services.ratelimit import block_cap

SAMPLE = {"cpu_percent": 1, "memory_mb": 1, "disk_io_mbps": 0, "network_io_mbps": 0}


def writes(edge) -> int:
    return edge.p.db.calls.count("claims.count_request")


def test_150_in_total_across_two_instances_then_429_while_another_ip_is_untouched(edge):
    edge.instance()
    a = edge.c.rate_limit
    edge.instance()
    b = edge.c.rate_limit
    statuses = []
    for i in range(200):  # alternate between two instances: each alone sees 100, under its own line's 150
        edge.c.__dict__["rate_limit"] = (a, b)[i % 2]
        statuses.append(edge.get("/api/pricing", ip="203.0.113.9"))
    ok = [st for st, *_ in statuses if st == 200]
    refused = [(st, err["code"], err["reason"], int(h["retry-after"])) for st, err, h in statuses if st != 200]
    # at most 150 in total; at least 150 - (k - 1)(cap - 1): slots the other instance holds
    assert 150 - (block_cap(150) - 1) <= len(ok) <= 150
    assert all(r[:3] == (429, "rate_limited", "ip") and 1 <= r[3] <= 10 for r in refused)
    assert statuses[-1][0] == statuses[-2][0] == 429  # both instances refuse in the end
    (item,) = edge.claims_records("rl#ip:203.0.113.9#").values()
    assert item["hits"] == 150  # the window's count: every slot reserved, none past the limit
    assert writes(edge) <= 30  # blocks (27 here; one instance alone takes 19 for 150), not one per request
    assert edge.get("/api/pricing", ip="198.51.100.7")[0] == 200


def test_two_clients_at_100_each_are_not_limited(edge):
    for _ in range(100):
        for ip in ("203.0.113.9", "198.51.100.7"):
            assert edge.get("/api/pricing", ip=ip)[0] == 200


def test_once_an_instance_saw_the_window_full_it_refuses_without_a_write(edge):
    edge.settings(rate_limit=(3, 10))
    assert [edge.get("/api/pricing")[0] for _ in range(3)] == [200] * 3
    before = writes(edge)
    assert [edge.get("/api/pricing")[0] for _ in range(5)] == [429] * 5
    assert writes(edge) == before  # the 3rd request filled the window: known full here
    edge.instance()
    assert edge.get("/api/pricing")[0] == 429 and writes(edge) == before + 1  # a new instance pays one write


def test_the_next_window_is_fresh_and_old_windows_expire(edge):
    edge.settings(rate_limit=(2, 10))
    assert [edge.get("/api/pricing")[0] for _ in range(3)] == [200, 200, 429]
    edge.p.clock.advance(10)
    edge.instance()  # the per-instance sliding window runs on the process clock: a fresh instance
    assert edge.get("/api/pricing")[0] == 200
    items = edge.claims_records("rl#")
    assert len(items) == 2 and all(v["expires_at_ms"] > v["created_at_ms"] for v in items.values())
    assert all(k.startswith("rl#ip:127.0.0.1#") for k in items)  # one item per address and window


def test_device_key_traffic_counts_against_the_device_not_the_address(edge):
    edge.settings(rate_limit=(3, 10), device_rate_limit=(5, 10))
    rent = edge.post("/api/rent", edge.rent_body(), ip="192.0.2.1")[1]
    key = {"X-Device-Key": edge.device_keys[rent["device_id"]]}
    other = next(k for d, k in edge.device_keys.items() if d != rent["device_id"])
    path = f"/api/metrics/{rent['contract_id']}"
    got = [edge.post(path, SAMPLE, key, ip="192.0.2.1")[0] for _ in range(5)]
    assert got == [200] * 5  # 5 reports + the rent from one NAT address: over the address limit of 3
    st, err, h = edge.post(path, SAMPLE, key, ip="192.0.2.1")
    assert (st, err["code"], err["reason"]) == (429, "rate_limited", "device") and int(h["retry-after"]) >= 1
    # another device behind the same address has its own budget (403: not its contract, but not limited)
    assert edge.post(path, SAMPLE, {"X-Device-Key": other}, ip="192.0.2.1")[0] == 403
    # and the address still has its own (the rent used 1 of 3)
    assert [edge.get("/api/pricing", ip="192.0.2.1")[0] for _ in range(3)] == [200, 200, 429]
    subjects = {k.split("#")[1] for k in edge.claims_records("rl#")} - {"rpc:ip:192.0.2.1"}  # the rent's chain lookup
    assert subjects == {"ip:192.0.2.1"} | {s for s in subjects if s.startswith("dev:")} and len(subjects) == 3


def test_unauthenticated_traffic_on_the_device_route_stays_per_address(edge):
    edge.settings(rate_limit=(2, 10))
    path = "/api/metrics/CTR-AAAAAAAAAAAAAAAAAAAAAA"
    assert [edge.post(path, SAMPLE)[0] for _ in range(3)] == [401, 401, 429]


def test_a_limiter_outage_fails_open_with_a_log_line_and_the_instance_limit_still_holds(edge, caplog):
    edge.settings(rate_limit=(4, 10))
    edge.p.db.fail_next("claims.count_request", Unavailable("down", reason="database"), times=10)
    with caplog.at_level(logging.WARNING, logger="si64.api"):
        got = [edge.get("/api/pricing")[0] for _ in range(6)]
    assert got == [200] * 4 + [429] * 2  # open, but this instance's own window still counts
    assert sum("failing open" in r.getMessage() for r in caplog.records) == 1  # logged, not flooded
    edge.p.db.clear_faults()


def test_preflights_are_limited_per_instance_only(edge):
    edge.settings(rate_limit=(2, 10), cors_origins=("https://app.example",))
    pre = {"Origin": "https://app.example", "Access-Control-Request-Method": "POST"}
    got = [edge.request("OPTIONS", "/api/rent", headers=pre)[0] for _ in range(3)]
    assert got == [204, 204, 429] and writes(edge) == 0
