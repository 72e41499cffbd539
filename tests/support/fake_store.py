"""The storage fakes: one `FakeDatabase` (the five tables as dicts) and a view on it per
port (contracts, devices, claims, ledger, metrics, transactions). Imported through
`tests.support.fakes`; see its docstring for what they honour."""

from __future__ import annotations

import base64
import binascii
import copy
import functools
import json
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from typing import Any, Concatenate, ParamSpec, TypeVar

from chalicelib import jsontext
from chalicelib.domain import books
from chalicelib.domain import refunds as R
from chalicelib.domain.contracts import ACTIVE, REFUND_QUEUED, REFUND_SENT, Contract, listing_view, with_kept_coverage
from chalicelib.domain.coverage import Coverage
from chalicelib.domain.devices import Device
from chalicelib.domain.errors import Conflict, InvalidRequest, Unavailable
from chalicelib.domain.ledger import Entry
from chalicelib.domain.metering import batch_key, compress, encode_rows, unpack_rows
from chalicelib.domain.quotes import OPEN, Quote
from chalicelib.domain.records import Claim, Replay, claim_key
from chalicelib.domain.storage import IDEMPOTENCY_DONE as IDEM_DONE
from chalicelib.domain.storage import IDEMPOTENCY_PENDING as IDEM_PENDING
from chalicelib.domain.storage import IDEMPOTENCY_TTL_MS, rate_key, shard_of
from chalicelib.domain.usage_receipts import StoredReceipt, from_view, to_view
from chalicelib.domain.usage_receipts import batch_key as receipt_batch_key
from chalicelib.domain.webhooks import Delivery, Event, Webhook, ended_event, logged, opened_event, refund_event

TABLES = ("contracts", "devices", "ledger", "claims", "metrics")
_P = ParamSpec("_P")
_T = TypeVar("_T")
_V = TypeVar("_V", bound="_View")
_I = TypeVar("_I")

# --------------------------------------------------------------------------
# the shared database and its fault hooks


def database_unavailable() -> Unavailable:
    return Unavailable("The database did not answer; nothing was changed. Retry later.", reason="database")


@dataclass
class _Fault:
    exc: BaseException | None
    after: bool  # True: the call takes effect, then its answer is lost
    repeat: bool = False  # True: the call takes effect and is sent again (an SDK retry)


class FakeDatabase:
    """The five tables as dicts (key → immutable record), shared by every fake store.

    Hooks, each keyed by "port.method" (e.g. "tx.open_rental", "contracts.get"):
    * `fail_next(name, exc=None, times=1, after=False)`: the next call(s) raise `exc`
      (default Unavailable, as the adapters raise on an outage); with `after=True`
      the call is applied first (a write that landed but whose answer was lost);
    * `repeat_next(name, times=1)`: the next call(s) take effect, their answer is lost and
      the SDK sends the same call again; the caller sees what that second call answers
      (botocore retries a timed-out TransactWriteItems: the retry meets the first's writes);
    * `before_next(name, fn)`: run `fn()` once just before the next call (e.g. a
      concurrent writer that wins a race);
    * `down = True`: every call of every storage port raises Unavailable.
    `calls` lists every "port.method" called, in order.
    """

    def __init__(self, shards: int = 1) -> None:
        self.shards = shards
        self.tables: dict[str, dict[Any, Any]] = {name: {} for name in TABLES}
        self.tables["book"] = {}  # the book's counter items (kept in the claims table by the adapter)
        self.tables["webhooks"] = {}  # owner → tuple of webhooks (the adapter: whk#{owner} in claims)
        self.tables["outbox"] = {}  # event id → {"event", "pending", "dispatched_at_ms"} (adapter: evt#… in claims)
        # contract id → {"covered_ms", "covered_end_ms", "closed"} (the adapter: (contract_id, "coverage") in metrics)
        self.tables["coverage"] = {}
        self.tables["deliveries"] = {}  # webhook id → tuple of deliveries, newest first (adapter: dlv#… in claims)
        self.down = False
        self.calls: list[str] = []
        self.lock = threading.RLock()
        self._faults: dict[str, list[_Fault]] = {}
        self._hooks: dict[str, list[Callable[[], None]]] = {}

    # -- hooks -------------------------------------------------------------
    def fail_next(self, name: str, exc: BaseException | None = None, *, times: int = 1, after: bool = False) -> None:
        for _ in range(times):
            self._faults.setdefault(name, []).append(_Fault(exc or database_unavailable(), after))

    def repeat_next(self, name: str, *, times: int = 1) -> None:
        for _ in range(times):
            self._faults.setdefault(name, []).append(_Fault(None, after=True, repeat=True))

    def clear_faults(self) -> None:
        """Forget every fault and hook not yet triggered."""
        self._faults.clear()
        self._hooks.clear()

    def before_next(self, name: str, fn: Callable[[], None]) -> None:
        self._hooks.setdefault(name, []).append(fn)

    def _enter(self, view: _View, name: str) -> _Fault | None:
        self.calls.append(name)
        hooks = self._hooks.get(name)
        if hooks:
            hooks.pop(0)()
        if self.down or view.down:
            raise database_unavailable()
        faults = self._faults.get(name)
        if faults:
            fault = faults.pop(0)
            if not fault.after and fault.exc is not None:
                raise fault.exc
            return fault
        return None

    # -- inspection ----------------------------------------------------------
    def snapshot(self) -> dict[str, Any]:
        """A deep copy of every table: compare two to prove that nothing was written."""
        with self.lock:
            return copy.deepcopy(self.tables)

    def ports(self) -> dict[str, Any]:
        """Every storage port as a view on this database, keyed as `bootstrap.Container` names them."""
        return {
            "contracts": FakeContractStore(self),
            "devices": FakeDeviceStore(self),
            "ledger": FakeLedgerStore(self),
            "claims": FakeClaimStore(self),
            "metrics": FakeMetricsStore(self),
            "tx": FakeTransactions(self),
            "refunds": FakeRefundStore(self),
            "book": FakeBookStore(self),
            "webhook_store": FakeWebhookStore(self),
            "outbox": FakeOutbox(self),
            "delivery_log": FakeDeliveryLog(self),
            "quotes": FakeQuoteStore(self),
        }


