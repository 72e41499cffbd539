"""The listing of contracts (the operator's ledger page), fake and DynamoDB Local: every state a
contract can be in reads as the whole item shows it (`listing_view` of `page`), and the ledger
page built on the listing is, to the byte, the page built on the whole items. On DynamoDB Local
the listing reads raw Scan answers (adapters/listing.py); `page` reads PynamoDB model objects."""

from __future__ import annotations

from dataclasses import replace

from chalicelib import jsontext
from chalicelib.api.views.books import ledger_response
from chalicelib.config import Settings
from chalicelib.domain import contracts as dc
from chalicelib.services.books import Books
from tests.contract.test_storage import HOUR_S, NOW, all_pages, end, extend, extended, new_contract, rent, spec
from tests.support.fakes import new_signature

MIN = 60_000
REFUND_MIN = 5000


def _covered(store, offset_ms: int = 0, seconds: int = HOUR_S) -> dc.Contract:
    """An ACTIVE contract that keeps its covered time on a coverage item (the start-up allowance)."""
    c = new_contract(now_ms=NOW + offset_ms, seconds=seconds)
    c = replace(c, covered_ms=MIN, covered_end_ms=c.created_at_ms + MIN)
    return rent(store, c)


def mixed(store) -> dict[str, dc.Contract]:
    """One contract in each state the ledger page shows, as stored."""
    store.devices.upsert(spec("dev-1"), 40)
    out: dict[str, dc.Contract] = {}
    out["active"] = rent(store, new_contract())
    a = _covered(store)  # a device report advanced its coverage item past the contract's own
    assert store.metrics.cover(a.contract_id, a.covered_end_ms, 20 * MIN, a.created_at_ms + 25 * MIN)
    out["active_covered"] = a
    out["active_allowance"] = _covered(store, 5000)  # no report yet: the item holds the allowance
    b = rent(store, new_contract(seconds=600))  # past its expiry at the pages' later time: unbooked
    out["due"] = b
    c = _covered(store, 1000, seconds=600)  # past its expiry too, billed on its covered time
    assert store.metrics.cover(c.contract_id, c.covered_end_ms, 4 * MIN, c.created_at_ms + 5 * MIN)
    out["due_covered"] = c
    x = rent(store, new_contract())
    xx = extended(x, now_ms=NOW + MIN)
    extend(store, x, xx)
    out["extended"] = xx
    s = rent(store, new_contract())
    out["confirmed"] = end(
        store,
        s,
        NOW + 10 * MIN,
        replace(
            dc.finalize(s, now_ms=NOW + 10 * MIN, refund_min_lamports=REFUND_MIN),
            refund_status=dc.REFUND_CONFIRMED,
            refund_tx=new_signature(),
            refund_raw=b"\x02" * 300,
            refund_lvbh=77,
            refund_fee=5000,
            refund_attempt=1,
            refund_confirmed_ms=NOW + 11 * MIN,
            write_token="w",
            low_time_for_ms=s.expires_at_ms,
        ),
    )
    cs = _covered(store, 2000)
    assert store.metrics.cover(cs.contract_id, cs.covered_end_ms, 3 * MIN, cs.created_at_ms + 9 * MIN)
    cs = store.contracts.get(cs.contract_id)
    out["settled_credit"] = end(
        store, cs, NOW + 30 * MIN, dc.finalize(cs, now_ms=NOW + 30 * MIN, refund_min_lamports=1)
    )
    e = rent(store, new_contract(seconds=600))
    out["expired_dust"] = end(
        store, e, e.expires_at_ms, dc.finalize(e, now_ms=e.expires_at_ms, refund_min_lamports=10**15)
    )
    q = rent(store, new_contract())
    out["sent"] = end(
        store,
        q,
        NOW + 20 * MIN,
        replace(dc.finalize(q, now_ms=NOW + 20 * MIN, refund_min_lamports=1), refund_status=dc.REFUND_SENT),
    )
    f = rent(store, new_contract())
    out["failed"] = end(
        store,
        f,
        NOW + 40 * MIN,
        replace(
            dc.finalize(f, now_ms=NOW + 40 * MIN, refund_min_lamports=1),
            refund_status=dc.REFUND_FAILED,
            refund_reason="blockhash expired 3 times",
        ),
    )
    return out


