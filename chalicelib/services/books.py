"""Operator views of the books: ledger page, postings, system stats."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..config import Settings
from ..domain import books as book_counters
from ..domain import ledger
from ..domain.contracts import ACTIVE, Contract, Figures, as_of
from ..domain.errors import InvalidRequest
from ..domain.ledger import Entry

if TYPE_CHECKING:  # types only: importing the Protocols costs cold-start time
    from ..ports import BookStore, Clock, ContractStore, DeviceStore, LedgerStore, PaymentVerifier, RefundQueue


DUE_LIMIT = 100  # per shard, for the stats' count of expiries the sweep has not booked yet


@dataclass(frozen=True)
class LedgerPage:
    """One page of contracts, split into active (with live figures) and completed, with the
    totals of the whole book (the counters)."""

    active: list[tuple[Contract, Figures]]
    completed: list[Contract]
    total_active_value: int
    total_used: int
    total_pending_refunds: int
    next_token: str | None
    totals_scope: str = "book"
    # contracts shown ended (past their expiry) that the sweep has not booked yet
    unbooked: frozenset[str] = frozenset()

    @property
    def size(self) -> int:
        return len(self.active) + len(self.completed)


@dataclass(frozen=True)
class EntriesPage:
    entries: list[Entry]
    debit_lamports: int
    credit_lamports: int
    balance_lamports: int
    next_token: str | None


@dataclass(frozen=True)
class Stats:
    contracts_by_status: dict[str, int]
    device_count: int
    slots_leased: int
    capacity: int
    refunds_by_status: dict[str, int]
    revenue: int
    pending_refunds: int
    active_prepaid: int
    queues: dict[str, Any]
    treasury: str
    rpc_reachable: bool
    at_ms: int
    # ACTIVE in the books but past their expiry: ended, the sweep books them within a minute
    expired_unbooked: int = 0
    expired_unbooked_complete: bool = True  # False: more than DUE_LIMIT per shard, counted to the limit
    downtime_credit: int = 0  # downtime credits of ended contracts


@dataclass(frozen=True)
class Books:
    """Read-only operator views.

    contracts: pages of all contracts, as a listing shows them (`listing`).
    ledger:    postings by contract or by account (`by_contract`, `by_account`).
    devices:   the whole inventory (`all`).
    queue:     refund queue depths (`depths`).
    rpc:       chain reachability (`health`).
    clock:     now, in Unix milliseconds.
    settings:  `treasury`.
    book:      the whole-book counters (`counters`: one small item per shard, written inside
               every money transaction; docs/adr/0006): every total comes from them, never
               from a read of the contracts table.
    """

    contracts: ContractStore
    ledger: LedgerStore
    devices: DeviceStore
    queue: RefundQueue
    rpc: PaymentVerifier
    clock: Clock
    settings: Settings
    book: BookStore

    def totals(self) -> dict[str, int]:
        """The book's counters added up (`domain.books.COUNTERS`)."""
        return book_counters.total(self.book.counters())

    def ledger_page(self, limit: int, token: str | None) -> LedgerPage:
        """One page of contracts (live figures of the live ones at now; one past its expiry is
        shown ended, as the sweep will book it: `domain.contracts.as_of`); the totals are the
        whole book's, from the counters: prepaid of ACTIVE contracts, revenue booked by ended
        ones, refunds owed (ADR 0006)."""
        now = self.clock()
        contracts, counters, next_token = self.contracts.ledger_listing(limit, token)
        shown = [(k, as_of(k, now, self.settings.refund_min_lamports)) for k in contracts]
        active = [(k, k.figures(now)) for _, k in shown if k.status == ACTIVE]
        completed = [k for _, k in shown if k.status != ACTIVE]
        unbooked = frozenset(k.contract_id for stored, k in shown if k.status != stored.status)
        t = book_counters.total(counters)
        return LedgerPage(
            active,
            completed,
            t["active_prepaid_lamports"],
            t["revenue_lamports"],
            sum(t[f"refunds_{s}_lamports"] for s in book_counters.OWED),
            next_token,
            "book",
            unbooked,
        )

    def entries(self, contract_id: str | None, account: str | None, limit: int, token: str | None) -> EntriesPage:
        """Postings of one contract (when `contract_id`) or else of one account, oldest first."""
        if contract_id:
            rows, next_token = self.ledger.by_contract(contract_id, limit, token)
        elif account:
            rows, next_token = self.ledger.by_account(account, limit, token)
        else:
            raise InvalidRequest("Give exactly one of 'contract_id' or 'account'.", reason="contract_id")
        return EntriesPage(
            rows,
            sum(e.debit_lamports for e in rows),
            sum(e.credit_lamports for e in rows),
            ledger.balance(rows),
            next_token,
        )

    def expired_unbooked(self, now_ms: int) -> tuple[int, bool]:
        """How many ACTIVE contracts are past their expiry and not yet booked by the sweep (the
        sparse active-by-expiry index: only what is due; one Query per shard, at most DUE_LIMIT
        each), and whether that count is complete."""
        n, complete = 0, True
        for shard in range(self.contracts.shards):
            due = self.contracts.due(shard, now_ms, DUE_LIMIT)
            n += len(due)
            complete = complete and len(due) < DUE_LIMIT
        return n, complete

    def stats(self) -> Stats:
        """Whole-system figures for operators: the book's counters (`shards` items), the device
        inventory, queue depths and RPC reachability — never the contracts table."""
        now = self.clock()
        t = self.totals()
        devices = self.devices.all()
        try:
            rpc_ok = bool(self.rpc.health())
        except Exception:  # noqa: BLE001 - reported, not raised
            rpc_ok = False
        unbooked, complete = self.expired_unbooked(now)
        return Stats(
            contracts_by_status={s: t[f"contracts_{s}"] for s in book_counters.CONTRACT_STATUSES},
            device_count=len(devices),
            slots_leased=sum(d.leases for d in devices),
            capacity=sum(d.capacity for d in devices),
            refunds_by_status={s: t[f"refunds_{s}_n"] for s in book_counters.REFUND_STATUSES},
            revenue=t["revenue_lamports"],
            pending_refunds=sum(t[f"refunds_{s}_lamports"] for s in book_counters.OWED),
            active_prepaid=t["active_prepaid_lamports"],
            queues=self.queue.depths(),
            treasury=self.settings.treasury,
            rpc_reachable=rpc_ok,
            at_ms=now,
            expired_unbooked=unbooked,
            expired_unbooked_complete=complete,
            downtime_credit=t["downtime_credit_lamports"],
        )
