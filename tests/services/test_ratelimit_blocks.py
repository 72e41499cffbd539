"""The fleet-wide rate limit reserves its slots in blocks (docs/adr/0020), on the fake claims
table with a fake clock: exact totals across instances, writes counted, slow-start sizes, the
fallback to one slot, fresh windows, failing open, and threads of one instance."""

from __future__ import annotations

import logging
import random
import threading
import time

import pytest

from chalicelib.domain.errors import Unavailable
from chalicelib.domain.storage import rate_key
from chalicelib.services import ratelimit
from chalicelib.services.ratelimit import RateLimit, RateLimited, block_cap
from tests.support.fakes import FakeClock, FakeDatabase
from tests.support.network import no_network  # noqa: F401  (autouse: sockets blocked)

SUBJECT = "ip:203.0.113.9"


class Recorder:
    """The fake ClaimStore, with each reservation's (n, answer) kept; `pause` s inside each call
    (outside the fake's lock) lets threads overlap the way they would on I/O."""

    def __init__(self, claims, pause: float = 0.0):
        self.claims, self.pause = claims, pause
        self.asked: list[tuple[int, int | None]] = []
        self._lock = threading.Lock()

    def count_request(self, subject, window_start_ms, window_ms, limit, n=1):
        if self.pause:
            time.sleep(self.pause)
        got = self.claims.count_request(subject, window_start_ms, window_ms, limit, n)
        with self._lock:
            self.asked.append((n, got))
        return got


@pytest.fixture
def world():
    db = FakeDatabase()
    clock = FakeClock()
    assert clock.now_ms % 10_000 == 0  # each test starts at a window's first millisecond
    claims = Recorder(db.ports()["claims"])
    return db, clock, claims


def instance(claims, clock) -> RateLimit:
    """One function instance: its own memory; both its windows run on the fake clock."""
    return RateLimit(claims=claims, clock=clock, monotonic=lambda: clock() / 1000)


def admit(rl: RateLimit, limit: int = 150, subject: str = SUBJECT) -> bool:
    try:
        rl.check(subject, limit, 10)
    except RateLimited:
        return False
    return True


def hits(db, clock, subject: str = SUBJECT) -> int:
    start = clock() - clock() % 10_000
    return int(db.tables["claims"].get(rate_key(subject, start), {}).get("hits", 0))


def test_the_block_cap_follows_the_limit():
    assert [block_cap(x) for x in (10, 31, 32, 150, 200, 1_024, 10**6)] == [1, 1, 2, 9, 12, 64, 64]


def test_one_instance_admits_exactly_the_limit_in_19_writes_with_slow_start_blocks(world):
    db, clock, claims = world
    rl = instance(claims, clock)
    got = [admit(rl) for _ in range(160)]
    assert got == [True] * 150 + [False] * 10
    sizes = [n for n, _ in claims.asked]
    assert sizes == [1, 2, 4, 8] + [9] * 15  # 15 + 135: the last block ends exactly at the limit
    assert all(c is not None for _, c in claims.asked)  # never refused: it knew the count, no write wasted
    assert hits(db, clock) == 150


def test_the_devices_200_take_12_at_most(world):
    db, clock, claims = world
    rl = instance(claims, clock)
    assert sum(admit(rl, 200) for _ in range(210)) == 200
    sizes = [n for n, _ in claims.asked]
    assert max(sizes) == 12 and sizes[:5] == [1, 2, 4, 8, 12] and len(sizes) <= 21
    assert hits(db, clock) == 200


def test_a_quiet_client_strands_no_more_than_it_used(world):
    db, clock, claims = world
    rl = instance(claims, clock)
    reserved = []
    for used in (1, 2, 3, 4, 7):
        assert all(admit(rl) for _ in range(used))
        reserved.append(hits(db, clock))
        clock.advance(10)  # each window starts its own slow start: 1, 2, 4, ...
    assert reserved == [1, 3, 3, 7, 7]  # never more than 2 x used - 1
    assert [n for n, _ in claims.asked] == [1, 1, 2, 1, 2, 1, 2, 4, 1, 2, 4]


@pytest.mark.parametrize("k", [2, 3, 5])
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_instances_interleaved_never_admit_more_than_the_limit(world, k, seed):
    db, clock, claims = world
    fleet = [instance(claims, clock) for _ in range(k)]
    rnd = random.Random(seed)
    admitted = sum(admit(rnd.choice(fleet)) for _ in range(600))
    cap = block_cap(150)
    assert 150 - (k - 1) * (cap - 1) <= admitted <= 150
    assert hits(db, clock) == 150  # every slot reserved; the stranded ones stay counted
    writes = len(claims.asked)
    assert writes < 600 // 4, writes  # blocks, not one write per request


def test_the_slots_another_instance_holds_are_refused_here_at_most_k_minus_1_times_cap_minus_1(world):
    db, clock, claims = world
    a, b = instance(claims, clock), instance(claims, clock)
    assert all(admit(a) for _ in range(1 + 2 + 4 + 8 + 9 + 1))  # a holds 8 of its last block of 9
    assert all(admit(b) for _ in range(150 - 25 - 8))
    assert [admit(b) for _ in range(10)] == [False] * 10  # the table is full: a's 8 stay a's
    assert hits(db, clock) == 150
    assert [admit(a) for _ in range(10)] == [True] * 8 + [False] * 2


