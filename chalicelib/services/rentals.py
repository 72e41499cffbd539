"""Use cases of a rental: rent, status, extend, settle. Load → decide (domain) → commit.

Every money move is one conditional transaction (`ports.Transactions`); a lost
race is re-read and retried, a replay returns the first answer (the receipt
stored with the payment's claim: services/paid_requests.py, with the payment's checks).
"""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from .. import observability
from ..config import Settings
from ..domain import contracts as dc
from ..domain import ledger, money, receipts
from ..domain.commands import ExtendRequest, RentRequest
from ..domain.errors import Conflict, Forbidden, NoCapacity, Unavailable
from ..domain.records import Claim
from ..domain.signing import extend_memo, rent_memo
from .contract_reads import load_contract
from .paid_requests import PaidRequests, busy
from .paid_requests import Receipt as Receipt  # the answer of rent and extend (api/rentals.py)

if TYPE_CHECKING:  # types only: importing the Protocols costs cold-start time
    from ..ports import ClaimStore, Clock, ContractStore, DeviceStore, PaymentVerifier, RefundQueue, Transactions
    from .payment_checks import PaymentChecks

log = logging.getLogger(__name__)
MAX_RETRIES = 8


@dataclass(frozen=True)
class Rentals(PaidRequests):
    """Rent, read, extend and settle contracts.

    contracts: strongly consistent reads of contracts (`get`).
    devices:   the devices of a tier, with their free slots (`by_tier`).
    claims:    payment claims, for replays (`get_claim`).
    tx:        the conditional writes (`open_rental`, `extend_rental`, `end_rental`).
    rpc:       payment verification on chain (`verify_payment`).
    queue:     refund queue (`send_refund`; a False answer leaves the refund to the sweep).
    clock:     now, in Unix milliseconds.
    settings:  `treasury`, `payment_max_age_seconds`, `max_duration_hours`, `refund_min_lamports`.
    checks:    the bounds on what one client can make us ask the chain (negative cache, lookup
               budget; services/payment_checks.py); None: every check goes to `rpc`.
    """

    contracts: ContractStore
    devices: DeviceStore
    claims: ClaimStore
    tx: Transactions
    rpc: PaymentVerifier
    queue: RefundQueue
    clock: Clock
    settings: Settings
    checks: PaymentChecks | None = None

    # --- helpers ---------------------------------------------------------
    def _load(self, contract_id: str) -> dc.Contract:
        return load_contract(self.contracts, contract_id)

    # --- use cases -------------------------------------------------------
    def rent(self, req: RentRequest, signed_by: str | None = None, client: str | None = None) -> Receipt:
        """Verify the payment and its binding, then take a slot on the least-loaded device of the
        tier with room. `signed_by`: the wallet of the request's checked renter credentials, if any;
        `client`: who asks (its address), for the payment-check budget."""
        if signed_by is not None and signed_by != req.wallet:
            raise Forbidden("X-Wallet must be the wallet that pays (the body's 'wallet').", reason="X-Wallet")
        now = self.clock()
        price = money.price_lamports(money.TIERS[req.tier].lamports_per_hour, req.seconds)
        fingerprint = req.fingerprint()
        result, replay = self._verify(
            req.tx_signature, req.wallet, price, now, fingerprint, rent_memo(req.tier, req.seconds), signed_by, client
        )
        if replay:
            return replay
        assert result is not None  # _verify answers a result or a replay
        tried: set[str] = set()
        for _ in range(MAX_RETRIES):
            candidates = sorted(
                (d for d in self.devices.by_tier(req.tier) if d.available > 0 and d.device_id not in tried),
                key=lambda d: (d.leases, d.device_id),
            )
            if not candidates:
                replay = self._replay(req.tx_signature, req.wallet, fingerprint)
                if replay:
                    return replay
                raise NoCapacity(f"No {req.tier} device has a free slot; the payment was not consumed.", reason="tier")
            for device in candidates:
                contract = dc.open_contract(
                    contract_id=dc.new_contract_id(),
                    wallet=req.wallet,
                    tier=req.tier,
                    device_id=device.device_id,
                    seconds=req.seconds,
                    received_lamports=result.lamports_received,
                    sig=req.tx_signature,
                    now_ms=now,
                    coverage_grace_ms=self.settings.coverage_grace_seconds * 1000,
                )
                body = receipts.rent_receipt(contract)
                claim = Claim(req.tx_signature, "rent", contract.contract_id, req.wallet, fingerprint, body)
                try:
                    self.tx.open_rental(claim, contract, ledger.payment_postings(contract, contract.payments[0]), now)
                    return Receipt(body, first=True)
                except Unavailable:
                    return self._landed_anyway(req.tx_signature, req.wallet, fingerprint, body)
                except Conflict as exc:
                    if "claim" in exc.failed:  # the signature is claimed already
                        return self._claimed(req.tx_signature, req.wallet, fingerprint, body)
                    if "device" in exc.failed:  # that device filled up meanwhile: next one
                        tried.add(device.device_id)
                        continue
                    break  # a concurrent transaction on the same items: re-query and retry
        raise busy()

    def extend(self, req: ExtendRequest, signed_by: str | None = None, client: str | None = None) -> Receipt:
        """Verify the payment from the contract's wallet and its binding, then extend at the
        version read. `signed_by`: the wallet of the request's checked renter credentials, if any."""
        max_seconds = self.settings.max_duration_hours * 3600
        fingerprint = req.fingerprint()
        contract = self._load(req.contract_id)
        if signed_by is not None and signed_by != contract.wallet:
            raise Forbidden("This contract belongs to another wallet.", reason="wallet")
        now = self.clock()
        if not contract.is_live(now) or contract.payment(req.tx_signature) is not None:
            # ended, or this very payment already extended it (a retry whose first answer was
            # lost): the first answer, before any check the extended contract would now fail
            replay = self._replay(req.tx_signature, contract.wallet, fingerprint)
            if replay:
                return replay
        # validates status and the maximum duration before any RPC call
        price = dc.extension_price(contract, req.seconds)
        dc.extend(
            contract,
            seconds=req.seconds,
            received_lamports=price,
            sig=req.tx_signature,
            now_ms=now,
            max_seconds=max_seconds,
        )
        result, replay = self._verify(
            req.tx_signature,
            contract.wallet,
            price,
            now,
            fingerprint,
            extend_memo(req.contract_id, req.seconds),
            signed_by,
            client,
        )
        if replay:
            return replay
        assert result is not None  # _verify answers a result or a replay
        for _ in range(MAX_RETRIES):
            after = dc.extend(
                contract,
                seconds=req.seconds,
                received_lamports=result.lamports_received,
                sig=req.tx_signature,
                now_ms=now,
                max_seconds=max_seconds,
            )
            body = receipts.extend_receipt(after, req.tx_signature)
            claim = Claim(req.tx_signature, "extend", contract.contract_id, contract.wallet, fingerprint, body)
            try:
                self.tx.extend_rental(claim, contract, after, ledger.payment_postings(after, after.payments[-1]), now)
                return Receipt(body, first=True)
            except Unavailable:
                return self._landed_anyway(req.tx_signature, contract.wallet, fingerprint, body)
            except Conflict as exc:
                if "claim" in exc.failed:
                    return self._claimed(req.tx_signature, contract.wallet, fingerprint, body)
                contract = self._load(req.contract_id)  # another change won the race: re-read, re-decide
                now = self.clock()
        raise busy()

    def settle(self, contract_id: str, wallet: str) -> dc.Contract:
        """End the contract now (SETTLED, or EXPIRED past its expiry) and queue its refund.
        Settling an ended contract changes nothing and returns it as it is."""
        contract = self._load(contract_id)
        if contract.wallet != wallet:
            raise Forbidden("This contract belongs to another wallet.", reason="wallet")
        for _ in range(MAX_RETRIES):
            if contract.status != dc.ACTIVE:
                return contract  # settled or expired already: same answer
            after = replace(
                dc.finalize(contract, now_ms=self.clock(), refund_min_lamports=self.settings.refund_min_lamports),
                write_token=secrets.token_hex(8),
            )
            try:
                self.tx.end_rental(contract, after, ledger.settlement_postings(after))
            except Conflict:
                contract = self._load(contract_id)
                if contract.write_token != after.write_token:
                    continue  # another change won: decide again on what is there now
                after = contract  # our own write landed and the SDK sent it again: finish it
            observability.emit(
                "Settlements" if after.status == dc.SETTLED else "Expirations", contract_id=after.contract_id
            )
            if after.refund_status == dc.REFUND_QUEUED:
                self.queue.send_refund(after.contract_id, after.version)
            return after
        raise busy()
