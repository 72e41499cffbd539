"""The services of a rental's money: rent, extend, settle and status, payment checks and
payment refunds, usage reports, the books and the billing sweep."""

from __future__ import annotations

from functools import cached_property
from typing import TYPE_CHECKING

from .ports import Ports

if TYPE_CHECKING:  # types only; each service module is imported when its service is first built
    from ..services.books import Books
    from ..services.contract_reads import ContractReads
    from ..services.payment_checks import PaymentChecks
    from ..services.payment_refunds import PaymentRefunds
    from ..services.proofs import Proofs
    from ..services.rentals import Rentals
    from ..services.sweep import Sweep
    from ..services.telemetry import Telemetry


class RentalServices(Ports):
    @cached_property
    def payment_checks(self) -> PaymentChecks:
        """One per instance: its negative cache and lookup windows live in this process."""
        from ..services.payment_checks import PaymentChecks

        return PaymentChecks(claims=self.claims, clock=self.clock, settings=self.settings)

    @cached_property
    def payment_refunds(self) -> PaymentRefunds:
        from ..services.payment_refunds import PaymentRefunds

        return PaymentRefunds(
            refunds=self.refunds,
            claims=self.claims,
            rpc=self.rpc,
            queue=self.queue,
            clock=self.clock,
            settings=self.settings,
            checks=self.payment_checks,
        )

    @cached_property
    def rentals(self) -> Rentals:
        from ..services.rentals import Rentals

        return Rentals(
            contracts=self.contracts,
            devices=self.devices,
            claims=self.claims,
            tx=self.tx,
            rpc=self.rpc,
            queue=self.queue,
            clock=self.clock,
            settings=self.settings,
            checks=self.payment_checks,
        )

    @cached_property
    def contract_reads(self) -> ContractReads:
        """The status route's one read (a cold start builds no other port for it)."""
        from ..services.contract_reads import ContractReads

        return ContractReads(contracts=self.contracts, clock=self.clock)

    @cached_property
    def telemetry(self) -> Telemetry:
        from ..services.telemetry import Telemetry

        return Telemetry(
            contracts=self.contracts,
            metrics=self.metrics,
            clock=self.clock,
            coverage_grace_ms=self.settings.coverage_grace_seconds * 1000,
            verify=self.verify_signature,
        )

    @cached_property
    def proofs(self) -> Proofs:
        from ..services.proofs import Proofs

        s = self.settings
        return Proofs(self.contracts, self.metrics, self.clock, s.coverage_grace_seconds * 1000, s.refund_min_lamports)

    @cached_property
    def books(self) -> Books:
        from ..services.books import Books

        return Books(
            contracts=self.contracts,
            ledger=self.ledger,
            devices=self.devices,
            queue=self.queue,
            rpc=self.rpc,
            clock=self.clock,
            settings=self.settings,
            book=self.book,
        )

    @cached_property
    def sweep(self) -> Sweep:
        from ..services.sweep import Sweep

        return Sweep(
            contracts=self.contracts,
            tx=self.tx,
            queue=self.queue,
            clock=self.clock,
            settings=self.settings,
            refund_listing=self.refunds,
        )
