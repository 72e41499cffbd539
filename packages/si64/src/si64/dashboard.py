"""`si64 dashboard`: one snapshot of the business, or a live view (`--watch SECONDS`).

Data comes only from the HTTP API, per frame (with the default bounds):

* ``GET /api/stats`` (admin): counts by status, active prepaid, settled revenue,
  pending refunds, refunds by status, device slots, refund queue and DLQ depth.
* ``GET /api/billing/ledger?limit=1000`` (admin), at most ``max_pages`` pages:
  the active contracts (live cost, refundable, expiry) and the settlements.
* ``GET /api/billing/entries?account=retained_dust`` (admin), paged the same way:
  the dust retained (credits − debits of that account).
* ``GET /api/admin/devices`` (admin): every device with leases, capacity, uptime, audited
  and last report, grouped by the tiers of ``GET /api/pricing`` (read once).

Only the top N rows of each table are drawn, with totals over everything that
was read, so a frame stays short and quick at thousands of contracts. Figures
that the API does not give are shown as "n/a".
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation

from . import fmt
from .client import Client, OpsError

DEFAULT_TOP = 15
DEFAULT_SETTLEMENTS = 10
DEFAULT_MAX_PAGES = 10  # x 1,000 contracts per ledger page
DUST_ACCOUNT = "retained_dust"


@dataclass
class Snapshot:
    api_url: str
    server_time: int
    stats: dict
    active: list[dict]
    completed: list[dict]
    ledger_truncated: bool
    dust_lamports: int | None
    dust_truncated: bool
    devices: dict[str, list[dict] | None]
    fetch_seconds: float = 0.0
    requests: int = 0
    problems: list[str] = field(default_factory=list)
    server_time_ms: int | None = None


def _ints(rows, name: str) -> int:
    total = 0
    for r in rows:
        v = fmt.lamports_of(r, name)
        total += v or 0
    return total


class Dashboard:
    """Collects snapshots; remembers the tier list between frames."""

    def __init__(self, client: Client, max_pages: int = DEFAULT_MAX_PAGES, page_size: int = 1000):
        self.client, self.max_pages, self.page_size = client, max_pages, page_size
        self._tiers: list[str] | None = None

    def tiers(self) -> list[str]:
        if self._tiers is None:
            pricing = self.client.get("/api/pricing")
            self._tiers = [t["tier"] for t in pricing.get("tiers", [])]
        return self._tiers

    def collect(self) -> Snapshot:
        """One frame's data. The independent reads run concurrently (the two whole-table reads,
        /api/stats and the ledger pages, dominate); the ledger's pages follow each other."""
        from concurrent.futures import ThreadPoolExecutor

        started, n0 = time.monotonic(), self.client.requests
        tiers = self.tiers()
        with ThreadPoolExecutor(max_workers=4, thread_name_prefix="si64-dash") as pool:
            f_stats = pool.submit(self.client.get, "/api/stats", admin=True)
            f_ledger = pool.submit(self._ledger)
            f_dust = pool.submit(self._dust)
            f_fleet = pool.submit(self.client.get, "/api/admin/devices", admin=True)
            stats = f_stats.result()
            active, completed, truncated = f_ledger.result()
            problems: list[str] = []
            try:
                dust, dust_truncated = f_dust.result()
            except OpsError as exc:
                dust, dust_truncated = None, False
                problems.append(f"dust: {exc}")
            devices: dict[str, list[dict] | None] = {}
            try:
                fleet = f_fleet.result().get("devices") or []
                for tier in tiers:
                    devices[tier] = [d for d in fleet if d.get("tier") == tier]
            except OpsError as exc:
                for tier in tiers:
                    devices[tier] = None
                problems.append(f"devices: {exc}")
        return Snapshot(
            self.client.api_url,
            int(stats.get("server_time") or time.time()),
            stats,
            active,
            completed,
            truncated,
            dust,
            dust_truncated,
            devices,
            time.monotonic() - started,
            self.client.requests - n0,
            problems,
            stats.get("server_time_ms") if isinstance(stats.get("server_time_ms"), int) else None,
        )

    def _ledger(self) -> tuple[list[dict], list[dict], bool]:
        active, completed, truncated = [], [], False
        for page in self.client.pages(
            "/api/billing/ledger", "contracts", limit=self.page_size, max_pages=self.max_pages
        ):
            active.extend(page.get("active_contracts") or [])
            completed.extend(page.get("completed_settlements") or [])
            truncated = truncated or bool(page.get("_truncated"))
        return active, completed, truncated

    def _dust(self) -> tuple[int, bool]:
        dust, truncated = 0, False
        for page in self.client.pages(
            "/api/billing/entries", "entries", {"account": DUST_ACCOUNT}, limit=self.page_size, max_pages=self.max_pages
        ):
            for e in page.get("entries") or []:
                dust += int(e.get("credit_lamports") or 0) - int(e.get("debit_lamports") or 0)
            truncated = truncated or bool(page.get("_truncated"))
        return dust, truncated


