"""PynamoDB models of the five tables (docs/data-model.md, infra/resources.yaml): the devices,
ledger and metrics tables here, the contracts table in models_contracts.py, the claims table
(and the items kept there) in models_claims.py.

Table names, endpoint and timeouts are bound once per cold start by `bind()`.
"""

from __future__ import annotations

from pynamodb.attributes import BinaryAttribute, BooleanAttribute, ListAttribute, NumberAttribute, UnicodeAttribute
from pynamodb.indexes import AllProjection, GlobalSecondaryIndex

from .models_base import SharedClientModel, TableMeta
from .models_claims import BookItem, ClaimItem, QuoteItem
from .models_contracts import ContractItem, PaymentMap

__all__ = [
    "MODELS",
    "TABLE_OF",
    "BookItem",
    "ClaimItem",
    "ContractItem",
    "CoverageItem",
    "DeviceItem",
    "LedgerItem",
    "MetricsItem",
    "PaymentMap",
    "QuoteItem",
    "bind",
]


class ByTier(GlobalSecondaryIndex["DeviceItem"]):
    class Meta:
        index_name = "by-tier"
        projection = AllProjection()

    tier = UnicodeAttribute(hash_key=True)
    device_id = UnicodeAttribute(range_key=True)


class DeviceItem(SharedClientModel):
    class Meta(TableMeta):
        pass

    device_id = UnicodeAttribute(hash_key=True)
    name = UnicodeAttribute()
    tier = UnicodeAttribute()
    uri = UnicodeAttribute()
    address = UnicodeAttribute()
    region = UnicodeAttribute()
    ram = UnicodeAttribute()
    capacity = NumberAttribute()
    leases = NumberAttribute(default=0)
    uptime = UnicodeAttribute(default="100.0%")
    audited = BooleanAttribute(default=True)
    key_hash = UnicodeAttribute(null=True)
    last_seen_ms = NumberAttribute(null=True)
    pubkey = UnicodeAttribute(null=True)  # ed25519, base58: signs the device's usage receipts
    previous_pubkeys = ListAttribute(of=UnicodeAttribute, null=True)
    by_tier = ByTier()


class ByAccount(GlobalSecondaryIndex["LedgerItem"]):
    class Meta:
        index_name = "by-account"
        projection = AllProjection()

    account = UnicodeAttribute(hash_key=True)
    account_seq = UnicodeAttribute(range_key=True)


class LedgerItem(SharedClientModel):
    class Meta(TableMeta):
        pass

    contract_id = UnicodeAttribute(hash_key=True)
    entry_id = UnicodeAttribute(range_key=True)
    account = UnicodeAttribute()
    account_seq = UnicodeAttribute()
    debit_lamports = NumberAttribute()
    credit_lamports = NumberAttribute()
    kind = UnicodeAttribute()
    created_at_ms = NumberAttribute()
    ref = UnicodeAttribute(null=True)
    by_account = ByAccount()


class MetricsItem(SharedClientModel):
    class Meta(TableMeta):
        pass

    contract_id = UnicodeAttribute(hash_key=True)
    batch_key = UnicodeAttribute(range_key=True)
    device_id = UnicodeAttribute()
    n = NumberAttribute()
    packed = BinaryAttribute(null=True, legacy_encoding=False)  # adapters/metrics.pack_rows (columnar, DEFLATE)
    samples = UnicodeAttribute(null=True)  # legacy, read only: JSON rows [ts_ms, cpu, mem, disk, net]
    ttl = NumberAttribute(null=True)
    at_ms = NumberAttribute(null=True)  # the server time the batch counted at (its covered interval ends there)
    receipt = UnicodeAttribute(null=True)  # a device-signed receipt (JSON: domain.usage_receipts.to_view)


class CoverageItem(SharedClientModel):
    """A contract's covered time (domain/coverage.py), kept in the metrics table (no index) under
    the reserved sort key `domain.metering.COVERAGE_KEY` (adapters/coverage.py)."""

    class Meta(TableMeta):
        pass

    contract_id = UnicodeAttribute(hash_key=True)
    batch_key = UnicodeAttribute(range_key=True)
    covered_ms = NumberAttribute(null=True)
    covered_end_ms = NumberAttribute(null=True)
    closed = BooleanAttribute(null=True)  # set by the transaction that ends the contract
    ttl = NumberAttribute(null=True)


MODELS = {
    "contracts": ContractItem,
    "devices": DeviceItem,
    "ledger": LedgerItem,
    "claims": ClaimItem,
    "metrics": MetricsItem,
}


TABLE_OF = {BookItem: "claims", QuoteItem: "claims", CoverageItem: "metrics"}  # models that share another's table


def bind(prefix: str, region: str, host: str | None) -> None:
    """Point every model at `{prefix}-<table>` on `host` (None = AWS)."""
    for name, model in [*MODELS.items(), *((t, m) for m, t in TABLE_OF.items())]:
        model.Meta.table_name = f"{prefix}-{name}"
        model.Meta.region = region
        model.Meta.host = host
        model._connection = None
