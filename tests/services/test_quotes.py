"""Quotes on the fakes: a quote per request with a fresh reference, the price of its terms, the
binding memo, one conditional put; bad terms write nothing."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest

from chalicelib.domain import quotes as q
from chalicelib.domain.errors import ContractNotActive, InvalidRequest, NotFound
from chalicelib.domain.signing import extend_memo, rent_memo


def test_a_rent_quote_prices_its_terms_and_asks_the_treasury_with_a_fresh_reference(w):
    w.db.calls.clear()
    a = w.c.quote_service.rent("ORIN", 1800)
    assert w.db.calls == ["quotes.put_quote"]
    b = w.c.quote_service.rent("ORIN", 1800)
    assert a.quote_id != b.quote_id and a.reference != b.reference
    assert (a.kind, a.tier, a.contract_id, a.seconds, a.lamports) == (q.RENT, "ORIN", None, 1800, 2_000_000)
    assert a.recipient == w.settings.treasury and a.memo == rent_memo("ORIN", 1800)
    assert a.expires_at_ms == w.clock() + 15 * 60 * 1000
    fields = parse_qs(urlsplit(a.url).query)
    assert fields["amount"] == ["0.002"] and fields["reference"] == [a.reference]
    assert w.c.quote_service.get(a.quote_id) == a


def test_an_extension_quote_is_priced_at_the_contracts_rate_and_carries_its_extend_memo(w):
    k = w.rent("M3_ULTRA", 600, 25_000_000)
    quote = w.c.quote_service.extend(k.contract_id, 3600)
    assert (quote.kind, quote.tier, quote.contract_id, quote.lamports) == (
        q.EXTEND,
        "M3_ULTRA",
        k.contract_id,
        25_000_000,
    )
    assert quote.memo == extend_memo(k.contract_id, 3600)


def test_an_extension_of_an_unknown_ended_or_too_long_contract_is_refused_and_writes_nothing(w):
    k = w.rent("M2", 600, 200_000)
    before = w.db.snapshot()
    with pytest.raises(NotFound):
        w.c.quote_service.extend("CTR-nosuchcontract0000", 600)
    with pytest.raises(InvalidRequest):
        w.c.quote_service.extend(k.contract_id, w.settings.max_duration_hours * 3600)
    w.clock.advance(601)
    with pytest.raises(ContractNotActive):
        w.c.quote_service.extend(k.contract_id, 600)
    assert w.db.snapshot() == before


def test_a_quote_expires_on_reads_after_its_expiry(w):
    quote = w.c.quote_service.rent("M2", 600)
    assert w.c.quote_service.get(quote.quote_id).status_at(w.clock()) == q.OPEN
    w.clock.advance(15 * 60)
    assert w.c.quote_service.get(quote.quote_id).status_at(w.clock()) == q.EXPIRED


def test_unknown_quotes_are_not_found(w):
    for qid in ("QTE-nope", "nope", "QTE-" + "x" * 100):
        with pytest.raises(NotFound):
            w.c.quote_service.get(qid)
