"""Three attacks on the edge, on fakes: forged device keys against the per-IP limit, anonymous
Idempotency-Key storage, and a Content-Type the API does not read (415 in the error shape,
through the edge: rate limit and request log)."""

from __future__ import annotations

import json
import secrets

from chalicelib import observability
from tests.support.fakes import new_wallet

SAMPLE = {"cpu_percent": 1, "memory_mb": 1, "disk_io_mbps": 0, "network_io_mbps": 0}
NAT = "192.0.2.77"


def writes(edge) -> int:
    return edge.p.db.calls.count("claims.count_request")


def forged_key(device_id: str = "dev-m2-1") -> str:
    return f"dk_{device_id}_{secrets.token_urlsafe(24).replace('_', 'x')}"


def test_an_address_inventing_device_keys_is_cut_off_at_its_own_budget(edge):
    edge.settings(rate_limit=(5, 10), device_rate_limit=(50, 10))
    path = "/api/metrics/CTR-AAAAAAAAAAAAAAAAAAAAAA"
    keys = [forged_key(), forged_key("dev-thor-1"), forged_key("no-such-device")] * 4
    got = [edge.post(path, SAMPLE, {"X-Device-Key": k}, ip=NAT) for k in keys]
    assert [st for st, *_ in got[:5]] == [401] * 5  # counted against the address, refused after
    assert all((st, b["code"], b["reason"]) == (429, "rate_limited", "ip") for st, b, _ in got[5:])
    subjects = {k.split("#")[1] for k in edge.claims_records("rl#")}
    assert subjects == {f"ip:{NAT}"}  # no forged key got a window of its own
    assert writes(edge) == 5  # one write per counted request; the refused ones cost none
    assert edge.get("/api/pricing", ip=NAT)[0] == 429  # the address's budget is spent


def test_a_real_device_key_keeps_its_own_window_behind_an_address_that_is_cut_off(edge):
    edge.settings(rate_limit=(3, 10), device_rate_limit=(5, 10))
    rent = edge.post("/api/rent", edge.rent_body(), ip=NAT)[1]
    path = f"/api/metrics/{rent['contract_id']}"
    assert [edge.post(path, SAMPLE, {"X-Device-Key": forged_key()}, ip=NAT)[0] for _ in range(3)] == [401, 401, 429]
    key = {"X-Device-Key": edge.device_keys[rent["device_id"]]}
    assert [edge.post(path, SAMPLE, key, ip=NAT)[0] for _ in range(5)] == [200] * 5
    st, err, _ = edge.post(path, SAMPLE, key, ip=NAT)
    assert (st, err["reason"]) == (429, "device")
    subjects = {k.split("#")[1] for k in edge.claims_records("rl#")}
    # the rent's payment check spends its own budget (`rpc:`); no window per forged key
    assert subjects == {f"ip:{NAT}", f"dev:{rent['device_id']}", f"rpc:ip:{NAT}"}


def test_a_verified_report_reads_its_device_once(edge):
    rent = edge.post("/api/rent", edge.rent_body())[1]
    key = {"X-Device-Key": edge.device_keys[rent["device_id"]]}
    reads = ("devices.get", "contracts.get", "metrics.report_context")
    before = {r: edge.p.db.calls.count(r) for r in reads}
    assert edge.post(f"/api/metrics/{rent['contract_id']}", SAMPLE, key)[0] == 200
    # the edge's one read (device + contract together) is the service's
    assert {r: edge.p.db.calls.count(r) - before[r] for r in reads} == {
        "devices.get": 0,
        "contracts.get": 0,
        "metrics.report_context": 1,
    }


def test_a_public_memo_bound_rent_replayed_with_50_fresh_keys_stores_no_key(edge):
    body = edge.rent_body(wallet=new_wallet())
    st, first, _ = edge.post("/api/rent", body)
    assert st == 201
    answers = [edge.post("/api/rent", body, {"Idempotency-Key": f"fresh-{i}"}) for i in range(50)]
    assert all(st == 200 and again == first for st, again, _ in answers)  # the payment's receipt
    assert edge.claims_records("idem#") == {}
    assert len(edge.p.db.tables["contracts"]) == 1


