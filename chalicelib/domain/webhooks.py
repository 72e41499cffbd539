"""Webhooks: who is told of what, where, and how a delivery is signed. Pure Python.

A webhook belongs to an owner: `wallet:{address}` (events of that wallet's contracts) or
`admin` (every event). Its secret signs every delivery:

    SI64-Signature: t={unix seconds},v1={hex hmac_sha256(secret, "{t}.{raw body}")}

A receiver recomputes the HMAC over the raw body it got and compares in constant time
(`verify_signature`), refusing a `t` too far from its own clock (replays).

SSRF: in production configuration a webhook URL must be https and every address its host
resolves to must be public (`refused_address`), checked at registration when the host is an
address literal and again at delivery time for every resolved address (DNS can change).
Locally (`allow_local`) http and private/loopback addresses are allowed.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from .contracts import ACTIVE, EXPIRED, SETTLED, Contract
from .errors import InvalidRequest
from .refunds import CONFIRMED, FAILED, Refund, refund_kind

EVENTS = (
    "contract.created",
    "contract.low_time",
    "contract.expired",
    "contract.settled",
    "refund.confirmed",
    "refund.failed",
    "payment.refused",
)
ADMIN_OWNER = "admin"
MAX_WEBHOOKS_PER_OWNER = 10
MAX_URL_CHARS = 2048
SIGNATURE_HEADER = "SI64-Signature"
SIGNATURE_TOLERANCE_SECONDS = 300  # what a receiver should accept between `t` and its clock


@dataclass(frozen=True)
class Webhook:
    webhook_id: str
    owner: str  # `admin` or `wallet:{address}`
    url: str
    events: tuple[str, ...]
    secret: str  # never returned after the registration's answer
    created_at_ms: int


def wallet_owner(wallet: str) -> str:
    return f"wallet:{wallet}"


def check_events(raw: object) -> tuple[str, ...]:
    """A non-empty list of known event names (duplicates folded, order kept)."""
    if not isinstance(raw, list) or not raw:
        raise InvalidRequest(f"events must be a non-empty list of: {', '.join(EVENTS)}.", reason="events")
    out: list[str] = []
    for name in raw:
        if not isinstance(name, str) or name not in EVENTS:
            raise InvalidRequest(f"Unknown event {name!r}; known: {', '.join(EVENTS)}.", reason="events")
        if name not in out:
            out.append(name)
    return tuple(out)


def refused_address(address: str) -> str | None:
    """Why a delivery to `address` (an IP literal) is refused in production, or None when it
    is a public unicast address. IPv4-mapped IPv6 addresses are judged as their IPv4 address."""
    try:
        ip: ipaddress.IPv4Address | ipaddress.IPv6Address = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return "not an IP address"
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    for flag in ("loopback", "private", "link_local", "multicast", "reserved", "unspecified"):
        if getattr(ip, f"is_{flag}"):
            return f"{flag.replace('_', '-')} address {ip}"
    if not ip.is_global:
        return f"non-public address {ip}"
    return None


def check_delivery_addresses(addresses: Iterable[str], allow_local: bool) -> None:
    """Refuse (InvalidRequest, reason `url`) a delivery when ANY resolved address is refused;
    nothing resolved is refused too. Locally every address is allowed."""
    seen = list(addresses)
    if not seen:
        raise InvalidRequest("The webhook's host resolves to no address.", reason="url")
    if allow_local:
        return
    for a in seen:
        why = refused_address(a)
        if why is not None:
            raise InvalidRequest(f"Deliveries to a {why} are refused.", reason="url")


def check_url(raw: object, allow_local: bool) -> str:
    """An absolute https URL (http too when `allow_local`), with a host and no credentials,
    at most MAX_URL_CHARS; a host that is an address literal is checked now (a name is
    checked at delivery time, for every address it resolves to)."""
    if not isinstance(raw, str) or not raw or len(raw) > MAX_URL_CHARS:
        raise InvalidRequest(f"url must be a string of 1 to {MAX_URL_CHARS} characters.", reason="url")
    if any(ch.isspace() or ord(ch) < 0x21 for ch in raw):
        raise InvalidRequest("url must not contain whitespace or control characters.", reason="url")
    try:
        parts = urlsplit(raw)
        host = parts.hostname
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError as exc:
        raise InvalidRequest(f"url is not a valid URL: {exc}.", reason="url") from exc
    schemes = ("https", "http") if allow_local else ("https",)
    if parts.scheme not in schemes:
        raise InvalidRequest(f"url must use {' or '.join(schemes)}.", reason="url")
    if not host:
        raise InvalidRequest("url must name a host.", reason="url")
    if parts.username is not None or parts.password is not None:
        raise InvalidRequest("url must not carry credentials.", reason="url")
    if parts.fragment:
        raise InvalidRequest("url must not carry a fragment.", reason="url")
    if not allow_local:
        if host == "localhost" or host.endswith(".localhost"):
            raise InvalidRequest("Deliveries to localhost are refused.", reason="url")
        if _is_ip(host):
            check_delivery_addresses([host], allow_local=False)
    return raw


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return False
    return True


def sign(secret: str, timestamp: int, raw_body: bytes) -> str:
    """The hex HMAC-SHA256 of `{t}.{raw body}` under `secret`."""
    return hmac.new(secret.encode(), f"{timestamp}.".encode() + raw_body, hashlib.sha256).hexdigest()


def signature_header(secret: str, timestamp: int, raw_body: bytes) -> str:
    return f"t={timestamp},v1={sign(secret, timestamp, raw_body)}"


def verify_signature(
    secret: str, header: str | None, raw_body: bytes, now_s: int, tolerance_s: int = SIGNATURE_TOLERANCE_SECONDS
) -> bool:
    """What a receiver does: parse `t=…,v1=…`, refuse a `t` more than `tolerance_s` from
    `now_s`, compare the HMAC in constant time. False for anything malformed; never raises."""
    if not header:
        return False
    fields: dict[str, list[str]] = {}
    for part in header.split(","):
        k, sep, v = part.strip().partition("=")
        if sep:
            fields.setdefault(k, []).append(v)
    try:
        t = int(fields["t"][0])
    except (KeyError, ValueError):
        return False
    if abs(now_s - t) > tolerance_s:
        return False
    expected = sign(secret, t, raw_body)
    return any(hmac.compare_digest(expected, v) for v in fields.get("v1", []))


def envelope(event_id: str, event_type: str, created_s: int, data: dict[str, Any]) -> dict[str, Any]:
    """The body of a delivery (the same `id` on every retry)."""
    return {"id": event_id, "type": event_type, "created": created_s, "data": data}


def public_view(w: Webhook) -> dict[str, Any]:
    """A webhook as GET lists it: never its secret."""
    return {
        "webhook_id": w.webhook_id,
        "url": w.url,
        "events": list(w.events),
        "created_at": w.created_at_ms // 1000,
    }


# --- the outbox: events written inside the money transaction that causes them ----------------
OUTBOX_SHARDS = 4  # the sparse outbox index's partitions (a dispatcher reads each)


@dataclass(frozen=True)
class Event:
    """One outbox event. `event_id` is derived from what caused it (type, contract, version),
    so a transaction sent twice writes it once and a delivery retried carries the same id."""

    event_id: str
    event_type: str
    contract_id: str
    wallet: str  # whose webhooks hear of it (with the admin's)
    created_ms: int
    data: dict[str, Any] = field(default_factory=dict)

    @property
    def outbox_shard(self) -> int:
        return int(hashlib.sha256(self.event_id.encode()).hexdigest()[:8], 16) % OUTBOX_SHARDS

    def body(self) -> dict[str, Any]:
        return envelope(self.event_id, self.event_type, self.created_ms // 1000, self.data)


def event_id(event_type: str, contract_id: str, version: int) -> str:
    digest = hashlib.sha256(f"{event_type}:{contract_id}:{version}".encode()).hexdigest()
    return f"evt_{digest[:32]}"


def contract_data(c: Contract) -> dict[str, Any]:
    """What an event says of a contract: lamports as integers, times in Unix milliseconds."""
    return {
        "contract_id": c.contract_id,
        "wallet": c.wallet,
        "tier": c.tier,
        "device_id": c.device_id,
        "status": c.status,
        "version": c.version,
        "prepaid_lamports": c.received_lamports,
        "used_lamports": c.used_lamports,
        "refund_lamports": c.refund_lamports if c.status != ACTIVE else None,
        "refund_status": c.refund_status,
        "created_at_ms": c.created_at_ms,
        "expires_at_ms": c.expires_at_ms,
        "ended_at_ms": c.ended_at_ms,
    }


def contract_event(event_type: str, c: Contract, now_ms: int) -> Event:
    return Event(
        event_id(event_type, c.contract_id, c.version), event_type, c.contract_id, c.wallet, now_ms, contract_data(c)
    )


def opened_event(c: Contract) -> Event:
    """contract.created, written with the rent's transaction."""
    return contract_event("contract.created", c, c.created_at_ms)


