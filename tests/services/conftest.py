"""Service tests: each use case built from the in-memory fakes of tests/support/fakes.py.

No sockets (the autouse `no_network` blocker of tests/support/network.py), no moto, no chain: the
fakes honour the adapters' conditions (tests/contract/ proves it), and their fault
hooks (`FakeDatabase.fail_next / repeat_next / before_next / down`, `FakeRpc.down`,
`FakeRefundQueue.down`) let a test lose a race, see an outage or lose an answer.

Every payment is made with the memo that binds it to its request
(`domain.signing.rent_memo` / `extend_memo`), as docs/api.md "Binding a payment" asks.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from chalicelib.bootstrap import Container
from chalicelib.config import Settings
from chalicelib.domain import contracts as dc
from chalicelib.domain import ledger
from chalicelib.domain.commands import ExtendRequest, RentRequest
from chalicelib.domain.records import Claim
from chalicelib.domain.signing import extend_memo, rent_memo
from chalicelib.services.books import Books
from chalicelib.services.catalog import Catalog
from chalicelib.services.operator import Operator
from chalicelib.services.rentals import Rentals
from chalicelib.services.telemetry import Telemetry
from tests.support.fakes import ALWAYS_COVERED_SECONDS, FakePorts, new_wallet
from tests.support.network import no_network  # noqa: F401  (autouse: sockets blocked)

TREASURY = new_wallet()
ADMIN_KEY = "admin-key-for-service-tests"

# the inventory of every test unless it seeds its own: capacity 2 per device
DEVICES = {"M2": ["dev-m2-a", "dev-m2-b"], "ORIN": ["dev-orin-a"], "M3_ULTRA": ["dev-m3-a"], "THOR": ["dev-thor-a"]}


def spec(device_id: str, tier: str) -> dict:
    return {
        "device_id": device_id,
        "name": device_id.upper(),
        "tier": tier,
        "uri": f"{device_id}.test",
        "address": "10.0.0.1",
        "region": "Test",
        "ram": "16GB",
    }


@dataclass
class World:
    """Every port faked (one database), plugged into a real `bootstrap.Container` that builds
    every service on first use, as production builds them."""

    p: FakePorts
    c: Container

    @property
    def settings(self) -> Settings:
        return self.c.settings

    @property
    def db(self):
        return self.p.db

    @property
    def clock(self):
        return self.p.clock

    @property
    def rpc(self):
        return self.p.rpc

    @property
    def queue(self):
        return self.p.queue

    @property
    def rentals(self) -> Rentals:
        return self.c.rentals

    @property
    def telemetry(self) -> Telemetry:
        return self.c.telemetry

    @property
    def books(self) -> Books:
        return self.c.books

    @property
    def catalog(self) -> Catalog:
        return self.c.catalog

    @property
    def operator(self) -> Operator:
        return self.c.operator

    # -- paying and renting ---------------------------------------------------
    def pay_rent(self, wallet: str, tier: str, seconds: int, lamports: int, **kw) -> str:
        """A confirmed payment wallet → treasury bound to `rent tier seconds` by its memo."""
        return self.rpc.pay(wallet, lamports, memo=rent_memo(tier, seconds), **kw)

    def pay_extend(self, wallet: str, contract_id: str, seconds: int, lamports: int, **kw) -> str:
        return self.rpc.pay(wallet, lamports, memo=extend_memo(contract_id, seconds), **kw)

    def rent_request(self, tier: str, seconds: int, lamports: int, wallet: str | None = None) -> RentRequest:
        wallet = wallet or new_wallet()
        return RentRequest(wallet, tier, seconds, self.pay_rent(wallet, tier, seconds, lamports))

    def rent(self, tier: str, seconds: int, lamports: int, wallet: str | None = None) -> dc.Contract:
        """Rent through the service; the contract as stored."""
        receipt = self.rentals.rent(self.rent_request(tier, seconds, lamports, wallet))
        assert receipt.first
        return self.p.contracts.get(receipt.body["contract_id"])

    def extend_request(self, contract: dc.Contract, seconds: int, lamports: int) -> ExtendRequest:
        return ExtendRequest(
            contract.contract_id, seconds, self.pay_extend(contract.wallet, contract.contract_id, seconds, lamports)
        )

    def claim_elsewhere(self, sig: str, fingerprint: str, device_id: str, wallet: str | None = None) -> None:
        """Another request (other terms) claims `wallet`'s share of `sig` first: a contract of its
        own, written straight through the transaction port as a rival service instance would."""
        k = dc.open_contract(
            contract_id=dc.new_contract_id(),
            wallet=wallet or new_wallet(),
            tier="M2",
            device_id=device_id,
            seconds=60,
            received_lamports=16_667,
            sig=sig,
            now_ms=self.clock(),
        )
        self.p.tx.open_rental(
            Claim(sig, "rent", k.contract_id, k.wallet, fingerprint, {"contract_id": k.contract_id}),
            k,
            ledger.payment_postings(k, k.payments[0]),
            self.clock(),
        )

    # -- reading ----------------------------------------------------------------
    def leases(self) -> dict[str, int]:
        """Leases of every device that holds any."""
        return {d.device_id: d.leases for d in self.p.devices.all() if d.leases}

    def entries(self, contract_id: str) -> list:
        rows, token = self.p.ledger.by_contract(contract_id, 1000, None)
        return rows


def make_world(devices: dict[str, list[str]] | None = None, capacity: int = 2, **settings) -> World:
    p = FakePorts.build(treasury=TREASURY, admin_key=ADMIN_KEY)
    settings = {"coverage_grace_seconds": ALWAYS_COVERED_SECONDS, **settings}
    w = World(p, p.container(Settings(**{"treasury": TREASURY, **settings})))
    for tier, ids in (DEVICES if devices is None else devices).items():
        for device_id in ids:
            p.devices.upsert(spec(device_id, tier), capacity)
    p.db.calls.clear()
    return w


@pytest.fixture
def w() -> World:
    return make_world()
