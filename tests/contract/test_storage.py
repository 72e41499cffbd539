"""The storage ports (contracts, devices, claims, ledger, metrics, transactions):
one suite, run against the fakes and against the DynamoDB adapters on moto."""

from __future__ import annotations

import itertools
import json
from dataclasses import replace
from decimal import Decimal

import pytest

from chalicelib.domain import contracts as dc
from chalicelib.domain import ledger
from chalicelib.domain.errors import Conflict, InvalidRequest
from chalicelib.domain.records import Claim
from chalicelib.domain.storage import shard_of
from tests.contract.conftest import SHARDS
from tests.support.fakes import new_signature, new_wallet

NOW = 1_764_000_000_000
HOUR_S = 3600
_ids = itertools.count(1)


def spec(device_id: str, tier: str = "M2", **kw) -> dict:
    return dict(
        {
            "device_id": device_id,
            "name": f"name-{device_id}",
            "tier": tier,
            "uri": f"{device_id}.example",
            "address": "10.0.0.1",
            "region": "Test",
            "ram": "8GB",
        },
        **kw,
    )


def contract_id(shard: int | None = None) -> str:
    """A fresh contract id (in `shard` when given)."""
    while True:
        cid = f"CTR-contract-{next(_ids):06d}"
        if shard is None or shard_of(cid, SHARDS) == shard:
            return cid


def new_contract(
    device_id: str = "dev-1",
    *,
    cid: str | None = None,
    now_ms: int = NOW,
    seconds: int = HOUR_S,
    wallet: str | None = None,
) -> dc.Contract:
    price = dc.money.price_lamports(dc.money.TIERS["M2"].lamports_per_hour, seconds)
    return dc.open_contract(
        contract_id=cid or contract_id(),
        wallet=wallet or new_wallet(),
        tier="M2",
        device_id=device_id,
        seconds=seconds,
        received_lamports=price + 1000,
        sig=new_signature(),
        now_ms=now_ms,
    )


def claim_for(c: dc.Contract, sig: str | None = None, kind: str = "rent") -> Claim:
    return Claim(
        sig or c.payments[-1].sig,
        kind,
        c.contract_id,
        c.wallet,
        f"fp-{c.contract_id}",
        {"contract_id": c.contract_id, "status": c.status, "nested": {"lamports": [1, 2]}},
    )


def rent(store, c: dc.Contract, now_ms: int = NOW, claim: Claim | None = None) -> dc.Contract:
    store.tx.open_rental(claim or claim_for(c), c, ledger.payment_postings(c, c.payments[0]), now_ms)
    return c


def extended(c: dc.Contract, seconds: int = HOUR_S, now_ms: int = NOW) -> dc.Contract:
    price = dc.extension_price(c, seconds)
    return dc.extend(
        c, seconds=seconds, received_lamports=price, sig=new_signature(), now_ms=now_ms, max_seconds=100 * HOUR_S
    )


def extend(store, before: dc.Contract, after: dc.Contract, now_ms: int = NOW, claim: Claim | None = None):
    store.tx.extend_rental(
        claim or claim_for(after, kind="extend"),
        before,
        after,
        ledger.payment_postings(after, after.payments[-1]),
        now_ms,
    )


def end(store, before: dc.Contract, now_ms: int, after: dc.Contract | None = None) -> dc.Contract:
    after = after or dc.finalize(before, now_ms=now_ms, refund_min_lamports=1)
    store.tx.end_rental(before, after, ledger.settlement_postings(after))
    return after


def conflict(fn, *args, **kwargs) -> set[str]:
    with pytest.raises(Conflict) as exc:
        fn(*args, **kwargs)
    return exc.value.failed


def leases(store, device_id: str) -> int:
    return store.devices.get(device_id).leases


def all_pages(read, limit: int) -> list[list]:
    pages, token = [], None
    while True:
        page, token = read(limit, token)
        assert len(page) <= limit
        pages.append(page)
        if token is None:
            return pages
        assert len(pages) < 50


ROWS = [
    [NOW - 2000, Decimal("12.5"), Decimal(40), Decimal("0.125"), Decimal(1000)],
    [NOW - 1000, Decimal(13), Decimal("41.75"), Decimal(0), Decimal("2E+3")],
]
ROWS_READ = [[NOW - 2000, 12.5, 40, 0.125, 1000], [NOW - 1000, 13, 41.75, 0, 2000.0]]


