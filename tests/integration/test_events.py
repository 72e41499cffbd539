"""The local event runner: Lambda-like SQS polling and schedule invocation."""

import json

import pytest
from chalice import Chalice

from dev.events import EventRunner, SqsPoller, find_handlers, schedule_event


@pytest.fixture
def queues(aws_emulator):
    """A fresh refund queue + DLQ (maxReceiveCount 5) from the real template."""
    res = aws_emulator.provision()
    return aws_emulator.client("sqs"), res


def _send(sqs, url, *bodies):
    for b in bodies:
        sqs.send_message(QueueUrl=url, MessageBody=b)


def _all_bodies(sqs, url):
    out = []
    while True:
        msgs = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=30).get("Messages", [])
        if not msgs:
            return sorted(out)
        out += [m["Body"] for m in msgs]


class FakeHandler:
    """Fails every record whose body starts with 'fail'."""

    def __init__(self):
        self.events = []

    def __call__(self, event, context):
        self.events.append(event)
        assert context.get_remaining_time_in_millis() > 0
        return {
            "batchItemFailures": [
                {"itemIdentifier": r["messageId"]} for r in event["Records"] if r["body"].startswith("fail")
            ]
        }


def test_partial_batch_failure_and_redrive_to_dlq(queues):
    sqs, res = queues
    handler = FakeHandler()
    poller = SqsPoller(sqs, res.queue_url, handler, batch_size=10, retry_visibility_seconds=0)
    _send(sqs, res.queue_url, "ok-1", "fail-1", "ok-2")

    first = poller.poll_once()
    assert (first.received, first.deleted, len(first.failed)) == (3, 2, 1)
    records = handler.events[0]["Records"]
    assert len({r["messageId"] for r in records}) == 3  # unique ids, unlike generate_sqs_event
    rec = records[0]
    assert rec["eventSource"] == "aws:sqs" and rec["eventSourceARN"].endswith(f":{res.prefix}-refunds")
    assert rec["attributes"]["ApproximateReceiveCount"] == "1" and rec["receiptHandle"]
    assert first.failed == [r["messageId"] for r in records if r["body"] == "fail-1"]

    # Received 5 times in all, then the queue's redrive policy moves it to the DLQ.
    counts = [records[[r["body"] for r in records].index("fail-1")]["attributes"]["ApproximateReceiveCount"]]
    for _ in range(4):
        again = poller.poll_once()
        assert again.received == 1 and again.deleted == 0
        counts.append(handler.events[-1]["Records"][0]["attributes"]["ApproximateReceiveCount"])
    assert counts == ["1", "2", "3", "4", "5"]
    last = poller.poll_once()
    assert last.received == 0
    assert _all_bodies(sqs, res.dlq_url) == ["fail-1"]
    assert _all_bodies(sqs, res.queue_url) == []


def test_handler_exception_fails_the_whole_batch(queues):
    sqs, res = queues

    def boom(event, context):
        raise RuntimeError("rpc down")

    poller = SqsPoller(sqs, res.queue_url, boom, retry_visibility_seconds=0)
    _send(sqs, res.queue_url, "a", "b")
    out = poller.poll_once()
    assert out.received == 2 and out.deleted == 0 and len(out.failed) == 2 and "rpc down" in out.error
    assert _all_bodies(sqs, res.queue_url) == ["a", "b"]


def test_invalid_item_identifier_fails_the_whole_batch(queues):
    sqs, res = queues
    poller = SqsPoller(
        sqs, res.queue_url, lambda e, c: {"batchItemFailures": [{"itemIdentifier": ""}]}, retry_visibility_seconds=0
    )
    _send(sqs, res.queue_url, "a", "b")
    out = poller.poll_once()
    assert out.deleted == 0 and len(out.failed) == 2


def test_failed_records_wait_for_the_visibility_timeout_by_default(queues):
    sqs, res = queues
    poller = SqsPoller(sqs, res.queue_url, FakeHandler())  # like Lambda: no visibility change
    _send(sqs, res.queue_url, "fail-x")
    assert poller.poll_once().received == 1
    assert poller.poll_once().received == 0  # invisible for the queue's 180 s


def _chalice_app(queue_name):
    app = Chalice(app_name="events-test")
    calls = {"sweep": [], "refund": []}

    @app.schedule("rate(1 minute)")
    def billing_sweep(event):
        calls["sweep"].append((event.detail_type, event.source, event.resources))

    @app.on_sqs_message(queue=queue_name, batch_size=5)
    def refund_worker(event):
        failures = []
        for record in event:
            calls["refund"].append(record.body)
            if record.body == "fail":
                failures.append({"itemIdentifier": record.to_dict()["messageId"]})
        return {"batchItemFailures": failures}

    return app, calls


def test_runner_finds_chalice_handlers_and_runs_them(queues):
    sqs, res = queues
    app, calls = _chalice_app(f"{res.prefix}-refunds")
    found = find_handlers(app)
    assert [n for n, _ in found.schedules] == ["billing_sweep"]
    assert [(n, q, b) for n, q, b, _ in found.sqs] == [("refund_worker", f"{res.prefix}-refunds", 5)]

    runner = EventRunner(app, sqs, sweep_seconds=60, retry_visibility_seconds=0)
    assert [p.queue_url for p in runner.pollers] == [res.queue_url]
    runner.run_schedules()
    assert calls["sweep"] == [("Scheduled Event", "aws.events", [schedule_event("billing_sweep")["resources"][0]])]

    _send(sqs, res.queue_url, "ok", "fail")
    assert runner.poll_queues() == 2
    assert sorted(calls["refund"]) == ["fail", "ok"]
    assert _all_bodies(sqs, res.queue_url) == ["fail"]  # only the failure was left


