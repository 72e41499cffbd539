"""The refund queue and the secrets port: fakes and real adapters (SQS on moto)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from tests.contract.conftest import REGION
from tests.support.fakes import FakeRefundQueue, FakeSecrets


@pytest.fixture(params=["fake", pytest.param("sqs", marks=pytest.mark.moto)])
def queues(request):
    """(a queue that answers, one that does not, visible messages of the first)."""
    if request.param == "fake":
        up, down = FakeRefundQueue(), FakeRefundQueue()
        down.down = True
        return up, down, lambda: [(m["contract_id"], m["version"]) for m in up.messages]
    import json
    import uuid

    from chalicelib.adapters.queue import RefundQueue

    sqs = request.getfixturevalue("moto_sqs")
    name = f"si64-contract-{uuid.uuid4().hex[:8]}"  # a fresh pair per case (PurgeQueue is rate-limited)
    queue_url = sqs.create_queue(QueueName=name)["QueueUrl"]
    sqs.create_queue(QueueName=f"{name}-dlq")
    up = RefundQueue(None, name, REGION, None, None, f"{name}-dlq")
    down = RefundQueue(None, "si64-no-such-queue", REGION, None, None, "si64-no-such-dlq")

    def visible():
        got = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, VisibilityTimeout=0).get("Messages", [])
        return [(b["contract_id"], b["version"]) for b in (json.loads(m["Body"]) for m in got)]

    return up, down, visible


def test_send_refund_queues_the_contract_and_version(queues):
    up, _, visible = queues
    assert up.depths() == {
        "refund_queue": {"visible": 0, "in_flight": 0},
        "dead_letter_queue": {"visible": 0, "in_flight": 0},
    }
    assert up.send_refund("CTR-a", 3) is True
    assert up.send_refund("CTR-b", 2) is True
    assert up.depths()["refund_queue"] == {"visible": 2, "in_flight": 0}
    assert sorted(visible()) == [("CTR-a", 3), ("CTR-b", 2)]


def test_a_queue_that_does_not_answer_is_false_never_an_error(queues):
    _, down, _ = queues
    assert down.send_refund("CTR-a", 1) is False
    assert down.depths() == {"refund_queue": None, "dead_letter_queue": None}


@pytest.fixture(params=["fake", "adapter"])
def secrets_for(request):
    if request.param == "fake":
        return FakeSecrets
    from chalicelib.adapters.secrets import Secrets

    return lambda key: Secrets(
        SimpleNamespace(
            admin_key=key, admin_key_file=None, admin_key_parameter=None, region=REGION, aws_endpoint_url=None
        )
    )


def test_is_admin(secrets_for):
    s = secrets_for("operator-key-0123")
    assert s.is_admin("operator-key-0123") is True
    assert s.is_admin("operator-key-0124") is False
    assert s.is_admin("") is False and s.is_admin(None) is False
    assert secrets_for(None).is_admin("anything") is False
    assert secrets_for("").is_admin("") is False
