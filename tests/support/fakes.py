"""In-memory fakes of every port in `chalicelib/ports.py`, for fast service tests.

One `FakeDatabase` holds the five tables as dicts; every storage fake is a view
on it, so a write through `FakeTransactions` is what `FakeContractStore`,
`FakeDeviceStore`, … read next. The fakes honour the conditions of the DynamoDB
adapters (`chalicelib/adapters/transactions.py` and the repositories), and
`tests/contract/` runs both through the same cases so they cannot drift:

* a transaction checks every condition first and writes nothing unless all
  hold; a failed one raises `Conflict(failed=roles)` naming every failed role;
* stored values are immutable records or JSON text, so a caller can never
  change stored state through an object it passed in or got back.

Fault hooks (`FakeDatabase.fail_next`, `.before_next`, `.down`, a port's own
`.down`) let a service test lose a race, see an outage, or have a write land
but its answer get lost.

The chain: `FakeRpc` IS the real `SolanaRpc` adapter with its JSON-RPC
transport replaced by a dict of getTransaction-shaped transactions (built by
`payment_tx`), so every decision is `chalicelib.domain.payments.decide`'s.

Import everything from here; the code lives in `fake_store.py` (the tables and
the storage ports) and `fake_chain.py` (the node), each under 400 lines.
`FakePorts.build(treasury=..., admin_key=...)` gives every port at once.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from chalicelib.domain.errors import Unavailable
from tests.support.fake_chain import (
    MEMO_PROGRAM_ID,
    REFUND_FEE,
    FakeRefundChain,
    FakeRpc,
    FakeTreasurySigner,
    new_signature,
    new_wallet,
    payment_tx,
)
from tests.support.fake_store import (
    TABLES,
    FakeBookStore,
    FakeClaimStore,
    FakeContractStore,
    FakeDatabase,
    FakeDeviceStore,
    FakeLedgerStore,
    FakeMetricsStore,
    FakeRefundStore,
    FakeTransactions,
    database_unavailable,
)

if TYPE_CHECKING:
    from chalicelib.bootstrap import Container
    from chalicelib.config import Settings

__all__ = [
    "ALWAYS_COVERED_SECONDS",
    "MEMO_PROGRAM_ID",
    "REFUND_FEE",
    "TABLES",
    "FakeBookStore",
    "FakeRefundChain",
    "FakeRefundStore",
    "FakeTreasurySigner",
    "FakeClaimStore",
    "FakeClock",
    "FakeContractStore",
    "FakeDatabase",
    "FakeDeviceStore",
    "FakeLedgerStore",
    "FakeMetricsStore",
    "FakePorts",
    "FakeRefundQueue",
    "FakeRpc",
    "FakeSecrets",
    "FakeTransactions",
    "database_unavailable",
    "new_signature",
    "new_wallet",
    "payment_tx",
]


# A coverage grace longer than any contract: the start-up allowance covers the whole life, so a
# contract bills elapsed time as if its device reported throughout. Worlds use it unless a test
# of covered time sets a short `coverage_grace_seconds`.
ALWAYS_COVERED_SECONDS = 10_000_000


@dataclass
class FakeClock:
    now_ms: int = 1_764_000_000_000

    def __call__(self) -> int:
        return self.now_ms

    def advance(self, seconds: float) -> None:
        self.now_ms += int(seconds * 1000)


# --------------------------------------------------------------------------
# queue and secrets


class FakeRefundQueue:
    """`messages` holds the queued (contract_id, version) in order; `down` makes sends fail."""

    def __init__(self) -> None:
        self.messages: list[dict[str, Any]] = []
        self.dead_letters: list[dict[str, Any]] = []
        self.in_flight: list[dict[str, Any]] = []
        self.down = False
        self.fail_sends = 0  # the next N sends fail (False), then they succeed again

    def send_refund(self, contract_id: str, version: int) -> bool:
        if self.down or self.fail_sends > 0:
            self.fail_sends = max(0, self.fail_sends - 1)
            return False
        self.messages.append({"refund_id": contract_id, "contract_id": contract_id, "version": version})
        return True

    def redrive(self, limit: int) -> int:
        """`ports.DeadLetters`: move up to `limit` dead letters back, oldest first."""
        if self.down:
            raise Unavailable("The refund queues did not answer.", reason="queue")
        moved = self.dead_letters[:limit]
        del self.dead_letters[: len(moved)]
        self.messages.extend(moved)
        return len(moved)

    def depths(self) -> dict[str, Any]:
        if self.down:
            return {"refund_queue": None, "dead_letter_queue": None}
        return {
            "refund_queue": {"visible": len(self.messages), "in_flight": len(self.in_flight)},
            "dead_letter_queue": {"visible": len(self.dead_letters), "in_flight": 0},
        }


class FakeSecrets:
    def __init__(self, admin_key: str | None = None) -> None:
        self.admin_key = admin_key

    def is_admin(self, presented: str | None) -> bool:
        if not self.admin_key or not presented:
            return False
        return hmac.compare_digest(presented.encode(), self.admin_key.encode())


@dataclass
class FakePorts:
    """Every port faked, sharing one database: `FakePorts.build(treasury=...)`."""

    db: FakeDatabase
    clock: FakeClock
    rpc: FakeRpc
    queue: FakeRefundQueue
    secrets: FakeSecrets
    stores: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def build(
        cls,
        *,
        treasury: str | None = None,
        admin_key: str | None = None,
        shards: int = 1,
        clock: FakeClock | None = None,
    ) -> FakePorts:
        db = FakeDatabase(shards)
        clock = clock or FakeClock()
        return cls(db, clock, FakeRpc(treasury, clock), FakeRefundQueue(), FakeSecrets(admin_key), db.ports())

    def container(self, settings: Settings, **overrides: Any) -> Container:
        """These ports plugged into a real `bootstrap.Container` (as `bootstrap.build` plugs in the
        adapters): its services are built from them on first use, the way production builds them.
        `overrides` are further Container fields (e.g. `refund_chain=`, `chain_history=`)."""
        from chalicelib.bootstrap import Container

        return Container(
            settings=settings,
            **self.stores,
            queue=self.queue,
            rpc=self.rpc,
            secrets=self.secrets,
            clock=self.clock,
            **overrides,
        )

    def __getattr__(self, name: str) -> Any:  # contracts, devices, ledger, claims, metrics, tx
        stores = self.__dict__.get("stores") or {}
        if name in stores:
            return stores[name]
        raise AttributeError(name)


class FakeWorld:
    """Every port faked on one database and wired into a real `bootstrap.Container`, the refund
    chain's treasury being the settings' treasury: the base of the refund, sweep and fault worlds."""

    def __init__(self, *, shards: int = 2, t0: int = 1_764_000_000_000, **settings: Any) -> None:
        from chalicelib.config import Settings

        self.chain = FakeRefundChain()
        self.p = FakePorts.build(treasury=self.chain.treasury, admin_key="admin", shards=shards, clock=FakeClock(t0))
        self.clock = self.p.clock
        self.db = self.p.db
        self.rpc = self.p.rpc
        self.queue = self.p.queue
        settings = {"coverage_grace_seconds": ALWAYS_COVERED_SECONDS, **settings}
        self.settings = Settings(treasury=self.chain.treasury, active_shards=shards, **settings)
        self.c = self.p.container(self.settings, refund_chain=self.chain)

    def add_device(self, device_id: str, tier: str, capacity: int) -> None:
        spec = {
            "device_id": device_id,
            "name": device_id,
            "tier": tier,
            "uri": "u",
            "address": "a",
            "region": "r",
            "ram": "16GB",
        }
        self.c.devices.upsert(spec, capacity)
