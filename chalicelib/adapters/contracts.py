"""Contracts table: reads, and the mapping between items and domain Contracts.

Every payment of a contract (its rent and each extension, at most
1 + MAX_EXTENSIONS) is stored on the item, packed in one binary attribute of
93 bytes per payment (~9.4 KB at the maximum), against ~185 bytes per payment
as a list of maps: the item's size is the cost of every write to it.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable
from typing import Any

from ..domain import keys
from ..domain.contracts import ACTIVE, REFUND_QUEUED, REFUND_SENT, Contract, Payment, with_kept_coverage
from ..domain.storage import shard_of
from . import coverage
from .dynamo import batch_get, decode_token, encode_token, guarded
from .models import ContractItem, CoverageItem

PACK_VERSION = 1
KINDS = ("rent", "extend")
# kind index, seconds, price, received, at_ms (little-endian), then the 64 signature bytes
_PAYMENT = struct.Struct("<BIQQQ64s")


def pack_payments(payments: Iterable[Payment]) -> bytes:
    """Payments → bytes. ValueError for a payment that does not fit the format
    (an unknown kind, a signature that is not 64 bytes of base58, a negative figure)."""
    out = [bytes([PACK_VERSION])]
    for p in payments:
        sig = keys.decode(p.sig)
        if len(sig) != 64 or keys.encode(sig) != p.sig:
            raise ValueError(f"not a transaction signature: {p.sig!r}")
        try:
            out.append(
                _PAYMENT.pack(KINDS.index(p.kind), p.seconds, p.price_lamports, p.received_lamports, p.at_ms, sig)
            )
        except struct.error as exc:
            raise ValueError(f"payment out of range: {p}") from exc
    return b"".join(out)


def unpack_payments(data: bytes) -> tuple[Payment, ...]:
    data = bytes(data)
    if not data or data[0] != PACK_VERSION or (len(data) - 1) % _PAYMENT.size:
        raise ValueError("not a packed payment list")
    return tuple(
        Payment(keys.encode(sig), KINDS[kind], seconds, price, received, at_ms)
        for kind, seconds, price, received, at_ms, sig in _PAYMENT.iter_unpack(data[1:])
    )


def _payments(item: ContractItem) -> tuple[Payment, ...]:
    if item.payments_packed is not None:
        return unpack_payments(item.payments_packed)
    return tuple(
        Payment(p.sig, p.kind, int(p.seconds), int(p.price_lamports), int(p.received_lamports), int(p.at_ms))
        for p in (item.payments or [])
    )  # items written before packing


def to_domain(item: ContractItem) -> Contract:
    return Contract(
        contract_id=item.contract_id,
        wallet=item.wallet,
        tier=item.tier,
        device_id=item.device_id,
        status=item.status,
        version=int(item.version),
        lamports_per_hour=int(item.lamports_per_hour),
        duration_seconds=int(item.duration_seconds),
        price_lamports=int(item.price_lamports),
        received_lamports=int(item.received_lamports),
        created_at_ms=int(item.created_at_ms),
        expires_at_ms=int(item.expires_at_ms),
        payments=_payments(item),
        ended_at_ms=_int(item.ended_at_ms),
        used_lamports=_int(item.used_lamports),
        refund_lamports=_int(item.refund_lamports),
        refund_status=item.refund_status or "NONE",
        refund_tx=item.refund_tx,
        refund_reason=item.refund_reason,
        refund_lvbh=_int(item.refund_lvbh),
        refund_attempt=_int(item.refund_attempt) or 0,
        refund_fee=_int(item.refund_fee),
        refund_raw=bytes(item.refund_raw) if item.refund_raw else None,
        refund_confirmed_ms=_int(item.refund_confirmed_ms),
        low_time_for_ms=_int(item.low_time_for_ms),
        write_token=item.write_token,
        covered_ms=_int(item.covered_ms),
        covered_end_ms=_int(item.covered_end_ms),
        credit_lamports=_int(item.credit_lamports),
    )


def to_item(c: Contract, *, shards: int) -> ContractItem:
    item = ContractItem(
        c.contract_id,
        wallet=c.wallet,
        tier=c.tier,
        device_id=c.device_id,
        status=c.status,
        version=c.version,
        lamports_per_hour=c.lamports_per_hour,
        duration_seconds=c.duration_seconds,
        price_lamports=c.price_lamports,
        received_lamports=c.received_lamports,
        created_at_ms=c.created_at_ms,
        expires_at_ms=c.expires_at_ms,
        payments_packed=pack_payments(c.payments),
        ended_at_ms=c.ended_at_ms,
        used_lamports=c.used_lamports,
        refund_lamports=c.refund_lamports,
        refund_status=c.refund_status,
        refund_tx=c.refund_tx,
        refund_reason=c.refund_reason,
        refund_lvbh=c.refund_lvbh,
        refund_attempt=c.refund_attempt or None,
        refund_fee=c.refund_fee,
        refund_raw=c.refund_raw,
        refund_confirmed_ms=c.refund_confirmed_ms,
        low_time_for_ms=c.low_time_for_ms,
        write_token=c.write_token,
        covered_ms=c.covered_ms,
        covered_end_ms=c.covered_end_ms,
        credit_lamports=c.credit_lamports,
    )
    shard = shard_of(c.contract_id, shards)
    if c.status == ACTIVE:  # sparse index: only ACTIVE contracts are in active-by-expiry
        item.active_shard = shard
    if c.refund_status in (REFUND_QUEUED, REFUND_SENT):  # sparse index of refunds still owed
        item.refund_shard = shard
        item.refund_due_ms = c.ended_at_ms
    return item


def _int(v: Any) -> int | None:
    return None if v is None else int(v)


def read_back(contract_items: list[dict[str, Any]], metrics_items: list[dict[str, Any]]) -> Contract | None:
    """The contract of a BatchGetItem's answer (its raw item, if found) with its kept covered
    time (its coverage item among the metrics table's raw items: adapters/coverage.py)."""
    if not contract_items:
        return None
    c = to_domain(ContractItem.from_raw_data(contract_items[0]))
    return with_kept_coverage(c, coverage.kept(metrics_items).get(c.contract_id))


class ContractsRepo:
    """ports.ContractStore on DynamoDB."""

    def __init__(self, shards: int) -> None:
        self.shards = shards

    @guarded
    def get(self, contract_id: str) -> Contract | None:
        """One BatchGetItem, strongly consistent: the contract and its coverage item."""
        contracts, metrics = ContractItem.Meta.table_name, CoverageItem.Meta.table_name
        keys = {contracts: [{"contract_id": {"S": contract_id}}], metrics: [coverage.key(contract_id)]}
        found = batch_get(keys, consistent=(contracts, metrics))
        return read_back(found[contracts], found[metrics])

    @guarded
    def page(self, limit: int, token: str | None) -> tuple[list[Contract], str | None]:
        """One Scan call: a page of contracts and the token of the next page (and one
        BatchGetItem of the coverage items of its ACTIVE contracts)."""
        it = ContractItem.scan(limit=limit, page_size=limit, last_evaluated_key=decode_token(token, contract_id=None))
        contracts = coverage.with_coverage([to_domain(i) for i in it], consistent=False)
        return contracts, encode_token(it.last_evaluated_key)

    @guarded
    def listing(self, limit: int, token: str | None) -> tuple[list[Contract], str | None]:
        """`page` with a projection (`listing.ATTRIBUTES`: ~1/3 of a settled contract's bytes),
        its raw items read straight into Contracts (adapters/listing.py), and, as `page`, one
        BatchGetItem of the coverage items of its ACTIVE contracts."""
        from . import listing  # the ledger page's read only: not on a status request's import path

        items, key = listing.scan(limit, decode_token(token, contract_id=None))
        contracts = coverage.with_coverage([listing.row(i) for i in items], consistent=False)
        return contracts, encode_token(key)

    @guarded
    def ledger_listing(self, limit: int, token: str | None) -> tuple[list[Contract], list[dict[str, int]], str | None]:
        """`listing` and the book's counter items, in 2 calls: the Scan, then ONE BatchGetItem
        of the page's coverage items and the counters (adapters/listing.py `with_book`)."""
        from . import listing

        items, key = listing.scan(limit, decode_token(token, contract_id=None))
        contracts, counters = listing.with_book([listing.row(i) for i in items], self.shards)
        return contracts, counters, encode_token(key)

    @guarded
    def due(self, shard: int, now_ms: int, limit: int) -> list[Contract]:
        """ACTIVE contracts of `shard` expired at `now_ms`, earliest first (sparse index), with
        their covered time (one strongly consistent BatchGetItem of their coverage items)."""
        due = ContractItem.active_by_expiry.query(
            shard, ContractItem.expires_at_ms <= now_ms, limit=limit, page_size=limit
        )
        return coverage.with_coverage([to_domain(i) for i in due], consistent=True)

    @guarded
    def expiring(self, shard: int, after_ms: int, until_ms: int, limit: int) -> list[Contract]:
        """ACTIVE contracts of `shard` expiring in (after_ms, until_ms], earliest first (sparse index)."""
        return [
            to_domain(i)
            for i in ContractItem.active_by_expiry.query(
                shard,
                ContractItem.expires_at_ms.between(after_ms + 1, until_ms),
                limit=limit,
                page_size=limit,
            )
        ]

    @guarded
    def refunds_owed(self, shard: int, before_ms: int, limit: int) -> list[Contract]:
        """Contracts of `shard` whose refund is QUEUED or SENT, ended at or before `before_ms`,
        oldest first (sparse index)."""
        return [
            to_domain(i)
            for i in ContractItem.refunds_pending.query(
                shard, ContractItem.refund_due_ms <= before_ms, limit=limit, page_size=limit
            )
        ]
