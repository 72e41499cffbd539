"""Shared helpers of the end-to-end tests: what a real client of SI64 does.

* ``Api``: a small HTTP JSON client (``requests``) that returns ``Resp`` with the
  status, the parsed JSON body (or None), the raw text and the headers; it can
  send raw bytes for malformed-request tests.
* ``Payer``: ``si64.renter.Renter`` (the one payer of the repo: stock solana-py
  ``AsyncClient``, airdrop, a system transfer to the treasury with a memo, confirmed)
  with the tests' defaults.
* ``settle_headers``: the renter's signature of a settle request (``si64.renter.renter_headers``,
  over ``chalicelib.domain.signing.renter_message``), exactly what a browser wallet's
  ``signMessage`` produces.
* Pricing helpers implementing the formulas of docs/api.md exactly (integers only).
"""

from __future__ import annotations

import json as _json
import time
import warnings
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import requests
from solders.keypair import Keypair

from chalicelib.domain import signing
from si64 import renter

LAMPORTS_PER_SOL = 1_000_000_000
LPH = {"M2": 1_000_000, "ORIN": 4_000_000, "M3_ULTRA": 25_000_000, "THOR": 35_000_000}
_UNSET = object()


# ------------------------------------------------------------------ docs/api.md formulas
def duration_seconds(hours) -> int:
    """round_half_up(duration_hours × 3600), exact."""
    return int((Decimal(str(hours)) * 3600).quantize(Decimal(1), rounding=ROUND_HALF_UP))


def price_lamports(tier: str, hours) -> int:
    """ceil(lamports_per_hour × duration_seconds / 3600)."""
    return -(-LPH[tier] * duration_seconds(hours) // 3600)


def usage_lamports(tier: str, t_ms: int, duration_ms: int) -> int:
    """floor(lamports_per_hour × min(t, duration_ms) / 3,600,000)."""
    return LPH[tier] * min(max(t_ms, 0), duration_ms) // 3_600_000


def rent_terms(tier: str, hours) -> str:
    """The memo that binds a payment to a rental of `tier` for `hours` (docs/api.md "Binding a payment")."""
    return signing.rent_memo(tier, duration_seconds(hours))


def extend_terms(contract_id: str, hours) -> str:
    """The memo that binds a payment to an extension of `contract_id` by `hours`."""
    return signing.extend_memo(contract_id, duration_seconds(hours))


# ------------------------------------------------------------------ HTTP
@dataclass
class Resp:
    status: int
    body: Any
    text: str
    headers: dict
    method: str = ""
    path: str = ""

    def __repr__(self) -> str:  # shown by pytest on a failed assert
        return f"<{self.method} {self.path} -> {self.status} {self.text[:600]}>"

    @property
    def is_error_shape(self) -> bool:
        """{"detail": str, "code": str, "reason": str|null} (500 adds request_id)."""
        b = self.body
        return (
            isinstance(b, dict)
            and isinstance(b.get("detail"), str)
            and isinstance(b.get("code"), str)
            and "reason" in b
            and (b["reason"] is None or isinstance(b["reason"], str))
            and set(b) <= {"detail", "code", "reason", "request_id"}
        )


@dataclass
class Api:
    base_url: str
    admin_key: str | None = None
    timeout: float = 30.0
    retry_429: bool = True
    rate_limited: int = 0  # how many 429s were waited out (the stack's rate limit was hit)
    session: requests.Session = field(default_factory=requests.Session)

    def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = _UNSET,
        data: bytes | str | None = None,
        headers: dict | None = None,
        admin: bool = False,
    ) -> Resp:
        hdrs = dict(headers or {})
        if admin:
            hdrs["X-Admin-Key"] = self.admin_key
        if json is not _UNSET:
            data = _json.dumps(json)
        if data is not None:
            hdrs.setdefault("Content-Type", "application/json")
        for _ in range(5):
            r = self.session.request(method, self.base_url + path, data=data, headers=hdrs, timeout=self.timeout)
            if r.status_code == 429 and self.retry_429:
                # Not the server's fault: the stack under test runs with a low SI64_RATE_LIMIT.
                # Wait it out as a client should, and say so in pytest's warnings summary.
                self.rate_limited += 1
                warnings.warn(
                    f"{method} {path} answered 429 (rate limited) and was retried after "
                    f"Retry-After={r.headers.get('Retry-After')} s: run the stack with a high "
                    "SI64_RATE_LIMIT for tests",
                    stacklevel=2,
                )
                time.sleep(float(r.headers.get("Retry-After", "1")))
                continue
            break
        try:
            body = r.json()
        except ValueError:
            body = None
        return Resp(r.status_code, body, r.text, dict(r.headers), method, path)

    def get(self, path: str, **kw) -> Resp:
        return self.request("GET", path, **kw)

    def post(self, path: str, json: Any = _UNSET, **kw) -> Resp:
        return self.request("POST", path, json=json, **kw)

    # the operator's views, used to prove that nothing was written
    def stats(self) -> dict:
        r = self.get("/api/stats", admin=True)
        assert r.status == 200, r
        return r.body

    def ledger(self) -> dict:
        r = self.get("/api/billing/ledger?limit=1000", admin=True)
        assert r.status == 200, r
        return r.body

    def entries(self, contract_id: str) -> list[dict]:
        r = self.get(f"/api/billing/entries?contract_id={contract_id}&limit=1000", admin=True)
        assert r.status == 200, r
        return r.body["entries"]

    def leases(self) -> dict[str, int]:
        out = {}
        for tier in LPH:
            r = self.get(f"/api/devices/{tier}")
            assert r.status == 200, r
            out.update({d["id"]: d["leases"] for d in r.body})
        return out

    def settled_refunds(self, timeout: float = 60.0) -> dict:
        """/api/stats once no refund is in flight (none QUEUED or SENT): the refund worker pays
        settled contracts in the background, so a before/after comparison waits for it first."""
        deadline = time.monotonic() + timeout
        while True:
            s = self.stats()
            flying = s["refunds_by_status"].get("QUEUED", 0) + s["refunds_by_status"].get("SENT", 0)
            if not flying or time.monotonic() > deadline:
                return s
            time.sleep(0.2)

    def snapshot(self) -> dict:
        """Everything a failed request must leave unchanged (server time excluded), taken once
        the background refunds have landed."""
        s = self.settled_refunds()
        led = self.ledger()
        return {
            "contracts": s["contracts"],
            "devices": s["devices"],
            "refunds": s["refunds_by_status"],
            "revenue": s["revenue_lamports"],
            "pending": s["pending_refunds_lamports"],
            "active_prepaid": s["active_prepaid_lamports"],
            "ledger_ids": sorted(c["contract_id"] for c in led["active_contracts"] + led["completed_settlements"]),
            "leases": self.leases(),
        }