# ------------------------------------------------------------------ pure figures
AWAITING_SWEEP = "awaiting sweep"


def has_ended(row: dict, now_s: int, now_ms: int | None = None) -> bool:
    """The API's rule (domain/contracts.py ``Contract.is_live``): a contract runs while it is ACTIVE
    and before its expiry; from its expiry on it has ended, even before the sweep books it."""
    if row.get("status") != "ACTIVE":
        return True
    if isinstance(row.get("expires_at_ms"), int) and now_ms is not None:
        return now_ms >= row["expires_at_ms"]
    return isinstance(row.get("expires_at"), int) and now_s >= row["expires_at"]


def _split(s: Snapshot) -> tuple[list[dict], list[dict]]:
    """(running, ended) rows of the ledger's ACTIVE list, computed once per snapshot."""
    cached = s.__dict__.get("_split")
    if cached is None:
        running, ended_rows = [], []
        for r in s.active:
            (ended_rows if has_ended(r, s.server_time, s.server_time_ms) else running).append(r)
        cached = s.__dict__["_split"] = (running, ended_rows)
    return cached


def live_active(s: Snapshot) -> list[dict]:
    """The ledger's ACTIVE rows that still run."""
    return _split(s)[0]


def ended_unswept(s: Snapshot) -> list[dict]:
    """ACTIVE rows past their expiry, as the ended contracts they are: EXPIRED at their expiry,
    used = their price and the rest owed back (the ledger's figures), the refund queued by the sweep."""
    return [
        dict(
            r,
            status="EXPIRED" if r.get("status") == "ACTIVE" else r.get("status"),
            settlement_time=r.get("expires_at"),
            refund_status=AWAITING_SWEEP,
            refund_tx=None,
        )
        for r in _split(s)[1]
    ]


def summary(s: Snapshot) -> list[tuple[str, str, str]]:
    """(label, value, note) rows of the summary panel."""
    st = s.stats
    partial = "partial: first pages only" if s.ledger_truncated else ""
    refunds = st.get("refunds_by_status") or {}
    dev = st.get("devices") or {}
    live = live_active(s)
    rows = [
        ("active contracts", active_count(s), counts_note(s)),
        ("prepaid (active)", fmt.sol(fmt.lamports_of(st, "active_prepaid"), unit=True), "received on chain"),
        ("used so far (active)", fmt.sol(_ints(live, "used"), unit=True), partial or "live cost"),
        ("refundable now (active)", fmt.sol(_ints(live, "refund"), unit=True), partial),
        (
            "pending refunds",
            fmt.sol(fmt.lamports_of(st, "pending_refunds"), unit=True),
            ", ".join(f"{k} {v}" for k, v in sorted(refunds.items())) or "no settlements",
        ),
        ("settled revenue", fmt.sol(fmt.lamports_of(st, "revenue"), unit=True), "usage of ended contracts"),
        (
            "dust retained",
            fmt.sol(s.dust_lamports, unit=True),
            "partial: first pages only" if s.dust_truncated else "refunds below the minimum, kept",
        ),
        (
            "device slots",
            f"{fmt.count(dev.get('slots_leased'))} / {fmt.count(dev.get('capacity'))} leased",
            f"{fmt.count(dev.get('count'))} devices",
        ),
        ("refund queue", queue_depth(st, "refund_queue"), ""),
        ("dead-letter queue", queue_depth(st, "dead_letter_queue"), ""),
        ("chain RPC", {True: "reachable", False: "UNREACHABLE"}.get(st.get("rpc_reachable"), fmt.NA), ""),
    ]
    return rows


