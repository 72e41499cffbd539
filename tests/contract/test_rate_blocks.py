"""Rate-limit slots reserved in blocks (docs/adr/0020): `ClaimStore.count_request(..., n)` adds n
to a window's count in one conditional write unless that would pass the limit; the fake and the
DynamoDB adapter alike."""

from __future__ import annotations

import threading

import pytest

NOW = 1_764_000_000_000
SUBJECT = "ip:203.0.113.9"


def reserve(store, n: int, limit: int = 10, start: int = NOW) -> int | None:
    return store.claims.count_request(SUBJECT, start, 10_000, limit, n)


def test_a_block_returns_the_new_count(store):
    assert reserve(store, 5) == 5
    assert reserve(store, 4) == 9
    assert reserve(store, 1) == 10  # the last slot still goes, one at a time


def test_a_block_that_does_not_fit_is_refused_and_counts_nothing(store):
    assert reserve(store, 7) == 7
    before = store.snapshot()
    assert reserve(store, 4) is None  # 11 > 10
    assert store.snapshot() == before
    assert reserve(store, 3) == 10  # exactly to the limit
    assert reserve(store, 1) is None
    assert store.snapshot() != before


def test_a_block_larger_than_the_limit_never_fits_even_on_a_new_window(store):
    before = store.snapshot()
    assert reserve(store, 11) is None
    assert store.snapshot() == before
    assert reserve(store, 10) == 10


def test_windows_count_their_blocks_apart(store):
    assert reserve(store, 10) == 10
    assert reserve(store, 10, start=NOW + 10_000) == 10
    assert reserve(store, 2, limit=12) == 12  # a raised limit counts on from where the window is


def test_a_block_of_nothing_is_a_bug(store):
    with pytest.raises(ValueError):
        reserve(store, 0)


def test_concurrent_blocks_never_pass_the_limit(store):
    granted: list[int] = []
    lock = threading.Lock()

    def run(n: int) -> None:
        for _ in range(12):
            if reserve(store, n, limit=100) is not None:
                with lock:
                    granted.append(n)

    threads = [threading.Thread(target=run, args=(n,)) for n in (1, 2, 3, 5, 7, 9)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(granted) <= 100
    final = reserve(store, 1, limit=100)
    assert final is None or final == sum(granted) + 1  # every granted slot counted, nothing more
    assert sum(granted) >= 100 - 9  # refused only when the block no longer fit
