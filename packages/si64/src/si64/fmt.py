"""Display helpers. Amounts are integer lamports in, exact decimal SOL strings out (no float)."""

from __future__ import annotations

import datetime as _dt

LAMPORTS_PER_SOL = 1_000_000_000
NA = "n/a"


def lamports_of(row: dict, name: str) -> int | None:
    """The integer lamports of field ``{name}_lamports`` (never the float SOL field)."""
    value = row.get(f"{name}_lamports") if not name.endswith("_lamports") else row.get(name)
    if isinstance(value, bool) or not isinstance(value, int):
        return None
    return value


def sol(lamports: int | None, *, unit: bool = False, places: int = 9) -> str:
    """``1234567890`` → ``"1.234567890"``: exact, integer arithmetic only; None → "n/a".

    ``places`` < 9 is allowed only when it loses nothing (trailing zeros are cut,
    never digits): ``sol(1_500_000_000, places=3)`` → ``"1.500"``.
    """
    if lamports is None:
        return NA
    if isinstance(lamports, bool) or not isinstance(lamports, int):
        raise TypeError(f"lamports must be an int, not {type(lamports).__name__}")
    sign = "-" if lamports < 0 else ""
    whole, frac = divmod(abs(lamports), LAMPORTS_PER_SOL)
    digits = f"{frac:09d}"
    cut = digits.rstrip("0")
    digits = digits[: max(places, len(cut))]
    out = f"{sign}{whole:,}.{digits}" if digits else f"{sign}{whole:,}"
    return out + " SOL" if unit else out


def duration(seconds: int | None) -> str:
    """``3725`` → ``"1h02m05s"``; negative → ``"0s"``; None → "n/a"."""
    if seconds is None:
        return NA
    s = max(0, int(seconds))
    d, s = divmod(s, 86400)
    h, s = divmod(s, 3600)
    m, s = divmod(s, 60)
    if d:
        return f"{d}d{h:02d}h{m:02d}m"
    if h:
        return f"{h}h{m:02d}m{s:02d}s"
    if m:
        return f"{m}m{s:02d}s"
    return f"{s}s"


def utc(ts: int | None, with_date: bool = False) -> str:
    if not ts:
        return NA
    t = _dt.datetime.fromtimestamp(int(ts), _dt.UTC)
    return t.strftime("%Y-%m-%d %H:%M:%SZ" if with_date else "%H:%M:%SZ")


def ago(ts_s: int | None, now_s: int) -> str:
    if not ts_s:
        return NA
    return duration(now_s - int(ts_s)) + " ago"


def short_sig(sig: str | None, keep: int = 8) -> str:
    if not sig:
        return "-"
    return sig if len(sig) <= 2 * keep + 1 else f"{sig[:keep]}…{sig[-keep:]}"


def count(n: int | None) -> str:
    return NA if n is None else f"{n:,}"
