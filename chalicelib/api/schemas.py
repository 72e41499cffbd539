"""Request schemas: the body, path and query of each route → domain values.

Pure Python (no chalice import). Refusals are domain errors naming the field:
InvalidRequest (400) for a body or query, NotFound (404) for a path id that
cannot name a contract, Unauthorized (401) for missing renter headers. JSON
numbers arrive as int or Decimal (parsed with parse_float=Decimal); NaN and
Infinity are refused naming their field. Unknown fields are ignored (documented).
The rules themselves (duration limits, prices) stay in the domain.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from ..domain import contracts, keys, money
from ..domain.commands import ExtendRequest, RenterCredentials, RentRequest
from ..domain.errors import InvalidRequest, NotFound, Unauthorized

MAX_BODY_BYTES = 64 * 1024
MAX_BATCH = 120
MAX_CPU = 25_600
MAX_METRIC = 10**12


class NonFinite:
    """Where the body spelled NaN, Infinity or -Infinity (Python's json accepts them; JSON does not)."""

    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text


def _non_finite_path(value: object, path: str) -> str | None:
    """The field path (`samples[3].cpu_percent`) of the first NonFinite in `value`, if any."""
    if isinstance(value, NonFinite):
        return path or "body"
    if isinstance(value, dict):
        for k, v in value.items():
            found = _non_finite_path(v, f"{path}.{k}" if path else str(k))
            if found:
                return found
    elif isinstance(value, list):
        for i, v in enumerate(value):
            found = _non_finite_path(v, f"{path}[{i}]" if path else f"[{i}]")
            if found:
                return found
    return None


def parse_json(raw: bytes | str | None) -> dict[str, Any]:
    """The body as a JSON object: numbers as int or Decimal, never float. NaN / Infinity /
    -Infinity anywhere (even in an ignored field) → 400 naming that field."""
    if raw is None or raw == b"" or raw == "":
        raise InvalidRequest("The request body must be a JSON object.", reason="body")
    seen: list[NonFinite] = []

    def constant(text: str) -> NonFinite:
        seen.append(NonFinite(text))
        return seen[-1]

    try:
        if isinstance(raw, (bytes, bytearray)):
            # JSON on the wire is UTF-8 (RFC 8259 §8.1). json.loads(bytes) would also
            # accept UTF-16/32 and surrogates encoded in UTF-8 ("surrogatepass").
            raw = bytes(raw).decode("utf-8-sig")
        data = json.loads(raw, parse_float=Decimal, parse_constant=constant)
    except (ValueError, UnicodeDecodeError, RecursionError):  # RecursionError: "[[[[…" nested too deep
        raise InvalidRequest("The request body is not valid JSON.", reason="body") from None
    if seen:
        try:
            path = _non_finite_path(data, "") or "body"  # None: a duplicate key replaced it
        except RecursionError:
            path = "body"
        raise InvalidRequest(f"'{path}' must be a finite number ({seen[0].text} is not JSON).", reason=path)
    if not isinstance(data, dict):
        raise InvalidRequest("The request body must be a JSON object.", reason="body")
    return data


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
    if isinstance(value, bool) or not isinstance(value, (int, Decimal)):
        raise InvalidRequest(f"'{name}' must be a number of hours.", reason=name)
    return contracts.requested_seconds(value, name, min_seconds=min_seconds, max_hours=max_hours)


def optional_amount(body: dict[str, Any], name: str = "amount") -> None:
    value = body.get(name)
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, (int, Decimal)) or Decimal(value) < 0:
        raise InvalidRequest(f"'{name}' must be a non-negative number of SOL.", reason=name)


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


def contract_id(value: str) -> str:
    """A path id that cannot name a contract is simply not found (404), like an unknown one."""
    if (
        not isinstance(value, str)
        or not value.startswith("CTR-")
        or not (20 <= len(value) <= 64)
        or not value.isascii()
        or not all(c.isalnum() or c in "-_" for c in value[4:])
    ):
        raise NotFound("No such contract.", reason="contract_id")
    return value


SAMPLE_FIELDS = ("cpu_percent", "memory_mb", "disk_io_mbps", "network_io_mbps")


def _metric(sample: dict[str, Any], name: str, where: str, maximum: int | Decimal) -> Decimal:
    value = sample.get(name)
    if value is None:
        raise InvalidRequest(f"'{where}{name}' is required.", reason=f"{where}{name}")
    if isinstance(value, bool) or not isinstance(value, (int, Decimal)):
        raise InvalidRequest(f"'{where}{name}' must be a number.", reason=f"{where}{name}")
    d = Decimal(value)
    if not d.is_finite() or d < 0 or d > maximum:
        raise InvalidRequest(f"'{where}{name}' must be between 0 and {maximum}.", reason=f"{where}{name}")
    return d


def _sample(sample: object, where: str, now_ms: int, earliest_ms: int, latest_ms: int) -> list[Any]:
    if not isinstance(sample, dict):
        raise InvalidRequest(f"'{where or 'body'}' must be a sample object.", reason=where.rstrip(".") or "body")
    ts = sample.get("timestamp_ms", now_ms)
    if isinstance(ts, bool) or not isinstance(ts, int) or ts <= 0:
        raise InvalidRequest(
            f"'{where}timestamp_ms' must be a Unix time in milliseconds (an integer).", reason=f"{where}timestamp_ms"
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


def limit(raw: str | None, *, default: int = 100, maximum: int = 1000) -> int:
    if raw is None or raw == "":
        return default
    # ASCII digits only ("²".isdigit() is True but int("²") fails), and few enough of
    # them that int() neither fails (4,300-digit limit) nor takes long.
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 18 or not (1 <= int(raw) <= maximum):
        raise InvalidRequest(f"'limit' must be an integer from 1 to {maximum}.", reason="limit")
    return int(raw)


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
    return RenterCredentials(wallet, ts, sig)
