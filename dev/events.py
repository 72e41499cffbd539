"""Local event runner: what EventBridge and Lambda's SQS mapping do in AWS.

moto never fires schedules and ``chalice local`` serves HTTP only, so this
runner imports the Chalice app (``app.py``, same environment as the API) and

* every ``SI64_SWEEP_SECONDS`` (default 60) invokes each scheduled handler
  (``@app.schedule``) with a schedule-shaped event;
* polls every queue an ``@app.on_sqs_message`` handler is bound to, like
  Lambda's event source mapping (long polls of ``LONG_POLL_SECONDS``, answered
  as soon as a message arrives): batches of up to ``batch_size`` (max 10)
  records with their own message ids, deletes the records that succeeded,
  leaves the ones listed in the returned
  ``{"batchItemFailures": [{"itemIdentifier": <messageId>}]}`` (all of them
  when the handler raises) for redelivery, so the queue's RedrivePolicy moves
  a message to the dead-letter queue after ``maxReceiveCount`` receives.

A failed record becomes visible again after the queue's visibility timeout
(as in AWS). ``SI64_REFUND_RETRY_SECONDS`` shortens that for failed records
(ChangeMessageVisibility) -- handy for demos and tests.

Handlers are found on the Chalice app object (``app.event_sources`` +
``app.handler_map``, so blueprints work); the queue of an SQS handler is
looked up by name on the emulator, and a queue named ``*-refunds`` falls
back to ``$SI64_REFUND_QUEUE_URL``. Without a handler it logs
"no handler yet" and idles.

CLI (started by ``python -m dev.stack``)::

    python -m dev.events          # env: AWS_ENDPOINT_URL, SI64_REFUND_QUEUE_URL, ...
"""

from __future__ import annotations

import argparse
import copy
import functools
import hashlib
import importlib
import json
import logging
import os
import signal
import sys
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
ACCOUNT = "123456789012"
log = logging.getLogger("si64.events")


# --------------------------------------------------------------------------
# Lambda-shaped context and events


class LambdaContext:
    """Enough of the Lambda context object for handlers and powertools."""

    def __init__(self, function_name: str, timeout_seconds: int = 60, memory_mb: int = 512):
        region = os.environ.get("AWS_DEFAULT_REGION", "us-east-1")
        self.function_name = function_name
        self.function_version = "$LATEST"
        self.invoked_function_arn = f"arn:aws:lambda:{region}:{ACCOUNT}:function:{function_name}"
        self.memory_limit_in_mb = memory_mb
        self.aws_request_id = str(uuid.uuid4())
        self.log_group_name = f"/aws/lambda/{function_name}"
        self.log_stream_name = datetime.now(UTC).strftime("%Y/%m/%d/[$LATEST]") + uuid.uuid4().hex
        self._deadline = time.monotonic() + timeout_seconds

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


def schedule_event(rule_name: str, now: datetime | None = None) -> dict:
    region = os.environ.get("AWS_DEFAULT_REGION", "us-east-1")
    now = now or datetime.now(UTC)
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": ACCOUNT,
        "time": now.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": region,
        "resources": [f"arn:aws:events:{region}:{ACCOUNT}:rule/{rule_name}"],
        "detail": {},
    }


def sqs_record(message: dict, queue_arn: str) -> dict:
    """One ReceiveMessage message as a Lambda SQS event record."""
    region = queue_arn.split(":")[3] if queue_arn.count(":") >= 5 else "us-east-1"
    attrs = message.get("Attributes", {})
    body = message["Body"]
    msg_attrs = {}
    for name, value in (message.get("MessageAttributes") or {}).items():
        msg_attrs[name] = {
            "stringValue": value.get("StringValue"),
            "binaryValue": value.get("BinaryValue"),
            "stringListValues": value.get("StringListValues", []),
            "binaryListValues": value.get("BinaryListValues", []),
            "dataType": value.get("DataType"),
        }
    return {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": body,
        "attributes": {
            "ApproximateReceiveCount": attrs.get("ApproximateReceiveCount", "1"),
            "SentTimestamp": attrs.get("SentTimestamp", str(int(time.time() * 1000))),
            "SenderId": attrs.get("SenderId", ACCOUNT),
            "ApproximateFirstReceiveTimestamp": attrs.get(
                "ApproximateFirstReceiveTimestamp", str(int(time.time() * 1000))
            ),
        },
        "messageAttributes": msg_attrs,
        "md5OfBody": message.get("MD5OfBody") or hashlib.md5(body.encode()).hexdigest(),
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn,
        "awsRegion": region,
    }


