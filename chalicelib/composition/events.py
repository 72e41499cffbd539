"""The services of events to the outside: webhooks (registration and delivery) and quotes
(Solana Pay transfer requests and their watcher)."""

from __future__ import annotations

from functools import cached_property
from typing import TYPE_CHECKING

from .refunds import RefundServices
from .rentals import RentalServices

if TYPE_CHECKING:  # types only; each service module is imported when its service is first built
    from ..services.payment_refused import PaymentRefusals
    from ..services.quote_watch import QuoteWatcher
    from ..services.quotes import Quotes
    from ..services.webhook_delivery import WebhookDelivery
    from ..services.webhooks import Webhooks


class EventServices(RentalServices, RefundServices):
    @cached_property
    def webhooks(self) -> Webhooks:
        from ..services.webhooks import Webhooks

        if self.webhook_store is None:
            raise RuntimeError("this container has no webhook store")
        return Webhooks(store=self.webhook_store, clock=self.clock, settings=self.settings, log=self.delivery_log)

    @cached_property
    def webhook_delivery(self) -> WebhookDelivery:
        from ..services.webhook_delivery import WebhookDelivery

        if self.outbox is None or self.webhook_store is None:
            raise RuntimeError("this container has no outbox or webhook store")
        queue = self.webhook_queue
        if queue is None:
            from ..adapters.webhook_queue import SqsWebhookQueue

            s = self.settings
            queue = SqsWebhookQueue(s.webhook_queue_url, s.webhook_queue_name, s.region, s.aws_endpoint_url)
        sender = self.webhook_sender
        if sender is None:
            from ..adapters.webhook_http import HttpWebhookSender

            sender = HttpWebhookSender()
        return WebhookDelivery(
            self.outbox, self.webhook_store, queue, sender, self.clock, self.settings, self.delivery_log
        )

    @cached_property
    def payment_refusals(self) -> PaymentRefusals:
        from ..services.payment_refused import PaymentRefusals

        if self.outbox is None:
            raise RuntimeError("this container has no outbox")
        return PaymentRefusals(reconciler=self.reconciler, outbox=self.outbox, clock=self.clock)

    @cached_property
    def quote_service(self) -> Quotes:
        from ..services.quotes import Quotes

        if self.quotes is None:
            raise RuntimeError("this container has no quote store")
        return Quotes(quotes=self.quotes, contracts=self.contracts, clock=self.clock, settings=self.settings)

    @cached_property
    def quote_watcher(self) -> QuoteWatcher:
        from ..services.quote_watch import QuoteWatcher

        if self.quotes is None:
            raise RuntimeError("this container has no quote store")
        return QuoteWatcher(
            quotes=self.quotes,
            history=self.history,
            rentals=self.rentals,
            clock=self.clock,
            shards=self.settings.active_shards,
            treasury=self.settings.treasury,
        )