@pytest.fixture
def dev(store):
    """Device dev-1 (capacity 2) with key hash "k1" and dev-2 (capacity 1) with "k2"."""
    store.devices.upsert(spec("dev-1"), 2)
    store.devices.upsert(spec("dev-2", tier="ORIN"), 1)
    store.devices.set_key_hash("dev-1", "k1")
    store.devices.set_key_hash("dev-2", "k2")
    return store


# ---------------------------------------------------------------- devices


def test_device_upsert_creates_then_updates_description_and_capacity_only(store):
    assert store.devices.get("dev-9") is None
    store.devices.upsert(spec("dev-9"), 3)
    d = store.devices.get("dev-9")
    assert (d.device_id, d.name, d.tier, d.uri, d.address, d.region, d.ram) == (
        "dev-9",
        "name-dev-9",
        "M2",
        "dev-9.example",
        "10.0.0.1",
        "Test",
        "8GB",
    )
    assert (d.capacity, d.leases, d.uptime, d.audited, d.key_hash, d.last_seen_ms) == (3, 0, "100.0%", True, None, None)
    store.devices.set_key_hash("dev-9", "h")
    rent(store, new_contract("dev-9"))
    store.devices.upsert(spec("dev-9", name="renamed", ram="16GB"), 5)
    d = store.devices.get("dev-9")
    assert (d.name, d.ram, d.capacity, d.leases, d.key_hash) == ("renamed", "16GB", 5, 1, "h")


def test_device_by_tier_and_all(store):
    for i, tier in ((3, "M2"), (1, "M2"), (2, "ORIN"), (4, "M2")):
        store.devices.upsert(spec(f"dev-{i}", tier=tier), 1)
    assert [d.device_id for d in store.devices.by_tier("M2")] == ["dev-1", "dev-3", "dev-4"]
    assert [d.device_id for d in store.devices.by_tier("THOR")] == []
    assert sorted(d.device_id for d in store.devices.all()) == ["dev-1", "dev-2", "dev-3", "dev-4"]


def test_set_key_hash(dev):
    assert dev.devices.get("dev-1").key_hash == "k1"
    dev.devices.set_key_hash("dev-1", "k1b")
    assert dev.devices.get("dev-1").key_hash == "k1b"


def test_set_key_hash_of_unknown_device_is_a_device_conflict(request, store):
    before = store.snapshot()
    assert conflict(store.devices.set_key_hash, "dev-nope", "h") == {"device"}
    assert store.snapshot() == before


# ---------------------------------------------------------------- open_rental


def test_open_rental_writes_claim_slot_contract_and_entries(dev):
    c = rent(dev, new_contract())
    assert dev.contracts.get(c.contract_id) == c
    assert leases(dev, "dev-1") == 1
    assert dev.claims.get_claim(c.payments[0].sig, c.wallet) == claim_for(c)
    entries, _ = dev.ledger.by_contract(c.contract_id, 10, None)
    assert entries == sorted(ledger.payment_postings(c, c.payments[0]), key=lambda e: e.entry_id)
    assert ledger.balance(entries) == 0


def test_open_rental_on_a_full_device_writes_nothing(dev):
    rent(dev, new_contract("dev-2"))
    before = dev.snapshot()
    assert conflict(rent, dev, new_contract("dev-2")) == {"device"}
    assert dev.snapshot() == before


def test_open_rental_on_an_unknown_device(dev):
    before = dev.snapshot()
    assert conflict(rent, dev, new_contract("dev-nope")) == {"device"}
    assert dev.snapshot() == before


def test_open_rental_replayed_reports_claim_contract_ledger_and_outbox(dev):
    c = rent(dev, new_contract())
    before = dev.snapshot()
    assert conflict(rent, dev, c) == {"claim", "contract", "ledger", "outbox"}
    assert dev.snapshot() == before and leases(dev, "dev-1") == 1


def test_open_rental_with_a_claimed_signature_writes_nothing(dev):
    first = rent(dev, new_contract())
    second = new_contract(wallet=first.wallet)
    before = dev.snapshot()
    assert conflict(rent, dev, second, claim=claim_for(second, sig=first.payments[0].sig)) == {"claim"}
    assert dev.snapshot() == before
    assert dev.contracts.get(second.contract_id) is None and leases(dev, "dev-1") == 1