def test_a_refused_block_falls_back_to_one_slot_then_hands_out_the_last_one_at_a_time(world):
    db, clock, claims = world
    rl = instance(claims, clock)
    assert all(admit(rl) for _ in range(7))  # blocks 1, 2, 4: all spent, count 7
    start = clock() - clock() % 10_000
    assert claims.claims.count_request(SUBJECT, start, 10_000, 150, 140) == 147  # other instances
    claims.asked.clear()
    assert [admit(rl) for _ in range(5)] == [True, True, True, False, False]
    assert claims.asked == [(8, None), (1, 148), (1, 149), (1, 150)]  # then full: no write
    assert hits(db, clock) == 150


def test_refused_at_one_slot_the_window_is_full_here_until_it_ends(world):
    db, clock, claims = world
    rl = instance(claims, clock)
    start = clock() - clock() % 10_000
    claims.claims.count_request(SUBJECT, start, 10_000, 150, 150)
    with pytest.raises(RateLimited) as refused:
        rl.check(SUBJECT, 150, 10)
    assert refused.value.retry_after == 10
    clock.advance(4)
    assert [admit(rl) for _ in range(5)] == [False] * 5
    assert claims.asked == [(1, None)]  # one refused write, then none
    clock.advance(6)  # the next window: fresh, slow start from 1
    assert admit(rl) and claims.asked[-1] == (1, 1)
    assert hits(db, clock) == 1


def test_a_window_ends_with_its_unused_slots(world):
    db, clock, claims = world
    rl = instance(claims, clock)
    assert all(admit(rl) for _ in range(2))  # blocks 1 and 2: one slot left here
    clock.advance(10)
    assert admit(rl)
    assert claims.asked[-1] == (1, 1)  # the old window's slot was not spent in the new one
    assert hits(db, clock) == 1


def test_an_outage_fails_open_with_one_log_line_and_the_instance_window_still_holds(world, caplog):
    db, clock, claims = world
    rl = instance(claims, clock)
    db.fail_next("claims.count_request", Unavailable("down", reason="database"), times=10)
    with caplog.at_level(logging.WARNING, logger="si64.api"):
        got = [admit(rl, 4) for _ in range(6)]
    assert got == [True] * 4 + [False] * 2  # open, but the sliding window of this instance counts
    assert sum("failing open" in r.getMessage() for r in caplog.records) == 1
    assert hits(db, clock) == 0


def test_after_an_outage_the_next_request_asks_again(world):
    db, clock, claims = world
    rl = instance(claims, clock)
    assert all(admit(rl) for _ in range(3))  # blocks 1, 2: count 3, next block 4
    start = clock() - clock() % 10_000
    claims.claims.count_request(SUBJECT, start, 10_000, 150, 145)  # 148: a block of 4 will not fit
    db.fail_next("claims.count_request", Unavailable("down", reason="database"))
    assert admit(rl)  # the block's write fails (down): open, nothing counted
    assert hits(db, clock) == 148
    assert admit(rl) and admit(rl) and not admit(rl)  # back up: 4 refused, 1, then 1 more, then full
    assert claims.asked[2:] == [(4, None), (1, 149), (1, 150)]


def test_eight_threads_on_one_instance_admit_exactly_the_limit_with_one_reservation_at_a_time(world):
    db, clock, _ = world
    claims = Recorder(db.ports()["claims"], pause=0.002)  # I/O time: threads pile up behind it
    rl = instance(claims, clock)
    admitted = [0] * 8
    barrier = threading.Barrier(8)

    def run(i: int) -> None:
        barrier.wait()
        admitted[i] = sum(admit(rl) for _ in range(50))

    threads = [threading.Thread(target=run, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(admitted) == 150
    assert hits(db, clock) == 150
    # never two blocks at once: exactly the single-thread sequence of sizes
    assert [n for n, _ in claims.asked] == [1, 2, 4, 8] + [9] * 15


def test_threads_on_two_instances_never_pass_the_limit(world):
    db, clock, _ = world
    claims = Recorder(db.ports()["claims"], pause=0.001)
    fleet = [instance(claims, clock), instance(claims, clock)]
    admitted = [0] * 8

    def run(i: int) -> None:
        admitted[i] = sum(admit(fleet[i % 2]) for _ in range(40))

    threads = [threading.Thread(target=run, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert 150 - (block_cap(150) - 1) <= sum(admitted) <= 150
    assert hits(db, clock) == 150


def test_a_slow_reservation_does_not_hold_other_threads_forever(world, monkeypatch):
    db, clock, _ = world
    monkeypatch.setattr(ratelimit, "RESERVE_WAIT_S", 0.01)
    gate = threading.Event()

    class Stuck(Recorder):
        def count_request(self, *a, **kw):
            if not self.asked:
                self.asked.append((0, None))
                gate.wait(5)  # the first reservation hangs until the test lets it go
            return super().count_request(*a, **kw)

    claims = Stuck(db.ports()["claims"])
    rl = instance(claims, clock)
    first = threading.Thread(target=admit, args=(rl,))
    first.start()
    while not claims.asked:
        time.sleep(0.001)
    assert admit(rl)  # waited a little, then reserved one slot apart
    gate.set()
    first.join()
    assert hits(db, clock) == 2


def test_memory_is_bounded_by_forgetting_ended_windows(world, monkeypatch):
    db, clock, claims = world
    monkeypatch.setattr(ratelimit, "MAX_SUBJECTS", 50)
    rl = instance(claims, clock)
    for i in range(120):
        assert admit(rl, subject=f"ip:10.0.0.{i}")
        if i % 40 == 39:
            clock.advance(10)
        assert len(rl._windows) <= 50
    for i in range(120):  # all in one window: the slots this instance held are dropped (stricter)
        assert admit(rl, subject=f"ip:10.0.1.{i}")
        assert len(rl._windows) <= 50