def settle_headers(
    kp: Keypair,
    contract_id: str,
    ts: int | None = None,
    method: str = "POST",
    path: str | None = None,
    body: bytes | str = b"",
) -> dict:
    """X-Wallet / X-Timestamp / X-Signature (si64.renter's `renter_headers`) for the settle
    route of a contract (or `path`)."""
    return renter.renter_headers(kp, method, path or f"/api/contracts/{contract_id}/settle", body, ts)


def signed_json(kp: Keypair, path: str, body: dict | str, **extra_headers) -> dict:
    """`data` and `headers` of a POST signed by `kp` over its exact raw body (the way a
    wallet that can `signMessage` binds a bare payment to its request)."""
    raw = body if isinstance(body, str) else _json.dumps(body)
    return {"data": raw, "headers": {**renter.renter_headers(kp, "POST", path, raw.encode()), **extra_headers}}


def random_signature() -> str:
    """A well-formed signature of no transaction at all."""
    return str(Keypair().sign_message(b"si64 e2e: no such transaction"))


# ------------------------------------------------------------------ chain
class Payer(renter.Renter):
    """The repo's payer (packages/si64/src/si64/renter.py) with the tests' defaults: a memo on every payment, and
    a payment that failed on chain is returned, not raised (tests inspect it with `status`)."""

    def pay(self, payer: Keypair, to, lamports: int, memo: str | None = "si64 e2e", **kw) -> str:
        kw.setdefault("check", False)
        return super().pay(payer, to, lamports, memo, **kw)
