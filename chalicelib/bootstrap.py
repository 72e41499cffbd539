"""Composition root: the one place that wires adapters to services.

Built lazily, once per cold start (`container()`); tests build their own with
`build(settings, **overrides)` to wire moto, a local chain or fakes.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Callable

from .config import Settings, settings as load_settings


def wall_clock_ms() -> int:
    return time.time_ns() // 1_000_000


@dataclass
class Container:
    settings: Settings
    contracts: Any
    devices: Any
    ledger: Any
    claims: Any
    metrics: Any
    tx: Any
    queue: Any
    rpc: Any
    secrets: Any
    clock: Callable[[], int] = wall_clock_ms


def build(s: Settings | None = None, **overrides) -> Container:
    from .adapters import models
    from .adapters.claims import ClaimsRepo
    from .adapters.contracts import ContractsRepo
    from .adapters.devices import DevicesRepo
    from .adapters.ledger import LedgerRepo
    from .adapters.metrics import MetricsRepo
    from .adapters.queue import RefundQueue
    from .adapters.secrets import Secrets
    from .adapters.solana_rpc import SolanaRpc
    from .adapters.transactions import Transactions

    s = s or load_settings()
    models.bind(s.table_prefix, s.region, s.aws_endpoint_url)
    parts = dict(
        settings=s,
        contracts=ContractsRepo(s.active_shards),
        devices=DevicesRepo(),
        ledger=LedgerRepo(),
        claims=ClaimsRepo(),
        metrics=MetricsRepo(),
        tx=Transactions(s.active_shards),
        queue=RefundQueue(s.refund_queue_url, s.refund_queue_name, s.region, s.aws_endpoint_url,
                          s.refund_dlq_url, s.refund_dlq_name),
        rpc=SolanaRpc(s.solana_rpc_url, s.rpc_timeout_seconds),
        secrets=Secrets(s),
    )
    parts.update(overrides)
    return Container(**parts)


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