def active_count(s: Snapshot) -> str:
    """Contracts still running: the book's ACTIVE count less those past their expiry."""
    n = (s.stats.get("contracts") or {}).get("ACTIVE")
    return fmt.NA if n is None else fmt.count(max(0, n - len(ended_unswept(s))))


def counts_note(s: Snapshot) -> str:
    by_status = s.stats.get("contracts") or {}
    waiting = len(ended_unswept(s))
    return f"settled {fmt.count(by_status.get('SETTLED'))} · expired {fmt.count(by_status.get('EXPIRED'))}" + (
        f" (+{waiting} {AWAITING_SWEEP})" if waiting else ""
    )


def queue_depth(stats: dict, name: str) -> str:
    q = (stats.get("queues") or {}).get(name)
    if not isinstance(q, dict):
        return fmt.NA
    return f"{q.get('visible', 0)} waiting · {q.get('in_flight', 0)} in flight"


def top_active(s: Snapshot, n: int) -> list[dict]:
    """The running contracts, soonest to expire first."""
    return sorted(live_active(s), key=lambda r: (r.get("expires_at") or 0, r.get("contract_id", "")))[: max(n, 0)]


def ended(s: Snapshot) -> list[dict]:
    """Every ended contract read: the settlements and the contracts past their expiry."""
    return s.completed + ended_unswept(s)


def last_settlements(s: Snapshot, n: int) -> list[dict]:
    """The latest ended contracts first (a contract past its expiry ended at its expiry)."""
    return sorted(ended(s), key=lambda r: (r.get("settlement_time") or 0, r.get("contract_id", "")), reverse=True)[
        : max(n, 0)
    ]


def device_rows(s: Snapshot) -> list[dict]:
    """One row per tier: devices, slots, min uptime, latest last-seen (when the API gives it)."""
    out = []
    for tier, devs in s.devices.items():
        if devs is None:
            out.append({"tier": tier, "devices": None})
            continue
        leased = sum(int(d.get("leases") or 0) for d in devs)
        capacity = sum(int(d.get("capacity") or 0) for d in devs)
        uptimes = [_pct(d.get("uptime")) for d in devs]
        uptimes = [u for u in uptimes if u is not None]
        seen = [_last_seen(d) for d in devs]
        seen = [x for x in seen if x is not None]
        out.append(
            {
                "tier": tier,
                "devices": len(devs),
                "leased": leased,
                "capacity": capacity,
                "free": capacity - leased,
                "audited": sum(1 for d in devs if d.get("audited")),
                "uptime_min": min(uptimes, key=lambda u: Decimal(u[:-1])) if uptimes else None,
                "last_seen": max(seen) if seen else None,
            }
        )
    return out


def _pct(text) -> str | None:
    """A percentage string such as "99.8%" (compared as a decimal, never as text), else None."""
    if isinstance(text, str) and text.endswith("%"):
        try:
            if Decimal(text[:-1]).is_finite():
                return text
        except InvalidOperation:
            pass
    return None


def _last_seen(d: dict) -> int | None:
    """Seconds of the device's last report (admin device view), None when it never reported."""
    if isinstance(d.get("last_seen"), int):
        return d["last_seen"]
    if isinstance(d.get("last_seen_ms"), int):
        return d["last_seen_ms"] // 1000
    return None


