"""adapters/contracts.py: a contract read back equals the one written, every payment included."""

from __future__ import annotations

import secrets
from dataclasses import replace

import pytest

from chalicelib.adapters import contracts as ca
from chalicelib.adapters.models import ContractItem, PaymentMap
from chalicelib.domain import contracts as dc
from chalicelib.domain import keys

T0 = 1_764_000_000_000


def sig() -> str:
    return keys.encode(secrets.token_bytes(64))


def extended(n: int) -> dc.Contract:
    c = dc.open_contract(
        contract_id=dc.new_contract_id(),
        wallet=keys.encode(bytes(range(32))),
        tier="ORIN",
        device_id="device-orin-001",
        seconds=3600,
        received_lamports=4_100_000,
        sig=sig(),
        now_ms=T0,
    )
    for i in range(n):
        c = dc.extend(
            c,
            seconds=60 + i,
            received_lamports=dc.extension_price(c, 60 + i) + i,
            sig=sig(),
            now_ms=T0 + 1000 * (i + 1),
            max_seconds=720 * 3600,
        )
    return c


def round_trip(c: dc.Contract) -> dc.Contract:
    item = ca.to_item(c, shards=4)
    wire = item.serialize()  # what DynamoDB stores
    back = ContractItem.from_raw_data(wire)
    return ca.to_domain(back)


@pytest.mark.parametrize("n", [0, 1, 2, dc.MAX_EXTENSIONS])
def test_every_payment_survives_a_round_trip(n):
    c = extended(n)
    assert len(c.payments) == n + 1
    assert round_trip(c) == c


def test_settled_contract_round_trip_and_size():
    c = extended(dc.MAX_EXTENSIONS)
    ended = dc.finalize(c, now_ms=T0 + 10**6, refund_min_lamports=5_000)
    assert round_trip(ended) == ended
    packed = ca.pack_payments(ended.payments)
    assert len(packed) == 1 + 93 * (dc.MAX_EXTENSIONS + 1)  # ~9.4 KB at the maximum


def test_items_written_before_packing_still_read():
    c = extended(0)
    item = ca.to_item(c, shards=4)
    p = c.payments[0]
    item.payments_packed = None
    item.payments = [
        PaymentMap(
            sig=p.sig,
            kind=p.kind,
            seconds=p.seconds,
            price_lamports=p.price_lamports,
            received_lamports=p.received_lamports,
            at_ms=p.at_ms,
        )
    ]
    assert ca.to_domain(ContractItem.from_raw_data(item.serialize())) == c


@pytest.mark.parametrize(
    "bad",
    [
        {"sig": "s"},
        {"sig": keys.encode(b"\x01" * 32)},
        {"sig": sig() + " "},
        {"kind": "refund"},
        {"seconds": -1},
        {"received_lamports": 2**64},
    ],
)
def test_a_payment_that_does_not_fit_is_refused_not_corrupted(bad):
    c = extended(1)
    p = replace(c.payments[-1], **bad)
    with pytest.raises(ValueError):
        ca.pack_payments(c.payments[:-1] + (p,))


def test_unpack_refuses_garbage():
    for data in (b"", b"\x02", b"\x01" + b"\x00" * 92):
        with pytest.raises(ValueError):
            ca.unpack_payments(data)
