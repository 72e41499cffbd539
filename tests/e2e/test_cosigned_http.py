"""Co-signed payments and payment-check amplification, over HTTP on a local stack of its own
(reconciliation reads the treasury's whole history, and the lookup budget is per address).

Co-signed: ONE real transaction on the local chain in which the renter and a co-signer both
transfer to the treasury. The rent counts only the renter's transfers; the co-signer gets its
share back by its signed request; two payers of a contract-less payment are refunded each
(one never blocks the other); an operator refunds an orphan share by naming its payer; and
after each attack the ledger balances and reconcile passes with a difference of 0.

Amplification: N anonymous rents with random well-formed signatures from one address cause at
most the budget's RPC calls, counted by the local chain (`si64_callCounts`).
"""

from __future__ import annotations

import base64
import secrets
import time

import base58
import pytest
import requests

from chalicelib.domain.signing import rent_memo
from si64 import renter as local_renter
from tests.e2e.client import Api, Payer, duration_seconds, price_lamports
from tests.fixtures.stack import start_stack

pytestmark = pytest.mark.e2e
LOOKUPS = 10  # SI64_RPC_LOOKUP_LIMIT of this stack, per 10 s
SHARE = 300_000


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    with start_stack(tmp_path_factory.mktemp("cosigned"), SI64_RPC_LOOKUP_LIMIT=f"{LOOKUPS}/10") as info:
        yield info


@pytest.fixture(scope="module")
def api(stack) -> Api:
    return Api(stack["api_url"], stack["admin_key"])


@pytest.fixture(scope="module")
def payer(stack):
    with Payer(stack["rpc_url"]) as p:
        yield p


def chain(stack, method: str, params=None):
    r = requests.post(stack["rpc_url"], json={"jsonrpc": "2.0", "id": 1, "method": method, "params": params or []})
    r.raise_for_status()
    return r.json()["result"]


def fresh_window() -> None:
    """Wait for the next lookup window (fixed windows of 10 s on the clock)."""
    time.sleep(10 - time.time() % 10 + 0.2)


def refund_request(api, kp, sig: str):
    path = f"/api/payments/{sig}/refund"
    return api.post(path, data=b"", headers=local_renter.renter_headers(kp, "POST", path, b""))


def wait_refund(api, sig: str, payer_pubkey, timeout=60.0) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        r = api.get(f"/api/payments/{sig}/refund?payer={payer_pubkey}")
        if r.status == 200 and r.body["refund"]["status"] == "CONFIRMED":
            return r.body
        time.sleep(0.3)
    raise AssertionError(f"the refund of {payer_pubkey}'s share of {sig} was not confirmed in {timeout} s")


def reconciled(api, orphan_age: int = 0) -> dict:
    r = api.get(f"/api/admin/reconcile?orphan_age={orphan_age}", admin=True)
    assert r.status == 200, r
    return r.body


def books_balanced(api, *ids: str) -> None:
    """Each contract's or refund's postings balance, and reconcile explains the treasury to the
    lamport (every share booked or named)."""
    for i in ids:
        r = api.get(f"/api/billing/entries?contract_id={i}&limit=1000", admin=True)
        assert r.status == 200 and r.body["entries"], r
        assert r.body["debit_lamports"] == r.body["credit_lamports"], r.body
    rep = reconciled(api, orphan_age=3600)
    assert rep["treasury"]["difference_lamports"] == 0, rep["mismatches"]


def test_a_cosigned_rent_counts_only_the_renter_and_the_cosigner_is_refunded(stack, api, payer):
    treasury = stack["treasury"]
    renter, cosigner = payer.new_wallet(), payer.new_wallet()
    price = price_lamports("M2", 0.1)
    memo = rent_memo("M2", duration_seconds(0.1))
    sig = payer.pay_together([(renter, price), (cosigner, SHARE)], treasury, memo=memo)
    r = api.post(
        "/api/rent", {"wallet": str(renter.pubkey()), "tier": "M2", "duration_hours": 0.1, "tx_signature": sig}
    )
    assert r.status == 201 and r.body["prepaid_lamports"] == price, r  # not price + the co-signer's share

    rep = reconciled(api)
    assert rep["treasury"]["difference_lamports"] == 0, rep["mismatches"]  # was +300,000 unexplained
    assert [(o["signature"], o["payer"], o["lamports"]) for o in rep["orphans"]] == [
        (sig, str(cosigner.pubkey()), SHARE)
    ]

    # the renter cannot take the co-signer's share; the co-signer gets it back by its own request
    taken = refund_request(api, renter, sig)
    assert taken.status == 409 and taken.body["code"] == "payment_already_used", taken
    before = payer.balance(cosigner.pubkey())
    first = refund_request(api, cosigner, sig)
    assert first.status == 201 and first.body["refund_lamports"] == SHARE, first
    assert first.body["refund_id"] == f"PAY-{sig}-{cosigner.pubkey()}"
    paid = wait_refund(api, sig, cosigner.pubkey())
    assert payer.balance(cosigner.pubkey()) - before == SHARE and paid["wallet"] == str(cosigner.pubkey())
    rep = reconciled(api)
    assert rep["ok"] and rep["orphans"] == [], rep["mismatches"]
    books_balanced(api, r.body["contract_id"], first.body["refund_id"])