def ended_event(after: Contract) -> Event:
    """contract.settled or contract.expired, written with the transaction that ends it."""
    if after.status not in (SETTLED, EXPIRED):
        raise ValueError(f"a contract that ended is SETTLED or EXPIRED, not {after.status}")
    kind = "contract.settled" if after.status == SETTLED else "contract.expired"
    return contract_event(kind, after, after.ended_at_ms if after.ended_at_ms is not None else after.created_at_ms)


def refund_event(before: Refund, after: Refund, now_ms: int) -> Event | None:
    """refund.confirmed or refund.failed when `after` enters that status (None otherwise),
    written with the refund's own transaction (RefundStore.advance)."""
    if after.status == before.status or after.status not in (CONFIRMED, FAILED):
        return None
    kind = "refund.confirmed" if after.status == CONFIRMED else "refund.failed"
    contract_id = after.refund_id if refund_kind(after.refund_id) == "contract" else ""
    data = {
        "refund_id": after.refund_id,
        "contract_id": contract_id or None,
        "wallet": after.wallet,
        "lamports": after.lamports,
        "status": after.status,
        "tx_signature": after.tx_signature,
        "fee_lamports": after.fee_lamports,
        "reason": after.reason,
        "version": after.version,
    }
    return Event(event_id(kind, after.refund_id, after.version), kind, contract_id, after.wallet, now_ms, data)


