"""The webhook delivery queue (SQS), through botocore."""

from __future__ import annotations

import json
import logging
from typing import Any

from .queue import SqsQueue

log = logging.getLogger(__name__)


class SqsWebhookQueue(SqsQueue):
    """The webhook delivery queue."""

    def send_delivery(self, message: dict[str, Any], delay_seconds: int) -> bool:
        try:
            self.client.send_message(
                QueueUrl=self.url, MessageBody=json.dumps(message), DelaySeconds=max(0, min(900, delay_seconds))
            )
            return True
        except Exception:
            log.exception("webhook enqueue failed for %s", message.get("event_id"))
            return False