def test_a_claim_is_per_signature_and_payer(dev):
    first = rent(dev, new_contract())
    cosigner = new_contract()  # another payer of the same transaction: its share is its own claim
    rent(dev, cosigner, claim=claim_for(cosigner, sig=first.payments[0].sig))
    assert dev.claims.get_claim(first.payments[0].sig, first.wallet) == claim_for(first)
    assert dev.claims.get_claim(first.payments[0].sig, cosigner.wallet).contract_id == cosigner.contract_id
    assert leases(dev, "dev-1") == 2


def test_open_rental_reports_every_failed_role(dev):
    first = rent(dev, new_contract("dev-2"))
    second = new_contract("dev-2", wallet=first.wallet)
    before = dev.snapshot()
    assert conflict(rent, dev, second, claim=claim_for(second, sig=first.payments[0].sig)) == {"claim", "device"}
    assert dev.snapshot() == before


def test_transaction_touching_one_item_twice_is_refused_whole(dev):
    c = new_contract()
    entries = ledger.payment_postings(c, c.payments[0])
    before = dev.snapshot()
    with pytest.raises(Exception) as exc:
        dev.tx.open_rental(claim_for(c), c, entries + entries[:1], NOW)
    assert not isinstance(exc.value, Conflict)
    assert dev.snapshot() == before


# ---------------------------------------------------------------- extend_rental


def test_extend_rental_replaces_the_contract(dev):
    c = rent(dev, new_contract())
    after = extended(c, now_ms=NOW + 1000)
    extend(dev, c, after, NOW + 1000)
    got = dev.contracts.get(c.contract_id)
    assert (got.version, got.expires_at_ms, got.duration_seconds, got.received_lamports) == (
        2,
        c.expires_at_ms + HOUR_S * 1000,
        2 * HOUR_S,
        after.received_lamports,
    )
    assert dev.claims.get_claim(after.payments[-1].sig, after.wallet).kind == "extend"
    entries, _ = dev.ledger.by_contract(c.contract_id, 10, None)
    assert len(entries) == 4 and ledger.balance(entries) == 0


def test_extend_rental_keeps_extension_payments(request, dev):
    c = rent(dev, new_contract())
    after = extended(c)
    extend(dev, c, after)
    assert dev.contracts.get(c.contract_id) == after


@pytest.mark.parametrize("case", ["stale_version", "expired", "ended", "missing"])
def test_extend_rental_contract_condition(dev, case):
    c = rent(dev, new_contract())
    now, before = NOW + 1000, c
    if case == "stale_version":
        newer = extended(c)
        extend(dev, c, newer)
        after = extended(c)  # built from the old version
    elif case == "expired":
        now = c.expires_at_ms  # expires_at_ms > now no longer holds
        after = extended(c)
    elif case == "ended":
        end(dev, c, NOW + 500)
        after = extended(c)
    else:
        before = new_contract()
        after = extended(before)
    snap = dev.snapshot()
    # the stale extension's entries carry the ids of the one that won (ids follow the version)
    expected = {"contract", "ledger"} if case == "stale_version" else {"contract"}
    assert conflict(extend, dev, before, after, now) == expected
    assert dev.snapshot() == snap


def test_extend_rental_with_a_claimed_signature_writes_nothing(dev):
    c = rent(dev, new_contract())
    after = extended(c)
    snap = dev.snapshot()
    assert conflict(extend, dev, c, after, claim=claim_for(c)) == {"claim"}
    assert dev.snapshot() == snap and dev.contracts.get(c.contract_id) == c


# ---------------------------------------------------------------- end_rental


def test_end_rental_settles_frees_the_slot_and_posts(dev):
    c = rent(dev, new_contract())
    after = end(dev, c, NOW + 600_000)
    got = dev.contracts.get(c.contract_id)
    assert got == after and got.status == dc.SETTLED and got.refund_status == dc.REFUND_QUEUED
    assert leases(dev, "dev-1") == 0
    entries, _ = dev.ledger.by_contract(c.contract_id, 10, None)
    assert ledger.balance(entries) == 0 and {e.kind for e in entries} == {"rent", "settled"}


def test_end_rental_twice_reports_contract_device_ledger_and_outbox(dev):
    c = rent(dev, new_contract())
    end(dev, c, NOW + 1000)
    snap = dev.snapshot()
    assert conflict(end, dev, c, NOW + 2000) == {"contract", "device", "ledger", "outbox"}
    assert dev.snapshot() == snap