# --------------------------------------------------------------------------
# SQS poller (event source mapping)


@dataclass
class PollResult:
    received: int = 0
    deleted: int = 0
    failed: list = field(default_factory=list)  # message ids left for redelivery
    error: str | None = None


class SqsPoller:
    """Lambda's SQS event source mapping for one queue and one handler."""

    def __init__(
        self,
        sqs,
        queue_url: str,
        handler: Callable[[dict, Any], Any],
        name: str = "sqs-handler",
        batch_size: int = 10,
        retry_visibility_seconds: int | None = None,
        timeout_seconds: int = 60,
    ):
        self.sqs = sqs
        self.queue_url = queue_url
        self.handler = handler
        self.name = name
        self.batch_size = max(1, min(int(batch_size), 10))
        self.retry_visibility_seconds = retry_visibility_seconds
        self.timeout_seconds = timeout_seconds
        self._queue_arn: str | None = None
        self.handling = False  # a received batch is in the handler (not deleted yet)

    @property
    def queue_arn(self) -> str:
        if self._queue_arn is None:
            self._queue_arn = self.sqs.get_queue_attributes(QueueUrl=self.queue_url, AttributeNames=["QueueArn"])[
                "Attributes"
            ]["QueueArn"]
        return self._queue_arn

    def poll_once(self, wait_seconds: int = 0) -> PollResult:
        """One ReceiveMessage (a long poll of up to `wait_seconds` when > 0: it answers as soon
        as a message is there), the handler on the batch, the deletes."""
        resp = self.sqs.receive_message(
            QueueUrl=self.queue_url,
            MaxNumberOfMessages=self.batch_size,
            AttributeNames=["All"],
            MessageAttributeNames=["All"],
            WaitTimeSeconds=int(wait_seconds),
        )
        messages = resp.get("Messages", [])
        result = PollResult(received=len(messages))
        if not messages:
            return result
        self.handling = True
        try:
            return self._handle(messages, result)
        finally:
            self.handling = False

    def _handle(self, messages: list[dict], result: PollResult) -> PollResult:
        records = [sqs_record(m, self.queue_arn) for m in messages]
        by_id = {m["MessageId"]: m for m in messages}
        failed_ids: set[str]
        try:
            out = self.handler({"Records": records}, LambdaContext(self.name, self.timeout_seconds))
        except Exception as exc:
            log.exception("%s raised; the whole batch of %d returns to the queue", self.name, len(messages))
            result.error = f"{type(exc).__name__}: {exc}"
            failed_ids = set(by_id)
        else:
            failed_ids = set()
            items = (out or {}).get("batchItemFailures") if isinstance(out, dict) else None
            for item in items or []:
                ident = item.get("itemIdentifier") if isinstance(item, dict) else None
                if not ident or ident not in by_id:
                    # Lambda treats an empty/unknown identifier as a failure of the whole batch.
                    log.warning("%s returned an invalid itemIdentifier %r: whole batch fails", self.name, ident)
                    failed_ids = set(by_id)
                    break
                failed_ids.add(ident)
        done = [m for mid, m in by_id.items() if mid not in failed_ids]
        for start in range(0, len(done), 10):
            chunk = done[start : start + 10]
            out = self.sqs.delete_message_batch(
                QueueUrl=self.queue_url,
                Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(chunk)],
            )
            result.deleted += len(out.get("Successful", []))
        result.failed = sorted(failed_ids)
        if failed_ids and self.retry_visibility_seconds is not None:
            entries = [
                {
                    "Id": str(i),
                    "ReceiptHandle": by_id[mid]["ReceiptHandle"],
                    "VisibilityTimeout": int(self.retry_visibility_seconds),
                }
                for i, mid in enumerate(sorted(failed_ids))
            ]
            for start in range(0, len(entries), 10):
                self.sqs.change_message_visibility_batch(QueueUrl=self.queue_url, Entries=entries[start : start + 10])
        return result


# --------------------------------------------------------------------------
# finding handlers on the Chalice app


@dataclass
class Handlers:
    schedules: list = field(default_factory=list)  # [(name, handler)]
    sqs: list = field(default_factory=list)  # [(name, queue_name, batch_size, handler)]


