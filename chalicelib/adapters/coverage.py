"""A contract's covered time, kept apart from the contract (docs/adr/0016-covered-time.md): one
small item per contract in the metrics table, (`contract_id`, `COVERAGE_KEY`), in no index, so
that advancing it costs 1 WCU where the contract item (two indexes with projection ALL) cost 3.

- Rent writes it, holding the start-up allowance, in the rent's transaction (`open_item`).
- Each device report advances it with ONE conditional UpdateItem (`MetricsRepo.cover`): its end
  is still the one the report read, and it is not closed.
- The transaction that ends the contract closes it (`close_item`) on the condition that its end
  is still the one the settlement read: a report that lands first makes the settlement read again
  (it is billed), one that comes after finds the item closed (it is refused); none is lost.
- Reads take it with the contract (one BatchGetItem) and put it on the domain Contract while the
  contract is ACTIVE (`domain.contracts.with_kept_coverage`); an ended contract holds its final
  figures on its own item.

A contract opened before this item existed keeps its covered time on the contract item: with no
coverage item that is the one read, the first report creates the item from it, and ending the
contract creates the item closed.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from pynamodb.expressions.condition import Condition

from ..domain import coverage
from ..domain.contracts import ACTIVE, Contract, with_kept_coverage
from ..domain.metering import COVERAGE_KEY, RETENTION_MS
from .dynamo import batch_get
from .models import CoverageItem

if TYPE_CHECKING:  # types only
    from .transactions import _Tx

ROLE = "coverage"  # the role a failed condition on the item names (Conflict)
BATCH_GET_MAX_KEYS = 100


def key(contract_id: str) -> dict[str, Any]:
    """The item's raw key, for a BatchGetItem."""
    return {"contract_id": {"S": contract_id}, "batch_key": {"S": COVERAGE_KEY}}


def kept(raw_items: Iterable[dict[str, Any]]) -> dict[str, coverage.Coverage]:
    """The covered time of each coverage item among raw items of the metrics table, by contract id
    (other items, and an item closed before it held any figures, are skipped)."""
    out: dict[str, coverage.Coverage] = {}
    for raw in raw_items:
        if raw.get("batch_key", {}).get("S") != COVERAGE_KEY:
            continue
        covered, end = raw.get("covered_ms", {}).get("N"), raw.get("covered_end_ms", {}).get("N")
        if covered is not None and end is not None:  # read raw: a model object per item cost more than the read
            out[raw["contract_id"]["S"]] = coverage.Coverage(int(covered), int(end))
    return out


def with_coverage(contracts: list[Contract], *, consistent: bool) -> list[Contract]:
    """`contracts` with the kept covered time of the ACTIVE ones (one BatchGetItem per 100)."""
    ids = [c.contract_id for c in contracts if c.status == ACTIVE and c.covered_end_ms is not None]
    table = CoverageItem.Meta.table_name
    found: dict[str, coverage.Coverage] = {}
    for i in range(0, len(ids), BATCH_GET_MAX_KEYS):
        keys = {table: [key(cid) for cid in ids[i : i + BATCH_GET_MAX_KEYS]]}
        found.update(kept(batch_get(keys, (table,) if consistent else ())[table]))
    return [with_kept_coverage(c, found.get(c.contract_id)) for c in contracts]


def open_item(tx: _Tx, contract: Contract) -> None:
    """One more item of the rent's transaction: the contract's start-up allowance (a contract
    that does not track coverage has none)."""
    if contract.covered_ms is None or contract.covered_end_ms is None:
        return
    item = CoverageItem(
        contract.contract_id, COVERAGE_KEY, covered_ms=contract.covered_ms, covered_end_ms=contract.covered_end_ms
    )
    tx.save(ROLE, item, CoverageItem.batch_key.does_not_exist())


def close_item(tx: _Tx, before: Contract, after: Contract) -> None:
    """One more item of the transaction that ends the contract: close its coverage item (no
    report advances it any more; it expires with the contract's batches) if the covered time is
    still what `before` read."""
    if before.covered_end_ms is None:
        return
    ended = after.ended_at_ms if after.ended_at_ms is not None else before.expires_at_ms
    tx.update(
        ROLE,
        CoverageItem(before.contract_id, COVERAGE_KEY),
        [CoverageItem.closed.set(True), CoverageItem.ttl.set((ended + RETENTION_MS) // 1000)],
        cover_condition(before.covered_end_ms),
    )


def cover_condition(before_end_ms: int) -> Condition:
    """The item's end is still `before_end_ms`, the end read (no item: a contract opened before
    the item existed, read from its contract item), and it is not closed. The end only grows,
    so an item a report advanced since the read fails it."""
    unchanged: Condition = CoverageItem.covered_end_ms.does_not_exist() | (CoverageItem.covered_end_ms == before_end_ms)
    open_: Condition = unchanged & CoverageItem.closed.does_not_exist()
    return open_
