"""Payment checks do not amplify, through the real app on the fakes (the shared limiter on):
a malformed signature never reaches the chain, and N anonymous rents with random well-formed
signatures from one address cause at most the lookup budget's RPC calls (counted on the fake
node); the refused ones answer 429 in the error shape with Retry-After and write nothing."""

from __future__ import annotations

import pytest

from tests.support.fakes import new_signature, new_wallet

RPC_PER_LOOKUP = 2


@pytest.mark.parametrize(
    "sig",
    [
        "1" * 10,  # too short
        "0" * 88,  # not base58
        "4" * 120,  # too long
        "3" * 43,  # 32 bytes: a public key, not a signature
        "",
        12345,
    ],
)
def test_a_malformed_signature_never_reaches_the_chain(edge, sig):
    body = {"wallet": new_wallet(), "tier": "M2", "duration_hours": 1, "tx_signature": sig}
    st, err, _ = edge.post("/api/rent", body)
    assert (st, err["code"], err["reason"]) == (400, "invalid_request", "tx_signature")
    assert edge.p.rpc.requests == []


def test_n_anonymous_rents_from_one_address_cost_at_most_the_budget(edge):
    edge.settings(rpc_lookup_limit=(10, 10))
    before = edge.p.db.snapshot()
    statuses = []
    for _ in range(60):
        body = {"wallet": new_wallet(), "tier": "M2", "duration_hours": 1, "tx_signature": new_signature()}
        st, err, h = edge.post("/api/rent", body, ip="198.51.100.7")
        statuses.append(st)
        if st == 429:
            assert (err["code"], err["reason"]) == ("rate_limited", "rpc_budget") and int(h["retry-after"]) >= 1
        else:
            assert (st, err["reason"]) == (402, "not_found")
    assert statuses.count(402) == 10 and statuses.count(429) == 50
    assert len(edge.p.rpc.requests) <= 10 * RPC_PER_LOOKUP
    # nothing but the rate-limit windows was written
    after = edge.p.db.snapshot()
    changed = {
        t: {k for k in after[t] if after[t].get(k) != before.get(t, {}).get(k)}
        for t in after
        if after[t] != before.get(t)
    }
    assert set(changed) <= {"claims"} and all(k.startswith("rl#") for k in changed.get("claims", ()))
    # another address still rents with a real payment
    st, body, _ = edge.post("/api/rent", edge.rent_body(), ip="203.0.113.5")
    assert st == 201, body
