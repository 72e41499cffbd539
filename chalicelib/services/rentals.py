"""Use cases of a rental: rent, status, extend, settle. Load → decide (domain) → commit.

Each returns (http_status, body). Every money move is one conditional
transaction (adapters/transactions.py); a lost race is re-read and retried,
a replay returns the first answer.
"""
from __future__ import annotations

import logging

from ..domain import contracts as dc
from ..domain import ledger, money, views
from ..domain.errors import (Conflict, Forbidden, NoCapacity, NotFound, PaymentAlreadyUsed,
                             PaymentInvalid, Unavailable)
from ..domain.payments import PaymentCheck
from ..domain.records import Claim
from ..domain.validation import ExtendRequest, RentRequest

log = logging.getLogger(__name__)
MAX_RETRIES = 8


def _busy() -> Unavailable:
    return Unavailable("Too many concurrent changes to this resource; nothing was changed. Retry.",
                       reason="contention")


def _load(c, contract_id: str) -> dc.Contract:
    contract = c.contracts.get(contract_id)
    if contract is None:
        raise NotFound("No such contract.", reason="contract_id")
    return contract


def _replay(c, sig: str, fingerprint: str) -> tuple[int, dict] | None:
    """None while the signature is unclaimed; the first answer for the same request; else 409."""
    claim = c.claims.get_claim(sig)
    if claim is None:
        return None
    if claim.request == fingerprint:
        return 200, claim.response
    raise PaymentAlreadyUsed("This transaction signature already paid for something else.",
                             reason="tx_signature")


def _claimed(c, sig: str, fingerprint: str) -> tuple[int, dict]:
    """The transaction found the signature claimed: replay, 409, or (claim not yet visible) retry."""
    replay = _replay(c, sig, fingerprint)
    if replay is None:
        raise _busy()
    return replay


def _verify(c, sig: str, wallet: str, min_lamports: int, now_ms: int, fingerprint: str):
    s = c.settings
    if not s.treasury:
        raise Unavailable("The treasury address is not configured (SI64_TREASURY).", reason="configuration")
    result = c.rpc.verify_payment(PaymentCheck(
        signature=sig, wallet=wallet, treasury=s.treasury, min_lamports=min_lamports,
        max_age_seconds=s.payment_max_age_seconds, now_s=now_ms // 1000))
    if result.ok:
        return result, None
    if result.reason == "too_old":  # a retry of a request that succeeded long ago still gets its answer
        replay = _replay(c, sig, fingerprint)
        if replay:
            return None, replay
    raise PaymentInvalid(f"The payment does not prove what it must: {result.reason}.", reason=result.reason)


def rent(c, req: RentRequest) -> tuple[int, dict]:
    now = c.clock()
    lph = money.TIERS[req.tier].lamports_per_hour
    price = money.price_lamports(lph, req.seconds)
    fingerprint = req.fingerprint()
    result, replay = _verify(c, req.tx_signature, req.wallet, price, now, fingerprint)
    if replay:
        return replay
    tried: set[str] = set()
    for _ in range(MAX_RETRIES):
        candidates = sorted((d for d in c.devices.by_tier(req.tier)
                             if d.available > 0 and d.device_id not in tried),
                            key=lambda d: (d.leases, d.device_id))
        if not candidates:
            replay = _replay(c, req.tx_signature, fingerprint)
            if replay:
                return replay
            raise NoCapacity(f"No {req.tier} device has a free slot; the payment was not consumed.",
                             reason="tier")
        for device in candidates:
            contract = dc.open_contract(
                contract_id=dc.new_contract_id(), wallet=req.wallet, tier=req.tier,
                device_id=device.device_id, seconds=req.seconds,
                received_lamports=result.lamports_received, sig=req.tx_signature, now_ms=now)
            body = views.rent_response(contract)
            claim = Claim(req.tx_signature, "rent", contract.contract_id, req.wallet, fingerprint, body)
            try:
                c.tx.open_rental(claim, contract, ledger.payment_postings(contract, contract.payments[0]), now)
                return 201, body
            except Conflict as exc:
                if "claim" in exc.failed:      # the signature is claimed already
                    return _claimed(c, req.tx_signature, fingerprint)
                if "device" in exc.failed:     # that device filled up meanwhile: next one
                    tried.add(device.device_id)
                    continue
                break  # a concurrent transaction on the same items: re-query and retry
    raise _busy()


def status(c, contract_id: str) -> dict:
    return views.contract_response(_load(c, contract_id), c.clock())


def extend(c, req: ExtendRequest) -> tuple[int, dict]:
    s = c.settings
    fingerprint = req.fingerprint()
    contract = _load(c, req.contract_id)
    now = c.clock()
    if not contract.is_live(now):
        replay = _replay(c, req.tx_signature, fingerprint)
        if replay:
            return replay
    # validates status and the maximum duration before any RPC call
    price = dc.extension_price(contract, req.seconds)
    dc.extend(contract, seconds=req.seconds, received_lamports=price, sig=req.tx_signature,
              now_ms=now, max_seconds=s.max_duration_hours * 3600)
    result, replay = _verify(c, req.tx_signature, contract.wallet, price, now, fingerprint)
    if replay:
        return replay
    for _ in range(MAX_RETRIES):
        after = dc.extend(contract, seconds=req.seconds, received_lamports=result.lamports_received,
                          sig=req.tx_signature, now_ms=now, max_seconds=s.max_duration_hours * 3600)
        body = views.extend_response(after, req.tx_signature)
        claim = Claim(req.tx_signature, "extend", contract.contract_id, contract.wallet, fingerprint, body)
        try:
            c.tx.extend_rental(claim, contract, after, ledger.payment_postings(after, after.payments[-1]), now)
            return 200, body
        except Conflict as exc:
            if "claim" in exc.failed:
                return _claimed(c, req.tx_signature, fingerprint)
            contract = _load(c, req.contract_id)  # another change won the race: re-read, re-decide
            now = c.clock()
    raise _busy()


def settle(c, contract_id: str, wallet: str) -> dict:
    contract = _load(c, contract_id)
    if contract.wallet != wallet:
        raise Forbidden("This contract belongs to another wallet.", reason="wallet")
    for _ in range(MAX_RETRIES):
        if contract.status != dc.ACTIVE:
            return views.settle_response(contract)  # settled or expired already: same answer
        after = dc.finalize(contract, now_ms=c.clock(), refund_min_lamports=c.settings.refund_min_lamports)
        try:
            c.tx.end_rental(contract, after, ledger.settlement_postings(after))
        except Conflict:
            contract = _load(c, contract_id)
            continue
        if after.refund_status == dc.REFUND_QUEUED:
            c.queue.send_refund(after.contract_id, after.version)
        return views.settle_response(after)
    raise _busy()
