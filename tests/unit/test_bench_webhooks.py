"""dev/bench/webhooks.py: the cost of one event, computed from the real adapter's item and
the real services (no network)."""

from dev.bench import webhooks as bench


def test_an_event_is_one_item_under_1_kb_in_the_money_transaction():
    costs = bench.event_write_cost()
    for kind in ("contract.created", "contract.settled"):
        cost = costs[kind]
        assert cost["items_in_transaction"] == 1, kind
        assert cost["bytes"] < 1024 and cost["wcu_transaction"] == 2 and cost["wcu_outbox_index"] == 1, kind


def test_low_time_is_the_marker_and_the_event_in_one_transaction_and_refused_one_put():
    costs = bench.event_write_cost()
    low = costs["contract.low_time"]
    assert low["items_in_transaction"] == 2 and low["bytes"] < 1024 and low["contract_bytes"] < 1024
    assert low["wcu_transaction"] == 4 and low["wcu_outbox_index"] == 1 and low["wcu_contract_indexes"] == 2
    refused = costs["payment.refused"]
    assert refused["items_in_transaction"] == 0 and refused["bytes"] < 1024 and refused["wcu_put"] == 1


def test_the_delivery_log_stays_under_2_kb_and_is_written_once_per_state():
    log = bench.delivery_log_cost()
    assert log["bytes_full"] < 2048 and log["wcu_per_record"] == 2
    got = bench.delivery_calls(subscribers=2, failures=1)
    assert got["dispatch_per_run_and_event"]["dynamodb.UpdateItem(delivery log)"] == 2  # pending, per webhook
    assert got["delivery_per_event"]["dynamodb.UpdateItem(delivery log)"] == 3  # one per attempt


def test_dispatch_and_delivery_calls_per_event():
    got = bench.delivery_calls(subscribers=2, failures=1)
    assert got["dispatch_per_run_and_event"]["sqs.SendMessage"] == 2  # one per subscribed webhook
    assert got["dispatch_per_run_and_event"]["dynamodb.UpdateItem(event: out of the index)"] == 1
    assert got["delivery_per_event"]["http.POST"] == 3  # two webhooks, one of them twice
    assert got["delivery_per_event"]["sqs.SendMessage"] == 1  # the retry, queued with its delay