def test_end_rental_needs_a_lease_to_free(dev):
    c = rent(dev, new_contract())
    dev.devices.upsert(spec("dev-3"), 1)  # no leases
    snap = dev.snapshot()
    assert conflict(end, dev, replace(c, device_id="dev-3"), NOW + 1000) == {"device"}
    assert dev.snapshot() == snap and dev.contracts.get(c.contract_id).status == dc.ACTIVE


def test_end_rental_lost_to_an_extension(dev):
    c = rent(dev, new_contract())
    extend(dev, c, extended(c))
    snap = dev.snapshot()
    assert conflict(end, dev, c, NOW + 1000) == {"contract"}
    assert dev.snapshot() == snap


# ---------------------------------------------------------------- metrics


@pytest.mark.parametrize("case", ["both", "no_contract", "no_device", "neither"])
def test_report_context_is_what_the_two_gets_give_and_writes_nothing(dev, case):
    c = rent(dev, new_contract())
    device_id = "dev-nope" if case in ("no_device", "neither") else "dev-1"
    cid = contract_id() if case in ("no_contract", "neither") else c.contract_id
    snap = dev.snapshot()
    got = dev.metrics.report_context(device_id, cid)
    assert got == (dev.devices.get(device_id), dev.contracts.get(cid), None)
    assert (got[0] is None) == (device_id == "dev-nope") and (got[1] is None) == (cid != c.contract_id)
    if got[0] is not None:
        assert got[0].key_hash == "k1" and got[0].leases == 1
    assert dev.snapshot() == snap


def test_report_context_sees_the_latest_contract_write(dev):
    """The contract half is strongly consistent: an extension just written is what it reads."""
    c = rent(dev, new_contract())
    after = extended(c)
    extend(dev, c, after)
    assert dev.metrics.report_context("dev-1", c.contract_id)[1] == after


def test_put_batch_stores_rows_exactly(dev):
    c = rent(dev, new_contract())
    assert dev.metrics.latest(c.contract_id) == []
    snap = dev.snapshot()
    dev.metrics.put_batch(c.contract_id, "dev-1", ROWS, NOW + 5)
    assert dev.metrics.latest(c.contract_id) == ROWS_READ
    # exact values back, as sent (not floats): 2E+3 stays 2E+3, 12.5 stays Decimal
    assert [[str(v) for v in r] for r in dev.metrics.latest(c.contract_id)] == [[str(v) for v in r] for r in ROWS]
    after = dev.snapshot()
    # one item in the metrics table and nothing else touched (no device stamp, no contract write)
    metrics = next(t for t in after if t.endswith("metrics"))
    assert {t: after[t] for t in after if t != metrics} == {t: snap[t] for t in snap if t != metrics}
    assert len(after[metrics]) == len(snap[metrics]) + 1


def test_put_batch_retried_is_stored_once(dev):
    c = rent(dev, new_contract())
    dev.metrics.put_batch(c.contract_id, "dev-1", ROWS, NOW + 5)
    snap = dev.snapshot()
    assert conflict(dev.metrics.put_batch, c.contract_id, "dev-1", ROWS, NOW + 9) == {"batch"}
    assert dev.snapshot() == snap
    # the same first timestamp with other samples is another batch
    dev.metrics.put_batch(c.contract_id, "dev-1", [ROWS[0][:4] + [Decimal(7)]], NOW + 9)
    assert len(dev.metrics.latest(c.contract_id)) == 3


def test_put_batch_of_120_samples_round_trips(dev):
    c = rent(dev, new_contract())
    rows = [
        [NOW - 120_000 + 500 * i, Decimal(f"{i % 100}.25"), 6144 + i, Decimal("0.000001") * i, Decimal(i)]
        for i in range(120)
    ]
    dev.metrics.put_batch(c.contract_id, "dev-1", rows, NOW)
    got = dev.metrics.latest(c.contract_id, count=120)
    assert got == rows and [type(r[0]) for r in got] == [int] * 120


@pytest.mark.parametrize("case", ["fresh", "stale", "recent", "wrong_key", "unknown_device"])
def test_stamp_device_at_most_once_per_interval(dev, case):
    every = 60_000
    device, key, now = "dev-1", "k1", NOW
    if case == "stale":
        assert dev.metrics.stamp_device(device, key, NOW - every, every) is True
    elif case == "recent":
        assert dev.metrics.stamp_device(device, key, NOW - every + 1, every) is True
    elif case == "wrong_key":
        key = "k2"
    elif case == "unknown_device":
        device = "dev-nope"
    snap = dev.snapshot()
    written = dev.metrics.stamp_device(device, key, now, every)
    assert written is (case in ("fresh", "stale"))
    if written:
        assert dev.devices.get(device).last_seen_ms == now
    else:
        assert dev.snapshot() == snap


