"""ClaimStore records of the edge (ADR 0009): Idempotency-Key records taken before the request
runs, and the fleet-wide rate-limit windows; the fake and the DynamoDB adapter alike."""

from __future__ import annotations

import threading

import pytest

from chalicelib.domain.errors import Unavailable
from chalicelib.domain.records import Replay
from chalicelib.domain.storage import IDEMPOTENCY_TTL_MS

NOW = 1_764_000_000_000
LEASE = 60_000
FIRST = Replay("hash-a", 201, '{"a":1}')
IN_PROGRESS_A = Replay("hash-a", 0, "", in_progress=True)


# ---------------------------------------------------------------- idempotency


def test_a_key_is_taken_once_and_a_duplicate_sees_it_in_progress(store):
    assert store.claims.get_replay("k", NOW) is None
    assert store.claims.begin_replay("k", "hash-a", NOW, LEASE) is None
    assert store.claims.get_replay("k", NOW + 1) == IN_PROGRESS_A
    before = store.snapshot()
    assert store.claims.begin_replay("k", "hash-a", NOW + 1, LEASE) == IN_PROGRESS_A
    assert store.claims.begin_replay("k", "hash-b", NOW + 1, LEASE) == IN_PROGRESS_A  # the caller sees the mismatch
    assert store.snapshot() == before  # a refused begin writes nothing
    assert store.claims.get_replay("other", NOW) is None


def test_the_finished_answer_is_kept_24_h_then_the_key_is_free(store):
    store.claims.begin_replay("k", "hash-a", NOW, LEASE)
    assert store.claims.finish_replay("k", FIRST, NOW, NOW + 5) is True
    assert store.claims.get_replay("k", NOW + 6) == FIRST
    end = NOW + 5 + IDEMPOTENCY_TTL_MS
    assert store.claims.begin_replay("k", "hash-b", end - 1, LEASE) == FIRST
    assert store.claims.get_replay("k", end) is None  # expired: filtered although TTL has not run
    assert store.claims.begin_replay("k", "hash-b", end, LEASE) is None
    assert store.claims.get_replay("k", end) == Replay("hash-b", 0, "", in_progress=True)


def test_release_frees_the_key_and_only_the_holder_can_release_or_finish(store):
    store.claims.begin_replay("k", "hash-a", NOW, LEASE)
    store.claims.release_replay("k", NOW - 1)  # not ours: nothing happens
    assert store.claims.finish_replay("k", FIRST, NOW - 1, NOW + 1) is False
    assert store.claims.get_replay("k", NOW + 1) == IN_PROGRESS_A
    store.claims.release_replay("k", NOW)
    assert store.claims.get_replay("k", NOW + 1) is None
    assert store.claims.finish_replay("k", FIRST, NOW, NOW + 2) is False  # released: never resurrected
    assert store.claims.get_replay("k", NOW + 2) is None
    assert store.claims.begin_replay("k", "hash-a", NOW + 3, LEASE) is None


def test_a_stale_in_progress_record_may_be_taken_over_and_the_old_holder_loses_it(store):
    store.claims.begin_replay("k", "hash-a", NOW, LEASE)
    assert store.claims.begin_replay("k", "hash-a", NOW + LEASE - 1, LEASE) == IN_PROGRESS_A
    taken_at = NOW + LEASE
    assert store.claims.begin_replay("k", "hash-a", taken_at, LEASE) is None  # the crashed holder's lease ran out
    assert store.claims.finish_replay("k", Replay("hash-a", 200, "{}"), NOW, taken_at + 1) is False
    store.claims.release_replay("k", NOW)
    assert store.claims.get_replay("k", taken_at + 1) == IN_PROGRESS_A
    assert store.claims.finish_replay("k", FIRST, taken_at, taken_at + 2) is True
    assert store.claims.get_replay("k", taken_at + 3) == FIRST


def test_concurrent_begins_take_a_key_exactly_once():
    """Ten threads race for one key on the fake (in-process moto is not thread-safe; the adapter's
    race is shown over HTTP on the local stack, tests/e2e/test_idempotency_http.py)."""
    from tests.support.fakes import FakeDatabase

    claims = FakeDatabase().ports()["claims"]
    barrier, results = threading.Barrier(10), []

    def go():
        barrier.wait()
        results.append(claims.begin_replay("k", "hash-a", NOW, LEASE))

    threads = [threading.Thread(target=go) for _ in range(10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results.count(None) == 1 and results.count(IN_PROGRESS_A) == 9


# ---------------------------------------------------------------- rate-limit windows


def test_a_window_counts_up_to_its_limit_then_refuses_without_counting(store):
    counts = [store.claims.count_request("ip:203.0.113.9", NOW, 10_000, 3) for _ in range(5)]
    assert counts == [1, 2, 3, None, None]
    before = store.snapshot()
    assert store.claims.count_request("ip:203.0.113.9", NOW, 10_000, 3) is None
    assert store.snapshot() == before


def test_windows_and_subjects_are_counted_apart(store):
    assert store.claims.count_request("ip:203.0.113.9", NOW, 10_000, 1) == 1
    assert store.claims.count_request("ip:203.0.113.9", NOW, 10_000, 1) is None
    assert store.claims.count_request("ip:203.0.113.9", NOW + 10_000, 10_000, 1) == 1  # the next window
    assert store.claims.count_request("ip:198.51.100.7", NOW, 10_000, 1) == 1  # another address
    assert store.claims.count_request("dev:abc", NOW, 10_000, 1) == 1
    # a raised limit (a redeploy) counts on from where the window is
    assert store.claims.count_request("ip:203.0.113.9", NOW, 10_000, 5) == 2


def test_a_window_item_does_not_touch_payment_claims_or_replays(store):
    store.claims.count_request("ip:203.0.113.9", NOW, 10_000, 5)
    assert store.claims.get_replay("ip:203.0.113.9", NOW) is None
    assert store.claims.get_claim("ip:203.0.113.9", "y") is None


def test_an_outage_of_the_fake_is_unavailable_for_every_edge_record():
    """The fake's outage hook covers the new methods (the adapter's outage: every route of
    tests/integration/test_outage.py, the limiter failing open on /api/pricing)."""
    from tests.support.fakes import FakeDatabase

    claims = FakeDatabase().ports()["claims"]
    claims.down = True
    for call in (
        lambda: claims.count_request("ip:x", NOW, 10_000, 5),
        lambda: claims.begin_replay("k", "h", NOW, LEASE),
        lambda: claims.finish_replay("k", FIRST, NOW, NOW),
        lambda: claims.release_replay("k", NOW),
    ):
        with pytest.raises(Unavailable):
            call()
