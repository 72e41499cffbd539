"""Every number from outside is bounded BEFORE it is converted, by one rule (`number`):
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
from decimal import Decimal
from typing import Any, overload

from ..domain.errors import InvalidRequest

# The bounds of every number from outside (body, query, path, header), checked on its text:
# "-0.30000000000000004" (a double's longest shortest-repr) is 20 characters and 17 places.
MAX_NUMBER_CHARS = 32
MAX_PLACES = 24
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
