"""The services the HTTP edge and the catalogue routes use: credentials, rate limit,
Idempotency-Key, the catalogue, the fleet view and the operator's device admin."""

from __future__ import annotations

from functools import cached_property
from typing import TYPE_CHECKING

from .ports import Ports

if TYPE_CHECKING:  # types only; each service module is imported when its service is first built
    from ..services.auth import Auth
    from ..services.catalog import Catalog
    from ..services.fleet import Fleet
    from ..services.idempotency import Idempotency
    from ..services.operator import Operator
    from ..services.ratelimit import RateLimit


class EdgeServices(Ports):
    @cached_property
    def auth(self) -> Auth:
        from ..services.auth import Auth

        return Auth(
            secrets=self.secrets,
            clock=self.clock,
            verify_signature=self.verify_signature,
            window_seconds=self.settings.signature_window_seconds,
            devices=self.devices,
        )

    @cached_property
    def rate_limit(self) -> RateLimit:  # one per function instance: its memory is the instance's window
        from ..services.ratelimit import RateLimit

        return RateLimit(claims=self.claims, clock=self.clock)

    @cached_property
    def idempotency(self) -> Idempotency:
        from ..services.idempotency import Idempotency

        return Idempotency(claims=self.claims, clock=self.clock)

    @cached_property
    def catalog(self) -> Catalog:
        from ..services.catalog import Catalog

        return Catalog(devices=self.devices, settings=self.settings)

    @cached_property
    def fleet(self) -> Fleet:  # one per function instance: it holds the last answer (<= 5 s)
        from ..services.fleet import Fleet

        return Fleet(devices=self.devices, clock=self.clock)

    @cached_property
    def operator(self) -> Operator:
        from ..services.operator import Operator

        return Operator(devices=self.devices)
