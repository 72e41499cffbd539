"""dev/bench/webhooks.py: the cost of one event, computed from the real adapter's item and
the real services (no network)."""

from dev.bench import webhooks as bench


def test_an_event_is_one_item_under_1_kb_in_the_money_transaction():
    for kind, cost in bench.event_write_cost().items():
        assert cost["items_in_transaction"] == 1, kind
        assert cost["bytes"] < 1024 and cost["wcu_transaction"] == 2 and cost["wcu_outbox_index"] == 1, kind


def test_dispatch_and_delivery_calls_per_event():
    got = bench.delivery_calls(subscribers=2, failures=1)
    assert got["dispatch_per_run_and_event"]["sqs.SendMessage"] == 2  # one per subscribed webhook
    assert got["dispatch_per_run_and_event"]["dynamodb.UpdateItem(event: out of the index)"] == 1
    assert got["delivery_per_event"]["http.POST"] == 3  # two webhooks, one of them twice
    assert got["delivery_per_event"]["sqs.SendMessage"] == 1  # the retry, queued with its delay