def test_an_anonymous_extend_with_a_key_stores_no_key_and_a_bad_key_is_still_400(edge):
    from chalicelib.domain.signing import extend_memo

    body = edge.rent_body()
    rent = edge.post("/api/rent", body, {"Idempotency-Key": "first"})[1]
    sig = edge.p.rpc.pay(body["wallet"], 1_000_000, memo=extend_memo(rent["contract_id"], 3600))
    ext = {"additional_hours": 1, "tx_signature": sig}
    path = f"/api/contracts/{rent['contract_id']}/extend"
    first = edge.post(path, ext, {"Idempotency-Key": "e-1"})
    again = edge.post(path, ext, {"Idempotency-Key": "e-2"})
    assert first[0] == again[0] == 200 and first[1] == again[1]
    st, err, _ = edge.post(path, ext, {"Idempotency-Key": "x" * 256})
    assert (st, err["code"], err["reason"]) == (400, "invalid_request", "Idempotency-Key")
    assert edge.claims_records("idem#") == {}


def test_an_unsupported_content_type_is_415_in_the_error_shape_counted_and_logged(edge):
    edge.settings(rate_limit=(3, 10))
    before = writes(edge)
    with observability.capture() as cap:
        st, err, h = edge.post("/api/rent", "<rent/>", {"Content-Type": "application/xml"})
    assert st == 415 and h["content-type"] == "application/json"
    assert err == {"detail": err["detail"], "code": "unsupported_media_type", "reason": "Content-Type"}
    assert writes(edge) == before + 1  # the rate limit ran
    (line,) = [r for r in cap.records if r.get("event") == "request"]
    assert (line["status"], line["code"], line["route"]) == (415, "unsupported_media_type", "/api/rent")
    assert [edge.post("/api/rent", "<rent/>", {"Content-Type": "text/xml"})[0] for _ in range(3)] == [415, 415, 429]
    assert edge.claims_records("claim#") == {} and len(edge.p.db.tables["contracts"]) == 0


def test_json_under_any_of_its_accepted_names_and_parameters_is_read(edge):
    for ctype in ("application/json; charset=utf-8", "text/plain", "application/octet-stream"):
        st, out, _ = edge.post("/api/rent", edge.rent_body(), {"Content-Type": ctype})
        assert st == 201, (ctype, out)
    assert edge.get("/api/pricing", {"Content-Type": "application/xml"})[0] == 200  # a GET reads no body


def _proxy_event(method: str, path: str, headers: dict, body: str | None, ip: str) -> dict:
    """An API Gateway REST proxy event, as Lambda hands it to the function."""
    return {
        "resource": path,
        "path": path,
        "httpMethod": method,
        "headers": headers,
        "multiValueHeaders": {k: [v] for k, v in headers.items()},
        "queryStringParameters": None,
        "multiValueQueryStringParameters": None,
        "pathParameters": None,
        "stageVariables": None,
        "requestContext": {
            "resourcePath": path,
            "httpMethod": method,
            "path": f"/api{path}",
            "requestId": "req-415-lambda",
            "identity": {"sourceIp": ip},
        },
        "body": body,
        "isBase64Encoded": False,
    }


def test_415_through_the_lambda_handler_with_a_proxy_event(edge):
    from app import app

    edge.settings(rate_limit=(2, 10))
    event = _proxy_event("POST", "/api/rent", {"Content-Type": "application/xml"}, "<rent/>", "203.0.113.41")
    with observability.capture() as cap:
        answers = [app(event, None) for _ in range(3)]
    assert [a["statusCode"] for a in answers] == [415, 415, 429]
    err = json.loads(answers[0]["body"])
    assert (err["code"], err["reason"], set(err)) == (
        "unsupported_media_type",
        "Content-Type",
        {"detail", "code", "reason"},
    )
    lines = [r for r in cap.records if r.get("event") == "request"]
    assert [(r["status"], r["request_id"]) for r in lines] == [(415, "req-415-lambda")] * 2 + [(429, "req-415-lambda")]
