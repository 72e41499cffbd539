"""The samples hash a server computes is the device's (docs/api.md "Device-signed receipts"):
the server parses numbers as exact Decimals, a device's JSON library holds floats; a receipt
that the device signed over its own floats must check out on the server for any finite float."""

from __future__ import annotations

import json

from hypothesis import given
from hypothesis import strategies as st

from chalicelib.api.schemas import parse_json
from chalicelib.domain.usage_receipts import as_sent, signed_batch
from si64_protocol.receipts import samples_sha256

floats = st.floats(allow_nan=False, allow_infinity=False)
values = st.one_of(floats, st.integers(min_value=-(10**15), max_value=10**15))
samples = st.lists(
    st.fixed_dictionaries(
        {"timestamp_ms": st.integers(min_value=1, max_value=10**13), "cpu_percent": values, "memory_mb": values},
        optional={"gpu": st.lists(values, max_size=3), "note": st.text(max_size=5)},
    ),
    min_size=1,
    max_size=5,
)


@given(samples)
def test_the_hash_of_the_parsed_samples_is_the_hash_the_device_signed(sent):
    body = parse_json(json.dumps({"samples": sent}).encode())  # what the server reads off the wire
    assert samples_sha256(as_sent(body["samples"])) == samples_sha256(sent)


def test_tricky_floats_and_a_tampered_digit():
    sent = [{"timestamp_ms": 1, "a": 0.1 + 0.2, "b": 1e-7, "c": 1e16, "d": 123456789.12345679, "e": -0.0, "f": 5e-324}]
    body = parse_json(json.dumps({"samples": sent}).encode())
    assert samples_sha256(as_sent(body["samples"])) == samples_sha256(sent)
    tampered = parse_json(json.dumps({"samples": sent}).replace("1e-07", "1.1e-07").encode())
    assert samples_sha256(as_sent(tampered["samples"])) != samples_sha256(sent)


def test_signed_batch_is_none_without_a_receipt_and_hashes_the_samples_as_sent():
    sent = [{"timestamp_ms": 5, "cpu_percent": 41.5}]
    receipt = {
        "seq": 0,
        "from_ms": 5,
        "to_ms": 5,
        "samples_sha256": "a" * 64,
        "prev_sha256": "0" * 64,
        "signature": "x",
    }
    assert signed_batch(parse_json(json.dumps({"samples": sent}).encode())) is None
    got = signed_batch(parse_json(json.dumps({"samples": sent, "receipt": receipt}).encode()))
    assert got is not None and got.samples_sha256 == samples_sha256(sent) and got.receipt.seq == 0


def test_the_edge_reads_the_receipt_seq_of_a_body_as_a_hint_only():
    from chalicelib.api.endpoint import receipt_seq

    def raw(receipt) -> bytes:
        return json.dumps({"samples": [], "receipt": receipt}).encode()

    assert receipt_seq(raw({"seq": 7})) == 7
    for hint_none in ({"seq": 0}, {"seq": True}, {"seq": "3"}, {"seq": 10**10}, {"seq": -1}, {}, "x", None):
        assert receipt_seq(raw(hint_none)) is None, hint_none
    assert receipt_seq(b'{"receipt": {"seq": 2}') is None  # not JSON: the handler answers 400
    assert receipt_seq(b'{"samples": []}') is None
