"""POST /api/quotes and GET /api/quotes/{id} through the real app on the fakes."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

from chalicelib.domain.signing import rent_memo

QUOTE_FIELDS = {
    "quote_id",
    "kind",
    "tier",
    "contract_id",
    "duration_seconds",
    "lamports",
    "sol",
    "recipient",
    "reference",
    "memo",
    "expires_at",
    "solana_pay_url",
}


def test_anyone_gets_a_rent_quote_and_reads_its_status(edge):
    status, body, _ = edge.post("/api/quotes", {"tier": "M2", "duration_hours": 0.5})
    assert status == 201, body
    assert set(body) == QUOTE_FIELDS
    assert (body["kind"], body["lamports"], body["duration_seconds"]) == ("rent", 500_000, 1800)
    assert body["memo"] == rent_memo("M2", 1800) and body["contract_id"] is None
    parts = urlsplit(body["solana_pay_url"])
    assert parts.scheme == "solana" and parts.path == body["recipient"] == edge.c.settings.treasury
    assert parse_qs(parts.query)["amount"] == ["0.0005"]
    status, got, _ = edge.get(f"/api/quotes/{body['quote_id']}")
    assert status == 200
    assert got == {
        "quote_id": body["quote_id"],
        "status": "OPEN",
        "contract_id": None,
        "tx_signature": None,
        "reason": None,
    }


def test_an_extension_quote_names_its_contract(edge):
    status, rent, _ = edge.post("/api/rent", edge.rent_body("M2", 1))
    assert status == 201, rent
    status, body, _ = edge.post("/api/quotes", {"contract_id": rent["contract_id"], "additional_hours": 1})
    assert status == 201, body
    assert (body["kind"], body["contract_id"], body["lamports"]) == ("extend", rent["contract_id"], 1_000_000)


def stored(edge) -> dict:
    """Every table but the rate-limit windows (each request is counted, by design)."""
    snap = edge.p.db.snapshot()
    snap["claims"] = {k: v for k, v in snap["claims"].items() if not k.startswith("rl#")}
    return snap


def test_bad_quote_requests_are_4xx_in_the_error_shape_and_write_nothing(edge):
    before = stored(edge)
    cases = [
        ({"tier": "NOPE", "duration_hours": 1}, 400, "tier"),
        ({"tier": "M2"}, 400, "duration_hours"),
        ({"tier": "M2", "duration_hours": -1}, 400, "duration_hours"),
        ({"tier": "M2", "duration_hours": 1, "contract_id": "CTR-x"}, 400, "tier"),
        ({"contract_id": "CTR-nosuchcontract0000", "additional_hours": 1}, 404, "contract_id"),
        ({"contract_id": 7, "additional_hours": 1}, 404, "contract_id"),
    ]
    for req, code, reason in cases:
        status, body, _ = edge.post("/api/quotes", req)
        assert (status, body.get("reason")) == (code, reason), (req, body)
        assert set(body) == {"detail", "code", "reason"}
    status, body, _ = edge.get("/api/quotes/QTE-nope")
    assert (status, body["code"]) == (404, "not_found")
    assert stored(edge) == before
