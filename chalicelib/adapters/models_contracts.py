"""PynamoDB model of the contracts table and its indexes (docs/data-model.md)."""

from __future__ import annotations

from typing import Any

from pynamodb.attributes import BinaryAttribute, ListAttribute, MapAttribute, NumberAttribute, UnicodeAttribute
from pynamodb.indexes import AllProjection, GlobalSecondaryIndex, IncludeProjection

from .models_base import SharedClientModel, TableMeta


class PaymentMap(MapAttribute[str, Any]):
    """Legacy: items written before payments were packed (`ContractItem.payments_packed`)
    hold their rent payment here. Read, never written."""

    sig = UnicodeAttribute()
    kind = UnicodeAttribute()
    seconds = NumberAttribute()
    price_lamports = NumberAttribute()
    received_lamports = NumberAttribute()
    at_ms = NumberAttribute()


class ActiveByExpiry(GlobalSecondaryIndex["ContractItem"]):
    class Meta:
        index_name = "active-by-expiry"
        projection = AllProjection()

    active_shard = NumberAttribute(hash_key=True)
    expires_at_ms = NumberAttribute(range_key=True)


class ByWallet(GlobalSecondaryIndex["ContractItem"]):
    class Meta:
        index_name = "by-wallet"
        projection = AllProjection()

    wallet = UnicodeAttribute(hash_key=True)
    created_at_ms = NumberAttribute(range_key=True)


class RefundsPending(GlobalSecondaryIndex["ContractItem"]):
    class Meta:
        index_name = "refunds-pending"
        projection = AllProjection()

    refund_shard = NumberAttribute(hash_key=True)
    refund_due_ms = NumberAttribute(range_key=True)


class ContractRefundsByStatus(GlobalSecondaryIndex["ContractItem"]):
    """Sparse: ended contracts only (ACTIVE ones have no ended_at_ms)."""

    class Meta:
        index_name = "refunds-by-status"
        projection = IncludeProjection(
            [
                "wallet",
                "version",
                "refund_lamports",
                "refund_tx",
                "refund_reason",
                "refund_attempt",
                "refund_fee",
                "refund_confirmed_ms",
            ]
        )

    refund_status = UnicodeAttribute(hash_key=True)
    ended_at_ms = NumberAttribute(range_key=True)


class ContractItem(SharedClientModel):
    class Meta(TableMeta):
        pass

    contract_id = UnicodeAttribute(hash_key=True)
    wallet = UnicodeAttribute()
    tier = UnicodeAttribute()
    device_id = UnicodeAttribute()
    status = UnicodeAttribute()
    version = NumberAttribute()
    lamports_per_hour = NumberAttribute()
    duration_seconds = NumberAttribute()
    price_lamports = NumberAttribute()
    received_lamports = NumberAttribute()
    created_at_ms = NumberAttribute()
    expires_at_ms = NumberAttribute()
    active_shard = NumberAttribute(null=True)
    payments = ListAttribute(of=PaymentMap, null=True)  # legacy, read only (see PaymentMap)
    payments_packed = BinaryAttribute(null=True, legacy_encoding=False)  # adapters/contracts.pack_payments
    ended_at_ms = NumberAttribute(null=True)
    used_lamports = NumberAttribute(null=True)
    refund_lamports = NumberAttribute(null=True)
    refund_status = UnicodeAttribute(default="NONE")
    refund_tx = UnicodeAttribute(null=True)
    refund_reason = UnicodeAttribute(null=True)
    refund_shard = NumberAttribute(null=True)
    refund_due_ms = NumberAttribute(null=True)
    # the refund's transaction record
    refund_lvbh = NumberAttribute(null=True)
    refund_attempt = NumberAttribute(null=True)
    refund_fee = NumberAttribute(null=True)
    refund_raw = BinaryAttribute(null=True, legacy_encoding=False)
    refund_confirmed_ms = NumberAttribute(null=True)
    low_time_for_ms = NumberAttribute(null=True)  # the expiry contract.low_time was sent for
    write_token = UnicodeAttribute(null=True)
    covered_ms = NumberAttribute(null=True)  # covered time (domain/coverage.py)
    covered_end_ms = NumberAttribute(null=True)
    credit_lamports = NumberAttribute(null=True)
    active_by_expiry = ActiveByExpiry()
    by_wallet = ByWallet()
    refunds_pending = RefundsPending()
    refunds_by_status = ContractRefundsByStatus()
