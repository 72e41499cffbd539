"""The JSON shapes of docs/api.md (chalicelib/api/views.py, and the receipts of chalicelib/domain/receipts.py).

Every SOL display field is exactly its lamport figure × 10⁻⁹ (as a decimal, and as
the JSON text a client reads), and every response conforms to its schema in the API's
OpenAPI document (chalicelib/api/openapi.json, whose objects are closed): every field it
requires, none it lacks, each of its type.
Pure logic: no sockets, no AWS.
"""

from __future__ import annotations

import json
import re
from decimal import Decimal
from types import SimpleNamespace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chalicelib import jsontext
from chalicelib.api import views
from chalicelib.domain import contracts as dc
from chalicelib.domain import ledger, money, receipts
from chalicelib.domain.money import EXACT_SOL_DISPLAY_LIMIT
from tests.support.hostile_numbers import conforms
from tests.unit.test_contracts import T0, WALLET, lifecycles, refund_mins, sample_contract, settle_times

REFUND_MIN = 5_000  # config.Settings' refund_min_lamports


# each example also validates against the document (jsonschema): no per-example deadline, which
# on a shared machine measures its load, not this code
NO_DEADLINE = settings(deadline=None)


def assert_conforms(view: dict, schema_name: str) -> None:
    """The view, as a client reads it (the JSON text the edge writes), fits the document's schema."""
    conforms(schema_name, json.loads(jsontext.dumps(view)))


def plain_decimal(number: str) -> Decimal:
    """parse_float hook: every fraction on the wire is written without an exponent."""
    assert re.fullmatch(r"-?[0-9]+\.[0-9]+", number), number
    return Decimal(number)


# docs/api.md "Conventions": legacy SOL names without the _sol suffix.
LEGACY_SOL = {"cost_sol", "prepaid", "used", "refund", "cost_so_far", "refund_available", "new_total_cost"}


def sol_pairs(view: dict) -> list[tuple[str, str]]:
    """(sol_key, lamports_key) for every SOL display field of a flat view."""
    pairs = []
    for key, value in view.items():
        if key.endswith("_sol"):
            partner = key[:-4] + "_lamports"
        elif key in LEGACY_SOL and not isinstance(value, dict):
            partner = key + "_lamports"
        else:
            continue
        assert partner in view, f"{key} has no {partner} beside it"
        pairs.append((key, partner))
    return pairs


def assert_sol_exact(view: dict, expected_pairs: int) -> None:
    pairs = sol_pairs(view)
    assert len(pairs) == expected_pairs, pairs
    text = jsontext.dumps(view)  # what the edge sends (api.errors.json_response)
    wire = json.loads(text, parse_float=plain_decimal)  # plain decimals: never 2.78e-07
    for sol_key, lam_key in pairs:
        lamports = view[lam_key]
        assert type(lamports) is int, (lam_key, lamports)
        exact = Decimal(lamports).scaleb(-9)
        assert isinstance(view[sol_key], Decimal) and view[sol_key] == exact, (sol_key, view[sol_key], lamports)
        assert Decimal(wire[sol_key]) == exact, (sol_key, wire[sol_key], lamports)  # what a client parses
    for key, value in view.items():
        if key.endswith("_lamports"):
            assert type(value) is int and value >= 0, (key, value)


def assert_hours_display(hours, seconds: int) -> None:
    assert isinstance(hours, Decimal)  # exact, like the _sol figures; written as a plain JSON number
    assert hours == (Decimal(seconds) / 3600).quantize(Decimal("0.000001"))


@st.composite
def ended(draw):
    lc = draw(lifecycles())
    c = lc.last
    return lc, dc.finalize(
        c, now_ms=max(draw(settle_times(c)), c.payments[-1].at_ms), refund_min_lamports=draw(refund_mins)
    )


# --- rent / extend ------------------------------------------------------------------------


