"""Idempotency-Key at the edge, on fakes: taken before the handler runs, one execution under a
race, Stripe replays, release on failure, take-over after a crash (ADR 0009)."""

from __future__ import annotations

import threading
import time

from chalicelib.api import endpoint, errors, rentals
from chalicelib.domain.errors import Unavailable
from chalicelib.domain.storage import IDEMPOTENCY_DONE as DONE
from chalicelib.domain.storage import IDEMPOTENCY_PENDING as PENDING
from si64.renter import renter_headers
from tests.support.fakes import new_signature

KEY = {"Idempotency-Key": "order-42"}


def signed_rent(edge, kp=None) -> tuple[str, dict]:
    """A rent signed by its wallet, with KEY: a request with credentials, whose key is stored
    (an anonymous memo-bound rent's key is not: its payment is its idempotency)."""
    import json

    from solders.keypair import Keypair

    kp = kp or Keypair()
    raw = json.dumps(edge.rent_body(wallet=str(kp.pubkey())))
    return raw, {**renter_headers(kp, "POST", "/api/rent", ts=edge.p.clock() // 1000, body=raw), **KEY}


class _Rentals:
    """The container's Rentals with `rent` replaced (Rentals is a frozen dataclass)."""

    def __init__(self, real, rent):
        self._real, self.rent = real, rent

    def __getattr__(self, name):
        return getattr(self._real, name)


def patch_rent(edge, monkeypatch, fn):
    real = edge.c.rentals
    monkeypatch.setitem(edge.c.__dict__, "rentals", _Rentals(real, fn))


def _call(edge, body: dict) -> endpoint.Call:
    import json

    raw = json.dumps(body).encode()
    return endpoint.Call(
        edge.c,
        {},
        {"idempotency-key": "order-42", "content-type": "application/json"},
        {},
        "POST",
        "/api/rent",
        raw,
        principal="ip:127.0.0.1",
    )


def test_ten_concurrent_identical_requests_run_once_and_store_one_answer(edge, monkeypatch):
    """The Idempotency-Key race at the edge: 10 threads, one key, one body. The handler is the real
    rent route on the fakes, slowed so that every duplicate arrives while the first runs."""
    body = edge.rent_body()
    executions, barrier = [], threading.Barrier(10)
    real_rent = edge.c.rentals.rent

    def slow_rent(*a, **kw):
        executions.append(threading.get_ident())
        time.sleep(0.3)
        return real_rent(*a, **kw)

    patch_rent(edge, monkeypatch, slow_rent)
    answers = []

    def go():
        barrier.wait()
        try:
            r = endpoint.run_post(edge.c, _call(edge, body), rentals.rent, "renter")
            answers.append((r.status_code, r.headers.get("Idempotent-Replayed")))
        except errors.IdempotencyInProgress:
            answers.append((409, "in_progress"))

    threads = [threading.Thread(target=go) for _ in range(10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(executions) == 1
    assert sorted(answers) == [(201, None)] + [(409, "in_progress")] * 9
    records = edge.claims_records("idem#")
    assert len(records) == 1 and next(iter(records.values()))["kind"] == DONE
    assert len(edge.p.db.tables["contracts"]) == 1
    # and afterwards every duplicate is the stored answer
    again = endpoint.run_post(edge.c, _call(edge, body), rentals.rent, "renter")
    assert (again.status_code, again.headers["Idempotent-Replayed"]) == (201, "true")
    assert len(executions) == 1


def test_same_key_same_body_replays_the_first_answer_another_body_is_a_mismatch(edge):
    from solders.keypair import Keypair

    kp = Keypair()
    body, key = signed_rent(edge, kp)
    st, first, h = edge.post("/api/rent", body, key)
    assert st == 201 and "idempotent-replayed" not in h
    st2, second, h2 = edge.post("/api/rent", body, key)
    assert (st2, second, h2["idempotent-replayed"]) == (201, first, "true")
    st3, err, _ = edge.post("/api/rent", *signed_rent(edge, kp))
    assert (st3, err["code"], err["reason"]) == (409, "idempotency_mismatch", "Idempotency-Key")
    assert len(edge.p.db.tables["contracts"]) == 1


def test_a_duplicate_while_the_first_runs_is_409_in_progress_retryable(edge, monkeypatch):
    body, KEY = signed_rent(edge)
    seen = {}
    real_rent = edge.c.rentals.rent

    def rent_with_a_duplicate_arriving(*a, **kw):
        seen["dup"] = edge.post("/api/rent", body, KEY)  # the same request, while this one runs
        return real_rent(*a, **kw)

    patch_rent(edge, monkeypatch, rent_with_a_duplicate_arriving)
    st, first, _ = edge.post("/api/rent", body, KEY)
    dup_status, dup, dup_headers = seen["dup"]
    assert st == 201
    assert (dup_status, dup["code"], dup["reason"]) == (409, "idempotency_in_progress", "Idempotency-Key")
    assert dup_headers["retry-after"] == "1"
    monkeypatch.setitem(edge.c.__dict__, "rentals", edge.c.rentals._real)
    st2, again, h2 = edge.post("/api/rent", body, KEY)  # the retry the 409 asked for
    assert (st2, again, h2["idempotent-replayed"]) == (201, first, "true")


def test_a_5xx_releases_the_key_and_the_retry_runs(edge):
    body = edge.rent_body()
    edge.p.db.fail_next("tx.open_rental", Unavailable("down", reason="database"))
    st, err, _ = edge.post("/api/rent", body, KEY)
    assert (st, err["code"]) == (503, "unavailable")
    assert edge.claims_records("idem#") == {}
    st2, ok, h2 = edge.post("/api/rent", body, KEY)
    assert st2 == 201 and "idempotent-replayed" not in h2


def test_a_bug_releases_the_key(edge, monkeypatch):
    body = edge.rent_body()
    patch_rent(edge, monkeypatch, lambda *a, **kw: (_ for _ in ()).throw(RuntimeError("bug")))
    st, err, _ = edge.post("/api/rent", body, KEY)
    assert (st, err["code"]) == (500, "internal") and edge.claims_records("idem#") == {}
    monkeypatch.setitem(edge.c.__dict__, "rentals", edge.c.rentals._real)
    assert edge.post("/api/rent", body, KEY)[0] == 201


def test_a_refusal_is_not_stored_so_the_same_key_may_succeed_later(edge):
    body = edge.rent_body()
    body_unpaid = dict(body, tx_signature=new_signature())  # never landed: 402
    st, err, _ = edge.post("/api/rent", body_unpaid, KEY)
    assert st == 402 and edge.claims_records("idem#") == {}
    assert edge.post("/api/rent", body, KEY)[0] == 201  # another body under the same key: fine, nothing stored


def test_a_crashed_holder_is_taken_over_once_its_lease_ends(edge):
    call = _call(edge, edge.rent_body())
    body, KEY = signed_rent(edge)
    # a request took the key and its process died: the in-progress record is all that is left
    scoped_before = set(edge.claims_records("idem#"))
    edge.post("/api/rent", body, KEY)  # learn the scoped key: run once, then make it look crashed
    (k,) = set(edge.claims_records("idem#")) - scoped_before
    now = edge.p.clock()
    edge.p.db.tables["claims"][k] = {
        "kind": PENDING,
        "request": edge.p.db.tables["claims"][k]["request"],
        "created_at_ms": now,
        "expires_at_ms": now + 60_000,
    }
    st, err, _ = edge.post("/api/rent", body, KEY)
    assert (st, err["code"]) == (409, "idempotency_in_progress")
    edge.p.clock.advance(60)
    st2, again, h2 = edge.post("/api/rent", body, KEY)
    assert st2 in (200, 201) and "idempotent-replayed" not in h2  # taken over and run (the rent itself is idempotent)
    assert edge.p.db.tables["claims"][k]["kind"] == DONE
    assert call.principal == "ip:127.0.0.1"


def test_credentials_are_checked_before_a_replay(edge):
    from solders.keypair import Keypair

    kp = Keypair()
    body = edge.rent_body(wallet=str(kp.pubkey()))
    import json

    raw = json.dumps(body)
    ts = edge.p.clock() // 1000
    ok = {**renter_headers(kp, "POST", "/api/rent", ts=ts, body=raw), **KEY}
    st, first, _ = edge.post("/api/rent", raw, ok)
    assert st == 201
    bad = dict(ok, **{"X-Signature": renter_headers(Keypair(), "POST", "/api/rent", ts=ts, body=raw)["X-Signature"]})
    st2, err, h2 = edge.post("/api/rent", raw, bad)
    assert (st2, err["code"]) == (401, "unauthorized") and "idempotent-replayed" not in h2
    st3, again, h3 = edge.post("/api/rent", raw, ok)
    assert (st3, again, h3["idempotent-replayed"]) == (201, first, "true")


def test_an_answer_that_could_not_be_stored_is_still_the_clients_and_the_lease_covers_retries(edge):
    body, KEY = signed_rent(edge)
    edge.p.db.fail_next("claims.finish_replay", Unavailable("down", reason="database"))
    st, first, _ = edge.post("/api/rent", body, KEY)
    assert st == 201  # committed and answered, although its record stayed in progress
    assert edge.post("/api/rent", body, KEY)[1]["code"] == "idempotency_in_progress"
    edge.p.clock.advance(60)
    st2, again, _ = edge.post("/api/rent", body, KEY)  # lease over: taken, and the rent is idempotent itself
    assert st2 in (200, 201) and again["contract_id"] == first["contract_id"]
    assert len(edge.p.db.tables["contracts"]) == 1