def test_refund_queue_env_fallback_and_no_handler(queues, caplog):
    sqs, res = queues
    app, _ = _chalice_app("si64-prod-refunds")  # a name that does not exist locally
    runner = EventRunner(app, sqs, refund_queue_url=res.queue_url)
    assert [p.queue_url for p in runner.pollers] == [res.queue_url]

    caplog.set_level("INFO", logger="si64.events")
    empty = EventRunner(Chalice(app_name="empty"), sqs, refund_queue_url=res.queue_url)
    assert empty.schedules == [] and empty.pollers == []
    assert "no handler yet" in caplog.text
    json.dumps(schedule_event("x"))  # serialisable like the real event


def test_long_poll_does_not_hold_the_emulator_lock(queues, aws_emulator):
    """A ReceiveMessage long poll waits without the global lock: other requests go on."""
    import threading
    import time

    sqs, res = queues
    got = {}

    def long_poll():
        started = time.monotonic()
        msgs = aws_emulator.client("sqs").receive_message(QueueUrl=res.queue_url, WaitTimeSeconds=3).get("Messages", [])
        got["elapsed"], got["bodies"] = time.monotonic() - started, [m["Body"] for m in msgs]

    t = threading.Thread(target=long_poll)
    t.start()
    time.sleep(0.5)
    started = time.monotonic()
    aws_emulator.client("dynamodb").list_tables()
    sqs.send_message(QueueUrl=res.queue_url, MessageBody="wake")
    assert time.monotonic() - started < 1.5  # not blocked behind the 3 s poll
    t.join(10)
    assert got["bodies"] == ["wake"] and got["elapsed"] < 2.9


class CountingSqs:
    """The SQS client, each ReceiveMessage's WaitTimeSeconds noted."""

    def __init__(self, sqs):
        self.sqs, self.waits = sqs, []

    def receive_message(self, **kw):
        self.waits.append(kw["WaitTimeSeconds"])
        return self.sqs.receive_message(**kw)

    def __getattr__(self, name):
        return getattr(self.sqs, name)


def test_the_running_runner_long_polls_each_queue_and_handles_what_arrives(queues):
    import threading
    import time

    sqs, res = queues
    app, calls = _chalice_app(f"{res.prefix}-refunds")
    counting = CountingSqs(sqs)
    runner = EventRunner(app, counting, sweep_seconds=3600, retry_visibility_seconds=0, long_poll_seconds=2)
    th = threading.Thread(target=runner.run)
    th.start()
    try:
        _send(sqs, res.queue_url, "ok-1")
        deadline = time.monotonic() + 30
        while "ok-1" not in calls["refund"] and time.monotonic() < deadline:
            time.sleep(0.05)
        _send(sqs, res.queue_url, "ok-2")
        while "ok-2" not in calls["refund"] and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        runner.stop()
        th.join(30)
    assert not th.is_alive()
    assert sorted(calls["refund"]) == ["ok-1", "ok-2"]
    assert counting.waits and set(counting.waits) == {2}  # only long polls, never a short poll loop
    assert _all_bodies(sqs, res.queue_url) == []  # both deleted


def test_run_gives_every_function_its_own_thread_so_a_slow_schedule_never_holds_a_queue_back(queues):
    """As on AWS, where each is its own Lambda function: while the sweep is still running (blocked
    here until the test lets it go), the refund queue keeps being polled and handled."""
    import threading

    sqs, res = queues
    release, sweeping, handled = threading.Event(), threading.Event(), threading.Event()
    app = Chalice(app_name="events-test")

    @app.schedule("rate(1 minute)")
    def billing_sweep(event):
        sweeping.set()
        release.wait(30)

    @app.on_sqs_message(queue=f"{res.prefix}-refunds", batch_size=5)
    def refund_worker(event):
        handled.set()
        return {"batchItemFailures": []}

    runner = EventRunner(app, sqs, sweep_seconds=0.05, idle_sleep=0.05)
    th = threading.Thread(target=runner.run, daemon=True)
    th.start()
    try:
        assert sweeping.wait(10)
        _send(sqs, res.queue_url, "ok")
        assert handled.wait(10), "the refund worker waited for the sweep"
    finally:
        release.set()
        runner.stop()
        th.join(10)
    assert not th.is_alive()
    assert _all_bodies(sqs, res.queue_url) == []


def test_run_handles_batches_of_one_queue_concurrently_like_lambdas_event_source_mapping(queues):
    """Three batches of one message each are in the handler at the same time (a barrier of 3 that
    a one-at-a-time poller could never pass), and each message is handled and deleted once."""
    import threading
    import time

    sqs, res = queues
    barrier, seen, lock = threading.Barrier(3, timeout=15), [], threading.Lock()
    app = Chalice(app_name="events-test")

    @app.on_sqs_message(queue=f"{res.prefix}-refunds", batch_size=1)
    def refund_worker(event):
        for record in event:
            with lock:
                seen.append(record.body)
        barrier.wait()
        return {"batchItemFailures": []}

    _send(sqs, res.queue_url, "a", "b", "c")
    runner = EventRunner(app, sqs, idle_sleep=0.05, long_poll_seconds=1, concurrency=3)
    th = threading.Thread(target=runner.run, daemon=True)
    th.start()
    try:
        deadline = time.monotonic() + 20
        while len(seen) < 3 and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        runner.stop()
        th.join(15)
    assert sorted(seen) == ["a", "b", "c"] and not barrier.broken
    assert _all_bodies(sqs, res.queue_url) == []
