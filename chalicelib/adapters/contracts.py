"""Contracts table: reads, and the mapping between items and domain Contracts."""
from __future__ import annotations

from ..domain.contracts import ACTIVE, REFUND_QUEUED, REFUND_SENT, Contract, Payment
from .dynamo import decode_token, encode_token, guarded
from .models import ContractItem, PaymentMap


def to_domain(item: ContractItem) -> Contract:
    return Contract(
        contract_id=item.contract_id, wallet=item.wallet, tier=item.tier, device_id=item.device_id,
        status=item.status, version=int(item.version), lamports_per_hour=int(item.lamports_per_hour),
        duration_seconds=int(item.duration_seconds), price_lamports=int(item.price_lamports),
        received_lamports=int(item.received_lamports), created_at_ms=int(item.created_at_ms),
        expires_at_ms=int(item.expires_at_ms),
        payments=tuple(Payment(p.sig, p.kind, int(p.seconds), int(p.price_lamports),
                               int(p.received_lamports), int(p.at_ms)) for p in (item.payments or [])),
        ended_at_ms=_int(item.ended_at_ms), used_lamports=_int(item.used_lamports),
        refund_lamports=_int(item.refund_lamports), refund_status=item.refund_status or "NONE",
        refund_tx=item.refund_tx, refund_reason=item.refund_reason,
    )


def to_item(c: Contract, *, shards: int) -> ContractItem:
    item = ContractItem(
        c.contract_id, wallet=c.wallet, tier=c.tier, device_id=c.device_id, status=c.status,
        version=c.version, lamports_per_hour=c.lamports_per_hour, duration_seconds=c.duration_seconds,
        price_lamports=c.price_lamports, received_lamports=c.received_lamports,
        created_at_ms=c.created_at_ms, expires_at_ms=c.expires_at_ms,
        # only the rent payment is kept on the item (its size is the cost of every write);
        # each extension's payment lives in its claim and its ledger entries
        payments=[PaymentMap(sig=p.sig, kind=p.kind, seconds=p.seconds, price_lamports=p.price_lamports,
                             received_lamports=p.received_lamports, at_ms=p.at_ms) for p in c.payments[:1]],
        ended_at_ms=c.ended_at_ms, used_lamports=c.used_lamports, refund_lamports=c.refund_lamports,
        refund_status=c.refund_status, refund_tx=c.refund_tx, refund_reason=c.refund_reason,
    )
    shard = shard_of(c.contract_id, shards)
    if c.status == ACTIVE:  # sparse index: only ACTIVE contracts are in active-by-expiry
        item.active_shard = shard
    if c.refund_status in (REFUND_QUEUED, REFUND_SENT):  # sparse index of refunds still owed
        item.refund_shard = shard
        item.refund_due_ms = c.ended_at_ms
    return item


def shard_of(contract_id: str, shards: int) -> int:
    return sum(contract_id.encode()) % max(1, shards)


def _int(v):
    return None if v is None else int(v)


class ContractsRepo:
    def __init__(self, shards: int):
        self.shards = shards

    @guarded
    def get(self, contract_id: str) -> Contract | None:
        try:
            return to_domain(ContractItem.get(contract_id, consistent_read=True))
        except ContractItem.DoesNotExist:
            return None

    @guarded
    def page(self, limit: int, token: str | None) -> tuple[list[Contract], str | None]:
        """One Scan call: a page of contracts and the token of the next page."""
        it = ContractItem.scan(limit=limit, page_size=limit,
                               last_evaluated_key=decode_token(token, contract_id=None))
        contracts = [to_domain(i) for i in it]
        return contracts, encode_token(it.last_evaluated_key)

    @guarded
    def due(self, shard: int, now_ms: int, limit: int) -> list[Contract]:
        """ACTIVE contracts of `shard` with `expires_at_ms <= now_ms`, earliest first, at most
        `limit`: one Query of the sparse active-by-expiry index (only ACTIVE items are in it)."""
        it = ContractItem.active_by_expiry.query(shard, ContractItem.expires_at_ms <= now_ms,
                                                 scan_index_forward=True, limit=limit, page_size=limit)
        return [to_domain(i) for i in it]

    @guarded
    def refunds_owed(self, shard: int, before_ms: int, limit: int) -> list[Contract]:
        """Ended contracts of `shard` whose refund is QUEUED or SENT and that ended at or before
        `before_ms`, oldest first, at most `limit`: one Query of the sparse refunds-pending index."""
        it = ContractItem.refunds_pending.query(shard, ContractItem.refund_due_ms <= before_ms,
                                                scan_index_forward=True, limit=limit, page_size=limit)
        return [to_domain(i) for i in it]

    @guarded
    def scan_all(self):
        for item in ContractItem.scan():
            yield to_domain(item)
