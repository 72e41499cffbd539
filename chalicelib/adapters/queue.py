"""The refund queue (SQS), through botocore (no boto3 import on the cold path)."""

from __future__ import annotations

import json
import logging
import threading
from typing import Any

log = logging.getLogger(__name__)


class SqsQueue:
    """One SQS queue by URL, or by name resolved once: botocore's client built on first use."""

    def __init__(self, queue_url: str | None, queue_name: str, region: str, endpoint: str | None) -> None:
        self._url, self._name, self._region, self._endpoint = queue_url, queue_name, region, endpoint
        self._client: Any = None  # botocore's SQS client, built on first use
        self._client_lock = threading.Lock()

    @property
    def client(self) -> Any:
        """Built once even when concurrent requests first need it together (one client costs
        ~0.2 s of CPU; without the lock every thread that found None built its own)."""
        if self._client is not None:
            return self._client
        with self._client_lock:
            if self._client is None:
                import botocore.session
                from botocore.config import Config

                self._client = botocore.session.get_session().create_client(
                    "sqs",
                    region_name=self._region,
                    endpoint_url=self._endpoint,
                    config=Config(connect_timeout=2, read_timeout=5, retries={"max_attempts": 2}),
                )
        return self._client

    def _resolve(self, url: str | None, name: str | None) -> str:
        return url or str(self.client.get_queue_url(QueueName=name)["QueueUrl"])

    @property
    def url(self) -> str:
        if self._url is None:
            self._url = self._resolve(None, self._name)
        return self._url


class RefundQueue(SqsQueue):
    def __init__(
        self,
        queue_url: str | None,
        queue_name: str,
        region: str,
        endpoint: str | None,
        dlq_url: str | None = None,
        dlq_name: str | None = None,
    ) -> None:
        super().__init__(queue_url, queue_name, region, endpoint)
        self._dlq_url, self._dlq_name = dlq_url, dlq_name

    def send_refund(self, contract_id: str, version: int) -> bool:
        """Queue a refund (`contract_id` is the refund id: a contract id, or `PAY-{sig}`).
        False (logged) if the queue did not answer: the refund stays owed in the table and
        the sweep (or the payer asking again) queues it again."""
        try:
            self.client.send_message(
                QueueUrl=self.url,
                MessageBody=json.dumps({"refund_id": contract_id, "contract_id": contract_id, "version": version}),
            )
            return True
        except Exception:
            log.exception("refund enqueue failed for %s", contract_id)
            return False

    def depths(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for label, url, name in (
            ("refund_queue", self._url, self._name),
            ("dead_letter_queue", self._dlq_url, self._dlq_name),
        ):
            try:
                attrs = self.client.get_queue_attributes(
                    QueueUrl=self._resolve(url, name),
                    AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
                )
                a = attrs["Attributes"]
                out[label] = {
                    "visible": int(a.get("ApproximateNumberOfMessages", 0)),
                    "in_flight": int(a.get("ApproximateNumberOfMessagesNotVisible", 0)),
                }
            except Exception:  # noqa: BLE001 - stats report what they can
                out[label] = None
        return out

    # -- the operator's redrive -------------------------------------
    @property
    def dlq_url(self) -> str:
        if self._dlq_url is None:
            if not self._dlq_name:
                from ..domain.errors import Unavailable

                raise Unavailable("The refund dead-letter queue is not configured.", reason="configuration")
            self._dlq_url = self._resolve(None, self._dlq_name)
        return self._dlq_url

    def redrive(self, limit: int) -> int:
        """ports.DeadLetters: receive up to `limit` messages of the DLQ (10 per call, no wait),
        send each body to the refund queue, then delete it from the DLQ. A message is deleted
        only after it was sent, so a crash can duplicate a message, never lose one (the worker
        is idempotent). Stops early when a receive comes back empty."""
        from ..domain.errors import Unavailable

        moved = 0
        try:
            dlq, queue = self.dlq_url, self.url
            while moved < limit:
                got = self.client.receive_message(
                    QueueUrl=dlq, MaxNumberOfMessages=min(10, limit - moved), WaitTimeSeconds=0, VisibilityTimeout=30
                )
                messages = got.get("Messages") or []
                if not messages:
                    break
                for m in messages:
                    self.client.send_message(QueueUrl=queue, MessageBody=m["Body"])
                    self.client.delete_message(QueueUrl=dlq, ReceiptHandle=m["ReceiptHandle"])
                    moved += 1
        except Unavailable:
            raise
        except Exception as exc:
            log.exception("redrive stopped after %d messages", moved)
            raise Unavailable(
                f"The refund queues did not answer ({exc.__class__.__name__}); "
                f"{moved} message(s) were moved before that.",
                reason="queue",
            ) from exc
        return moved
