"""The cross-table writes that move money or slots. Each is ONE TransactWriteItems:
either every item is written or none is, and each carries the condition that
makes a replay or a lost race a no-op (docs/data-model.md)."""
from __future__ import annotations

from pynamodb.transactions import TransactWrite

from ..domain.contracts import ACTIVE, Contract
from ..domain.ledger import Entry
from . import contracts as contracts_adapter
from . import ledger as ledger_adapter
from .claims import Claim, claim_item
from .dynamo import guarded, transaction_connection
from .models import ClaimItem, ContractItem, DeviceItem, LedgerItem, MetricsItem


class Transactions:
    """Raises domain Conflict(codes) when a condition fails; codes are per item, in order."""

    def __init__(self, shards: int):
        self.shards = shards

    def _entries(self, t: TransactWrite, entries: list[Entry]) -> None:
        for e in entries:
            t.save(ledger_adapter.to_item(e), condition=LedgerItem.entry_id.does_not_exist())

    @guarded
    def open_rental(self, claim: Claim, contract: Contract, entries: list[Entry], now_ms: int) -> None:
        """Items: [claim, device slot, contract, *ledger entries]."""
        with TransactWrite(connection=transaction_connection()) as t:
            t.save(claim_item(claim, now_ms), condition=ClaimItem.pk.does_not_exist())
            t.update(DeviceItem(contract.device_id), actions=[DeviceItem.leases.add(1)],
                     condition=DeviceItem.device_id.exists() & (DeviceItem.leases < DeviceItem.capacity))
            t.save(contracts_adapter.to_item(contract, shards=self.shards),
                   condition=ContractItem.contract_id.does_not_exist())
            self._entries(t, entries)

    @guarded
    def extend_rental(self, claim: Claim, before: Contract, after: Contract, entries: list[Entry],
                      now_ms: int) -> None:
        """Items: [claim, contract (conditional on status and version), *ledger entries]."""
        with TransactWrite(connection=transaction_connection()) as t:
            t.save(claim_item(claim, now_ms), condition=ClaimItem.pk.does_not_exist())
            t.save(contracts_adapter.to_item(after, shards=self.shards),
                   condition=(ContractItem.version == before.version) & (ContractItem.status == ACTIVE)
                   & (ContractItem.expires_at_ms > now_ms))
            self._entries(t, entries)

    @guarded
    def end_rental(self, before: Contract, after: Contract, entries: list[Entry]) -> None:
        """Items: [contract (conditional on status and version), device slot, *ledger entries]."""
        with TransactWrite(connection=transaction_connection()) as t:
            t.save(contracts_adapter.to_item(after, shards=self.shards),
                   condition=(ContractItem.version == before.version) & (ContractItem.status == ACTIVE))
            t.update(DeviceItem(before.device_id), actions=[DeviceItem.leases.add(-1)],
                     condition=DeviceItem.leases > 0)
            self._entries(t, entries)

    @guarded
    def record_metrics(self, batch: MetricsItem, device_id: str, key_hash: str, contract_id: str,
                       now_ms: int) -> None:
        """Items: [samples batch, device last-seen (conditional on the key hash), contract still live]."""
        with TransactWrite(connection=transaction_connection()) as t:
            t.save(batch, condition=MetricsItem.batch_key.does_not_exist())
            t.update(DeviceItem(device_id), actions=[DeviceItem.last_seen_ms.set(now_ms)],
                     condition=DeviceItem.key_hash == key_hash)
            t.condition_check(ContractItem, contract_id,
                              condition=(ContractItem.status == ACTIVE) & (ContractItem.expires_at_ms > now_ms)
                              & (ContractItem.device_id == device_id))
