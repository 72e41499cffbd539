"""Typed settings, read from the environment once per cold start.

Every knob a deployed stage or the local stack needs is here; nothing else in
`chalicelib` reads `os.environ`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import lru_cache
from typing import Any


def _int(env: dict[str, Any], name: str, default: int) -> int:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    return int(raw)


def _rate(raw: str) -> tuple[int, int]:
    count, _, seconds = raw.partition("/")
    return int(count), int(seconds or 10)


def _origins(raw: str | None) -> tuple[str, ...]:
    """A comma-separated list of origins (`https://app.example`, `*` for any), exact, no
    trailing slash; empty or unset: none."""
    return tuple(o.strip().rstrip("/") for o in (raw or "").split(",") if o.strip())


def _flag(raw: str | None, default: bool) -> bool:
    if raw is None or raw.strip() == "":
        return default
    return raw.strip().lower() not in ("0", "false", "no", "off")


@dataclass(frozen=True)
class Settings:
    stage: str = "local"
    region: str = "us-east-1"
    aws_endpoint_url: str | None = None
    dynamodb_endpoint_url: str | None = None  # botocore's service-specific AWS_ENDPOINT_URL_DYNAMODB
    table_prefix: str = "si64-local"
    refund_queue_url: str | None = None
    refund_dlq_url: str | None = None
    solana_rpc_url: str = "http://127.0.0.1:8899"
    network: str = "localnet"
    treasury: str = ""
    admin_key_file: str | None = None
    admin_key: str | None = None
    admin_key_parameter: str | None = None
    # where the treasury signing key is read (a name, never the key): adapters/treasury.py
    treasury_key_file: str | None = None
    treasury_key_parameter: str | None = None
    treasury_secret_id: str | None = None
    min_duration_seconds: int = 60
    max_duration_hours: int = 720
    refund_min_lamports: int = 5_000
    coverage_grace_seconds: int = 60  # covered time around each device report (domain/coverage.py)
    payment_max_age_seconds: int = 86_400
    rate_limit: tuple[int, int] = (150, 10)
    # requests / seconds per device key (X-Device-Key traffic counts against its device, not the
    # IP): an unbatched reporter at full capacity sends 4 contracts x 2 samples/s = 80 per 10 s
    device_rate_limit: tuple[int, int] = (200, 10)
    # the fleet-wide counter in the claims table (one conditional UpdateItem per request); off:
    # only the per-instance window (ADR 0009). ON in every stage (from_env, SI64_RATE_LIMIT_SHARED);
    # off for containers built by hand in-process (tests, the bench's per-endpoint call counts,
    # which dev/bench/ratelimit.py completes with the limiter's own cost)
    rate_limit_shared: bool = False
    # requests / seconds per client IP that make the backend ask the chain about a payment (a rent,
    # an extend, a payment refund): each is at most 2 JSON-RPC calls, so 10/10 bounds one
    # address to 20 RPC calls per 10 s (services/payment_checks.py, ADR 0012). Counted like
    # rate_limit: per instance, and fleet-wide when rate_limit_shared.
    rpc_lookup_limit: tuple[int, int] = (10, 10)
    # a signature the chain does not know (`not_found`) is answered from memory this long,
    # without asking the chain again
    unknown_payment_cache_seconds: int = 5
    # an in-progress Idempotency-Key record older than this may be taken over (> Lambda timeout)
    idempotency_lease_seconds: int = 60
    # CORS (ADR 0009): origins allowed on the renter and public POST routes; public GETs
    # answer any origin; admin routes only the admin origins; device routes never
    cors_origins: tuple[str, ...] = ()
    cors_admin_origins: tuple[str, ...] = ()
    active_shards: int = 4
    rpc_timeout_seconds: float = 5.0
    signature_window_seconds: int = 300
    # refunds and the sweep
    refund_requeue_seconds: int = 120  # an owed refund this long without progress is queued again
    refund_commitment: str = "finalized"  # a refund counts as landed at this commitment
    # webhooks: http URLs and private/loopback/link-local targets allowed (local stack only;
    # off in production configuration: https and public addresses only, SSRF)
    webhook_allow_local: bool = False
    webhook_queue_url: str | None = None
    webhook_retry_base_seconds: int = 30  # a failed delivery comes back after 30 s, 60 s, 120 s, … for 24 h
    payment_refused_age_seconds: int = 3600  # an unclaimed payment share this old is told as payment.refused
    # quotes: the watcher's function runs ticks every quote_tick_seconds for quote_watch_seconds
    # (0: one tick per invocation, as the local event runner calls it every ~1.5 s)
    quote_watch_seconds: float = 50.0
    quote_tick_seconds: float = 2.0

    @property
    def contracts_table(self) -> str:
        return f"{self.table_prefix}-contracts"

    @property
    def devices_table(self) -> str:
        return f"{self.table_prefix}-devices"

    @property
    def ledger_table(self) -> str:
        return f"{self.table_prefix}-ledger"

    @property
    def claims_table(self) -> str:
        return f"{self.table_prefix}-claims"

    @property
    def metrics_table(self) -> str:
        return f"{self.table_prefix}-metrics"

    @property
    def refund_queue_name(self) -> str:
        return f"{self.table_prefix}-refunds"

    @property
    def webhook_queue_name(self) -> str:
        return f"{self.table_prefix}-webhooks"

    @property
    def refund_dlq_name(self) -> str:
        return f"{self.table_prefix}-refunds-dlq"

    @classmethod
    def from_env(cls, env: dict[str, Any] | None = None) -> Settings:
        env = dict(os.environ if env is None else env)
        stage = env.get("SI64_STAGE", "local")
        return cls(
            stage=stage,
            region=env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or "us-east-1",
            aws_endpoint_url=env.get("AWS_ENDPOINT_URL") or None,
            dynamodb_endpoint_url=env.get("AWS_ENDPOINT_URL_DYNAMODB") or None,
            table_prefix=env.get("SI64_TABLE_PREFIX", f"si64-{stage}"),
            refund_queue_url=env.get("SI64_REFUND_QUEUE_URL") or None,
            refund_dlq_url=env.get("SI64_REFUND_DLQ_URL") or None,
            solana_rpc_url=env.get("SOLANA_RPC_URL", "http://127.0.0.1:8899"),
            network=env.get("SI64_NETWORK", "localnet"),
            treasury=env.get("SI64_TREASURY", ""),
            admin_key_file=env.get("SI64_ADMIN_KEY_FILE") or None,
            admin_key=env.get("SI64_ADMIN_KEY") or None,
            admin_key_parameter=env.get("SI64_ADMIN_KEY_PARAMETER") or None,
            treasury_key_file=env.get("SI64_TREASURY_KEY_FILE") or None,
            treasury_key_parameter=env.get("SI64_TREASURY_KEY_PARAMETER") or None,
            treasury_secret_id=env.get("SI64_TREASURY_SECRET_ARN") or None,
            min_duration_seconds=_int(env, "SI64_MIN_DURATION_SECONDS", 60),
            max_duration_hours=_int(env, "SI64_MAX_DURATION_HOURS", 720),
            refund_min_lamports=_int(env, "SI64_REFUND_MIN_LAMPORTS", 5_000),
            coverage_grace_seconds=_int(env, "SI64_COVERAGE_GRACE_SECONDS", 60),
            payment_max_age_seconds=_int(env, "SI64_PAYMENT_MAX_AGE_SECONDS", 86_400),
            rate_limit=_rate(env.get("SI64_RATE_LIMIT", "150/10")),
            device_rate_limit=_rate(env.get("SI64_DEVICE_RATE_LIMIT", "200/10")),
            rate_limit_shared=_flag(env.get("SI64_RATE_LIMIT_SHARED"), True),
            rpc_lookup_limit=_rate(env.get("SI64_RPC_LOOKUP_LIMIT", "10/10")),
            unknown_payment_cache_seconds=_int(env, "SI64_UNKNOWN_PAYMENT_CACHE_SECONDS", 5),
            idempotency_lease_seconds=_int(env, "SI64_IDEMPOTENCY_LEASE_SECONDS", 60),
            cors_origins=_origins(env.get("SI64_CORS_ORIGINS")),
            cors_admin_origins=_origins(env.get("SI64_CORS_ADMIN_ORIGINS")),
            active_shards=_int(env, "SI64_ACTIVE_SHARDS", 4),
            rpc_timeout_seconds=float(env.get("SI64_RPC_TIMEOUT_SECONDS", "5")),
            refund_requeue_seconds=_int(env, "SI64_REFUND_REQUEUE_SECONDS", 120),
            refund_commitment=env.get("SI64_REFUND_COMMITMENT") or "finalized",
            webhook_allow_local=_flag(env.get("SI64_WEBHOOK_ALLOW_LOCAL"), False),
            webhook_queue_url=env.get("SI64_WEBHOOK_QUEUE_URL") or None,
            webhook_retry_base_seconds=_int(env, "SI64_WEBHOOK_RETRY_BASE_SECONDS", 30),
            payment_refused_age_seconds=_int(env, "SI64_PAYMENT_REFUSED_AGE_SECONDS", 3600),
            quote_watch_seconds=float(env.get("SI64_QUOTE_WATCH_SECONDS", "50")),
            quote_tick_seconds=float(env.get("SI64_QUOTE_TICK_SECONDS", "2")),
        )


@lru_cache(maxsize=1)
def settings() -> Settings:
    return Settings.from_env()
