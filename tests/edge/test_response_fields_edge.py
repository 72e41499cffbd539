"""Each field says what it is (the app in process on the fakes): the rent and extend answers
carry the server's milliseconds the status carries, and the payment they spent; the settle
answer names the refund's transaction `refund_tx_signature` (the legacy `tx_signature` kept,
equal); the postings of `?account=revenue` give revenue earned as a positive figure on the
account's own side (the legacy `balance_lamports` stays debits − credits)."""

from __future__ import annotations

from solders.keypair import Keypair

from chalicelib.domain.signing import extend_memo, rent_memo
from si64.renter import renter_headers
from tests.edge.conftest import ADMIN_KEY
from tests.support.hostile_numbers import conforms

ADMIN = {"X-Admin-Key": ADMIN_KEY}


def rent(edge, kp: Keypair, lamports: int = 1_100_000) -> dict:
    wallet = str(kp.pubkey())
    sig = edge.p.rpc.pay(wallet, lamports, memo=rent_memo("M2", 3600))
    status, body, _ = edge.post("/api/rent", {"wallet": wallet, "tier": "M2", "duration_hours": 1, "tx_signature": sig})
    assert status == 201, body
    return {**body, "_sig": sig}


def test_rent_and_extend_answers_carry_the_status_milliseconds_and_their_payment(edge):
    kp = Keypair()
    r = rent(edge, kp)
    _, status, _ = edge.get(f"/api/contracts/{r['contract_id']}")
    assert (r["created_at_ms"], r["expires_at_ms"]) == (status["created_at_ms"], status["expires_at_ms"])
    assert (r["created_at"], r["expires_at"]) == (r["created_at_ms"] // 1000, r["expires_at_ms"] // 1000)
    assert r["payment_tx_signature"] == r["_sig"]
    conforms("RentReceipt", {k: v for k, v in r.items() if k != "_sig"})
    conforms("Contract", status)
    cid = r["contract_id"]
    sig = edge.p.rpc.pay(str(kp.pubkey()), 600_000, memo=extend_memo(cid, 1800))
    code, x, _ = edge.post(f"/api/contracts/{cid}/extend", {"additional_hours": 0.5, "tx_signature": sig})
    assert code == 200, x
    _, status, _ = edge.get(f"/api/contracts/{cid}")
    assert x["new_expiration_ms"] == status["expires_at_ms"] and x["new_expiration"] == status["expires_at_ms"] // 1000
    assert x["payment_tx_signature"] == sig
    assert x["payment_received_lamports"] == x["prepaid_lamports"] == 600_000
    conforms("ExtendReceipt", x)


def test_settle_names_the_refund_transaction_and_revenue_is_positive_on_its_side(edge):
    kp = Keypair()
    r = rent(edge, kp)
    cid = r["contract_id"]
    edge.p.clock.now_ms += 1_800_000  # half of its hour
    path = f"/api/contracts/{cid}/settle"
    code, s, _ = edge.post(path, headers=renter_headers(kp, "POST", path, ts=edge.p.clock.now_ms // 1000))
    assert code == 200, s
    assert "refund_tx_signature" in s and s["refund_tx_signature"] == s["tx_signature"]
    assert s["refund_tx_signature"] != r["_sig"]  # never the payment's
    assert s["used_lamports"] == 500_000
    conforms("Settlement", s)

    code, rev, _ = edge.get("/api/billing/entries?account=revenue", headers=ADMIN)
    assert code == 200, rev
    assert (rev["account"], rev["normal_side"]) == ("revenue", "credit")
    assert rev["account_balance_lamports"] == 500_000 == rev["credit_lamports"]
    assert rev["balance_lamports"] == rev["debit_minus_credit_lamports"] == -500_000  # legacy, unchanged
    conforms("EntriesPage", rev)
    code, tre, _ = edge.get("/api/billing/entries?account=treasury", headers=ADMIN)
    assert (tre["normal_side"], tre["account_balance_lamports"]) == ("debit", 1_100_000)
    code, one, _ = edge.get(f"/api/billing/entries?contract_id={cid}", headers=ADMIN)
    assert one["debit_minus_credit_lamports"] == 0 and "account_balance_lamports" not in one
    conforms("EntriesPage", one)
