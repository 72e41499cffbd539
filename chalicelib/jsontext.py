"""JSON text of the API's answers: numbers written as plain decimals, never in exponent form.

`json.dumps` writes floats with `repr` (`2.78e-07`) and cannot write a `Decimal` at all.
Every `_sol` figure is a `Decimal` (`domain.money.sol`), exact at any size, and a client
must read it as written, so the one writer of response bodies and stored receipts is
`dumps` below:

* `Decimal` → positional notation of its exact value (`0.000000278`, `2000` for `2E+3`);
* `float` → its shortest round-trip repr, positional (`1e-06` → `0.000001`);
* NaN and ±Infinity are refused (`ValueError`): they are not JSON;
* str, int, bool, None, dict (str keys), list and tuple as `json.dumps` writes them,
  compact (no spaces), ASCII only.

`loads` reads such text back with every fraction or exponent as a `Decimal`.
Pure Python, standard library only.
"""

from __future__ import annotations

import json
from decimal import Decimal
from json.encoder import encode_basestring_ascii as _string
from typing import Any


def number(value: Decimal | float) -> str:
    """A finite Decimal or float as a plain JSON number (no exponent). A float keeps a
    fraction part (`1e16` → `10000000000000000.0`), as `json.dumps` would."""
    d = value if isinstance(value, Decimal) else Decimal(repr(value))
    if not d.is_finite():
        raise ValueError(f"{value!r} is not a JSON number")
    if d.is_zero():
        exponent = d.as_tuple().exponent  # an int: d is finite
        text = "0" if isinstance(exponent, int) and exponent >= 0 else "0.0"
    else:
        text = format(d, "f")
    if isinstance(value, float) and "." not in text:
        text += ".0"
    return text


def _write(obj: object, out: list[str]) -> None:
    if isinstance(obj, str):
        out.append(_string(obj))
    elif obj is None:
        out.append("null")
    elif obj is True:
        out.append("true")
    elif obj is False:
        out.append("false")
    elif isinstance(obj, int):
        out.append(int.__repr__(obj))
    elif isinstance(obj, (Decimal, float)):
        out.append(number(obj))
    elif isinstance(obj, dict):
        out.append("{")
        first = True
        for k, v in obj.items():
            if not first:
                out.append(",")
            first = False
            if not isinstance(k, str):
                raise TypeError(f"keys must be str, not {type(k).__name__}")
            out.append(_string(k))
            out.append(":")
            _write(v, out)
        out.append("}")
    elif isinstance(obj, (list, tuple)):
        out.append("[")
        first = True
        for v in obj:
            if not first:
                out.append(",")
            first = False
            _write(v, out)
        out.append("]")
    else:
        raise TypeError(f"{type(obj).__name__} is not JSON serializable")


def dumps(obj: object) -> str:
    """Compact JSON text of `obj`, numbers as plain decimals (see the module's docstring)."""
    out: list[str] = []
    _write(obj, out)
    return "".join(out)


def loads(text: str | bytes) -> Any:
    """JSON text → Python, fractions and exponents as Decimal (never float)."""
    return json.loads(text, parse_float=Decimal)
