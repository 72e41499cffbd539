"""Request schemas: the body, path and query of each route → domain values.

Pure Python (no chalice import). Refusals are domain errors naming the field:
InvalidRequest (400) for a body or query, NotFound (404) for a path id that
cannot name a contract, Unauthorized (401) for missing renter headers. JSON
numbers arrive as int or Decimal (parsed with parse_float=Decimal); NaN and
Infinity are refused naming their field. Unknown fields are ignored (documented).
The rules themselves (duration limits, prices) stay in the domain.
Every number from outside is bounded before it is converted: `api/numbers.py`.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from ..domain import contracts, keys, money
from ..domain.commands import ExtendRequest, RenterCredentials, RentRequest
from ..domain.errors import InvalidRequest, Unauthorized
from .numbers import (  # every number from outside, bounded before it is converted
    MAX_NUMBER_CHARS as MAX_NUMBER_CHARS,
)
from .numbers import (
    MAX_PLACES as MAX_PLACES,
)
from .numbers import (
    NonFinite as NonFinite,
)
from .numbers import (
    number as number,
)
from .numbers import (
    parse_json as parse_json,
)
from .numbers import (
    query_integer as query_integer,
)
from .paths import MAX_BODY_BYTES as MAX_BODY_BYTES  # the edge's own checks, before any body
from .paths import contract_id as contract_id

MAX_BATCH = 120
MAX_CPU = 25_600
MAX_METRIC = 10**12
MAX_UNIX_SECONDS = 10**12 - 1  # X-Timestamp: at most 12 digits
PAGE_DEFAULT, PAGE_MAX = 100, 1000  # `?limit=` of a paged read


def _require(body: dict[str, Any], name: str) -> Any:
    if name not in body or body[name] is None:
        raise InvalidRequest(f"'{name}' is required.", reason=name)
    return body[name]


def pubkey(value: object, name: str) -> str:
    if not isinstance(value, str) or not keys.is_pubkey(value):
        raise InvalidRequest(f"'{name}' must be a base58 Solana public key.", reason=name)
    return value


def signature(value: object, name: str = "tx_signature") -> str:
    if not isinstance(value, str) or not keys.is_signature(value):
        raise InvalidRequest(f"'{name}' must be a base58 transaction signature.", reason=name)
    return value


def tier(value: object, name: str = "tier") -> str:
    if not isinstance(value, str) or value not in money.TIERS:
        raise InvalidRequest(f"'{name}' must be one of {', '.join(money.TIERS)}.", reason=name)
    return value


def hours(value: object, name: str, *, min_seconds: int, max_hours: int) -> int:
    """A positive number of hours → whole seconds within [min_seconds, max_hours h]."""
    d = number(value, name, what="a number of hours")
    return contracts.requested_seconds(d, name, min_seconds=min_seconds, max_hours=max_hours)


def optional_amount(body: dict[str, Any], name: str = "amount") -> None:
    value = body.get(name)
    if value is None:
        return
    number(value, name, minimum=0, what="a non-negative number of SOL")


def rent_request(body: dict[str, Any], *, min_seconds: int, max_hours: int) -> RentRequest:
    wallet = pubkey(_require(body, "wallet"), "wallet")
    t = tier(_require(body, "tier"))
    seconds = hours(_require(body, "duration_hours"), "duration_hours", min_seconds=min_seconds, max_hours=max_hours)
    sig = signature(_require(body, "tx_signature"))
    optional_amount(body)
    return RentRequest(wallet, t, seconds, sig)


def extend_request(contract_id: str, body: dict[str, Any], *, min_seconds: int, max_hours: int) -> ExtendRequest:
    seconds = hours(
        _require(body, "additional_hours"), "additional_hours", min_seconds=min_seconds, max_hours=max_hours
    )
    sig = signature(_require(body, "tx_signature"))
    return ExtendRequest(contract_id, seconds, sig)


SAMPLE_FIELDS = ("cpu_percent", "memory_mb", "disk_io_mbps", "network_io_mbps")


def _metric(sample: dict[str, Any], name: str, where: str, maximum: int | Decimal) -> Decimal:
    value = sample.get(name)
    if value is None:
        raise InvalidRequest(f"'{where}{name}' is required.", reason=f"{where}{name}")
    return Decimal(number(value, f"{where}{name}", minimum=0, maximum=maximum))


def _sample(sample: object, where: str, now_ms: int, earliest_ms: int, latest_ms: int) -> list[Any]:
    if not isinstance(sample, dict):
        raise InvalidRequest(f"'{where or 'body'}' must be a sample object.", reason=where.rstrip(".") or "body")
    ts = number(
        sample.get("timestamp_ms", now_ms),
        f"{where}timestamp_ms",
        minimum=1,
        integer=True,
        what="a Unix time in milliseconds (an integer)",
    )
    if not earliest_ms <= ts <= latest_ms:
        raise InvalidRequest(
            f"'{where}timestamp_ms' must fall within the contract's lifetime "
            f"({earliest_ms} to {latest_ms} ms, clock skew included).",
            reason=f"{where}timestamp_ms",
        )
    return [ts] + [_metric(sample, f, where, MAX_CPU if f == "cpu_percent" else MAX_METRIC) for f in SAMPLE_FIELDS]


def metrics_samples(body: dict[str, Any], now_ms: int, earliest_ms: int, latest_ms: int) -> list[list[Any]]:
    """One sample or {"samples": [...]} (1..120) → rows [ts_ms, cpu, mem, disk, net], oldest first.
    A sample without `timestamp_ms` is dated `now_ms`; every timestamp must lie within
    [earliest_ms, latest_ms] (the contract's lifetime with a clock-skew allowance,
    services.telemetry.sample_window)."""
    if "samples" in body:
        samples = body["samples"]
        if not isinstance(samples, list) or not samples:
            raise InvalidRequest("'samples' must be a non-empty list.", reason="samples")
        if len(samples) > MAX_BATCH:
            raise InvalidRequest(f"'samples' holds at most {MAX_BATCH} samples.", reason="samples")
        rows = [_sample(s, f"samples[{i}].", now_ms, earliest_ms, latest_ms) for i, s in enumerate(samples)]
    else:
        rows = [_sample(body, "", now_ms, earliest_ms, latest_ms)]
    return sorted(rows, key=lambda r: r[0])


def limit(raw: str | None, *, default: int = PAGE_DEFAULT, maximum: int = PAGE_MAX) -> int:
    return query_integer({"limit": raw}, "limit", default, minimum=1, maximum=maximum)


def entries_query(query: dict[str, Any]) -> tuple[str | None, str | None, int, str | None]:
    """`?contract_id=` or `?account=` (exactly one), `limit`, `next_token`."""
    n = limit(query.get("limit"))
    cid, account = query.get("contract_id"), query.get("account")
    if bool(cid) == bool(account):
        raise InvalidRequest("Give exactly one of 'contract_id' or 'account'.", reason="contract_id")
    return cid, account, n, query.get("next_token")


def renter_credentials(headers: Mapping[str, str]) -> RenterCredentials:
    """X-Wallet, X-Timestamp and X-Signature, all present (checked by services.auth)."""
    wallet, ts, sig = headers.get("x-wallet"), headers.get("x-timestamp"), headers.get("x-signature")
    if not wallet or not ts or not sig:
        raise Unauthorized("X-Wallet, X-Timestamp and X-Signature are required.", reason="missing")
    try:  # bounded like every number from outside; a credential that does not parse is a 401
        number(ts, "X-Timestamp", minimum=0, maximum=MAX_UNIX_SECONDS, integer=True, text=True)
    except InvalidRequest:
        raise Unauthorized("X-Timestamp must be Unix seconds (ASCII digits).", reason="X-Timestamp") from None
    return RenterCredentials(wallet, ts, sig)