@NO_DEADLINE
@given(lifecycles())
def test_rent_response(lc):
    first = lc.states[0]
    for c in lc.states:  # a replay after extensions still answers the rental as it was
        r = receipts.rent_receipt(c)
        assert_conforms(r, "RentReceipt")
        assert_sol_exact(r, 2)
        p = first.payments[0]
        assert (r["contract_id"], r["status"], r["tier"], r["device_id"]) == (
            c.contract_id,
            dc.ACTIVE,
            c.tier,
            c.device_id,
        )
        assert r["cost_lamports"] == p.price_lamports == first.price_lamports
        assert r["prepaid_lamports"] == p.received_lamports == first.received_lamports
        assert r["duration_seconds"] == p.seconds
        assert_hours_display(r["duration_hours"], p.seconds)
        assert r["created_at"] == first.created_at_ms // 1000
        assert r["expires_at"] == first.expires_at_ms // 1000
        assert all(type(r[k]) is int for k in ("created_at", "expires_at", "duration_seconds"))


@NO_DEADLINE
@given(lifecycles(max_extensions=4))
def test_extend_response(lc):
    for after in lc.states[1:]:
        p = after.payments[-1]
        r = receipts.extend_receipt(after, p.sig)
        assert_conforms(r, "ExtendReceipt")
        assert_sol_exact(r, 2)
        assert r["contract_id"] == after.contract_id
        assert r["additional_cost_lamports"] == p.price_lamports
        assert r["new_total_cost_lamports"] == after.price_lamports
        assert r["new_expiration"] == after.expires_at_ms // 1000
        assert_hours_display(r["extended_hours"], p.seconds)
    # a replay of an older extension answers that extension, not the newest one
    if len(lc.states) > 2:
        older = lc.states[1].payments[-1]
        r = receipts.extend_receipt(lc.last, older.sig)
        assert r["additional_cost_lamports"] == older.price_lamports


# --- status -------------------------------------------------------------------------------


