"""Request schemas: the body, path and query of each route → domain values.

Pure Python (no chalice import). Refusals are domain errors naming the field:
InvalidRequest (400) for a body or query, NotFound (404) for a path id that
cannot name a contract, Unauthorized (401) for missing renter headers. JSON
numbers arrive as int or Decimal (parsed with parse_float=Decimal); NaN and
Infinity are refused naming their field. Unknown fields are ignored (documented).
The rules themselves (duration limits, prices) stay in the domain.

Every number from outside is bounded BEFORE it is converted, by one rule (`number`):
at most MAX_NUMBER_CHARS characters as written and at most MAX_PLACES decimal places.
A body's numbers are bounded in length as `parse_json` reads them (its int/float hooks
see the text), then each field that is used goes through `number` (places, range); a
query, path or header number goes through `number` on its text. Out of bounds is 400
naming the field. So no int() meets Python's 4,300-digit limit, no Decimal carries
thousands of digits into the codecs, and no `1E-999999999` is ever written out in full.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from decimal import Decimal
from typing import Any, overload

from ..domain import contracts, keys, money
from ..domain.commands import ExtendRequest, RenterCredentials, RentRequest
from ..domain.errors import InvalidRequest, NotFound, Unauthorized

MAX_BODY_BYTES = 64 * 1024
MAX_BATCH = 120
MAX_CPU = 25_600
MAX_METRIC = 10**12
MAX_UNIX_SECONDS = 10**12 - 1  # X-Timestamp: at most 12 digits
# The bounds of every number from outside (body, query, path, header), checked on its text:
# "-0.30000000000000004" (a double's longest shortest-repr) is 20 characters and 17 places.
MAX_NUMBER_CHARS = 32
MAX_PLACES = 24
PAGE_DEFAULT, PAGE_MAX = 100, 1000  # `?limit=` of a paged read
_INTEGER_TEXT = re.compile(r"[0-9]+")  # every integer parameter from text counts something: no sign
_DECIMAL_TEXT = re.compile(r"-?[0-9]+(\.[0-9]+)?")


class NonFinite:
    """Where the body spelled NaN, Infinity or -Infinity (Python's json accepts them; JSON does not),
    or a number beyond the bounds (`text` is then its first characters)."""

    __slots__ = ("text", "why")

    def __init__(self, text: str, why: str = "must be a finite number ({text} is not JSON)") -> None:
        self.text = text
        self.why = why


_UNBOUNDED = f"must be a number of at most {MAX_NUMBER_CHARS} characters and {MAX_PLACES} decimal places"


def _bounded_places(d: Decimal) -> bool:
    """A finite Decimal within MAX_PLACES decimal places and below 10**MAX_NUMBER_CHARS."""
    exponent = d.as_tuple().exponent
    return isinstance(exponent, int) and exponent >= -MAX_PLACES and d.adjusted() < MAX_NUMBER_CHARS


def _json_int(text: str) -> int | NonFinite:
    return int(text) if len(text) <= MAX_NUMBER_CHARS else NonFinite(text[:12] + "…", _UNBOUNDED)


def _json_decimal(text: str) -> Decimal | NonFinite:
    if len(text) > MAX_NUMBER_CHARS:
        return NonFinite(text[:12] + "…", _UNBOUNDED)
    # at most MAX_NUMBER_CHARS characters: cheap, whatever the exponent; the places and the
    # magnitude of a field that is used are `number`'s to check
    return Decimal(text)


def number(
    value: object,
    name: str,
    *,
    minimum: int | Decimal | None = None,
    maximum: int | Decimal | None = None,
    integer: bool = False,
    what: str | None = None,
    text: bool = False,
) -> int | Decimal:
    """THE check of a number from outside. `value` is a body's int or Decimal (its length
    already bounded by `parse_json`), or with `text=True` the text of a query, path or
    header parameter, whose length and form (ASCII digits; for a non-integer an optional
    sign and fraction; never an exponent) are checked BEFORE int() or Decimal() sees it. Then: finite, at most
    MAX_PLACES decimal places, below 10**MAX_NUMBER_CHARS, within [minimum, maximum];
    `integer`: no fraction at all. InvalidRequest naming `name` otherwise."""
    kind = what or ("an integer" if integer else "a number")
    if minimum is not None and maximum is not None:
        kind += f" from {minimum} to {maximum}"
    elif minimum is not None:
        kind += f" of at least {minimum}"
    refused = InvalidRequest(f"'{name}' must be {kind}.", reason=name)
    if text:
        pattern = _INTEGER_TEXT if integer else _DECIMAL_TEXT
        if not isinstance(value, str) or len(value) > MAX_NUMBER_CHARS or not value.isascii():
            raise refused
        if not pattern.fullmatch(value):
            raise refused
        value = int(value) if integer else Decimal(value)
    if isinstance(value, bool) or not isinstance(value, int if integer else (int, Decimal)):
        raise refused
    if isinstance(value, Decimal) and not (value.is_finite() and _bounded_places(value)):
        raise refused
    if isinstance(value, int) and abs(value) >= 10**MAX_NUMBER_CHARS:
        raise refused
    if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
        raise refused
    return value


@overload
def query_integer(query: dict[str, Any], name: str, default: int, *, minimum: int, maximum: int) -> int: ...
@overload
def query_integer(query: dict[str, Any], name: str, default: None, *, minimum: int, maximum: int) -> int | None: ...
def query_integer(query: dict[str, Any], name: str, default: int | None, *, minimum: int, maximum: int) -> int | None:
    """An optional integer query parameter (absent or empty → `default`), through `number`."""
    raw = query.get(name)
    if raw is None or raw == "":
        return default
    return int(number(raw, name, minimum=minimum, maximum=maximum, integer=True, text=True))


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


def _first_non_finite(value: object) -> NonFinite | None:
    if isinstance(value, NonFinite):
        return value
    children = value.values() if isinstance(value, dict) else value if isinstance(value, list) else ()
    for v in children:
        found = _first_non_finite(v)
        if found:
            return found
    return None


def parse_json(raw: bytes | str | None) -> dict[str, Any]:
    """The body as a JSON object: numbers as int or Decimal, never float. NaN / Infinity /
    -Infinity, or a number longer than MAX_NUMBER_CHARS as written, anywhere (even in an
    ignored field) → 400 naming that field, before int() or Decimal() reads it."""
    if raw is None or raw == b"" or raw == "":
        raise InvalidRequest("The request body must be a JSON object.", reason="body")
    seen: list[NonFinite] = []

    def constant(text: str) -> NonFinite:
        seen.append(NonFinite(text))
        return seen[-1]

    def seen_if_refused(value: int | Decimal | NonFinite) -> int | Decimal | NonFinite:
        if isinstance(value, NonFinite):
            seen.append(value)
        return value

    try:
        if isinstance(raw, (bytes, bytearray)):
            # JSON on the wire is UTF-8 (RFC 8259 §8.1). json.loads(bytes) would also
            # accept UTF-16/32 and surrogates encoded in UTF-8 ("surrogatepass").
            raw = bytes(raw).decode("utf-8-sig")
        data = json.loads(
            raw,
            parse_float=lambda t: seen_if_refused(_json_decimal(t)),
            parse_int=lambda t: seen_if_refused(_json_int(t)),
            parse_constant=constant,
        )
    except (ValueError, UnicodeDecodeError, RecursionError):  # RecursionError: "[[[[…" nested too deep
        raise InvalidRequest("The request body is not valid JSON.", reason="body") from None
    if seen:
        try:
            path = _non_finite_path(data, "") or "body"  # None: a duplicate key replaced it
            # the value at that path (its own text and rule), else the first one read
            first = _first_non_finite(data) or seen[0]
        except RecursionError:
            path, first = "body", seen[0]
        raise InvalidRequest(f"'{path}' " + first.why.format(text=first.text) + ".", reason=path)
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
