"""The SQS adapter builds its botocore client once per process, even when several request
threads need it first at the same moment (each build costs ~0.2 s of CPU)."""

from __future__ import annotations

import threading
import time

import botocore.session

from chalicelib.adapters.queue import RefundQueue


class SlowSession:
    def __init__(self) -> None:
        self.built = 0

    def create_client(self, *args: object, **kwargs: object) -> object:
        self.built += 1
        time.sleep(0.05)  # long enough for every thread to find no client yet
        return object()


def test_concurrent_first_use_builds_one_client(monkeypatch):
    session = SlowSession()
    monkeypatch.setattr(botocore.session, "get_session", lambda: session)
    q = RefundQueue("http://queue", "q", "us-east-1", None)
    start = threading.Barrier(8)
    seen: list[object] = []

    def use() -> None:
        start.wait()
        seen.append(q.client)

    threads = [threading.Thread(target=use) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert session.built == 1
    assert len(seen) == 8 and all(c is seen[0] for c in seen)