def test_metrics_latest_reads_items_of_the_json_format(dev, request):
    """Items written before the packed format (`samples`: JSON text) still read, with newer ones."""
    c = rent(dev, new_contract())
    legacy = [[NOW - 3000, 12.5, 40, 0.125, 1000], [NOW - 2500, 13, 41.75, 0, 2000.0]]
    text = json.dumps(legacy, separators=(",", ":"))
    if dev.name == "fake":
        dev.metrics.db.tables["metrics"][(c.contract_id, f"{NOW - 3000:013d}#legacy")] = {
            "device_id": "dev-1",
            "n": 2,
            "samples": text,
        }
    else:
        from chalicelib.adapters.models import MetricsItem

        MetricsItem(c.contract_id, f"{NOW - 3000:013d}#legacy", device_id="dev-1", n=2, samples=text).save()
    dev.metrics.put_batch(c.contract_id, "dev-1", ROWS, NOW)
    got = dev.metrics.latest(c.contract_id)
    assert (
        got
        == [
            [NOW - 3000, Decimal("12.5"), 40, Decimal("0.125"), 1000],
            [NOW - 2500, 13, Decimal("41.75"), 0, Decimal("2000.0")],
        ]
        + ROWS_READ
    )
    assert all(not isinstance(v, float) for r in got for v in r)


def test_metrics_latest_is_the_newest_rows_oldest_first(dev):
    c = rent(dev, new_contract())
    for b in range(3):
        rows = [[NOW - 10_000 + b * 1000 + i, Decimal(b), Decimal(i), Decimal(0), Decimal(0)] for i in range(2)]
        dev.metrics.put_batch(c.contract_id, "dev-1", rows, NOW)
    got = dev.metrics.latest(c.contract_id, count=3)
    assert [r[0] for r in got] == [NOW - 9000 + 1, NOW - 8000, NOW - 8000 + 1]
    assert len(dev.metrics.latest(c.contract_id)) == 6


# ---------------------------------------------------------------- claims / idempotency


def test_claim_round_trip(dev):
    assert dev.claims.get_claim(new_signature(), new_wallet()) is None
    c = rent(dev, new_contract())
    got = dev.claims.get_claim(c.payments[0].sig, c.wallet)
    assert got == claim_for(c)
    got.response["status"] = "tampered"
    assert dev.claims.get_claim(c.payments[0].sig, c.wallet) == claim_for(c)


# Idempotency-Key records and rate-limit windows: tests/contract/test_edge_records.py


# ---------------------------------------------------------------- contract reads


def test_contract_get(dev):
    assert dev.contracts.get(contract_id()) is None
    c = rent(dev, new_contract())
    assert dev.contracts.get(c.contract_id) == c


def test_contract_pages_cover_every_contract_once(store):
    store.devices.upsert(spec("dev-1"), 10)
    made = {rent(store, new_contract()).contract_id for _ in range(5)}
    pages = all_pages(store.contracts.page, 2)
    seen = [c.contract_id for p in pages for c in p]
    assert sorted(seen) == sorted(made)
    with pytest.raises(InvalidRequest) as exc:
        store.contracts.page(2, "not-a-token")
    assert exc.value.reason == "next_token"


def _in_shard(store, shard: int, specs: list[tuple[int, str]]) -> dict[str, dc.Contract]:
    """Contracts of `shard` opened at NOW + offset, then ended (`ended`, `dust`) or left ACTIVE."""
    store.devices.upsert(spec("dev-s"), 100)
    out = {}
    for offset, state in specs:
        c = rent(store, new_contract("dev-s", cid=contract_id(shard), now_ms=NOW + offset, seconds=HOUR_S))
        if state == "ended":
            c = end(store, c, NOW + offset + 1000)
        elif state == "dust":
            c = end(
                store,
                c,
                NOW + offset + 1000,
                after=replace(dc.finalize(c, now_ms=NOW + offset + 1000, refund_min_lamports=10**15)),
            )
        elif state == "sent":
            ended = dc.finalize(c, now_ms=NOW + offset + 1000, refund_min_lamports=1)
            c = end(store, c, NOW + offset + 1000, after=replace(ended, refund_status=dc.REFUND_SENT))
        out[f"{state}@{offset}"] = c
    return out


