"""The cost of one webhook event: what the money transaction writes for it (items, bytes, WCU
estimated from the real adapter's item as DynamoDB sizes it), and what the dispatcher and the
delivery function call per event (storage reads/writes, SQS sends, HTTP POSTs), counted on
in-memory ports around the real services. No network.

    python -m dev.bench.webhooks [--out .local/bench.json]   # JSON on stdout, merged under "webhooks"

`make bench` runs it. contract.low_time is written by the sweep with the contract's marker (one
transaction: an UpdateItem of the contract + the event); payment.refused by the refusal job
alone (one conditional PutItem). The delivery log (`dlv#{webhook_id}`) adds a GetItem and an
UpdateItem per recorded state (pending at dispatch, then each attempt's outcome).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path
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
    # ports.DeliveryLog
    def record(self, webhook_id: str, entry: W.Delivery) -> None:
        self.calls["dynamodb.GetItem(delivery log)"] += 1
        self.calls["dynamodb.UpdateItem(delivery log)"] += 1

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
    out: dict[str, Any] = {}
    for e in (W.opened_event(c), W.ended_event(ended)):
        size = item_size(event_item(e).serialize())
        out[e.event_type] = {
            "items_in_transaction": 1,
            "bytes": size,
            "wcu_transaction": 2 * kb(size),  # a transactional write counts twice
            "wcu_outbox_index": kb(size),
        }
    # contract.low_time: its own transaction (the sweep's), the contract's marker + the event
    from chalicelib.adapters.contracts import to_item

    marked = dc.replace(c, low_time_for_ms=c.expires_at_ms)
    contract_bytes = item_size(to_item(marked, shards=4).serialize())
    low = W.low_time_event(c, c.expires_at_ms - 360_000)
    size = item_size(event_item(low).serialize())
    out[low.event_type] = {
        "items_in_transaction": 2,
        "bytes": size,
        "contract_bytes": contract_bytes,
        # an UpdateItem costs the larger of the item before and after; transactional: twice
        "wcu_transaction": 2 * kb(size) + 2 * kb(contract_bytes),
        "wcu_outbox_index": kb(size),
        # the marker is projected (ALL) into both indexes an ACTIVE contract is in
        "wcu_contract_indexes": 2 * kb(contract_bytes),  # active-by-expiry, by-wallet
        "reads": "the sweep's one Query per shard over contracts expiring within 10 min",
    }
    refused = W.refused_event("5" * 88, WALLET, 123_456, 42, 1_764_000_000, 1_764_003_600_000)
    size = item_size(event_item(refused).serialize())
    out[refused.event_type] = {
        "items_in_transaction": 0,
        "bytes": size,
        "wcu_put": kb(size),  # one conditional PutItem, no transaction
        "wcu_outbox_index": kb(size),
        "wcu_when_already_told": 1,  # a failed condition still costs one unit
        "reads": "the reconciler's, once per run (hourly), not per event",
    }
    return out


def delivery_log_cost() -> dict[str, Any]:
    """The delivery log item (`dlv#{webhook_id}`) when full: what one record writes."""
    from chalicelib.adapters.delivery_log import log_key
    from chalicelib.adapters.models import ClaimItem

    entries = [
        W.Delivery(
            f"evt_{n:032x}",
            "contract.low_time",
            W.FAILING,
            3,
            1_764_000_000_000,
            1_764_000_090_000,
            1_764_000_210_000,
            503,
            "HTTP 503",
        )
        for n in range(W.DELIVERY_LOG_KEEP)
    ]
    packed = json.dumps([W.delivery_to_json(d) for d in entries], separators=(",", ":"))
    item = ClaimItem(log_key("WH-" + "x" * 16), kind="deliveries", hooks=packed, hooks_version=9, created_at_ms=1)
    size = item_size(item.serialize())
    return {"entries": W.DELIVERY_LOG_KEEP, "bytes_full": size, "wcu_per_record": kb(size), "rcu_per_read": 1}


def delivery_calls(subscribers: int = 2, failures: int = 1) -> dict[str, Any]:
    """Calls per event for the dispatcher and the delivery function: `subscribers` webhooks
    (the operator's and the wallet's) and `failures` failed first attempts."""
    counting = _Counting()
    now = [1_764_000_000_000]
    settings = Settings(webhook_retry_base_seconds=30)
    svc = WebhookDelivery(_Outbox(counting), counting, counting, counting, lambda: now[0], settings, counting)
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


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m dev.bench.webhooks")
    ap.add_argument("--out", help="merge the figures into this JSON file under 'webhooks' (e.g. .local/bench.json)")
    args = ap.parse_args(argv)
    result = {"event_written_with_the_money": event_write_cost(), **delivery_calls()}
    result["delivery_log"] = delivery_log_cost()
    result["note"] = (
        "dispatch: the 4 outbox-index Queries are per run (all shards), not per event; the "
        "UpdateItem that takes an event out of the index costs 1 WCU + 1 index WCU. Delivery: "
        "2 subscribers, the first attempt of one answered 500 (one extra SendMessage, GetItems, POST). "
        "The delivery log: one GetItem + one UpdateItem per recorded state (pending, then each outcome)."
    )
    json.dump(result, sys.stdout, indent=2)
    print()
    if args.out:
        out = Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        data = json.loads(out.read_text()) if out.exists() else {}
        data["webhooks"] = result
        out.write_text(json.dumps(data, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