def as_json(s: Snapshot, top: int, settlements: int) -> dict:
    """The snapshot's figures for scripts (`--json`): integers in lamports."""
    st = s.stats
    return {
        "api_url": s.api_url,
        "server_time": s.server_time,
        "active_contracts": (st.get("contracts") or {}).get("ACTIVE"),
        "ended_awaiting_sweep": len(ended_unswept(s)),
        "active_prepaid_lamports": fmt.lamports_of(st, "active_prepaid"),
        "active_used_lamports": _ints(live_active(s), "used"),
        "active_refundable_lamports": _ints(live_active(s), "refund"),
        "pending_refunds_lamports": fmt.lamports_of(st, "pending_refunds"),
        "revenue_lamports": fmt.lamports_of(st, "revenue"),
        "dust_retained_lamports": s.dust_lamports,
        "partial": s.ledger_truncated or s.dust_truncated,
        "queues": st.get("queues"),
        "active": top_active(s, top),
        "settlements": last_settlements(s, settlements),
        "devices": device_rows(s),
        "problems": s.problems,
    }


# ------------------------------------------------------------------ rendering
NARROW = 110  # columns: below this the tables drop their least needed columns


def _header(s: Snapshot, compact: bool):
    from rich.text import Text

    where = "" if compact else f" · {s.api_url}"
    return Text(
        f"SI64 dashboard{where} · server time {fmt.utc(s.server_time, with_date=True)} · "
        f"{s.requests} requests in {s.fetch_seconds:.2f} s",
        style="bold",
    )


def _notes(s: Snapshot, error: str | None) -> list:
    from rich.text import Text

    out = []
    if error:
        out.append(Text(f"last refresh failed: {error} (showing the previous frame)", style="bold red"))
    for p in s.problems:
        out.append(Text(f"warning: {p}", style="yellow"))
    return out


def _summary_table(s: Snapshot, tbox):
    from rich.table import Table

    summ = Table(box=tbox, show_header=False, pad_edge=False, title="Summary", title_justify="left")
    summ.add_column("figure")
    summ.add_column("value", justify="right")
    summ.add_column("note", style="dim")
    for label, value, note in summary(s):
        summ.add_row(label, value, note)
    return summ


def compact_summary(s: Snapshot) -> list[str]:
    """The summary in three lines of at most ~80 columns (a classic 80x24 terminal)."""
    st = s.stats
    live = live_active(s)
    dev = st.get("devices") or {}
    rpc = {True: "ok", False: "UNREACHABLE"}.get(st.get("rpc_reachable"), fmt.NA)
    partial = " (partial)" if s.ledger_truncated else ""
    return [
        f"active contracts {active_count(s)} · {counts_note(s)}"
        f" · slots {fmt.count(dev.get('slots_leased'))}/{fmt.count(dev.get('capacity'))}",
        f"used {fmt.sol(_ints(live, 'used'))} · refundable {fmt.sol(_ints(live, 'refund'))}{partial}"
        f" · revenue {fmt.sol(fmt.lamports_of(st, 'revenue'), unit=True)}",
        f"refunds owed {fmt.sol(fmt.lamports_of(st, 'pending_refunds'), unit=True)}"
        f" · queue {_queue_short(st, 'refund_queue')} · DLQ {_queue_short(st, 'dead_letter_queue')} · RPC {rpc}",
    ]


def _queue_short(stats: dict, name: str) -> str:
    q = (stats.get("queues") or {}).get(name)
    if not isinstance(q, dict):
        return fmt.NA
    flight = q.get("in_flight", 0)
    return f"{q.get('visible', 0)}" + (f" (+{flight} in flight)" if flight else "")


