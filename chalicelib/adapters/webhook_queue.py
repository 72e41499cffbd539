"""The webhook delivery queue (SQS), through botocore."""

from __future__ import annotations

import json
import logging
from typing import Any

log = logging.getLogger(__name__)


class SqsWebhookQueue:
    def __init__(self, queue_url: str | None, queue_name: str, region: str, endpoint: str | None) -> None:
        self._url, self._name, self._region, self._endpoint = queue_url, queue_name, region, endpoint
        self._client: Any = None

    @property
    def client(self) -> Any:
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

    @property
    def url(self) -> str:
        if self._url is None:
            self._url = str(self.client.get_queue_url(QueueName=self._name)["QueueUrl"])
        return self._url

    def send_delivery(self, message: dict[str, Any], delay_seconds: int) -> bool:
        try:
            self.client.send_message(
                QueueUrl=self.url, MessageBody=json.dumps(message), DelaySeconds=max(0, min(900, delay_seconds))
            )
            return True
        except Exception:
            log.exception("webhook enqueue failed for %s", message.get("event_id"))
            return False