# --- contract.low_time: found by the sweep, written with the contract's marker ---------------
LOW_TIME_SHARE = 10  # 10 % of the contract's current duration left …
LOW_TIME_CAP_MS = 10 * 60 * 1000  # … but never more than 10 min ahead
LOW_TIME_FLOOR_MS = 60 * 1000  # the sweep's period on AWS: a shorter warning could fall between two runs


def low_time_threshold_ms(duration_seconds: int) -> int:
    """Time left at which contract.low_time is due: 10 % of the current duration (extensions
    included), at most 10 min, and at least the sweep's period (60 s), so a threshold shorter
    than one period is never missed between two runs. 1 h → 6 min; 10 h → 10 min; 5 min → 60 s
    (a contract of 60 s is told at its first sweep)."""
    return max(min(duration_seconds * 1000 // LOW_TIME_SHARE, LOW_TIME_CAP_MS), LOW_TIME_FLOOR_MS)


LOW_TIME_HORIZON_MS = LOW_TIME_CAP_MS  # the largest threshold: the sweep reads expiries within it


def low_time_due(c: Contract, now_ms: int) -> bool:
    """ACTIVE, not yet at its expiry, at or under its threshold, and not yet told for THIS expiry:
    once per expiry, so an extension (a new expiry) arms it again."""
    left = c.expires_at_ms - now_ms
    return (
        c.status == ACTIVE
        and 0 < left <= low_time_threshold_ms(c.duration_seconds)
        and c.low_time_for_ms != c.expires_at_ms
    )


def low_time_event(c: Contract, now_ms: int) -> Event:
    """contract.low_time for `c` as read (its version: the marker write keeps the version, so the
    id is the same for every sweep that finds this expiry)."""
    data = {
        **contract_data(c),
        "remaining_ms": c.expires_at_ms - now_ms,
        "threshold_ms": low_time_threshold_ms(c.duration_seconds),
    }
    kind = "contract.low_time"
    return Event(event_id(kind, c.contract_id, c.version), kind, c.contract_id, c.wallet, now_ms, data)


# --- payment.refused: derived from the orphan shares the reconciler finds ---------------------
def refused_event(signature: str, payer: str, lamports: int, slot: int, block_time: int | None, now_ms: int) -> Event:
    """payment.refused for one payer's share of a transfer to the treasury that no claim holds
    after the orphan age. Its id comes from the signature and the payer only, so every run of
    the job that finds the same share writes (at most) the same event. The payer's webhooks hear
    of it (with the operator's); it is refundable through POST /api/payments/{tx_signature}/refund."""
    kind = "payment.refused"
    data = {
        "tx_signature": signature,
        "payer": payer,
        "lamports": lamports,
        "slot": slot,
        "block_time": block_time,
        "refund_path": f"/api/payments/{signature}/refund",
    }
    return Event(event_id(kind, f"{signature}/{payer}", 0), kind, "", payer, now_ms, data)


# --- the delivery log: what `GET /api/webhooks/{id}/deliveries` and `si64 webhooks` show ------
PENDING, DELIVERED, FAILING, GIVEN_UP = "pending", "delivered", "failing", "given_up"
DELIVERY_STATUSES = (PENDING, DELIVERED, FAILING, GIVEN_UP)
DELIVERY_LOG_KEEP = 10  # the newest deliveries kept per webhook (the log item stays under 2 KB: 2 WCU a record)
MAX_ERROR_CHARS = 120


@dataclass(frozen=True)
class Delivery:
    """One event's delivery to one webhook, as last recorded: pending (queued by the dispatcher),
    delivered (a 2xx), failing (`attempts` so far, the next at `next_try_ms`) or given_up (24 h)."""

    event_id: str
    event_type: str
    status: str
    attempts: int
    event_created_ms: int
    updated_ms: int
    next_try_ms: int | None = None
    last_status: int | None = None  # the receiver's HTTP status (None: no answer)
    last_error: str | None = None


def logged(entries: list[Delivery], entry: Delivery, keep: int = DELIVERY_LOG_KEEP) -> list[Delivery]:
    """The log with `entry` recorded, newest first, at most `keep`: it replaces the same event's
    entry, except that `pending` (a dispatch sent again) never hides an outcome already known."""
    old = next((d for d in entries if d.event_id == entry.event_id), None)
    if old is not None and entry.status == PENDING and old.status != PENDING:
        return entries[:keep]
    rest = [d for d in entries if d.event_id != entry.event_id]
    return [entry, *rest][:keep]


def delivery_view(d: Delivery) -> dict[str, Any]:
    """A delivery as the API shows it (times in Unix seconds)."""
    return {
        "event_id": d.event_id,
        "type": d.event_type,
        "status": d.status,
        "attempts": d.attempts,
        "next_try_at": None if d.next_try_ms is None else d.next_try_ms // 1000,
        "last_status": d.last_status,
        "last_error": d.last_error,
        "event_created": d.event_created_ms // 1000,
        "updated_at": d.updated_ms // 1000,
    }


def delivery_to_json(d: Delivery) -> dict[str, Any]:
    return {
        "e": d.event_id,
        "t": d.event_type,
        "s": d.status,
        "n": d.attempts,
        "c": d.event_created_ms,
        "u": d.updated_ms,
        "x": d.next_try_ms,
        "h": d.last_status,
        "r": d.last_error,
    }


def delivery_from_json(j: dict[str, Any]) -> Delivery:
    return Delivery(j["e"], j["t"], j["s"], int(j["n"]), int(j["c"]), int(j["u"]), j.get("x"), j.get("h"), j.get("r"))