@NO_DEADLINE
@given(lifecycles(), st.data())
def test_contract_response_active(lc, data):
    c = lc.last
    now = data.draw(settle_times(c))
    r = views.contract_response(c, now, REFUND_MIN)
    assert_conforms(r, "Contract")
    assert_sol_exact(r, 3)
    if now >= c.expires_at_ms:  # ended at its expiry, before the sweep books it
        swept = dc.finalize(c, now_ms=now + 60_000, refund_min_lamports=REFUND_MIN)  # what the sweep books
        assert r["status"] == dc.EXPIRED == swept.status and r["booked"] is False
        assert r["used_lamports"] == swept.used_lamports == c.price_lamports
        assert r["refund"] == {"status": swept.refund_status, "lamports": swept.refund_lamports, "tx_signature": None}
        assert r["refund_available_lamports"] == 0 and r["remaining_seconds"] == 0
        assert r["settled_at_ms"] == swept.ended_at_ms == c.expires_at_ms
        assert r["used_lamports"] == reproduce_used(r)
        return
    f = c.figures(now)
    assert r["booked"] is True
    assert r["status"] == dc.ACTIVE and r["wallet"] == c.wallet
    assert r["prepaid_lamports"] == c.received_lamports
    assert r["used_lamports"] == f.used_lamports
    assert r["refund_available_lamports"] == f.refund_available_lamports
    assert r["used_lamports"] + r["refund_available_lamports"] == r["prepaid_lamports"]
    assert r["remaining_seconds"] == f.remaining_seconds
    assert r["settled_at"] is None
    assert r["refund"] == {"status": dc.REFUND_NONE, "lamports": 0, "tx_signature": None}
    assert_hours_display(r["duration_hours"], c.duration_seconds)
    assert_hours_display(r["elapsed_hours"], (now - c.created_at_ms) // 1000)
    assert r["expires_at"] == c.expires_at_ms // 1000
    assert (r["created_at_ms"], r["expires_at_ms"], r["settled_at_ms"]) == (c.created_at_ms, c.expires_at_ms, None)
    # with the server's milliseconds a client reproduces the live figure at a known instant
    assert r["used_lamports"] == reproduce_used(r, now)


def reproduce_used(r: dict, now_ms: int | None = None) -> int:
    """What a client computes from a status or settle answer alone (docs/api.md "Tiers") and the
    tier's published rate: floor(rate × t / 3,600,000), t the elapsed server ms, while t is below
    the duration; a contract that ran its whole duration used exactly its price (`cost_lamports`)."""
    rate = money.TIERS[r.get("tier") or TIER_OF[r["contract_id"]]].lamports_per_hour
    end = r["settled_at_ms"] if r["settled_at_ms"] is not None else now_ms
    if end >= r["expires_at_ms"]:
        return r["cost_lamports"]
    return rate * max(0, end - r["created_at_ms"]) // 3_600_000


TIER_OF: dict[str, str] = {}


@NO_DEADLINE
@given(ended())
def test_contract_response_ended(pair):
    _, e = pair
    r = views.contract_response(e, e.ended_at_ms + 10**7, REFUND_MIN)
    assert r["booked"] is True
    assert_conforms(r, "Contract")
    assert_sol_exact(r, 3)
    assert r["status"] == e.status and r["used_lamports"] == e.used_lamports
    assert r["refund_available_lamports"] == 0 and r["remaining_seconds"] == 0
    assert r["settled_at"] == e.ended_at_ms // 1000
    assert (r["created_at_ms"], r["expires_at_ms"], r["settled_at_ms"]) == (
        e.created_at_ms,
        e.expires_at_ms,
        e.ended_at_ms,
    )
    assert r["used_lamports"] == reproduce_used(r)
    assert r["refund"]["status"] == e.refund_status and r["refund"]["lamports"] == e.refund_lamports
    assert r["refund"]["tx_signature"] is None


def test_contract_response_refund_failed_carries_reason():
    c = sample_contract("M2", 3600, 1_000_000)
    e = dc.finalize(c, now_ms=T0 + 60_000, refund_min_lamports=5_000)
    from dataclasses import replace

    failed = replace(e, refund_status=dc.REFUND_FAILED, refund_reason="blockhash_expired", refund_tx="tx")
    assert views.contract_response(failed, T0, REFUND_MIN)["refund"] == {
        "status": dc.REFUND_FAILED,
        "lamports": e.refund_lamports,
        "tx_signature": "tx",
        "reason": "blockhash_expired",
    }


# --- settle -------------------------------------------------------------------------------


@NO_DEADLINE
@given(ended())
def test_settle_response(pair):
    _, e = pair
    r = views.settle_response(e)
    assert_conforms(r, "Settlement")
    assert_sol_exact(r, 3)
    assert r["status"] == e.status in (dc.SETTLED, dc.EXPIRED)
    assert r["prepaid_lamports"] == e.received_lamports
    assert r["used_lamports"] == e.used_lamports and r["refund_lamports"] == e.refund_lamports
    assert r["used_lamports"] + r["refund_lamports"] == r["prepaid_lamports"]
    assert r["refund_status"] == e.refund_status and r["tx_signature"] is None
    assert (r["created_at_ms"], r["expires_at_ms"], r["settled_at_ms"]) == (
        e.created_at_ms,
        e.expires_at_ms,
        e.ended_at_ms,
    )
    TIER_OF[e.contract_id] = e.tier  # the settle answer has no tier: the client knows it from its rent
    assert r["used_lamports"] == reproduce_used(r)
    assert r["settled_at"] == e.ended_at_ms // 1000


# --- metrics ------------------------------------------------------------------------------


@NO_DEADLINE
@given(lifecycles(), st.integers(1, 120), st.data())
def test_metrics_response(lc, n, data):
    c = lc.last
    now = data.draw(settle_times(c))
    r = views.metrics_response(c, n, now)
    assert_conforms(r, "MetricsRecorded")
    assert_sol_exact(r, 2)
    assert r["metrics_recorded"] is True and r["samples_recorded"] == n
    assert r["cost_so_far_lamports"] + r["refund_available_lamports"] == c.received_lamports
    assert_hours_display(r["elapsed_hours"], (now - c.created_at_ms) // 1000)


def test_sample_entry_and_device_views():
    row = [T0, Decimal("12.5"), 2048, 0, Decimal("0.25")]
    assert views.sample_view(row) == {
        "timestamp_ms": T0,
        "cpu_percent": Decimal("12.5"),
        "memory_mb": 2048,
        "disk_io_mbps": 0,
        "network_io_mbps": Decimal("0.25"),
    }
    assert_conforms(views.samples_response("CTR-x", [row]), "Samples")

    c = dc.open_contract(
        contract_id="CTR-abcdefghijklmnopqrstuv",
        wallet=WALLET,
        tier="M2",
        device_id="d",
        seconds=3600,
        received_lamports=1_000_000,
        sig="s",
        now_ms=T0 + 999,
    )
    for entry in ledger.payment_postings(c, c.payments[0]):
        v = views.entry_view(entry)
        assert_conforms(v, "Entry")
        assert v["created_at"] == (T0 + 999) // 1000
        assert v["ref"] == "s" and type(v["debit_lamports"]) is int and type(v["credit_lamports"]) is int

    d = _device()
    assert_conforms(views.device_view(d), "Device")


# --- the operator's and the public views, against the document ---------------------------


def _device(**extra):
    return SimpleNamespace(
        device_id="m2-1",
        name="n",
        tier="M2",
        uri="u",
        address="a",
        region="r",
        ram="16GB",
        leases=1,
        capacity=4,
        available=3,
        uptime="99.8%",
        audited=False,
        pubkey=None,
        previous_pubkeys=(),
        **extra,
    )


def _refund(**changes):
    base = {
        "refund_id": "CTR-abcdefghijklmnopqrstuv",
        "wallet": WALLET,
        "status": "FAILED",
        "lamports": 900_000,
        "tx_signature": None,
        "attempt": 2,
        "fee_lamports": None,
        "confirmed_at_ms": None,
        "reason": "blockhash_expired",
    }
    return SimpleNamespace(**{**base, **changes})


def test_pricing_and_books_views_conform():
    from chalicelib.config import Settings
    from chalicelib.services import books

    assert_conforms(views.pricing_response(Settings(treasury=WALLET), list(money.TIERS.values())), "Pricing")
    active = sample_contract()
    ended = dc.finalize(sample_contract("THOR", 7200, 70_000_000), now_ms=T0 + 60_000, refund_min_lamports=5_000)
    entries = list(ledger.payment_postings(active, active.payments[0]))
    page = books.EntriesPage(entries, 1_000_000, 1_000_000, 0, "tok")
    assert_conforms(views.entries_response(page), "EntriesPage")
    assert_conforms(views.entries_response(page, account="revenue"), "EntriesPage")
    ledger_page = books.LedgerPage(
        active=[(active, active.figures(T0 + 1_000))],
        completed=[ended],
        total_active_value=1_000_000,
        total_used=5,
        total_pending_refunds=7,
        next_token=None,
        unbooked=frozenset({ended.contract_id}),
    )
    assert_conforms(views.ledger_response(ledger_page), "LedgerPage")
    stats = books.Stats(
        contracts_by_status={dc.ACTIVE: 3, dc.SETTLED: 1},
        device_count=2,
        slots_leased=3,
        capacity=8,
        refunds_by_status={"QUEUED": 1},
        revenue=10,
        pending_refunds=20,
        active_prepaid=30,
        queues={"refund_queue": {"visible": 0, "in_flight": 1}, "dead_letter_queue": None},
        treasury=WALLET,
        rpc_reachable=True,
        at_ms=T0,
        expired_unbooked=1,
    )
    assert_conforms(views.stats_response(stats), "Stats")


def test_operator_views_conform():
    from chalicelib.api import operators, payments

    seen = operators.admin_device_view(_device(last_seen_ms=T0, key_hash="h"))
    assert_conforms(seen, "AdminDevice")
    assert_conforms(operators.admin_device_view(_device(last_seen_ms=None, key_hash=None)), "AdminDevice")
    assert_conforms(operators.refund_view(_refund()), "AdminRefund")
    assert_conforms(operators.retried_view(_refund()), "RefundRetried")
    assert_conforms(operators.retried_view(_refund(status="QUEUED", reason=None)), "RefundRetried")
    assert_conforms(operators.refund_view(_refund(refund_id="PAY-x", status="CONFIRMED", reason=None)), "AdminRefund")
    pr = SimpleNamespace(payment_signature="sig", refund=_refund(refund_id="PAY-x", status="QUEUED"))
    assert_conforms(payments.payment_refund_response(pr), "PaymentRefund")
    orphan = SimpleNamespace(
        signature="sig",
        kind="orphan",
        lamports=1_000,
        slot=7,
        block_time=None,
        payer=WALLET,
        refund_id=None,
        note="no claim",
    )
    report = SimpleNamespace(
        ok=False,
        mismatches=["orphan payment sig"],
        treasury=WALLET,
        chain_lamports=10,
        chain_slot=8,
        baseline_lamports=0,
        baseline_slot=None,
        baseline_source="first booked transaction",
        ledger_lamports=9,
        unbooked_lamports=1,
        difference_lamports=0,
        orphans=[orphan],
        unbooked=[orphan],
        refunds_checked=1,
        refund_problems=[SimpleNamespace(refund_id="CTR-x", tx_signature=None, problems=("missing",))],
        phantom_refs=[],
        orphan_age_seconds=3600,
        complete=True,
        notes=[],
        signatures_read=3,
        transactions_read=2,
    )
    assert_conforms(operators.reconcile_response(report), "Reconciliation")


# --- the SOL display itself ---------------------------------------------------------------


@given(st.integers(0, EXACT_SOL_DISPLAY_LIMIT - 1 - 16_667))
def test_settle_response_sol_exact_over_the_whole_exact_range(lamports):
    """Up to money.EXACT_SOL_DISPLAY_LIMIT (≈ 8.39 million SOL received), the documented exact range."""
    c = dc.open_contract(
        contract_id="CTR-abcdefghijklmnopqrstuv",
        wallet=WALLET,
        tier="M2",
        device_id="d",
        seconds=60,
        received_lamports=16_667 + lamports,
        sig="s",
        now_ms=T0,
    )
    e = dc.finalize(c, now_ms=T0 + 30_000, refund_min_lamports=5_000)
    assert_sol_exact(views.settle_response(e), 3)
    assert_sol_exact(views.contract_response(c, T0 + 1, REFUND_MIN), 3)


# --- the wire: chalicelib.jsontext, the one writer of response bodies ---------------------

_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**80), 2**80),
    st.text(max_size=8),
    st.decimals(allow_nan=False, allow_infinity=False),
    st.floats(allow_nan=False, allow_infinity=False),
)
_values = st.recursive(
    _scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=5), inner, max_size=4)),
    max_leaves=20,
)