def _op(fn: Callable[Concatenate[_V, _P], _T]) -> Callable[Concatenate[_V, _P], _T]:
    """Run a port method under the database lock, after its hooks and faults."""
    name = fn.__name__

    @functools.wraps(fn)
    def wrapper(self: _V, /, *args: _P.args, **kwargs: _P.kwargs) -> _T:
        fault = self.db._enter(self, f"{self.port}.{name}")
        with self.db.lock:
            result = fn(self, *args, **kwargs)
        if fault is not None and fault.repeat:  # the SDK's retry: its outcome is the answer
            with self.db.lock:
                return fn(self, *args, **kwargs)
        if fault is not None and fault.exc is not None:
            raise fault.exc
        return result

    return wrapper


class _View:
    port = ""

    def __init__(self, db: FakeDatabase) -> None:
        self.db = db
        self.down = False  # this port alone does not answer

    @property
    def shards(self) -> int:
        return self.db.shards

    def _t(self, name: str) -> dict[Any, Any]:
        return self.db.tables[name]

    def _contract(self, c: Contract) -> Contract:
        """A stored contract as the adapter reads it: with its kept covered time while ACTIVE."""
        rec = self._t("coverage").get(c.contract_id)
        if rec is None or rec.get("covered_end_ms") is None:
            return c
        return with_kept_coverage(c, Coverage(rec["covered_ms"], rec["covered_end_ms"]))


# --------------------------------------------------------------------------
# page tokens (opaque to callers; checked like the adapter checks its own)


