"""Ledger table: immutable entries, read by contract or by account."""

from __future__ import annotations

from ..domain.ledger import Entry
from .dynamo import decode_token, encode_token, guarded
from .models import LedgerItem


def to_item(e: Entry) -> LedgerItem:
    return LedgerItem(
        e.contract_id,
        e.entry_id,
        account=e.account,
        account_seq=f"{e.created_at_ms:013d}#{e.entry_id}",
        debit_lamports=e.debit_lamports,
        credit_lamports=e.credit_lamports,
        kind=e.kind,
        created_at_ms=e.created_at_ms,
        ref=e.ref,
    )


def to_domain(i: LedgerItem) -> Entry:
    return Entry(
        i.entry_id,
        i.contract_id,
        i.account,
        int(i.debit_lamports),
        int(i.credit_lamports),
        i.kind,
        int(i.created_at_ms),
        i.ref,
    )


class LedgerRepo:
    @guarded
    def by_contract(self, contract_id: str, limit: int, token: str | None) -> tuple[list[Entry], str | None]:
        start = decode_token(token, contract_id=contract_id, entry_id=None)
        it = LedgerItem.query(contract_id, limit=limit, page_size=limit, last_evaluated_key=start, consistent_read=True)
        return [to_domain(i) for i in it], encode_token(it.last_evaluated_key)

    @guarded
    def by_account(self, account: str, limit: int, token: str | None) -> tuple[list[Entry], str | None]:
        start = decode_token(token, contract_id=None, entry_id=None, account=account, account_seq=None)
        it = LedgerItem.by_account.query(account, limit=limit, page_size=limit, last_evaluated_key=start)
        return [to_domain(i) for i in it], encode_token(it.last_evaluated_key)