def _active_table(s: Snapshot, shown: list[dict], tbox, narrow: bool):
    from rich.table import Table

    live = live_active(s)
    n_live = len(live)
    at = Table(
        box=tbox,
        title=f"Active contracts · {len(shown)} of {n_live:,} shown, soonest to expire first"
        + (" · PARTIAL (page bound reached)" if s.ledger_truncated else ""),
        title_justify="left",
        show_footer=n_live > 0 and not narrow,
        show_edge=not narrow,
        pad_edge=not narrow,
    )
    at.add_column("contract", footer=f"all {n_live:,}", no_wrap=True)
    at.add_column("tier", no_wrap=True)
    if not narrow:
        at.add_column("device", no_wrap=True)
    at.add_column("prepaid SOL", justify="right", footer=fmt.sol(_ints(live, "prepaid")), no_wrap=narrow)
    at.add_column("live cost SOL", justify="right", footer=fmt.sol(_ints(live, "used")), no_wrap=narrow)
    if not narrow:
        at.add_column("refundable SOL", justify="right", footer=fmt.sol(_ints(live, "refund")))
    at.add_column("time left", justify="right", no_wrap=True)
    for r in shown:
        left = (r.get("expires_at") - s.server_time) if isinstance(r.get("expires_at"), int) else None
        cells = [r.get("contract_id", "?"), r.get("tier", "?")]
        if not narrow:
            cells.append(r.get("device_id") or fmt.NA)
        cells += [fmt.sol(fmt.lamports_of(r, "prepaid")), fmt.sol(fmt.lamports_of(r, "used"))]
        if not narrow:
            cells.append(fmt.sol(fmt.lamports_of(r, "refund")))
        cells.append(fmt.duration(left))
        at.add_row(*cells)
    if not shown:
        at.add_row("(none)" if not n_live else "…", *[""] * (len(at.columns) - 1))
    return at


def _settlements_table(s: Snapshot, last: list[dict], tbox, narrow: bool, plain: bool):
    from rich.table import Table
    from rich.text import Text

    title = f"Last settlements · {len(last)} of {len(ended(s)):,}"
    lt = Table(box=tbox, title=title, title_justify="left", show_edge=not narrow, pad_edge=not narrow)
    cols = [("contract", {"no_wrap": True}), ("status", {}), ("ended", {})]
    if not narrow:
        cols += [("prepaid SOL", {"justify": "right"}), ("used SOL", {"justify": "right"})]
    cols += [("refund SOL", {"justify": "right", "no_wrap": True}), ("refund", {"no_wrap": True})]
    if not narrow:
        cols.append(("refund tx", {"no_wrap": True}))
    for col, kw in cols:
        lt.add_column(col, **kw)
    for r in last:
        status = r.get("refund_status") or fmt.NA
        style = {"FAILED": "bold red", "CONFIRMED": "green", "DUST": "dim", AWAITING_SWEEP: "yellow"}.get(status, "")
        cells = [r.get("contract_id", "?"), r.get("status", "?"), fmt.utc(r.get("settlement_time"))]
        if not narrow:
            cells += [fmt.sol(fmt.lamports_of(r, "prepaid")), fmt.sol(fmt.lamports_of(r, "used"))]
        cells += [fmt.sol(fmt.lamports_of(r, "refund")), Text(status, style=style)]
        if not narrow:
            cells.append((r.get("refund_tx") or "-") if plain else fmt.short_sig(r.get("refund_tx")))
        lt.add_row(*cells)
    if not last:
        lt.add_row("(none)", *[""] * (len(cols) - 1))
    return lt


def _devices_table(s: Snapshot, tbox, narrow: bool):
    from rich.table import Table

    now = s.server_time
    dt = Table(box=tbox, title="Device slots by tier", title_justify="left", show_edge=not narrow, pad_edge=not narrow)
    # "lowest uptime": the smallest uptime percentage among the tier's devices
    cols = ("tier", "devices", "leased", "capacity", "free", "audited", "lowest uptime", "last seen")
    keep = [c for c in cols if not (narrow and c == "capacity")]  # leased + free
    for col in keep:
        dt.add_column(col, justify="left" if col == "tier" else "right", no_wrap=True)
    for d in device_rows(s):
        if d["devices"] is None:
            dt.add_row(d["tier"], *[fmt.NA] * (len(keep) - 1))
            continue
        cells = {
            "tier": d["tier"],
            "devices": str(d["devices"]),
            "leased": str(d["leased"]),
            "capacity": str(d["capacity"]),
            "free": str(d["free"]),
            "audited": str(d["audited"]),
            "lowest uptime": d["uptime_min"] or fmt.NA,
            "last seen": fmt.ago(d["last_seen"], now),
        }
        dt.add_row(*(cells[c] for c in keep))
    return dt