def test_due_reads_active_contracts_of_the_shard_earliest_first(store):
    made = _in_shard(store, 1, [(3000, "active"), (1000, "active"), (2000, "ended"), (0, "active"), (5000, "active")])
    _in_shard(store, 2, [(0, "active")])
    at = NOW + HOUR_S * 1000 + 3000  # exactly the expiry of active@3000: due (<=)
    got = [c.contract_id for c in store.contracts.due(1, at, 10)]
    assert got == [made[k].contract_id for k in ("active@0", "active@1000", "active@3000")]
    assert [c.contract_id for c in store.contracts.due(1, at, 2)] == got[:2]
    assert store.contracts.due(1, NOW, 10) == []
    assert store.contracts.due(1, at, 1) == [made["active@0"]]
    assert store.contracts.due(3, at, 10) == []


def test_due_sees_every_shard_once(store):
    store.devices.upsert(spec("dev-1"), 50)
    made = {rent(store, new_contract()).contract_id for _ in range(12)}
    late = NOW + 10 * HOUR_S * 1000
    per_shard = [[c.contract_id for c in store.contracts.due(s, late, 100)] for s in range(SHARDS)]
    assert sorted(cid for ids in per_shard for cid in ids) == sorted(made)
    for s, ids in enumerate(per_shard):
        assert all(shard_of(cid, SHARDS) == s for cid in ids)


def test_refunds_owed_reads_queued_and_sent_of_the_shard_oldest_first(store):
    made = _in_shard(
        store, 1, [(4000, "ended"), (1000, "sent"), (2000, "dust"), (3000, "active"), (0, "ended"), (6000, "ended")]
    )
    _in_shard(store, 2, [(0, "ended")])
    before = NOW + 4000 + 1000  # exactly when ended@4000 ended: owed (<=)
    got = [c.contract_id for c in store.contracts.refunds_owed(1, before, 10)]
    assert got == [made[k].contract_id for k in ("ended@0", "sent@1000", "ended@4000")]
    assert store.contracts.refunds_owed(1, before, 2) == [made["ended@0"], made["sent@1000"]]
    assert store.contracts.refunds_owed(1, NOW, 10) == []
    assert store.contracts.refunds_owed(3, before, 10) == []


# ---------------------------------------------------------------- ledger reads


def test_ledger_by_contract_pages_in_entry_order(dev):
    c = rent(dev, new_contract())
    after = extended(c)
    extend(dev, c, after)
    end(dev, after, NOW + 1000)
    other = rent(dev, new_contract())
    pages = all_pages(lambda n, t: dev.ledger.by_contract(c.contract_id, n, t), 3)
    ids = [e.entry_id for p in pages for e in p]
    assert ids == sorted(ids) and len(ids) == 7 and all(i.startswith(c.contract_id) for i in ids)
    _, token = dev.ledger.by_contract(c.contract_id, 3, None)
    for bad in ("not-a-token", token):  # a token of another contract is refused too
        with pytest.raises(InvalidRequest) as exc:
            dev.ledger.by_contract(other.contract_id, 3, bad)
        assert exc.value.reason == "next_token"
    assert dev.ledger.by_contract(contract_id(), 3, None) == ([], None)


def test_ledger_by_account_pages_in_time_order(dev):
    a = rent(dev, new_contract(now_ms=NOW + 2000))
    b = rent(dev, new_contract(now_ms=NOW + 1000))
    end(dev, a, NOW + 5000)
    end(dev, b, NOW + 4000)
    pages = all_pages(lambda n, t: dev.ledger.by_account(ledger.TREASURY, n, t), 1)
    got = [(e.created_at_ms, e.contract_id) for p in pages for e in p]
    assert got == [(NOW + 1000, b.contract_id), (NOW + 2000, a.contract_id)]
    revenue = [e.contract_id for p in all_pages(lambda n, t: dev.ledger.by_account(ledger.REVENUE, n, t), 5) for e in p]
    assert revenue == [b.contract_id, a.contract_id]
    with pytest.raises(InvalidRequest):
        dev.ledger.by_account(ledger.REVENUE, 1, "not-a-token")
