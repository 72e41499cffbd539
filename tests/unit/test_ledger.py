"""Properties of the double-entry postings (chalicelib/domain/ledger.py).

For any rent → extend* → settle/expire sequence, the postings the services write
(payment_postings(after, payment) per payment, settlement_postings(ended)) balance,
close the escrow, book usage as revenue and the rest as refunds_payable or
retained_dust. Pure logic: no sockets, no AWS.
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import replace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chalicelib.domain import contracts as dc
from chalicelib.domain import ledger
from chalicelib.domain.ledger import (
    REFUNDS_PAYABLE,
    RETAINED_DUST,
    REVENUE,
    TREASURY,
    balance,
    escrow,
    payment_postings,
    settlement_postings,
)
from tests.unit.test_contracts import T0, WALLET, lifecycles, refund_mins, sample_contract, settle_times

# docs/data-model.md: entry_id = {contract_id}#{version:06d}#{event}#{leg}
ID_RE = re.compile(r"(?P<cid>CTR-[A-Za-z0-9_-]+)#(?P<version>\d{6})#(?P<kind>[a-z]+)#(?P<leg>\d)")


def postings(states, ended) -> list:
    """What the services write, in the order they write it (rentals.rent/extend/settle)."""
    out = []
    for c in states:  # each state is the contract right after its newest payment
        out += payment_postings(c, c.payments[-1])
    return out + settlement_postings(ended)


@st.composite
def settled_books(draw):
    lc = draw(lifecycles())
    c = lc.last
    # settled at or after its newest payment (extensions happen while it is live)
    now = max(draw(settle_times(c)), c.payments[-1].at_ms)
    ended = dc.finalize(c, now_ms=now, refund_min_lamports=draw(refund_mins))
    return lc, ended, postings(lc.states, ended)


def credits(entries, account):
    return sum(e.credit_lamports for e in entries if e.account == account)


def debits(entries, account):
    return sum(e.debit_lamports for e in entries if e.account == account)


@given(settled_books())
def test_books_balance_and_close_the_escrow(books):
    lc, ended, entries = books
    cid = ended.contract_id
    assert balance(entries) == 0
    assert sum(e.debit_lamports for e in entries) == sum(e.credit_lamports for e in entries)
    assert balance(entries, escrow(cid)) == 0
    assert debits(entries, TREASURY) == ended.received_lamports and credits(entries, TREASURY) == 0
    assert credits(entries, escrow(cid)) == ended.received_lamports == debits(entries, escrow(cid))
    assert credits(entries, REVENUE) == ended.used_lamports and debits(entries, REVENUE) == 0
    owed, other = (
        (REFUNDS_PAYABLE, RETAINED_DUST)
        if ended.refund_status == dc.REFUND_QUEUED
        else (RETAINED_DUST, REFUNDS_PAYABLE)
    )
    assert credits(entries, owed) == ended.refund_lamports
    assert [e for e in entries if e.account == other] == []
    assert {e.account for e in entries} <= {TREASURY, escrow(cid), REVENUE, REFUNDS_PAYABLE, RETAINED_DUST}
    assert all(e.contract_id == cid for e in entries)


@given(settled_books())
def test_every_event_balances_on_its_own(books):
    _, _, entries = books
    by_event = defaultdict(list)
    for e in entries:
        m = ID_RE.fullmatch(e.entry_id)
        by_event[(m["version"], m["kind"])].append(e)
    for legs in by_event.values():
        assert balance(legs) == 0
        assert len({(e.kind, e.created_at_ms, e.ref) for e in legs}) == 1


@given(settled_books())
def test_no_zero_or_negative_or_two_sided_entries(books):
    _, _, entries = books
    for e in entries:
        assert isinstance(e.debit_lamports, int) and isinstance(e.credit_lamports, int)
        assert e.debit_lamports >= 0 and e.credit_lamports >= 0
        assert (e.debit_lamports == 0) != (e.credit_lamports == 0), e


@given(settled_books())
def test_entry_ids_unique_well_formed_and_oldest_first(books):
    lc, ended, entries = books
    ids = [e.entry_id for e in entries]
    assert len(set(ids)) == len(ids)
    for e in entries:
        m = ID_RE.fullmatch(e.entry_id)
        assert m and m["cid"] == ended.contract_id and m["kind"] == e.kind
    versions = [int(ID_RE.fullmatch(i)["version"]) for i in ids]
    assert versions == sorted(versions)
    # storage sorts by entry_id (the table's sort key): that order is the order of events
    assert sorted(ids) == ids
    assert [e.created_at_ms for e in sorted(entries, key=lambda e: e.entry_id)] == sorted(
        e.created_at_ms for e in entries
    )
    # kinds follow the life of the contract
    kinds = [e.kind for e in entries]
    assert kinds[0] == "rent" and kinds[-1] == ended.status.lower()
    assert set(kinds[1:-1]) <= {"rent", "extend", ended.status.lower()}
    # payment postings carry the signature, settlement postings none
    assert {e.ref for e in entries if e.kind in ("rent", "extend")} == {p.sig for p in ended.payments}
    assert all(e.ref is None for e in entries if e.kind in ("settled", "expired"))


@given(settled_books())
def test_entry_ids_are_deterministic(books):
    lc, ended, entries = books
    again = postings([replace(c) for c in lc.states], replace(ended))
    assert again == entries  # same ids, accounts, amounts, times, refs: a retried write is a no-op


@given(settled_books())
def test_payment_postings(books):
    lc, _, _ = books
    for c in lc.states:
        p = c.payments[-1]
        legs = payment_postings(c, p)
        assert [(e.account, e.debit_lamports, e.credit_lamports) for e in legs] == [
            (TREASURY, p.received_lamports, 0),
            (escrow(c.contract_id), 0, p.received_lamports),
        ]
        assert all(e.kind == p.kind and e.created_at_ms == p.at_ms and e.ref == p.sig for e in legs)
        assert [e.entry_id for e in legs] == [f"{c.contract_id}#{c.version:06d}#{p.kind}#{i}" for i in (0, 1)]


def test_settlement_of_a_fully_used_contract_has_no_refund_leg():
    c = sample_contract("M2", 3600, 1_000_000)
    e = dc.finalize(c, now_ms=T0 + 3_600_000, refund_min_lamports=5_000)
    legs = settlement_postings(e)
    assert [(x.account, x.debit_lamports, x.credit_lamports) for x in legs] == [
        (escrow(c.contract_id), 1_000_000, 0),
        (REVENUE, 0, 1_000_000),
    ]
    assert [x.entry_id for x in legs] == [
        "CTR-abcdefghijklmnopqrstuv#000002#expired#0",
        "CTR-abcdefghijklmnopqrstuv#000002#expired#1",
    ]


def test_settlement_at_the_start_books_no_revenue():
    c = sample_contract("M2", 3600, 1_000_000)
    e = dc.finalize(c, now_ms=T0, refund_min_lamports=5_000)
    legs = settlement_postings(e)
    assert [(x.account, x.debit_lamports, x.credit_lamports, x.entry_id[-10:]) for x in legs] == [
        (escrow(c.contract_id), 1_000_000, 0, "#settled#0"),
        (REFUNDS_PAYABLE, 0, 1_000_000, "#settled#2"),
    ]


def test_dust_goes_to_retained_dust():
    c = sample_contract("M2", 3600, 1_004_999)
    e = dc.finalize(c, now_ms=T0 + 10**9, refund_min_lamports=5_000)
    assert e.refund_status == dc.REFUND_DUST
    assert [(x.account, x.credit_lamports) for x in settlement_postings(e) if x.credit_lamports] == [
        (REVENUE, 1_000_000),
        (RETAINED_DUST, 4_999),
    ]


def test_balance_of_one_account_and_of_nothing():
    assert balance([]) == 0
    e = [
        ledger.Entry("x#0001#rent#0", "x", TREASURY, 7, 0, "rent", 1, "s"),
        ledger.Entry("x#0001#rent#1", "x", escrow("x"), 0, 7, "rent", 1, "s"),
    ]
    assert balance(e, TREASURY) == 7 and balance(e, escrow("x")) == -7 and balance(e) == 0
    assert balance(e, REVENUE) == 0


@pytest.mark.parametrize("early, late", [(9, 10), (999, 1_000), (9_999, 10_000), (99_999, 100_000), (43_201, 43_202)])
def test_entry_ids_sort_oldest_first_at_any_reachable_version(early, late):
    """Regression (fixed in e8e3fb6): with 4-digit padding, version 10,000 sorted before 9,999.
    720 h of one-minute extensions is 43,200 versions, plus a few for the refund."""
    c = dc.open_contract(
        contract_id="CTR-abcdefghijklmnopqrstuv",
        wallet=WALLET,
        tier="M2",
        device_id="d",
        seconds=60,
        received_lamports=10**9,
        sig="s",
        now_ms=T0,
    )
    a = payment_postings(replace(c, version=early), dc.Payment("a", "extend", 60, 16_667, 16_667, T0 + 1))
    b = payment_postings(replace(c, version=late), dc.Payment("b", "extend", 60, 16_667, 16_667, T0 + 2))
    assert a[0].entry_id < a[1].entry_id < b[0].entry_id < b[1].entry_id
