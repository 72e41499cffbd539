"""Quotes, pure: the Solana Pay transfer-request URL and a quote's status over time."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest

from chalicelib.domain import quotes as q
from chalicelib.domain.signing import extend_memo, rent_memo


@pytest.mark.parametrize(
    ("lamports", "amount"),
    [(0, "0"), (1, "0.000000001"), (100_000, "0.0001"), (1_000_000_000, "1"), (2_500_000_001, "2.500000001")],
)
def test_amount_is_sol_as_a_plain_decimal_with_a_leading_zero_and_no_exponent(lamports, amount):
    assert q.sol_amount(lamports) == amount


@pytest.mark.parametrize("bad", [-1, True, 1.5, "1"])
def test_amount_refuses_what_is_not_a_non_negative_int(bad):
    with pytest.raises(ValueError):
        q.sol_amount(bad)


def quote(**kw) -> q.Quote:
    base = {
        "quote_id": "QTE-x",
        "kind": q.RENT,
        "tier": "M2",
        "contract_id": None,
        "seconds": 1800,
        "lamports": 500_000,
        "recipient": "Eqa9gTUK9qJGgXfz4sESv7Qg6L9eB57maFPwGCWgzNn7",
        "reference": "9xQeWvG816bUx9EPjHmaT23yvVM2ZWbrrpZb9PusVFin",
        "created_at_ms": 1_000,
        "expires_at_ms": 901_000,
    }
    return q.Quote(**{**base, **kw})


def test_url_is_a_transfer_request_whose_fields_decode_back_exactly():
    k = quote()
    parts = urlsplit(k.url)
    assert parts.scheme == "solana" and parts.path == k.recipient
    fields = parse_qs(parts.query, strict_parsing=True)
    assert fields == {
        "amount": ["0.0005"],
        "reference": [k.reference],
        "label": ["SI64"],
        "message": ["SI64 M2 rental, 0.5 h"],
        "memo": [rent_memo("M2", 1800)],
    }
    assert " " not in k.url and "+" not in k.url  # spaces are %20: URLSearchParams and unquote agree
    assert "si64%3Arent%3AM2%3A1800" in k.url


def test_an_extension_quote_carries_the_extend_memo_of_its_contract():
    k = quote(kind=q.EXTEND, contract_id="CTR-abcdefghijklmnop", seconds=3600)
    assert k.memo == extend_memo("CTR-abcdefghijklmnop", 3600)
    assert parse_qs(urlsplit(k.url).query)["memo"] == [k.memo]


def test_an_open_quote_expires_at_its_expiry_and_a_final_status_stays():
    k = quote()
    assert k.status_at(900_999) == q.OPEN
    assert k.status_at(901_000) == q.EXPIRED
    assert quote(status=q.PAID).status_at(10**12) == q.PAID
    assert quote(status=q.REFUSED).status_at(10**12) == q.REFUSED