def _exact(x):
    """Numbers compared by exact value (a float by its shortest repr, as the writer writes it)."""
    if isinstance(x, bool) or x is None or isinstance(x, str):
        return x
    if isinstance(x, float):
        return Decimal(repr(x))
    if isinstance(x, (int, Decimal)):
        return Decimal(x)
    if isinstance(x, dict):
        return {k: _exact(v) for k, v in x.items()}
    return [_exact(v) for v in x]


@given(_values)
def test_jsontext_writes_exact_plain_numbers_that_read_back(value):
    text = jsontext.dumps(value)
    assert text.isascii()

    def number(raw: str) -> Decimal:
        assert "e" not in raw.lower(), raw
        return Decimal(raw)

    back = json.loads(text, parse_float=number, parse_int=number)
    assert _exact(back) == _exact(value)


@given(
    st.recursive(
        st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=8)),
        lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=5), inner, max_size=4)),
        max_leaves=20,
    )
)
def test_jsontext_equals_json_dumps_without_fractions(value):
    assert jsontext.dumps(value) == json.dumps(value, separators=(",", ":"))


@pytest.mark.parametrize(
    "value, text",
    [
        (Decimal("2.78E-7"), "0.000000278"),
        (2.78e-07, "0.000000278"),
        (1e-06, "0.000001"),
        (Decimal("2E+3"), "2000"),
        (1e16, "10000000000000000.0"),
        (Decimal("0E-9"), "0.0"),
        (-0.0, "0.0"),
        (Decimal("-1.50"), "-1.50"),
        (0.5, "0.5"),
    ],
)
def test_jsontext_numbers(value, text):
    assert jsontext.dumps(value) == text


@pytest.mark.parametrize(
    "bad", [float("nan"), float("inf"), -float("inf"), Decimal("NaN"), Decimal("Infinity"), Decimal("sNaN")]
)
def test_jsontext_refuses_non_finite(bad):
    with pytest.raises(ValueError):
        jsontext.dumps({"x": [bad]})


@pytest.mark.parametrize("bad", [{1: "a"}, {"a": {1, 2}}, object(), b"bytes"])
def test_jsontext_refuses_what_is_not_json(bad):
    with pytest.raises(TypeError):
        jsontext.dumps(bad)