def render(
    s: Snapshot,
    top: int = DEFAULT_TOP,
    settlements: int = DEFAULT_SETTLEMENTS,
    *,
    plain: bool = False,
    error: str | None = None,
):
    """A rich renderable of the whole frame. ``plain``: no colours, ASCII-friendly boxes."""
    from rich import box
    from rich.console import Group

    tbox = box.SIMPLE if plain else box.SIMPLE_HEAD
    parts = [_header(s, compact=False), *_notes(s, error), _summary_table(s, tbox)]
    parts.append(_active_table(s, top_active(s, top), tbox, narrow=False))
    parts.append(_settlements_table(s, last_settlements(s, settlements), tbox, narrow=False, plain=plain))
    parts.append(_devices_table(s, tbox, narrow=False))
    return Group(*parts)


def render_fit(
    s: Snapshot,
    top: int = DEFAULT_TOP,
    settlements: int = DEFAULT_SETTLEMENTS,
    *,
    width: int,
    height: int,
    error: str | None = None,
    console=None,
):
    """The frame of a live terminal of width x height: never taller, the running contracts that
    expire soonest always in it. The whole summary when it leaves room for the contracts, else
    three compact lines; then as many contract rows as fit, then settlements and devices if room."""
    from rich import box
    from rich.console import Console, Group
    from rich.text import Text

    console = console or Console(width=width, height=height, color_system=None, file=None)
    options = console.options.update(width=width, height=None)

    def lines(renderable) -> int:
        return len(console.render_lines(renderable, options, pad=False, new_lines=False))

    tbox = box.SIMPLE_HEAD
    narrow = width < NARROW
    budget = max(1, height - 1)  # the terminal's last line holds the cursor
    live = top_active(s, top)
    recent = last_settlements(s, settlements)
    makers = {
        "active": lambda n: _active_table(s, live[:n], tbox, narrow),
        "settled": lambda n: _settlements_table(s, recent[:n], tbox, narrow, plain=False),
    }
    measured: dict[tuple[str, int], tuple] = {}

    def table(kind: str, n: int) -> tuple:
        """(table of the first n rows, its height in lines), each drawn at most once per frame."""
        if (kind, n) not in measured:
            t = makers[kind](n)
            measured[kind, n] = (t, lines(t))
        return measured[kind, n]

    def fitted(kind: str, total: int, minimum: int, room: int):
        """The `kind` table with as many of its `total` rows as fit in `room` lines (the height
        grows with the rows: a bisection), or None when not even `minimum` rows do."""
        if table(kind, total)[1] <= room:
            return table(kind, total)
        best, lo, hi = None, minimum, total - 1
        while lo <= hi:
            mid = (lo + hi) // 2
            if table(kind, mid)[1] <= room:
                best, lo = table(kind, mid), mid + 1
            else:
                hi = mid - 1
        return best

    parts = [_header(s, compact=narrow), *_notes(s, error)]
    used = sum(lines(p) for p in parts)
    full = _summary_table(s, tbox)
    # the whole summary only when it leaves room for every contract shown and a settlement
    rest = table("active", len(live))[1] + table("settled", min(1, len(recent)))[1]
    summ = full if used + lines(full) + rest <= budget else Group(*map(Text, compact_summary(s)))
    used += lines(summ)
    parts.append(summ)
    active = fitted("active", len(live), 0, budget - used)
    if active is None:  # a tiny terminal: one summary line, and the contracts
        parts[-1] = Text(compact_summary(s)[0])
        used = sum(lines(p) for p in parts)
        active = fitted("active", len(live), 0, budget - used)
        return Group(*parts, *([active[0]] if active is not None else []))
    parts.append(active[0])
    used += active[1]
    devices = _devices_table(s, tbox, narrow)
    device_lines = lines(devices)
    # a few settlements and the devices when both fit; else as many settlements as fit
    last = fitted("settled", len(recent), min(3, len(recent)), budget - used - device_lines) or fitted(
        "settled", len(recent), min(1, len(recent)), budget - used
    )
    if last is not None:
        parts.append(last[0])
        used += last[1]
        if used + device_lines <= budget:
            parts.append(devices)
    return Group(*parts)


