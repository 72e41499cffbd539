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
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from .deliveries import DELIVERED as DELIVERED
from .deliveries import DELIVERY_LOG_KEEP as DELIVERY_LOG_KEEP
from .deliveries import DELIVERY_STATUSES as DELIVERY_STATUSES
from .deliveries import FAILING as FAILING
from .deliveries import GIVEN_UP as GIVEN_UP
from .deliveries import MAX_ERROR_CHARS as MAX_ERROR_CHARS
from .deliveries import PENDING as PENDING

# the events and the delivery log live in their own modules; their names stay reachable here
from .deliveries import Delivery as Delivery
from .deliveries import delivery_from_json as delivery_from_json
from .deliveries import delivery_to_json as delivery_to_json
from .deliveries import delivery_view as delivery_view
from .deliveries import logged as logged
from .errors import InvalidRequest
from .outbox_events import LOW_TIME_CAP_MS as LOW_TIME_CAP_MS
from .outbox_events import LOW_TIME_FLOOR_MS as LOW_TIME_FLOOR_MS
from .outbox_events import LOW_TIME_HORIZON_MS as LOW_TIME_HORIZON_MS
from .outbox_events import LOW_TIME_SHARE as LOW_TIME_SHARE
from .outbox_events import OUTBOX_SHARDS as OUTBOX_SHARDS
from .outbox_events import Event as Event
from .outbox_events import contract_data as contract_data
from .outbox_events import contract_event as contract_event
from .outbox_events import ended_event as ended_event
from .outbox_events import envelope as envelope
from .outbox_events import event_id as event_id
from .outbox_events import low_time_due as low_time_due
from .outbox_events import low_time_event as low_time_event
from .outbox_events import low_time_threshold_ms as low_time_threshold_ms
from .outbox_events import opened_event as opened_event
from .outbox_events import refund_event as refund_event
from .outbox_events import refused_event as refused_event

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


def public_view(w: Webhook) -> dict[str, Any]:
    """A webhook as GET lists it: never its secret."""
    return {
        "webhook_id": w.webhook_id,
        "url": w.url,
        "events": list(w.events),
        "created_at": w.created_at_ms // 1000,
    }
