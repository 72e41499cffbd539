"""MetricsStore operations of device-signed receipts, run against the fake and the DynamoDB
adapter alike: a receipt stored with its batch under its seq, read back exactly (alone and in the
report's BatchGetItem), a second batch of an accepted seq refused and writing nothing, and every
batch's server time listed for the coverage rebuild."""

from __future__ import annotations

from decimal import Decimal

import pytest

from chalicelib.domain.errors import Conflict
from chalicelib.domain.usage_receipts import Receipt, StoredReceipt
from tests.contract.test_storage import NOW, new_contract, rent, spec

PK = "4Nd1mYQQGZ7rM6J9xJ2xY3nNf4Z4VZg8bUb6Qm3fPDgE"


def stored(seq: int, at_ms: int, prev: str = "0" * 64) -> StoredReceipt:
    r = Receipt(seq, NOW + seq * 1000, NOW + seq * 1000 + 500, f"{seq:064x}", prev, "5" * 88)
    return StoredReceipt(r, PK, at_ms)


def rows(seq: int) -> list[list]:
    return [
        [NOW + seq * 1000, Decimal("41.5"), 2048, Decimal("0.30000000000000004"), Decimal("1E-7")],
        [NOW + seq * 1000 + 500, 1, 2, 3, 4],
    ]


@pytest.fixture
def leased(store):
    """Device dev-1 (key hash "k1") leasing one contract."""
    store.devices.upsert(spec("dev-1"), 2)
    store.devices.set_key_hash("dev-1", "k1")
    return store, rent(store, new_contract())


def test_a_receipt_is_stored_with_its_batch_and_read_back_exactly(leased):
    s, c = leased
    assert s.metrics.receipt(c.contract_id, 0) is None
    s.metrics.put_batch(c.contract_id, "dev-1", rows(0), NOW + 10, stored(0, NOW + 10))
    assert s.metrics.receipt(c.contract_id, 0) == stored(0, NOW + 10)
    assert s.metrics.latest(c.contract_id) == rows(0)  # the samples as any batch's
    device, contract, prev = s.metrics.report_context("dev-1", c.contract_id, 0)
    assert (device, contract, prev) == (s.devices.get("dev-1"), s.contracts.get(c.contract_id), stored(0, NOW + 10))
    assert s.metrics.report_context("dev-1", c.contract_id, 1)[2] is None
    assert s.metrics.report_context("dev-1", None, 0) == (s.devices.get("dev-1"), None, None)


def test_a_second_batch_of_an_accepted_seq_is_a_batch_conflict_and_writes_nothing(leased):
    s, c = leased
    s.metrics.put_batch(c.contract_id, "dev-1", rows(0), NOW + 10, stored(0, NOW + 10))
    snap = s.snapshot()
    for other_rows, other in ((rows(0), stored(0, NOW + 99)), (rows(5), stored(0, NOW + 10, prev="1" * 64))):
        with pytest.raises(Conflict) as exc:
            s.metrics.put_batch(c.contract_id, "dev-1", other_rows, NOW + 99, other)
        assert exc.value.failed == {"batch"}
    assert s.snapshot() == snap
    assert s.metrics.receipt(c.contract_id, 0) == stored(0, NOW + 10)


def test_batches_lists_every_server_time_and_the_receipts_in_seq_order(leased):
    s, c = leased
    other = rent(s, new_contract())
    s.metrics.put_batch(c.contract_id, "dev-1", rows(0), NOW + 5)  # an unsigned batch
    for seq in (0, 1, 2, 10):
        s.metrics.put_batch(c.contract_id, "dev-1", rows(seq + 1), NOW + 100 + seq, stored(seq, NOW + 100 + seq))
    s.metrics.put_batch(other.contract_id, "dev-1", rows(0), NOW + 7)
    times, receipts = s.metrics.batches(c.contract_id)
    assert sorted(times) == [NOW + 5, NOW + 100, NOW + 101, NOW + 102, NOW + 110]
    assert receipts == [stored(s, NOW + 100 + s) for s in (0, 1, 2, 10)]
    assert s.metrics.batches(other.contract_id) == ([NOW + 7], [])
    assert s.metrics.batches("CTR-nothing-here-at-all-0000") == ([], [])