def find_handlers(app_obj) -> Handlers:
    """Scheduled and SQS handlers registered on a Chalice app object."""
    from chalice.app import CloudWatchEventConfig, ScheduledEventConfig, SQSEventConfig

    found = Handlers()
    handler_map = getattr(app_obj, "handler_map", {})
    for source in getattr(app_obj, "event_sources", []):
        handler = handler_map.get(source.name)
        if handler is None:
            continue
        if isinstance(source, ScheduledEventConfig):
            found.schedules.append((source.name, handler))
        elif isinstance(source, CloudWatchEventConfig):
            pass  # event patterns are not schedules
        elif isinstance(source, SQSEventConfig):
            queue = source.queue or (source.queue_arn or "").split(":")[-1]
            found.sqs.append((source.name, queue, source.batch_size or 10, handler))
    return found


def load_app(module: str = "app"):
    """Import the Chalice app module from the repository root."""
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    mod = importlib.import_module(module)
    return getattr(mod, "app", None)


# --------------------------------------------------------------------------
# the runner


# schedules run on their own timer instead of every SI64_SWEEP_SECONDS: the quote watcher
# (one tick per call here: SI64_QUOTE_WATCH_SECONDS=0) every SI64_QUOTE_SECONDS (1.5), the payment
# refusals (a whole reconcile per run; hourly on AWS) every SI64_REFUSAL_SECONDS (60)
FAST_SCHEDULES = {
    "quote_watcher": float(os.environ.get("SI64_QUOTE_SECONDS") or 1.5),
    "payment_refusals": float(os.environ.get("SI64_REFUSAL_SECONDS") or 60),
}


# each queue's poller long-polls (ReceiveMessage WaitTimeSeconds, as Lambda's event source mapping
# does; the emulator waits without its lock and answers as soon as a message arrives): an idle
# queue costs one request per LONG_POLL_SECONDS instead of a short poll every idle_sleep
LONG_POLL_SECONDS = 5
# Lambda's SQS event source mapping starts by handling 5 batches at a time (five concurrent
# invocations) and scales up from there: each queue gets this many pollers, each on its own thread
# and with its own batch in flight (SI64_SQS_CONCURRENCY). One at a time, refunds queued faster than
# one worker sends them (~10 a second here) waited in the queue: settle -> CONFIRMED grew to 16 s
# under `make load --ramp` at 8+8 workers.
SQS_CONCURRENCY = int(os.environ.get("SI64_SQS_CONCURRENCY") or 5)


