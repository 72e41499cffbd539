"""What one client can make the backend ask the chain (docs/adr/0012-payment-shares-and-rpc-budget.md).

Every rent, extend and payment refund verifies a payment over JSON-RPC: up to two calls
(getTransaction, then getSignatureStatuses when the node returns null). Without a bound,
anonymous requests with random well-formed signatures turn one address into a load on
the RPC endpoint (a public mainnet endpoint rate-limits the backend, and every renter
with it). Three bounds, in the order a request meets them:

1. shape: the edge refuses a signature or a wallet that is not base58 of the right length
   (`api/schemas`), so it never reaches this module nor the chain;
2. a short negative cache: a signature the chain did not know (`not_found`) is answered
   from this instance's memory for `unknown_payment_cache_seconds` without a call; a
   payment that lands meanwhile is seen once the entry expires (seconds);
3. a per-address budget of lookups: `rpc_lookup_limit` (count / seconds) per client, first
   in this instance's memory (no I/O), then fleet-wide with one conditional UpdateItem on the
   claims table (`ClaimStore.count_request`, subject `rpc:{client}`), as the request rate
   limit does (ADR 0009). Over budget → 429 `rate_limited`, reason `rpc_budget`, with
   Retry-After; nothing is asked of the chain and nothing is written.

A request without a client (an operator's orphan refund, the sweep) is not budgeted.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from typing import TYPE_CHECKING

from ..domain.errors import TooManyLookups
from ..domain.payments import NOT_FOUND, PaymentCheck, PaymentResult
from .ratelimit import RateLimit, RateLimited

if TYPE_CHECKING:  # types only
    from ..config import Settings
    from ..ports import ClaimStore, Clock, PaymentVerifier

log = logging.getLogger(__name__)
MAX_UNKNOWN = 10_000  # signatures in the negative cache (oldest evicted first)


class PaymentChecks:
    """Payment verification with the three bounds above; one per function instance (the
    caller hands it the chain, `PaymentVerifier`, on each check).

    claims:   the fleet-wide windows (`count_request`).
    clock:    now, in Unix milliseconds.
    settings: `rpc_lookup_limit`, `unknown_payment_cache_seconds`, `rate_limit_shared`.
    """

    def __init__(self, claims: ClaimStore, clock: Clock, settings: Settings):
        self.claims, self.clock, self.settings = claims, clock, settings
        self._lock = threading.Lock()
        self._unknown: OrderedDict[str, float] = OrderedDict()  # signature -> expiry (s)
        # the instance's windows run on `clock` too, so a test's clock moves them
        self.budget = RateLimit(claims=claims, clock=clock, monotonic=lambda: clock() / 1000)
        self.lookups = 0  # verify_payment calls passed to the chain by this instance

    def verify(self, rpc: PaymentVerifier, check: PaymentCheck, client: str | None) -> PaymentResult:
        """`rpc.verify_payment(check)` unless the signature is known unknown (then `not_found`,
        no call) or `client` is over its lookup budget (TooManyLookups, no call)."""
        if self._known_unknown(check.signature):
            return PaymentResult(False, 0, NOT_FOUND)
        if client:
            self._spend(f"rpc:{client}")
        self.lookups += 1
        result = rpc.verify_payment(check)
        if result.reason == NOT_FOUND:
            self._remember_unknown(check.signature)
        return result

    def _now_s(self) -> float:
        return self.clock() / 1000

    # -- the negative cache ---------------------------------------------------------------
    def _known_unknown(self, signature: str) -> bool:
        with self._lock:
            expiry = self._unknown.get(signature)
            if expiry is None:
                return False
            if expiry <= self._now_s():
                del self._unknown[signature]
                return False
            return True

    def _remember_unknown(self, signature: str) -> None:
        ttl = self.settings.unknown_payment_cache_seconds
        if ttl <= 0:
            return
        with self._lock:
            self._unknown[signature] = self._now_s() + ttl
            self._unknown.move_to_end(signature)
            while len(self._unknown) > MAX_UNKNOWN:
                self._unknown.popitem(last=False)

    # -- the budget: the request rate limit's windows (services/ratelimit.py), subject `rpc:{client}`
    def _spend(self, subject: str) -> None:
        limit, window_s = self.settings.rpc_lookup_limit
        try:
            self.budget.check(subject, limit, window_s, "address", self.settings.rate_limit_shared)
        except RateLimited as over:
            raise TooManyLookups(
                f"More than {limit} payment checks in {window_s} s from this address; each asks the chain. "
                "Retry after the window.",
                reason="rpc_budget",
                retry_after=over.retry_after,
            ) from None
