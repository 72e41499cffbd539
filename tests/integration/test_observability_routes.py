"""The route blueprints emit the business metrics once per committed payment (never for a replay),
and the request log wrapper (`observability.observed`, which api/endpoint.py applies)
writes one line per request with the contract named, around the real views of the app."""

from __future__ import annotations

from chalicelib import observability
from chalicelib.domain.signing import extend_memo
from tests.integration.conftest import ADMIN_KEY
from tests.integration.test_lifecycle_moto import rent


def _metrics(cap, name):
    return [r for r in cap.records if name in r and "_aws" in r]


def test_rent_and_extend_emit_once_and_replays_emit_nothing(api):
    observability.set_stage("test")
    try:
        with observability.capture() as cap:
            (st, body), req = rent(api, tier="ORIN", hours=1)
            assert st == 201
            assert api.post("/api/rent", req)[0] == 200  # replay
        (m,) = _metrics(cap, "Rents")
        assert m["Rents"] == 1 and m["Stage"] == "test" and m["contract_id"] == body["contract_id"]
        assert m["tier"] == "ORIN" and m["_aws"]["CloudWatchMetrics"][0]["Dimensions"] == [["Stage"]]

        cid = body["contract_id"]
        sig = api.c.rpc.pay(req["wallet"], 4_000_000, memo=extend_memo(cid, 3600))
        with observability.capture() as cap:
            for _ in range(2):
                assert api.post(f"/api/contracts/{cid}/extend", {"additional_hours": 1, "tx_signature": sig})[0] == 200
        (m,) = _metrics(cap, "Extensions")
        assert m["contract_id"] == cid and m["Extensions"] == 1
    finally:
        observability.set_stage(None)


def test_observed_wraps_a_real_view_one_line_naming_the_contract(api, client):
    # every route is wrapped by api/endpoint.endpoint: no wrapping here
    with observability.capture() as cap:
        (st, body), req = rent(api, tier="M2", hours=1)
        st2, err = api.post("/api/rent", dict(req, tier="THOR"))
    lines = [r for r in cap.records if r.get("event") == "request"]
    assert [(x["status"], x["outcome"], x["operation"]) for x in lines] == [
        (201, "committed", "rent"),
        (st2, "rejected", "rent"),
    ]
    assert lines[0]["contract_id"] == body["contract_id"] and lines[1]["code"] == err["code"]
    assert all(isinstance(x["latency_ms"], float) and x["request_id"] for x in lines)
    assert req["tx_signature"] not in cap.text and ADMIN_KEY not in cap.text
