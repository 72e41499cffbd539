"""Idempotency-Key over HTTP on the shared local stack: 10 concurrent
identical rents with one key → one execution and one stored answer; every other request is
either 409 idempotency_in_progress (retryable) or the stored answer replayed."""

from __future__ import annotations

import hashlib
import json
import threading

import boto3
import requests

from tests.e2e.client import price_lamports, rent_terms, signed_json
from tests.e2e.edge_support import client_from


def _idem_records(info, body_hash: str) -> list[dict]:
    ddb = boto3.client(
        "dynamodb",
        endpoint_url=info["aws_endpoint"],
        region_name="us-east-1",
        aws_access_key_id="test",
        aws_secret_access_key="test",
    )
    items, kw = (
        [],
        {
            "TableName": f"{info['table_prefix']}-claims",
            "ConsistentRead": True,
            "FilterExpression": "begins_with(pk, :p) AND #r = :h",
            "ExpressionAttributeNames": {"#r": "request"},
            "ExpressionAttributeValues": {":p": {"S": "idem#"}, ":h": {"S": body_hash}},
        },
    )
    while True:
        page = ddb.scan(**kw)
        items += page["Items"]
        if "LastEvaluatedKey" not in page:
            return items
        kw["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def test_ten_concurrent_identical_rents_execute_once_and_store_one_answer(local_stack, payer):
    treasury, url = local_stack["treasury"], local_stack["api_url"]
    wallet = payer.new_wallet()
    sig = payer.pay(wallet, treasury, price_lamports("ORIN", 1), memo=rent_terms("ORIN", 1))
    raw = json.dumps({"wallet": str(wallet.pubkey()), "tier": "ORIN", "duration_hours": 1, "tx_signature": sig})
    # signed by its wallet: a request with credentials stores its key (an anonymous one does not)
    extra = {"Content-Type": "application/json", "Idempotency-Key": f"race-{sig[:16]}"}
    headers = signed_json(wallet, "/api/rent", raw, **extra)["headers"]
    barrier, answers = threading.Barrier(10), []

    def go():
        with requests.Session() as s:  # its own connection
            barrier.wait()
            r = s.post(f"{url}/api/rent", data=raw, headers=headers, timeout=30)
            answers.append((r.status_code, r.headers.get("Idempotent-Replayed"), r.json()))

    threads = [threading.Thread(target=go) for _ in range(10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    executed = [a for a in answers if a[0] < 300 and a[1] is None]
    replayed = [a for a in answers if a[1] == "true"]
    in_progress = [a for a in answers if a[0] == 409 and a[2]["code"] == "idempotency_in_progress"]
    assert len(executed) == 1 and executed[0][0] == 201, answers
    assert len(executed) + len(replayed) + len(in_progress) == 10, answers
    assert in_progress, "no duplicate overlapped the first request: the race was not exercised"
    assert all(a[2] == executed[0][2] and a[0] == 201 for a in replayed)
    body_hash = hashlib.sha256(b"POST " + raw.encode()).hexdigest()
    (record,) = _idem_records(local_stack, body_hash)  # one stored answer
    assert record["kind"]["S"] == "idempotency" and int(record["status"]["N"]) == 201
    assert json.loads(record["response"]["S"]) == executed[0][2]

    # the retry a 409 asked for is the stored answer; another body under the key is refused
    r = requests.post(f"{url}/api/rent", data=raw, headers=headers, timeout=30)
    assert (r.status_code, r.headers.get("Idempotent-Replayed"), r.json()) == (201, "true", executed[0][2])
    other = json.dumps({**json.loads(raw), "duration_hours": 2})
    r = requests.post(
        f"{url}/api/rent", data=other, headers=signed_json(wallet, "/api/rent", other, **extra)["headers"], timeout=30
    )
    assert (r.status_code, r.json()["code"]) == (409, "idempotency_mismatch")
    assert len(_idem_records(local_stack, body_hash)) == 1


def test_a_public_memo_bound_rent_replayed_with_50_fresh_keys_stores_no_key(local_stack, payer):
    """Anyone may replay a public memo-bound rent: each answer is the payment's receipt, and no
    Idempotency-Key of a request without credentials is stored."""
    treasury, url = local_stack["treasury"], local_stack["api_url"]
    wallet = payer.new_wallet()
    sig = payer.pay(wallet, treasury, price_lamports("M2", 1), memo=rent_terms("M2", 1))
    raw = json.dumps({"wallet": str(wallet.pubkey()), "tier": "M2", "duration_hours": 1, "tx_signature": sig})
    client = client_from("127.0.0.61")
    first = client.post(f"{url}/api/rent", data=raw, headers={"Content-Type": "application/json"}, timeout=30)
    assert first.status_code == 201, first.text
    answers = [
        client.post(
            f"{url}/api/rent",
            data=raw,
            headers={"Content-Type": "application/json", "Idempotency-Key": f"fresh-{sig[:8]}-{i}"},
            timeout=30,
        )
        for i in range(50)
    ]
    assert [(r.status_code, r.json()) for r in answers] == [(200, first.json())] * 50
    assert all("Idempotent-Replayed" not in r.headers for r in answers)
    body_hash = hashlib.sha256(b"POST " + raw.encode()).hexdigest()
    assert _idem_records(local_stack, body_hash) == []
