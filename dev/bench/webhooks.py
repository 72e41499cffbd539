"""The cost of one webhook event: what the money transaction writes for it (items, bytes, WCU
estimated from the real adapter's item as DynamoDB sizes it), and what the dispatcher and the
delivery function call per event (storage reads/writes, SQS sends, HTTP POSTs), counted on
in-memory ports around the real services. No network.

    python -m dev.bench.webhooks          # JSON on stdout
"""

from __future__ import annotations

import json
import sys
from collections import Counter
from typing import Any

from chalicelib.config import Settings
from chalicelib.domain import contracts as dc
from chalicelib.domain import webhooks as W
from chalicelib.services.webhook_delivery import WebhookDelivery
from dev.bench.calls import item_size, kb

WALLET = "Eqa9gTUK9qJGgXfz4sESv7Qg6L9eB57maFPwGCWgzNn7"


class _Counting:
    def __init__(self) -> None:
        self.calls: Counter[str] = Counter()
        self.events: dict[str, W.Event] = {}
        self.pending: set[str] = set()
        self.hooks: dict[str, list[W.Webhook]] = {}
        self.sent: list[tuple[dict[str, Any], int]] = []
        self.statuses: list[int] = []

    # ports.Outbox
    def pending_events(self, shard: int, limit: int) -> list[W.Event]:
        self.calls["dynamodb.Query(outbox index)"] += 1
        return [self.events[i] for i in sorted(self.pending) if self.events[i].outbox_shard == shard][:limit]

    def get(self, event_id: str) -> W.Event | None:
        self.calls["dynamodb.GetItem(event)"] += 1
        return self.events.get(event_id)

    def mark_dispatched(self, event_id: str, now_ms: int) -> bool:
        self.calls["dynamodb.UpdateItem(event: out of the index)"] += 1
        self.pending.discard(event_id)
        return True

    # ports.WebhookStore
    def of(self, owner: str) -> list[W.Webhook]:
        self.calls["dynamodb.GetItem(owner's webhooks)"] += 1
        return list(self.hooks.get(owner, []))

    # WebhookQueue, WebhookSender
    def send_delivery(self, message: dict[str, Any], delay_seconds: int) -> bool:
        self.calls["sqs.SendMessage"] += 1
        self.sent.append((message, delay_seconds))
        return True

    def resolve(self, host: str, port: int) -> list[str]:
        self.calls["dns"] += 1
        return ["93.184.216.34"]

    def post(self, url: str, address: str, body: bytes, headers: dict[str, str], timeout: float) -> int:
        self.calls["http.POST"] += 1
        return self.statuses.pop(0) if self.statuses else 200


class _Outbox:
    def __init__(self, c: _Counting) -> None:
        self.c = c
        self.get, self.mark_dispatched = c.get, c.mark_dispatched

    def pending(self, shard: int, limit: int) -> list[W.Event]:
        return self.c.pending_events(shard, limit)


def event_write_cost() -> dict[str, Any]:
    """The outbox item of each kind of event, as the adapter writes it inside the transaction."""
    from chalicelib.adapters import models
    from chalicelib.adapters.outbox import event_item

    models.bind("si64-bench", "us-east-1", None)
    c = dc.open_contract(
        contract_id=dc.new_contract_id(),
        wallet=WALLET,
        tier="THOR",
        device_id="dev-thor-1",
        seconds=3600,
        received_lamports=35_000_000,
        sig="5" * 88,
        now_ms=1_764_000_000_000,
    )
    ended = dc.finalize(c, now_ms=1_764_000_060_000, refund_min_lamports=5000)
    out = {}
    for e in (W.opened_event(c), W.ended_event(ended)):
        size = item_size(event_item(e).serialize())
        out[e.event_type] = {
            "items_in_transaction": 1,
            "bytes": size,
            "wcu_transaction": 2 * kb(size),  # a transactional write counts twice
            "wcu_outbox_index": kb(size),
        }
    return out


def delivery_calls(subscribers: int = 2, failures: int = 1) -> dict[str, Any]:
    """Calls per event for the dispatcher and the delivery function: `subscribers` webhooks
    (the operator's and the wallet's) and `failures` failed first attempts."""
    counting = _Counting()
    now = [1_764_000_000_000]
    settings = Settings(webhook_retry_base_seconds=30)
    svc = WebhookDelivery(_Outbox(counting), counting, counting, counting, lambda: now[0], settings)
    owners = [W.ADMIN_OWNER, W.wallet_owner(WALLET)][:subscribers]
    for n, owner in enumerate(owners):
        counting.hooks[owner] = [
            W.Webhook(f"WH-{n}", owner, "https://hooks.example.com/x", W.EVENTS, f"whsec_{n}", now[0])
        ]
    c = dc.open_contract(
        contract_id=dc.new_contract_id(),
        wallet=WALLET,
        tier="M2",
        device_id="d",
        seconds=60,
        received_lamports=16_667,
        sig="5" * 88,
        now_ms=now[0],
    )
    event = W.opened_event(c)
    counting.events[event.event_id] = event
    counting.pending.add(event.event_id)
    svc.dispatch()
    dispatch = dict(counting.calls)
    counting.calls.clear()
    counting.statuses = [500] * failures
    while counting.sent:
        message, delay = counting.sent.pop(0)
        now[0] += delay * 1000
        svc.deliver(message)
    return {"dispatch_per_run_and_event": dispatch, "delivery_per_event": dict(counting.calls)}


def main() -> int:
    result = {"event_written_with_the_money": event_write_cost(), **delivery_calls()}
    result["note"] = (
        "dispatch: the 4 outbox-index Queries are per run (all shards), not per event; the "
        "UpdateItem that takes an event out of the index costs 1 WCU + 1 index WCU. Delivery: "
        "2 subscribers, the first attempt of one answered 500 (one extra SendMessage, GetItems, POST)."
    )
    json.dump(result, sys.stdout, indent=2)
    print()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
