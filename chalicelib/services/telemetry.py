"""Device usage reports: authenticate the device, store a batch in one write, answer live figures."""
from __future__ import annotations

import hmac

from ..domain import views
from ..domain.errors import Conflict, ContractNotActive, Forbidden, NotFound, Unauthorized, Unavailable
from ..domain.records import hash_device_key
from ..domain.validation import metrics_samples


def device_of_key(key: str | None) -> str:
    """Device keys look like `dk_<device_id>_<secret>`; the id tells which hash to check."""
    if not key or not key.startswith("dk_") or key.count("_") < 2 or len(key) > 256:
        raise Unauthorized("A valid X-Device-Key header is required.", reason="X-Device-Key")
    device_id, _, secret = key[3:].partition("_")  # device ids have no "_"
    if not device_id or len(secret) < 16:
        raise Unauthorized("A valid X-Device-Key header is required.", reason="X-Device-Key")
    return device_id


def _key_is_valid(c, device_id: str, key: str) -> bool:
    device = c.devices.get(device_id)
    return bool(device and device.key_hash and hmac.compare_digest(device.key_hash, hash_device_key(key)))


def _not_active() -> ContractNotActive:
    return ContractNotActive("The contract has ended; usage is no longer recorded.", reason="status")


def record(c, contract_id: str, key: str | None, body: dict) -> dict:
    device_id = device_of_key(key)
    contract = c.contracts.get(contract_id)
    if contract is None:
        raise NotFound("No such contract.", reason="contract_id")
    now = c.clock()
    if contract.device_id != device_id or not contract.is_live(now):
        # failure paths only: one extra read tells a forged key from a genuine one
        if not _key_is_valid(c, device_id, key):
            raise Unauthorized("The device key is not valid.", reason="X-Device-Key")
        if contract.device_id != device_id:
            raise Forbidden("This contract is not leased on that device.", reason="device")
        raise _not_active()
    rows = metrics_samples(body, now)
    try:
        c.tx.record_metrics(contract_id, device_id, rows, hash_device_key(key), now)
    except Conflict as exc:
        if "device" in exc.failed:
            raise Unauthorized("The device key is not valid.", reason="X-Device-Key") from None
        if "contract" in exc.failed:
            raise _not_active() from None
        if exc.failed != {"batch"}:
            raise Unavailable("A concurrent write collided; nothing was recorded. Retry.",
                              reason="contention") from None
        # only the batch already exists: this exact report was stored before (a retry)
    return views.metrics_response(contract, len(rows), now)


def latest(c, contract_id: str) -> dict:
    rows = c.metrics.latest(contract_id)
    if not rows and c.contracts.get(contract_id) is None:  # only an empty answer needs the check
        raise NotFound("No such contract.", reason="contract_id")
    return {"contract_id": contract_id, "samples": [views.sample_view(r) for r in rows]}
