"""Refund records on DynamoDB (implements `ports.RefundStore`) and the book's counters
(`ports.BookStore`).

A contract's refund (`CTR-…`) is kept on its contract item (refund_status,
refund_tx, refund_lvbh, refund_attempt, refund_fee, refund_raw, …; its version
is the contract's `version`); the refund of a payment that no contract holds
(`PAY-{sig}-{payer}`) on that payer's claim item `sig#{sig}#{payer}` (kind "refund", version
in `refund_version`). Every step is ONE TransactWriteItems: an UpdateItem of
the record conditional on the version, status and transaction it was read
with, the ledger entries (`attribute_not_exists`) and the ADD of its change to
the book's counters. A contract's refund keeps the sparse `refunds-pending`
keys while it is QUEUED or SENT and drops them when it ends.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterable
from typing import Any

from ..domain import books
from ..domain import refunds as R
from ..domain.contracts import REFUND_QUEUED, REFUND_SENT
from ..domain.errors import InvalidRequest
from ..domain.ledger import Entry
from ..domain.records import Claim, claim_key
from ..domain.storage import shard_of
from ..domain.webhooks import refund_event
from .contracts import to_domain
from .dynamo import guarded
from .models import BookItem, ClaimItem, ContractItem
from .outbox import outbox_put
from .transactions import Transactions, _transaction, book_update

PENDING = (REFUND_QUEUED, REFUND_SENT)
_FIELDS = ("refund_tx", "refund_lvbh", "refund_reason", "refund_fee", "refund_raw", "refund_confirmed_ms")


def _values(r: R.Refund) -> dict[str, Any]:
    return {
        "refund_tx": r.tx_signature,
        "refund_lvbh": r.last_valid_block_height,
        "refund_reason": r.reason,
        "refund_fee": r.fee_lamports,
        "refund_raw": r.raw,
        "refund_confirmed_ms": r.confirmed_at_ms,
    }


def _int(v: Any) -> int | None:
    return None if v is None else int(v)


def claim_refund(i: ClaimItem) -> R.Refund | None:
    if i.kind != "refund" or i.refund_status is None:
        return None
    return R.Refund(
        refund_id=i.contract_id,
        wallet=i.wallet,
        lamports=int(i.refund_lamports),
        status=i.refund_status,
        tx_signature=i.refund_tx,
        last_valid_block_height=_int(i.refund_lvbh),
        attempt=_int(i.refund_attempt) or 0,
        reason=i.refund_reason,
        version=int(i.refund_version),
        fee_lamports=_int(i.refund_fee),
        confirmed_at_ms=_int(i.refund_confirmed_ms),
        raw=bytes(i.refund_raw) if i.refund_raw else None,
    )


def _listing_token(status: str, source: str, key: dict[str, Any] | None) -> str | None:
    """The next page's token: the status it lists, the source ("c" contracts, "p" payments)
    and the index position (table key + range value) to continue after."""
    if key is None:
        return None
    if source == "c":
        pos = {"id": key["contract_id"]["S"], "at": int(key["ended_at_ms"]["N"])}
    else:
        pos = {"id": key["pk"]["S"], "at": int(key["created_at_ms"]["N"])}
    raw = json.dumps({"s": status, "src": source, **pos}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _listing_start(status: str, token: str | None) -> tuple[str, dict[str, Any] | None]:
    if not token:
        return "c", None
    try:
        doc = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
        if (
            not isinstance(doc, dict)
            or set(doc) not in ({"s", "src"}, {"s", "src", "id", "at"})
            or doc["s"] != status
            or doc["src"] not in ("c", "p")
        ):
            raise ValueError
        if "id" not in doc:
            return doc["src"], None
        if (
            not isinstance(doc["id"], str)
            or not doc["id"]
            or isinstance(doc["at"], bool)
            or not isinstance(doc["at"], int)
            or not 0 <= doc["at"] < 10**15  # a Unix time in ms; never a 38-digit DynamoDB number
        ):
            raise ValueError
    except (ValueError, TypeError, UnicodeDecodeError):
        raise InvalidRequest("'next_token' is not a token this API issued.", reason="next_token") from None
    if doc["src"] == "c":
        return "c", {
            "contract_id": {"S": doc["id"]},
            "refund_status": {"S": status},
            "ended_at_ms": {"N": str(doc["at"])},
        }
    return "p", {"pk": {"S": doc["id"]}, "refund_status": {"S": status}, "created_at_ms": {"N": str(doc["at"])}}


def _listed_refund(i: ContractItem | ClaimItem, version: float) -> R.Refund:
    """A refund from an index item of either table (contract or claim: the same refund fields;
    the record's version is the contract's `version` or the claim's `refund_version`)."""
    return R.Refund(
        refund_id=i.contract_id,
        wallet=i.wallet,
        lamports=int(i.refund_lamports or 0),
        status=i.refund_status,
        tx_signature=i.refund_tx,
        last_valid_block_height=None,
        attempt=_int(i.refund_attempt) or 0,
        reason=i.refund_reason,
        version=int(version),
        fee_lamports=_int(i.refund_fee),
        confirmed_at_ms=_int(i.refund_confirmed_ms),
    )


def _listed_contract_refund(i: ContractItem) -> R.Refund:
    return _listed_refund(i, i.version)


def _listed_payment_refund(i: ClaimItem) -> R.Refund:
    return _listed_refund(i, i.refund_version)


class RefundListingRepo:
    """ports.RefundListing: the sparse `refunds-by-status` indexes of the contracts table (ended
    contracts) and of the claims table (refunds of payments no contract holds), newest first.
    A page reads contract refunds until they run out, then payment refunds: at most two Query
    calls per page, each reading only items of the status asked (the index's hash key)."""

    @guarded
    def by_status(self, status: str, limit: int, token: str | None) -> tuple[list[R.Refund], str | None]:
        if status not in R.STATUSES:
            raise InvalidRequest(f"Unknown refund status {status[:20]!r}.", reason="status")
        source, start = _listing_start(status, token)
        out: list[R.Refund] = []
        if source == "c":
            it = ContractItem.refunds_by_status.query(
                status, scan_index_forward=False, limit=limit, page_size=limit, last_evaluated_key=start
            )
            out = [_listed_contract_refund(i) for i in it]
            if it.last_evaluated_key is not None:
                return out, _listing_token(status, "c", it.last_evaluated_key)
            if len(out) >= limit:  # the contracts are exhausted exactly here: payments next page
                return out, _listing_token_start_payments(status)
            source, start = "p", None
        pit = ClaimItem.refunds_by_status.query(
            status,
            scan_index_forward=False,
            limit=limit - len(out),
            page_size=limit - len(out),
            last_evaluated_key=start,
        )
        out += [_listed_payment_refund(i) for i in pit]
        return out, _listing_token(status, "p", pit.last_evaluated_key)

    @guarded
    def payment_refunds_owed(self, before_ms: int, limit: int) -> list[R.Refund]:
        out: list[tuple[int, R.Refund]] = []
        for status in (R.QUEUED, R.SENT):  # one Query each on the claims table's sparse index
            it = ClaimItem.refunds_by_status.query(
                status, ClaimItem.created_at_ms <= before_ms, scan_index_forward=True, limit=limit, page_size=limit
            )
            out += [(int(i.created_at_ms), _listed_payment_refund(i)) for i in it]
        return [r for _, r in sorted(out, key=lambda x: (x[0], x[1].refund_id))[:limit]]


def _listing_token_start_payments(status: str) -> str:
    raw = json.dumps({"s": status, "src": "p"}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


class RefundsRepo(RefundListingRepo):
    """ports.RefundStore (and ports.RefundListing) on DynamoDB."""

    def __init__(self, shards: int) -> None:
        self.shards = shards

    @guarded
    def get(self, refund_id: str) -> R.Refund | None:
        if R.refund_kind(refund_id) == "contract":
            try:
                return R.refund_of(to_domain(ContractItem.get(refund_id, consistent_read=True)))
            except ContractItem.DoesNotExist:
                return None
        try:
            item = ClaimItem.get(claim_key(*R.payment_of(refund_id)), consistent_read=True)
        except ClaimItem.DoesNotExist:
            return None
        return claim_refund(item)

    @guarded
    def advance(self, before: R.Refund, after: R.Refund, entries: Iterable[Entry], now_ms: int) -> None:
        if before.refund_id != after.refund_id or after.version != before.version + 1:
            raise ValueError("advance writes the next version of the same refund")
        contract = R.refund_kind(before.refund_id) == "contract"
        model = ContractItem if contract else ClaimItem
        item = ContractItem(before.refund_id) if contract else ClaimItem(claim_key(*R.payment_of(before.refund_id)))
        version = ContractItem.version if contract else ClaimItem.refund_version
        actions = [
            version.set(after.version),
            model.refund_status.set(after.status),
            model.refund_attempt.set(after.attempt),
        ]
        for name, value in _values(after).items():
            attr = getattr(model, name)
            actions.append(attr.remove() if value is None else attr.set(value))
        if contract:
            if after.status in PENDING:
                actions.append(ContractItem.refund_shard.set(shard_of(before.refund_id, self.shards)))
                if before.status not in PENDING:
                    actions.append(ContractItem.refund_due_ms.set(now_ms))
            else:
                actions += [ContractItem.refund_shard.remove(), ContractItem.refund_due_ms.remove()]
        condition = (version == before.version) & (model.refund_status == before.status)
        condition &= (
            (model.refund_tx == before.tx_signature) if before.tx_signature else model.refund_tx.does_not_exist()
        )
        with _transaction() as tx:
            tx.update("refund", item, actions, condition)
            Transactions._entries(tx, list(entries))
            book_update(
                tx,
                shard_of(before.refund_id, self.shards),
                books.delta(books.refund_contribution(before), books.refund_contribution(after)),
            )
            event = refund_event(before, after, now_ms)
            if event is not None:
                outbox_put(tx, event)

    @guarded
    def open_payment_refund(self, claim: Claim, refund: R.Refund, entries: Iterable[Entry], now_ms: int) -> None:
        item = ClaimItem(
            claim_key(claim.signature, claim.wallet),
            kind="refund",
            contract_id=refund.refund_id,
            wallet=claim.wallet,
            request=claim.request,
            response=json.dumps(claim.response, separators=(",", ":")),
            created_at_ms=now_ms,
            refund_status=refund.status,
            refund_lamports=refund.lamports,
            refund_attempt=refund.attempt,
            refund_version=refund.version,
        )
        with _transaction() as tx:
            tx.save("claim", item, ClaimItem.pk.does_not_exist())
            Transactions._entries(tx, list(entries))
            book_update(tx, shard_of(refund.refund_id, self.shards), books.delta({}, books.refund_contribution(refund)))


class BooksRepo:
    """ports.BookStore: the `shards` counter items, one BatchGetItem."""

    def __init__(self, shards: int) -> None:
        self.shards = shards

    @guarded
    def counters(self) -> list[dict[str, Any]]:
        keys = [f"book#{n}" for n in range(self.shards)]
        return [
            {name: int(getattr(i, name) or 0) for name in books.COUNTERS}
            for i in BookItem.batch_get(keys, consistent_read=True)
        ]
