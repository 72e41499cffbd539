"""The services of refunds on chain: the worker, the operator's refund admin and operations,
the chain's history and the reconciler."""

from __future__ import annotations

from functools import cached_property
from typing import TYPE_CHECKING

from .ports import Ports

if TYPE_CHECKING:  # types only; each service module is imported when its service is first built
    from ..ports import ChainHistory, RefundChain
    from ..services.reconcile import Reconciler
    from ..services.refunds import RefundAdmin, RefundOperations, RefundWorker


class RefundServices(Ports):
    @cached_property
    def history(self) -> ChainHistory:
        if self.chain_history is not None:
            return self.chain_history
        from ..adapters.chain_history import ChainHistoryRpc
        from ..adapters.solana_rpc import SolanaRpc

        return ChainHistoryRpc(SolanaRpc(self.settings.solana_rpc_url, self.settings.rpc_timeout_seconds))

    @cached_property
    def chain_for_refunds(self) -> RefundChain:
        """The refund chain port; the production one (and the treasury key) only on first use,
        so a function that never refunds never reads the key."""
        if self.refund_chain is not None:
            return self.refund_chain
        from .production import production_refund_chain

        return production_refund_chain(self.settings)

    @cached_property
    def refund_worker(self) -> RefundWorker:
        from ..services.refunds import RefundWorker

        return RefundWorker(
            refunds=self.refunds,
            chain=self.chain_for_refunds,
            clock=self.clock,
            commitment=self.settings.refund_commitment,
        )

    @cached_property
    def refund_admin(self) -> RefundAdmin:
        from ..services.refunds import RefundAdmin

        return RefundAdmin(listing=self.refunds, dead_letters=self.queue)

    @cached_property
    def refund_operations(self) -> RefundOperations:
        from ..services.refunds import RefundOperations

        return RefundOperations(refunds=self.refunds, queue=self.queue, clock=self.clock)

    @cached_property
    def reconciler(self) -> Reconciler:
        from ..services.reconcile import Reconciler

        return Reconciler(
            history=self.history,
            ledger=self.ledger,
            claims=self.claims,
            refunds=self.refunds,
            listing=self.refunds,
            clock=self.clock,
            settings=self.settings,
        )