class _Wholes:
    """The ledger page's reads as they were: `listing_view` of each contract of `page` (whole
    items, PynamoDB objects on DynamoDB), then the book's counters in a call of their own."""

    def __init__(self, store) -> None:
        self.store = store

    def ledger_listing(
        self, limit: int, token: str | None
    ) -> tuple[list[dc.Contract], list[dict[str, int]], str | None]:
        page, next_token = self.store.contracts.page(limit, token)
        return [dc.listing_view(c) for c in page], self.store.book.counters(), next_token


def _books(store, contracts, now_ms: int) -> Books:
    settings = Settings(stage="test", region="us-east-1", treasury="T", refund_min_lamports=REFUND_MIN)
    return Books(contracts, store.ledger, store.devices, None, None, lambda: now_ms, settings, store.book)  # type: ignore[arg-type]


def _pages_json(books: Books, limit: int) -> list[str]:
    out, token = [], None
    while True:
        page = books.ledger_page(limit, token)
        out.append(jsontext.dumps(ledger_response(page)))
        token = page.next_token
        if token is None:
            return out


def test_listing_reads_every_state_as_the_whole_item_shows_it(store):
    made = mixed(store)
    pages, listings = all_pages(store.contracts.page, 4), all_pages(store.contracts.listing, 4)
    assert listings == [[dc.listing_view(c) for c in p] for p in pages]
    shown = {c.contract_id: c for p in listings for c in p}
    assert len(shown) == len(made)
    assert shown[made["confirmed"].contract_id].low_time_for_ms is None  # sending state: not listed
    assert shown[made["failed"].contract_id].refund_reason == "blockhash expired 3 times"
    covered = shown[made["active_covered"].contract_id]
    assert (covered.covered_ms, covered.covered_end_ms) == (20 * MIN, made["active_covered"].created_at_ms + 25 * MIN)


def test_ledger_page_on_the_listing_is_the_page_on_whole_items(store):
    """The same JSON, byte for byte, page after page, before the short contracts' expiry and
    after it (shown EXPIRED, unbooked, with the figures the sweep will book)."""
    made = mixed(store)
    for now_ms in (NOW + 5 * MIN, NOW + 45 * MIN):
        for limit in (3, 100):
            fast = _pages_json(_books(store, store.contracts, now_ms), limit)
            whole = _pages_json(_books(store, _Wholes(store), now_ms), limit)
            assert fast == whole
    late = jsontext.loads(_pages_json(_books(store, store.contracts, NOW + 45 * MIN), 100)[0])
    due = {r["contract_id"]: r for r in late["completed_settlements"]}[made["due_covered"].contract_id]
    assert (due["status"], due["booked"]) == (dc.EXPIRED, False)


def test_listing_pages_like_page_when_the_engine_stops_short_of_the_limit(store):
    """Items of ~300 KB: DynamoDB stops a Scan at 1 MB read, before the limit, and the listing
    reads on as `page` does (the same contracts and tokens, page after page)."""
    store.devices.upsert(spec("dev-1"), 20)
    for i in range(7):
        c = rent(store, new_contract(now_ms=NOW + i))
        if i % 2 == 0:
            big = replace(dc.finalize(c, now_ms=NOW + MIN, refund_min_lamports=1), refund_raw=bytes([i]) * 300_000)
            end(store, c, NOW + MIN, big)
    for limit in (2, 5, 100):
        pages, listings = all_pages(store.contracts.page, limit), all_pages(store.contracts.listing, limit)
        assert listings == [[dc.listing_view(c) for c in p] for p in pages]
        assert sum(len(p) for p in listings) == 7
    token = None
    for _ in range(4):  # the same token after each page
        (_, t1), (_, t2) = store.contracts.page(2, token), store.contracts.listing(2, token)
        assert t1 == t2
        token = t1
        if token is None:
            break


def test_ledger_listing_is_the_listing_with_the_books_counters(store):
    """The ledger page's reads in one port call: the same contracts and tokens as `listing`, and
    the counter items as `BookStore.counters` gives them (any order), before and after money moved."""
    assert store.contracts.ledger_listing(5, None) == ([], [], None)  # an empty book: no counter item yet
    made = mixed(store)
    token = None
    while True:
        rows, counters, next_token = store.contracts.ledger_listing(4, token)
        assert (rows, next_token) == store.contracts.listing(4, token)
        assert sorted(counters, key=repr) == sorted(store.book.counters(), key=repr)
        if next_token is None:
            break
        token = next_token
    total = sum(c["contracts_ACTIVE"] + c["contracts_SETTLED"] + c["contracts_EXPIRED"] for c in counters)
    assert total == len(made)
