"""The packed metrics batch (adapters/metrics.py): exact, deterministic, small.

Pure: encodes and decodes bytes, no table (the contract suite runs the same format
through moto and the fake)."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from chalicelib.domain.metering import batch_key, encode_rows, pack_rows, unpack_rows

T0 = 1_764_000_000_000
values = st.one_of(
    st.integers(0, 10**12),
    st.decimals(min_value=0, max_value=10**12, allow_nan=False, allow_infinity=False, places=None),
)
rows = st.lists(st.tuples(st.integers(0, 10**9), values, values, values, values), min_size=1, max_size=120).map(
    lambda rs: sorted([[T0 + d, *vs] for d, *vs in rs], key=lambda r: r[0])
)


@given(rows)
def test_any_batch_reads_back_exactly(batch):
    got = unpack_rows(pack_rows(batch))
    assert got == batch
    # the very decimals that were sent (12.50 stays 12.50, 2E+3 stays 2E+3), timestamps ints
    assert [[str(v) for v in r] for r in got] == [[str(v) for v in r] for r in batch]
    assert all(type(r[0]) is int for r in got)


@given(rows, rows)
def test_the_key_is_the_content(a, b):
    ka, kb = batch_key(a, encode_rows(a)), batch_key(b, encode_rows(b))
    assert ka == batch_key([list(r) for r in a], encode_rows([list(r) for r in a]))  # deterministic
    same = [[str(v) for v in r] for r in a] == [[str(v) for v in r] for r in b]
    assert (ka == kb) is same  # a retry is the same item; other samples are another (64-bit digest)
    assert ka.startswith(f"{a[0][0]:013d}#")


def test_a_steady_reporters_120_samples_pack_far_below_one_kilobyte():
    batch = [[T0 + 500 * i, Decimal("37.5"), 6144, Decimal("12.25"), Decimal("3.5")] for i in range(120)]
    assert len(pack_rows(batch)) < 100


def test_pathological_exponents_cost_bytes_only_in_proportion_to_the_text_sent():
    batch = [[T0, Decimal("1E-60000"), Decimal("1E+12"), 0, Decimal("0.000000000000000000001")]]
    assert len(pack_rows(batch)) < 40 and unpack_rows(pack_rows(batch)) == batch