def test_two_payers_refund_their_own_shares_and_an_operator_refunds_an_orphan_share(stack, api, payer):
    treasury = stack["treasury"]
    a, b, c = payer.new_wallet(), payer.new_wallet(), payer.new_wallet()
    both = payer.pay_together([(a, 40_000), (b, 60_000)], treasury)
    ra, rb = refund_request(api, a, both), refund_request(api, b, both)  # was: several_payers, then 409
    assert (ra.status, rb.status) == (201, 201), (ra, rb)
    assert (ra.body["refund_lamports"], rb.body["refund_lamports"]) == (40_000, 60_000)

    orphan = payer.pay_together([(b, 70_000), (c, 80_000)], treasury)
    rep = reconciled(api)
    assert sorted((o["payer"], o["lamports"]) for o in rep["orphans"]) == sorted(
        [(str(b.pubkey()), 70_000), (str(c.pubkey()), 80_000)]
    )
    assert rep["treasury"]["difference_lamports"] == 0
    path = f"/api/admin/payments/{orphan}/refund"
    ambiguous = api.post(path, data=b"", admin=True)
    assert ambiguous.status == 400 and ambiguous.body["reason"] == "payer", ambiguous
    for kp, n in ((c, 80_000), (b, 70_000)):
        done = api.post(f"{path}?payer={kp.pubkey()}", data=b"", admin=True)
        assert done.status == 201 and done.body["refund_lamports"] == n, done
    again = api.post(f"{path}?payer={c.pubkey()}", data=b"", admin=True)
    assert again.status == 409 and again.body["code"] == "payment_already_used", again

    ids = [
        wait_refund(api, sig, kp.pubkey())["refund_id"] for sig, kp in ((both, a), (both, b), (orphan, b), (orphan, c))
    ]
    rep = reconciled(api)
    assert rep["ok"] and rep["treasury"]["difference_lamports"] == 0, rep["mismatches"]
    books_balanced(api, *ids)


def test_random_signatures_from_one_address_cost_at_most_the_budget_in_rpc_calls(stack):
    api = Api(stack["api_url"], stack["admin_key"], retry_429=False)  # a 429 is the answer under test
    fresh_window()
    chain(stack, "si64_callCounts", [True])
    statuses = []
    for _ in range(4 * LOOKUPS):
        sig = base58.b58encode(secrets.token_bytes(64)).decode()
        wallet = base58.b58encode(secrets.token_bytes(32)).decode()
        r = api.post("/api/rent", {"wallet": wallet, "tier": "M2", "duration_hours": 0.1, "tx_signature": sig})
        statuses.append((r.status, r.body.get("reason")))
    counts = chain(stack, "si64_callCounts")
    asked = counts.get("getTransaction", 0) + counts.get("getSignatureStatuses", 0)
    assert statuses.count((402, "not_found")) <= LOOKUPS
    assert statuses.count((429, "rpc_budget")) >= 3 * LOOKUPS, statuses
    assert asked <= 2 * LOOKUPS, counts
    # a malformed signature never reaches the chain
    chain(stack, "si64_callCounts", [True])
    bad = base64.b64encode(secrets.token_bytes(64)).decode()
    r = api.post("/api/rent", {"wallet": wallet, "tier": "M2", "duration_hours": 0.1, "tx_signature": bad})
    assert r.status == 400 and r.body["reason"] == "tx_signature", r
    counts = chain(stack, "si64_callCounts")
    assert counts.get("getTransaction", 0) + counts.get("getSignatureStatuses", 0) == 0, counts
