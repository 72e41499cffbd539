"""Quotes over HTTP on the local stack: a quote, then a stock Solana Pay transfer (memo first,
then the transfer carrying the reference as a read-only non-signer key, as @solana/pay's
createTransfer builds it) that the local chain indexes under the reference, and whose signature
opens the contract through POST /api/rent (the quote's memo binds the terms)."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest

from .client import price_lamports, settle_headers

pytestmark = pytest.mark.e2e


def pay_quote(payer, wallet, quote: dict) -> str:
    fields = parse_qs(urlsplit(quote["solana_pay_url"]).query)
    assert fields["reference"] == [quote["reference"]] and fields["memo"] == [quote["memo"]]
    return payer.pay(wallet, quote["recipient"], quote["lamports"], quote["memo"], references=[quote["reference"]])


def signatures_for(payer, address: str) -> list[str]:
    from solders.pubkey import Pubkey

    resp = payer._run(payer.client.get_signatures_for_address(Pubkey.from_string(address)))
    return [str(s.signature) for s in resp.value]


def test_a_quote_paid_by_a_solana_pay_transfer_opens_the_contract_it_quoted(api, payer, local_stack):
    r = api.post("/api/quotes", {"tier": "M2", "duration_hours": 0.1})
    assert r.status == 201, r
    quote = r.body
    assert quote["recipient"] == local_stack["treasury"] and quote["lamports"] == price_lamports("M2", 0.1)
    assert api.get(f"/api/quotes/{quote['quote_id']}").body["status"] == "OPEN"

    wallet = payer.new_wallet()
    sig = pay_quote(payer, wallet, quote)
    assert payer.status(sig) is not None
    assert signatures_for(payer, quote["reference"]) == [sig]  # found by its reference alone

    body = {"wallet": str(wallet.pubkey()), "tier": "M2", "duration_hours": 0.1, "tx_signature": sig}
    rent = api.post("/api/rent", body)
    # the quote watcher (every ~2 s here) may open the contract from the transfer before this
    # request does; either way the payment opens ONE contract and this answer is its receipt
    assert rent.status in (200, 201), rent
    assert rent.body["prepaid_lamports"] == quote["lamports"]
    closed, _ = wait_closed(api, quote["quote_id"])
    assert (closed["status"], closed["contract_id"]) == ("PAID", rent.body["contract_id"]), closed
    again = api.post("/api/rent", body)
    assert (again.status, again.body["contract_id"]) == (200, rent.body["contract_id"])
    other_terms = api.post("/api/rent", {**body, "duration_hours": 0.2})
    assert other_terms.status == 402 and other_terms.body["reason"] == "memo_mismatch", other_terms

    ext = api.post("/api/quotes", {"contract_id": rent.body["contract_id"], "additional_hours": 0.1})
    assert ext.status == 201 and ext.body["kind"] == "extend", ext
    sig2 = pay_quote(payer, wallet, ext.body)
    extended = api.post(
        f"/api/contracts/{rent.body['contract_id']}/extend", {"additional_hours": 0.1, "tx_signature": sig2}
    )
    assert extended.status == 200, extended
    assert api.get(f"/api/contracts/{rent.body['contract_id']}").body["duration_seconds"] == 720


def test_bad_quote_requests_over_http_are_4xx_in_the_error_shape(api):
    for req, status in (({"tier": "NOPE", "duration_hours": 1}, 400), ({"contract_id": "CTR-nope"}, 404)):
        r = api.post("/api/quotes", req)
        assert r.status == status and r.is_error_shape, r
    r = api.get("/api/quotes/QTE-doesnotexist")
    assert r.status == 404 and r.is_error_shape


def wait_closed(api, quote_id: str, timeout: float = 30.0) -> tuple[dict, float]:
    """Poll the quote until it is no longer OPEN; (its status, seconds waited). The deadline is
    generous on purpose: speed is measured, not asserted (the watcher ticks every ~1.5 s)."""
    import time

    start = time.monotonic()
    while True:
        body = api.get(f"/api/quotes/{quote_id}").body
        if body["status"] != "OPEN" or time.monotonic() - start > timeout:
            return body, time.monotonic() - start
        time.sleep(0.2)


def test_a_stock_solana_pay_transfer_opens_the_contract_with_no_second_request(api, payer, local_stack):
    quote = api.post("/api/quotes", {"tier": "ORIN", "duration_hours": 0.05}).body
    wallet = payer.new_wallet()
    sig = pay_quote(payer, wallet, quote)  # returns once confirmed; nothing else is sent to the API
    status, waited = wait_closed(api, quote["quote_id"])
    print(f"quote PAID {waited:.2f} s after confirmation")
    assert (status["status"], status["tx_signature"]) == ("PAID", sig), status
    contract = api.get(f"/api/contracts/{status['contract_id']}").body
    assert (contract["wallet"], contract["tier"], contract["prepaid_lamports"]) == (
        str(wallet.pubkey()),
        "ORIN",
        quote["lamports"],
    )
    # an old client posting the same payment gets that contract (a replay), never a second one
    again = api.post(
        "/api/rent", {"wallet": str(wallet.pubkey()), "tier": "ORIN", "duration_hours": 0.05, "tx_signature": sig}
    )
    assert (again.status, again.body["contract_id"]) == (200, status["contract_id"])


def test_a_short_solana_pay_transfer_refuses_the_quote_and_stays_refundable(api, payer, local_stack):
    quote = api.post("/api/quotes", {"tier": "M2", "duration_hours": 0.1}).body
    wallet = payer.new_wallet()
    sig = payer.pay(wallet, quote["recipient"], quote["lamports"] - 1, quote["memo"], references=[quote["reference"]])
    status, _ = wait_closed(api, quote["quote_id"])
    assert (status["status"], status["reason"], status["tx_signature"]) == ("REFUSED", "insufficient_amount", sig)
    path = f"/api/payments/{sig}/refund"  # refused, so unclaimed: its payer gets it back like any refused payment
    refund = api.post(path, headers=settle_headers(wallet, "", path=path))
    assert refund.status == 201 and refund.body["refund_lamports"] == quote["lamports"] - 1, refund