class EventRunner:
    def __init__(
        self,
        app_obj,
        sqs_client,
        sweep_seconds: float = 60.0,
        refund_queue_url: str | None = None,
        retry_visibility_seconds: int | None = None,
        idle_sleep: float = 0.5,
        long_poll_seconds: int = LONG_POLL_SECONDS,
        concurrency: int = SQS_CONCURRENCY,
    ):
        self.sweep_seconds = float(sweep_seconds)
        self.concurrency = max(1, int(concurrency))
        self.idle_sleep = idle_sleep
        self.long_poll_seconds = long_poll_seconds
        self.stop_event = threading.Event()
        handlers = find_handlers(app_obj) if app_obj is not None else Handlers()
        self.schedules = handlers.schedules
        self.pollers: list[SqsPoller] = []
        for name, queue, batch, handler in handlers.sqs:
            url = self._queue_url(sqs_client, queue, refund_queue_url)
            if url is None:
                log.warning("SQS handler %s: queue %r not found on the emulator; not polled", name, queue)
                continue
            self.pollers.append(
                SqsPoller(
                    sqs_client,
                    url,
                    handler,
                    name=name,
                    batch_size=batch,
                    retry_visibility_seconds=retry_visibility_seconds,
                )
            )
        if not self.schedules:
            log.info("no handler yet: no @app.schedule handler in app.py (billing sweep not run)")
        if not self.pollers:
            log.info("no handler yet: no @app.on_sqs_message handler for the refund queue (queue not polled)")

    @staticmethod
    def _queue_url(sqs, queue_name: str, refund_queue_url: str | None) -> str | None:
        if queue_name:
            try:
                return sqs.get_queue_url(QueueName=queue_name)["QueueUrl"]
            except Exception:  # noqa: BLE001 - fall back below
                pass
        if refund_queue_url and (not queue_name or queue_name.endswith("-refunds")):
            return refund_queue_url
        return None

    def run_schedules(self) -> None:
        for name, handler in self.schedules:
            self.run_schedule(name, handler)

    def run_schedule(self, name: str, handler, quiet: bool = False) -> None:
        started = time.monotonic()
        try:
            handler(schedule_event(name), LambdaContext(name))
            (log.debug if quiet else log.info)("schedule %s ran in %.0f ms", name, (time.monotonic() - started) * 1000)
        except Exception:
            log.exception("schedule %s failed", name)

    def poll_queue(self, poller: SqsPoller, wait_seconds: int = 0) -> int:
        """One poll of one queue (logged); the records received, 0 when the poll failed."""
        try:
            res = poller.poll_once(wait_seconds)
        except Exception:
            log.exception("polling %s failed", poller.queue_url)
            return 0
        if res.received:
            log.info(
                "%s: %d received, %d deleted, %d left for retry",
                poller.name,
                res.received,
                res.deleted,
                len(res.failed),
            )
        return res.received

    def poll_queues(self) -> int:
        """One short poll of every queue; the records received."""
        return sum(self.poll_queue(poller) for poller in self.pollers)

    def run(self) -> None:
        """Until `stop`: every function on a thread of its own, as each is its own Lambda function
        on AWS (a slow webhook dispatch or sweep never holds the refund worker back): each queue
        long-polled back to back (LONG_POLL_SECONDS) by `concurrency` pollers, the FAST_SCHEDULES on their own periods,
        every other schedule every sweep_seconds (first after one period)."""
        pollers = [
            (c, threading.Thread(target=self._poll_loop, args=(c,), name=f"fn-{p.name}-{i}", daemon=True))
            for p in self.pollers
            for i, c in enumerate([p] + [copy.copy(p) for _ in range(self.concurrency - 1)])
        ]  # copies share the client, the handler and the queue; each has its own batch in flight
        schedules = []
        for name, handler in self.schedules:
            every = FAST_SCHEDULES.get(name, self.sweep_seconds)
            first = 0.0 if name in FAST_SCHEDULES else every
            fn = functools.partial(self._schedule_loop, name, handler, every, first)
            schedules.append(threading.Thread(target=fn, name=f"fn-{name}", daemon=True))
        for th in [*schedules, *(th for _, th in pollers)]:
            th.start()
        self.stop_event.wait()
        for th in schedules:
            th.join()
        for poller, th in pollers:  # a batch being handled finishes; a long poll only waiting is left
            if poller.handling:
                th.join(timeout=6.0)

    def _poll_loop(self, poller: SqsPoller) -> None:
        """One queue's event source mapping: long polls back to back (a poll that failed, answered
        empty at once, waits idle_sleep before the next)."""
        while not self.stop_event.is_set():
            started = time.monotonic()
            if not self.poll_queue(poller, self.long_poll_seconds) and (
                time.monotonic() - started < self.long_poll_seconds / 2
            ):
                self.stop_event.wait(self.idle_sleep)

    def _schedule_loop(self, name: str, handler, every: float, first: float) -> None:
        if self.stop_event.wait(first):
            return
        while True:
            self.run_schedule(name, handler, quiet=name in FAST_SCHEDULES)
            if self.stop_event.wait(every):
                return

    def stop(self) -> None:
        self.stop_event.set()


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("SI64_QUOTE_WATCH_SECONDS", "0")  # one watcher tick per call (FAST_SCHEDULES)
    parser = argparse.ArgumentParser(prog="python -m dev.events", description=__doc__.split("\n")[0])
    parser.add_argument("--app-module", default="app")
    parser.add_argument("--sweep-seconds", type=float, default=float(os.environ.get("SI64_SWEEP_SECONDS") or 60))
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=os.environ.get("SI64_EVENTS_LOG_LEVEL", "INFO"), format="%(asctime)s events %(levelname)s %(message)s"
    )
    import boto3

    from dev.provision import client_kwargs

    sqs = boto3.client("sqs", **client_kwargs(os.environ.get("AWS_ENDPOINT_URL")))
    try:
        app_obj = load_app(args.app_module)
    except ModuleNotFoundError as exc:
        if exc.name != args.app_module:
            raise
        log.warning("no handler yet: %s.py not found", args.app_module)
        app_obj = None
    retry = os.environ.get("SI64_REFUND_RETRY_SECONDS")
    runner = EventRunner(
        app_obj,
        sqs,
        sweep_seconds=args.sweep_seconds,
        refund_queue_url=os.environ.get("SI64_REFUND_QUEUE_URL"),
        retry_visibility_seconds=int(retry) if retry else None,
    )

    def _stop(signum, frame):
        runner.stop()

    signal.signal(signal.SIGINT, _stop)
    signal.signal(signal.SIGTERM, _stop)
    print(
        json.dumps(
            {
                "event_runner": "ready",
                "schedules": [n for n, _ in runner.schedules],
                "queues": [p.queue_url for p in runner.pollers],
            }
        ),
        flush=True,
    )
    runner.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
