"""The quote store (ports.QuoteStore): one suite, run against the fake and the DynamoDB adapter."""

from __future__ import annotations

import itertools
from dataclasses import replace

import pytest

from chalicelib.domain import quotes as q
from chalicelib.domain.errors import Conflict
from chalicelib.domain.storage import shard_of
from tests.contract.conftest import SHARDS
from tests.support.fakes import new_wallet

NOW = 1_764_000_000_000
TTL_MS = 86_400_000
_ids = itertools.count(1)


def quote(expires_in_ms: int = 900_000, **kw) -> q.Quote:
    base = {
        "quote_id": f"QTE-contract{next(_ids):08d}",
        "kind": q.RENT,
        "tier": "M2",
        "contract_id": None,
        "seconds": 1800,
        "lamports": 500_000,
        "recipient": new_wallet(),
        "reference": new_wallet(),
        "created_at_ms": NOW,
        "expires_at_ms": NOW + expires_in_ms,
    }
    return q.Quote(**{**base, **kw})


def test_a_stored_quote_reads_back_as_it_was_and_its_id_cannot_be_taken_twice(store):
    k = quote(kind=q.EXTEND, contract_id="CTR-abcdefghijklmnop", tier="ORIN")
    store.quotes.put_quote(k, TTL_MS)
    assert store.quotes.get_quote(k.quote_id) == k
    before = store.snapshot()
    with pytest.raises(Conflict) as exc:
        store.quotes.put_quote(replace(k, lamports=1), TTL_MS)
    assert exc.value.failed == {"quote"}
    assert store.snapshot() == before
    assert store.quotes.get_quote("QTE-nope") is None


def test_open_quotes_lists_a_shards_unexpired_open_quotes_soonest_first(store):
    ks = [quote(expires_in_ms=ms) for ms in (300_000, 100_000, 200_000, 50_000, 400_000, 10_000, 600_000, 700_000)]
    for k in ks:
        store.quotes.put_quote(k, TTL_MS)
    now = NOW + 60_000  # the 10 s and 50 s quotes have expired
    for shard in range(SHARDS):
        mine = sorted(
            (k for k in ks if shard_of(k.quote_id, SHARDS) == shard and k.expires_at_ms > now),
            key=lambda k: k.expires_at_ms,
        )
        assert store.quotes.open_quotes(shard, now, 100) == mine
        assert store.quotes.open_quotes(shard, now, 1) == mine[:1]


def test_closing_is_once_only_and_a_closed_quote_leaves_the_open_list(store):
    k = quote()
    store.quotes.put_quote(k, TTL_MS)
    paid = replace(k, status=q.PAID, paid_contract_id="CTR-abcdefghijklmnop", tx_signature="5" * 88)
    assert store.quotes.close_quote(paid) is True
    assert store.quotes.get_quote(k.quote_id) == paid
    assert store.quotes.open_quotes(shard_of(k.quote_id, SHARDS), NOW, 100) == []
    before = store.snapshot()
    assert store.quotes.close_quote(replace(k, status=q.REFUSED, reason="late")) is False
    assert store.snapshot() == before
    assert store.quotes.close_quote(replace(quote(), status=q.EXPIRED)) is False  # never stored
    refused = replace(quote(), status=q.REFUSED, tx_signature="4" * 88, reason="insufficient_amount")
    store.quotes.put_quote(replace(refused, status=q.OPEN, tx_signature=None, reason=None), TTL_MS)
    assert store.quotes.close_quote(refused) is True
    assert store.quotes.get_quote(refused.quote_id) == refused