def make_console(plain: bool, file=None, width: int | None = None):
    """A terminal console, or (plain) one that writes no ANSI and strips trailing blanks.
    ``width``: at least this wide when plain (a table whose ids must never be cut)."""
    import shutil

    from rich.console import Console

    file = file or sys.stdout
    if plain:
        cols = shutil.get_terminal_size((200, 50)).columns if file.isatty() else 200
        return _PlainConsole(file, max(cols, 120, width or 0))
    return Console(file=file, highlight=False, emoji=False)


class _PlainConsole:
    """print() renders through rich into a string (no terminal, no colours) and writes it stripped."""

    def __init__(self, file, width: int):
        self.file, self.width = file, width

    def print(self, renderable="") -> None:
        import io

        from rich.console import Console

        buf = io.StringIO()
        Console(
            file=buf,
            force_terminal=False,
            color_system=None,
            no_color=True,
            highlight=False,
            emoji=False,
            width=self.width,
            soft_wrap=False,
        ).print(renderable)
        self.file.write("\n".join(line.rstrip() for line in buf.getvalue().splitlines()) + "\n")


def run(
    client: Client,
    *,
    watch: float | None = None,
    top: int = DEFAULT_TOP,
    settlements: int = DEFAULT_SETTLEMENTS,
    max_pages: int = DEFAULT_MAX_PAGES,
    as_json_out: bool = False,
    plain: bool | None = None,
    file=None,
    frames: int | None = None,
) -> int:
    """The `dashboard` command. ``frames`` bounds a watch (for tests); None = until Ctrl-C."""
    import json

    file = file or sys.stdout
    plain = (not file.isatty()) if plain is None else plain
    dash = Dashboard(client, max_pages=max_pages)
    snap = dash.collect()  # the first frame's errors are the command's errors
    if as_json_out:
        file.write(json.dumps(as_json(snap, top, settlements), indent=2) + "\n")
        return 0
    console = make_console(plain, file)
    if not watch:
        console.print(render(snap, top, settlements, plain=plain))
        return 0
    if plain:  # not a terminal: one plain frame per interval, separated by a blank line
        n = 0
        try:
            while True:
                console.print(render(snap, top, settlements, plain=True))
                file.flush()
                n += 1
                if frames is not None and n >= frames:
                    return 0
                _sleep_until(time.monotonic() + max(0.0, watch - snap.fetch_seconds))
                try:
                    snap = dash.collect()
                except OpsError as exc:
                    console.print(f"refresh failed: {exc}")
                console.print()
        except KeyboardInterrupt:
            return 0
    from rich.live import Live

    def frame(error=None):  # fitted to the terminal's size at each refresh (it may be resized)
        width, height = console.size
        return render_fit(snap, top, settlements, width=width, height=height, error=error, console=console)

    n, error = 1, None
    try:
        with Live(frame(), console=console, auto_refresh=False, vertical_overflow="ellipsis") as live:
            while frames is None or n < frames:
                _sleep_until(time.monotonic() + max(0.0, watch - (snap.fetch_seconds if error is None else 0)))
                try:
                    snap, error = dash.collect(), None
                except OpsError as exc:
                    error = str(exc)
                live.update(frame(error), refresh=True)
                n += 1
    except KeyboardInterrupt:
        pass
    return 0


def _sleep_until(deadline: float) -> None:
    """A frame every `watch` seconds when the API is quick; back to back (never piling up) when not."""
    left = deadline - time.monotonic()
    if left > 0:
        time.sleep(left)