def _encode_token(key: list[Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(key).encode()).decode().rstrip("=")


def _decode_token(token: str | None, scope: str | None = None) -> list[Any] | None:
    if not token:
        return None
    try:
        key = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
        if not isinstance(key, list) or len(key) != 3 or not all(isinstance(k, str) for k in key):
            raise ValueError
        if scope is not None and key[0] != scope:
            raise ValueError
        return key
    except (ValueError, TypeError, UnicodeDecodeError, binascii.Error):
        raise InvalidRequest("'next_token' is not a token this API issued.", reason="next_token") from None


def _page(
    items: list[_I], sort_key: Callable[[_I], tuple[Any, ...]], limit: int, token: str | None, scope: str
) -> tuple[list[_I], str | None]:
    """Items after the token's position, at most `limit`; like a DynamoDB Query, a full
    page carries a token even when nothing follows (the next page is then empty)."""
    start = _decode_token(token, scope)
    ordered = sorted(items, key=sort_key)
    if start is not None:
        ordered = [i for i in ordered if list(sort_key(i)) > start[1:]]
    page = ordered[:limit]
    next_token = _encode_token([scope, *sort_key(page[-1])]) if len(page) == limit and page else None
    return page, next_token


# --------------------------------------------------------------------------
# stores


class FakeContractStore(_View):
    port = "contracts"

    @_op
    def get(self, contract_id: str) -> Contract | None:
        c = self._t("contracts").get(contract_id)
        return None if c is None else self._contract(c)

    @_op
    def page(self, limit: int, token: str | None) -> tuple[list[Contract], str | None]:
        contracts = [self._contract(c) for c in self._t("contracts").values()]
        return _page(contracts, lambda c: (c.contract_id, ""), limit, token, "contracts")

    @_op
    def listing(self, limit: int, token: str | None) -> tuple[list[Contract], str | None]:
        contracts = [self._contract(c) for c in self._t("contracts").values()]
        rows, next_token = _page(contracts, lambda c: (c.contract_id, ""), limit, token, "contracts")
        return [listing_view(c) for c in rows], next_token

    @_op
    def ledger_listing(self, limit: int, token: str | None) -> tuple[list[Contract], list[dict[str, int]], str | None]:
        contracts = [self._contract(c) for c in self._t("contracts").values()]
        rows, next_token = _page(contracts, lambda c: (c.contract_id, ""), limit, token, "contracts")
        counters = [{n: int(rec.get(n, 0)) for n in books.COUNTERS} for rec in self._t("book").values()]
        return [listing_view(c) for c in rows], counters, next_token

    @_op
    def due(self, shard: int, now_ms: int, limit: int) -> list[Contract]:
        hits = [
            c
            for c in self._t("contracts").values()
            if c.status == ACTIVE and shard_of(c.contract_id, self.shards) == shard and c.expires_at_ms <= now_ms
        ]
        return [self._contract(c) for c in sorted(hits, key=lambda c: c.expires_at_ms)[:limit]]

    @_op
    def expiring(self, shard: int, after_ms: int, until_ms: int, limit: int) -> list[Contract]:
        hits = [
            c
            for c in self._t("contracts").values()
            if c.status == ACTIVE
            and shard_of(c.contract_id, self.shards) == shard
            and after_ms < c.expires_at_ms <= until_ms
        ]
        return sorted(hits, key=lambda c: c.expires_at_ms)[:limit]

    @_op
    def refunds_owed(self, shard: int, before_ms: int, limit: int) -> list[Contract]:
        hits = [
            c
            for c in self._t("contracts").values()
            if c.refund_status in (REFUND_QUEUED, REFUND_SENT)
            and c.ended_at_ms is not None
            and shard_of(c.contract_id, self.shards) == shard
            and c.ended_at_ms <= before_ms
        ]
        return sorted(hits, key=lambda c: c.ended_at_ms)[:limit]


_DESCRIPTION = ("name", "tier", "uri", "address", "region", "ram")


class FakeDeviceStore(_View):
    port = "devices"

    @_op
    def get(self, device_id: str) -> Device | None:
        return self._t("devices").get(device_id)

    @_op
    def by_tier(self, tier: str) -> list[Device]:
        return sorted((d for d in self._t("devices").values() if d.tier == tier), key=lambda d: d.device_id)

    @_op
    def all(self) -> list[Device]:
        return list(self._t("devices").values())

    @_op
    def upsert(self, spec: dict[str, Any], capacity: int) -> None:
        devices = self._t("devices")
        old = devices.get(spec["device_id"])
        described = {k: str(spec[k]) for k in _DESCRIPTION}
        if old is None:
            devices[spec["device_id"]] = Device(
                spec["device_id"],
                capacity=int(capacity),
                leases=0,
                uptime="100.0%",
                audited=True,
                key_hash=None,
                last_seen_ms=None,
                name=described["name"],
                tier=described["tier"],
                uri=described["uri"],
                address=described["address"],
                region=described["region"],
                ram=described["ram"],
            )
        else:
            devices[old.device_id] = replace(old, capacity=int(capacity), **described)

    @_op
    def set_key_hash(self, device_id: str, key_hash: str) -> None:
        devices = self._t("devices")
        if device_id not in devices:
            raise Conflict(["device"])
        devices[device_id] = replace(devices[device_id], key_hash=key_hash)

    @_op
    def set_pubkey(self, device_id: str, pubkey: str, before: str | None) -> Device:
        d = self._t("devices").get(device_id)
        if d is None or d.leases != 0 or d.pubkey != before:
            raise Conflict(["device"])
        kept = d.previous_pubkeys + (before,) if before is not None else d.previous_pubkeys
        updated: Device = replace(d, pubkey=pubkey, previous_pubkeys=kept)
        self._t("devices")[device_id] = updated
        return updated

    @_op
    def set_audited(self, device_id: str, audited: bool) -> Device:
        devices = self._t("devices")
        if device_id not in devices:
            raise Conflict(["device"])
        updated: Device = replace(devices[device_id], audited=bool(audited))
        devices[device_id] = updated
        return updated


class FakeClaimStore(_View):
    port = "claims"

    @_op
    def get_claim(self, signature: str, payer: str) -> Claim | None:
        rec = self._t("claims").get(claim_key(signature, payer))
        if rec is None:
            return None
        return Claim(
            signature, rec["kind"], rec["contract_id"], rec["wallet"], rec["request"], jsontext.loads(rec["response"])
        )

    def _replay(self, key: str, now_ms: int) -> Replay | None:
        rec = self._t("claims").get(f"idem#{key}")
        if rec is None or rec["expires_at_ms"] <= now_ms:
            return None
        if rec["kind"] == IDEM_PENDING:
            return Replay(rec["request"], 0, "", in_progress=True)
        return Replay(rec["request"], rec["status"], rec["response"])

    @_op
    def get_replay(self, key: str, now_ms: int) -> Replay | None:
        return self._replay(key, now_ms)

    @_op
    def begin_replay(self, key: str, body_hash: str, now_ms: int, lease_ms: int) -> Replay | None:
        seen = self._replay(key, now_ms)  # the condition of the adapter's put: no live record
        if seen is not None:
            return seen
        self._t("claims")[f"idem#{key}"] = {
            "kind": IDEM_PENDING,
            "request": str(body_hash),
            "created_at_ms": now_ms,
            "expires_at_ms": now_ms + lease_ms,
        }
        return None

    def _ours(self, key: str, started_ms: int) -> bool:
        rec = self._t("claims").get(f"idem#{key}")
        return rec is not None and rec["kind"] == IDEM_PENDING and rec["created_at_ms"] == started_ms

    @_op
    def finish_replay(self, key: str, replay: Replay, started_ms: int, now_ms: int) -> bool:
        if not self._ours(key, started_ms):
            return False
        self._t("claims")[f"idem#{key}"] = {
            "kind": IDEM_DONE,
            "request": str(replay.body_hash),
            "status": int(replay.status),
            "response": str(replay.response),
            "created_at_ms": now_ms,
            "expires_at_ms": now_ms + IDEMPOTENCY_TTL_MS,
        }
        return True

    @_op
    def release_replay(self, key: str, started_ms: int) -> None:
        if self._ours(key, started_ms):
            del self._t("claims")[f"idem#{key}"]

    @_op
    def count_request(self, subject: str, window_start_ms: int, window_ms: int, limit: int) -> int | None:
        claims = self._t("claims")
        key = rate_key(subject, window_start_ms)
        hits: int = claims.get(key, {}).get("hits", 0)
        if hits >= limit:
            return None
        claims[key] = {
            "kind": "rate",
            "hits": hits + 1,
            "created_at_ms": window_start_ms,
            "expires_at_ms": window_start_ms + window_ms,
        }
        return hits + 1


def _account_seq(e: Entry) -> str:
    return f"{e.created_at_ms:013d}#{e.entry_id}"


class FakeLedgerStore(_View):
    port = "ledger"

    @_op
    def by_contract(self, contract_id: str, limit: int, token: str | None) -> tuple[list[Entry], str | None]:
        entries = [e for (cid, _), e in self._t("ledger").items() if cid == contract_id]
        return _page(entries, lambda e: (e.entry_id, ""), limit, token, f"contract:{contract_id}")

    @_op
    def by_account(self, account: str, limit: int, token: str | None) -> tuple[list[Entry], str | None]:
        entries = [e for e in self._t("ledger").values() if e.account == account]
        return _page(entries, lambda e: (_account_seq(e), e.contract_id), limit, token, f"account:{account}")


class FakeMetricsStore(_View):
    """Batches stored as the adapter stores them (`domain.metering.encode_rows` / `compress`,
    the same content-derived key), the device stamp with the adapter's condition."""

    port = "metrics"

    @_op
    def report_context(
        self, device_id: str, contract_id: str | None, receipt_seq: int | None = None
    ) -> tuple[Device | None, Contract | None, StoredReceipt | None]:
        device = self._t("devices").get(device_id)
        if contract_id is None:
            return device, None, None
        prev = None if receipt_seq is None else self._receipt(contract_id, receipt_seq)
        c = self._t("contracts").get(contract_id)
        return device, None if c is None else self._contract(c), prev

    def _receipt(self, contract_id: str, seq: int) -> StoredReceipt | None:
        rec = self._t("metrics").get((contract_id, receipt_batch_key(seq)))
        return None if rec is None or "receipt" not in rec else from_view(json.loads(rec["receipt"]))

    @_op
    def receipt(self, contract_id: str, seq: int) -> StoredReceipt | None:
        return self._receipt(contract_id, seq)

    @_op
    def batches(self, contract_id: str) -> tuple[list[int], list[StoredReceipt]]:
        mine = sorted((k, rec) for k, rec in self._t("metrics").items() if k[0] == contract_id)
        times = [rec["at_ms"] for _, rec in mine if "at_ms" in rec]
        return times, [from_view(json.loads(rec["receipt"])) for _, rec in mine if "receipt" in rec]

    @_op
    def latest(self, contract_id: str, count: int = 100) -> list[list[Any]]:
        batches = sorted(
            ((k, rec) for k, rec in self._t("metrics").items() if k[0] == contract_id),
            key=lambda kv: kv[0],
            reverse=True,
        )
        rows: list[list[Any]] = []
        for _, rec in batches:
            rows.extend(unpack_rows(rec["packed"]) if "packed" in rec else jsontext.loads(rec["samples"]))
            if len(rows) >= count:
                break
        rows.sort(key=lambda r: r[0])
        return rows[-count:]

    @_op
    def put_batch(
        self, contract_id: str, device_id: str, rows: list[list[Any]], now_ms: int, receipt: StoredReceipt | None = None
    ) -> None:
        encoded = encode_rows(rows)  # raises on a value that is not an exact number, like the adapter
        key = (contract_id, batch_key(rows, encoded) if receipt is None else receipt_batch_key(receipt.receipt.seq))
        if key in self._t("metrics"):
            raise Conflict(["batch"])
        rec: dict[str, Any] = {"device_id": device_id, "n": len(rows), "packed": compress(encoded), "at_ms": now_ms}
        if receipt is not None:
            rec["receipt"] = json.dumps(to_view(receipt))
        self._t("metrics")[key] = rec

    @_op
    def cover(self, contract_id: str, before_end_ms: int, covered_ms: int, end_ms: int) -> bool:
        rec = self._t("coverage").get(contract_id)
        if not _coverage_unchanged(rec, before_end_ms):
            return False
        self._t("coverage")[contract_id] = {**(rec or {}), "covered_ms": covered_ms, "covered_end_ms": end_ms}
        return True

    @_op
    def stamp_device(self, device_id: str, key_hash: str, now_ms: int, every_ms: int) -> bool:
        d = self._t("devices").get(device_id)
        if d is None or d.key_hash != key_hash or (d.last_seen_ms is not None and d.last_seen_ms > now_ms - every_ms):
            return False
        self._t("devices")[device_id] = replace(d, last_seen_ms=now_ms)
        return True


# --------------------------------------------------------------------------
# transactions: check everything, then write everything (or nothing)


class _Tx:
    def __init__(self, db: FakeDatabase) -> None:
        self.db = db
        self.failed: set[str] = set()
        self.writes: list[tuple[str, Any, Any]] = []  # (table, key, new record)
        self._keys: set[tuple[str, object]] = set()

    def write(self, role: str, table: str, key: Any, record: Any, condition: Callable[[Any], bool]) -> None:
        if (table, key) in self._keys:  # DynamoDB refuses two operations on one item
            raise ValueError(f"transaction touches {table} {key!r} twice")
        self._keys.add((table, key))
        if not condition(self.db.tables[table].get(key)):
            self.failed.add(role)
        self.writes.append((table, key, record))

    def check(self, role: str, table: str, key: Any, condition: Callable[[Any], bool]) -> None:
        self.write(role, table, key, None, condition)

    def commit(self) -> None:
        if self.failed:
            raise Conflict(sorted(self.failed))
        for table, key, record in self.writes:
            if record is not None:
                self.db.tables[table][key] = record(self.db.tables[table].get(key)) if callable(record) else record


def _absent(old: object) -> bool:
    return old is None


def _coverage_unchanged(rec: dict[str, Any] | None, before_end_ms: int | None) -> bool:
    """The adapter's condition on a coverage item (adapters/coverage.py `cover_condition`): its
    end is still the one read (or it holds none: a contract opened before the item existed) and
    it is not closed."""
    if rec is None:
        return True
    return rec.get("covered_end_ms") in (None, before_end_ms) and not rec.get("closed")


class FakeTransactions(_View):
    port = "tx"

    @staticmethod
    def _claim(tx: _Tx, claim: Claim, now_ms: int) -> None:
        rec = {
            "kind": claim.kind,
            "contract_id": claim.contract_id,
            "wallet": claim.wallet,
            "request": claim.request,
            "response": jsontext.dumps(claim.response),
            "created_at_ms": now_ms,
        }
        tx.write("claim", "claims", claim_key(claim.signature, claim.wallet), rec, _absent)

    @staticmethod
    def _entries(tx: _Tx, entries: Iterable[Entry]) -> None:
        for e in entries:
            tx.write("ledger", "ledger", (e.contract_id, e.entry_id), e, _absent)

    @_op
    def open_rental(self, claim: Claim, contract: Contract, entries: Iterable[Entry], now_ms: int) -> None:
        tx = _Tx(self.db)
        self._claim(tx, claim, now_ms)
        tx.write(
            "device",
            "devices",
            contract.device_id,
            lambda d: replace(d, leases=d.leases + 1),
            lambda d: d is not None and d.leases < d.capacity,
        )
        tx.write("contract", "contracts", contract.contract_id, contract, _absent)
        if contract.covered_end_ms is not None:  # the start-up allowance
            kept = {"covered_ms": contract.covered_ms, "covered_end_ms": contract.covered_end_ms}
            tx.write("coverage", "coverage", contract.contract_id, kept, _absent)
        self._entries(tx, entries)
        _book(tx, contract.contract_id, books.delta({}, books.contract_contribution(contract)))
        _outbox(tx, opened_event(contract))
        tx.commit()

    @_op
    def extend_rental(
        self, claim: Claim, before: Contract, after: Contract, entries: Iterable[Entry], now_ms: int
    ) -> None:
        tx = _Tx(self.db)
        self._claim(tx, claim, now_ms)
        tx.write(
            "contract",
            "contracts",
            after.contract_id,
            after,
            lambda c: c is not None and c.version == before.version and c.status == ACTIVE and c.expires_at_ms > now_ms,
        )
        self._entries(tx, entries)
        _book(
            tx, after.contract_id, books.delta(books.contract_contribution(before), books.contract_contribution(after))
        )
        tx.commit()

    @_op
    def end_rental(self, before: Contract, after: Contract, entries: Iterable[Entry]) -> None:
        tx = _Tx(self.db)
        tx.write(
            "contract",
            "contracts",
            after.contract_id,
            after,
            lambda c: c is not None and c.version == before.version and c.status == ACTIVE,
        )
        if before.covered_end_ms is not None:  # close the coverage item: no report advances it any more
            tx.write(
                "coverage",
                "coverage",
                before.contract_id,
                lambda old: {**(old or {}), "closed": True},
                lambda old: _coverage_unchanged(old, before.covered_end_ms),
            )
        tx.write(
            "device",
            "devices",
            before.device_id,
            lambda d: replace(d, leases=d.leases - 1),
            lambda d: d is not None and d.leases > 0,
        )
        self._entries(tx, entries)
        _book(
            tx, after.contract_id, books.delta(books.contract_contribution(before), books.contract_contribution(after))
        )
        _outbox(tx, ended_event(after))
        tx.commit()

    @_op
    def mark_low_time(self, contract: Contract, event: Event) -> None:
        expiry = contract.expires_at_ms
        tx = _Tx(self.db)
        tx.write(
            "contract",
            "contracts",
            contract.contract_id,
            lambda c: replace(c, low_time_for_ms=expiry),
            lambda c: (
                c is not None
                and c.version == contract.version
                and c.status == ACTIVE
                and c.expires_at_ms == expiry
                and c.low_time_for_ms != expiry
            ),
        )
        _outbox(tx, event)
        tx.commit()


# --------------------------------------------------------------------------
# refunds and the book's counters


def _outbox(tx: _Tx, e: Event) -> None:
    """The event, new, in the same transaction (as the adapter's outbox_put)."""
    tx.write("outbox", "outbox", e.event_id, {"event": e, "pending": True, "dispatched_at_ms": None}, _absent)


def _book(tx: _Tx, key: str, deltas: dict[str, int]) -> None:
    """ADD `deltas` to the counter item of `key`'s shard (as the adapter's book_update)."""
    if not deltas:
        return
    shard = shard_of(key, tx.db.shards)

    def add(old: dict[str, int] | None) -> dict[str, int]:
        new = dict(old or {})
        for name, value in deltas.items():
            new[name] = new.get(name, 0) + value
        return new

    tx.write("book", "book", shard, add, lambda _: True)


def _contract_with_refund(c: Contract, r: R.Refund) -> Contract:
    return replace(
        c,
        version=r.version,
        refund_status=r.status,
        refund_tx=r.tx_signature,
        refund_lvbh=r.last_valid_block_height,
        refund_attempt=r.attempt,
        refund_reason=r.reason,
        refund_fee=r.fee_lamports,
        refund_raw=r.raw,
        refund_confirmed_ms=r.confirmed_at_ms,
    )


class FakeRefundStore(_View):
    """`ports.RefundStore`: a contract's refund on its contract record, a payment's refund on
    its claim record (kind "refund"); the same conditions as adapters/refunds.py."""

    port = "refunds"

    def _read(self, refund_id: str) -> R.Refund | None:
        if R.refund_kind(refund_id) == "contract":
            c = self._t("contracts").get(refund_id)
            return None if c is None else R.refund_of(c)
        rec = self._t("claims").get(claim_key(*R.payment_of(refund_id)))
        if rec is None or rec.get("kind") != "refund":
            return None
        refund: R.Refund = rec["refund"]
        return refund

    @_op
    def get(self, refund_id: str) -> R.Refund | None:
        return self._read(refund_id)

    @_op
    def advance(self, before: R.Refund, after: R.Refund, entries: Iterable[Entry], now_ms: int) -> None:
        if before.refund_id != after.refund_id or after.version != before.version + 1:
            raise ValueError("advance writes the next version of the same refund")

        def holds(stored: R.Refund | None) -> bool:
            return (
                stored is not None
                and stored.version == before.version
                and stored.status == before.status
                and stored.tx_signature == before.tx_signature
            )

        tx = _Tx(self.db)
        if R.refund_kind(before.refund_id) == "contract":
            tx.write(
                "refund",
                "contracts",
                before.refund_id,
                lambda c: _contract_with_refund(c, after),
                lambda c: c is not None and holds(R.refund_of(c)),
            )
        else:
            tx.write(
                "refund",
                "claims",
                claim_key(*R.payment_of(before.refund_id)),
                lambda rec: {**rec, "refund": after},
                lambda rec: rec is not None and rec.get("kind") == "refund" and holds(rec["refund"]),
            )
        FakeTransactions._entries(tx, entries)
        _book(tx, before.refund_id, books.delta(books.refund_contribution(before), books.refund_contribution(after)))
        event = refund_event(before, after, now_ms)
        if event is not None:
            _outbox(tx, event)
        tx.commit()

    @_op
    def open_payment_refund(self, claim: Claim, refund: R.Refund, entries: Iterable[Entry], now_ms: int) -> None:
        tx = _Tx(self.db)
        rec = {
            "kind": "refund",
            "contract_id": refund.refund_id,
            "wallet": claim.wallet,
            "request": claim.request,
            "response": json.dumps(claim.response, separators=(",", ":")),
            "created_at_ms": now_ms,
            "refund": refund,
        }
        tx.write("claim", "claims", claim_key(claim.signature, claim.wallet), rec, _absent)
        FakeTransactions._entries(tx, entries)
        _book(tx, refund.refund_id, books.delta({}, books.refund_contribution(refund)))
        tx.commit()

    @_op
    def by_status(self, status: str, limit: int, token: str | None) -> tuple[list[R.Refund], str | None]:
        """`ports.RefundListing`: contract refunds (ended contracts) newest first, then
        payment refunds newest first; the adapter's order and page rules."""
        if status not in R.STATUSES:
            raise InvalidRequest(f"Unknown refund status {status[:20]!r}.", reason="status")
        rows: list[tuple[str, str, str, R.Refund]] = []  # (source rank, -time, id, refund): the adapter's order
        for c in self._t("contracts").values():
            refund = R.refund_of(c)
            if c.ended_at_ms is not None and c.refund_status == status and refund is not None:
                rows.append(("0", f"{10**16 - c.ended_at_ms:017d}", c.contract_id, refund))
        for pk, rec in self._t("claims").items():
            if rec.get("kind") == "refund" and rec["refund"].status == status:
                rows.append(("1", f"{10**16 - rec['created_at_ms']:017d}", pk, rec["refund"]))
        page, token = _page(rows, lambda r: (f"{r[0]}{r[1]}", r[2]), limit, token, f"refunds:{status}")
        return [replace(r[3], raw=None, last_valid_block_height=None) for r in page], token

    @_op
    def payment_refunds_owed(self, before_ms: int, limit: int) -> list[R.Refund]:
        rows = [
            (rec["created_at_ms"], rec["refund"].refund_id, rec["refund"])
            for rec in self._t("claims").values()
            if rec.get("kind") == "refund"
            and rec["refund"].status in (REFUND_QUEUED, REFUND_SENT)
            and rec["created_at_ms"] <= before_ms
        ]
        return [replace(r[2], raw=None, last_valid_block_height=None) for r in sorted(rows)[:limit]]


class FakeBookStore(_View):
    """`ports.BookStore`: the counter items of every shard."""

    port = "book"

    @_op
    def counters(self) -> list[dict[str, Any]]:
        return [{n: int(rec.get(n, 0)) for n in books.COUNTERS} for rec in self._t("book").values()]


class FakeWebhookStore(_View):
    """ports.WebhookStore: owner → its webhooks, oldest first."""

    port = "webhooks"

    @_op
    def of(self, owner: str) -> list[Webhook]:
        return list(self._t("webhooks").get(owner, ()))

    @_op
    def add(self, webhook: Webhook, limit: int) -> None:
        hooks = self._t("webhooks").get(webhook.owner, ())
        if len(hooks) >= limit:
            raise Conflict(["webhooks"])
        self._t("webhooks")[webhook.owner] = (*hooks, webhook)

    @_op
    def remove(self, owner: str, webhook_id: str) -> bool:
        hooks = self._t("webhooks").get(owner, ())
        kept = tuple(w for w in hooks if w.webhook_id != webhook_id)
        if len(kept) == len(hooks):
            return False
        self._t("webhooks")[owner] = kept
        return True


class FakeOutbox(_View):
    """ports.Outbox: the events the fake transactions wrote."""

    port = "outbox"

    @_op
    def pending(self, shard: int, limit: int) -> list[Event]:
        events = [r["event"] for r in self._t("outbox").values() if r["pending"] and r["event"].outbox_shard == shard]
        return sorted(events, key=lambda e: e.created_ms)[:limit]

    @_op
    def get(self, event_id: str) -> Event | None:
        rec = self._t("outbox").get(event_id)
        return None if rec is None else rec["event"]

    @_op
    def add(self, event: Event) -> bool:
        if event.event_id in self._t("outbox"):
            return False
        self._t("outbox")[event.event_id] = {"event": event, "pending": True, "dispatched_at_ms": None}
        return True

    @_op
    def mark_dispatched(self, event_id: str, now_ms: int) -> bool:
        rec = self._t("outbox").get(event_id)
        if rec is None or not rec["pending"]:
            return False
        self._t("outbox")[event_id] = {**rec, "pending": False, "dispatched_at_ms": now_ms}
        return True


class FakeDeliveryLog(_View):
    """ports.DeliveryLog: webhook id → its newest deliveries."""

    port = "deliveries"

    @_op
    def of(self, webhook_id: str) -> list[Delivery]:
        return list(self._t("deliveries").get(webhook_id, ()))

    @_op
    def record(self, webhook_id: str, entry: Delivery) -> None:
        self._t("deliveries")[webhook_id] = tuple(logged(list(self._t("deliveries").get(webhook_id, ())), entry))


class FakeQuoteStore(_View):
    """Quotes as `quote#{id}` records of the claims table; `open_quotes` reads the OPEN ones of a
    shard (the adapter's sparse index), soonest expiry first."""

    port = "quotes"

    @_op
    def put_quote(self, quote: Quote, ttl_ms: int) -> None:
        key = f"quote#{quote.quote_id}"
        if key in self._t("claims"):
            raise Conflict(["quote"])
        self._t("claims")[key] = {
            "kind": "quote",
            "quote": replace(quote, status=OPEN),
            "shard": shard_of(quote.quote_id, self.shards),
            "ttl": (quote.expires_at_ms + ttl_ms) // 1000,
        }

    @_op
    def get_quote(self, quote_id: str) -> Quote | None:
        rec = self._t("claims").get(f"quote#{quote_id}")
        return None if rec is None else rec["quote"]

    @_op
    def open_quotes(self, shard: int, now_ms: int, limit: int) -> list[Quote]:
        found = [
            r["quote"]
            for k, r in self._t("claims").items()
            if k.startswith("quote#") and r["shard"] == shard and r["quote"].expires_at_ms > now_ms
        ]
        return sorted(found, key=lambda q: (q.expires_at_ms, q.quote_id))[:limit]

    @_op
    def close_quote(self, quote: Quote) -> bool:
        rec = self._t("claims").get(f"quote#{quote.quote_id}")
        if rec is None or rec["quote"].status != OPEN:
            return False
        self._t("claims")[f"quote#{quote.quote_id}"] = {**rec, "quote": quote, "shard": None}
        return True
