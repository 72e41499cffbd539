"""Composition root: the one place that wires adapters to services.

`container()` builds the production wiring lazily, once per cold start
(`composition/production.py`: each adapter, and its module, PynamoDB and botocore, load
when a request first reads that port, not at `import app`); tests build their own
with `build(settings, **overrides)` (moto, a local chain) or construct
`Container(...)` directly from fakes. Services are built from the container's ports
on first use (`c.rentals`, `c.telemetry`, …; a service's module is imported then, so
a handler pays only for the services it uses) and kept: replace a port before the
first request, or build a new container.

The parts, in `composition/`: `ports` (the dataclass of ports), one mixin per area
of services (`edge`, `rentals`, `refunds`, `events`), `production` (the adapters).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .composition.edge import EdgeServices
from .composition.events import EventServices
from .composition.ports import verify_ed25519 as verify_ed25519
from .composition.ports import wall_clock_ms as wall_clock_ms

if TYPE_CHECKING:  # types only
    from .config import Settings
    from .ports import RefundChain


class Container(EdgeServices, EventServices):
    """The ports (`composition.ports.Ports`, a dataclass: `Container(settings=…, contracts=…,
    …)`), and the services built from them (each asks only for what it uses)."""


def build(s: Settings | None = None, **overrides: Any) -> Container:
    """The production adapters for `s` (default: from the environment), any of them
    replaced by `overrides` (e.g. `rpc=FakeRpc(), clock=FakeClock()`); each adapter is
    built when first read."""
    from .composition.production import build as production

    return production(s, **overrides)


def production_refund_chain(s: Settings) -> RefundChain:
    """The refund chain over the configured RPC, signing with the treasury key."""
    from .composition.production import production_refund_chain as chain

    return chain(s)


_container: Container | None = None


def container() -> Container:
    global _container
    if _container is None:
        _container = build()
    return _container


def set_container(c: Container | None) -> None:
    """For tests: replace (or with None, reset) the process-wide container."""
    global _container
    _container = c
