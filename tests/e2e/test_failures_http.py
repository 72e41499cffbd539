"""Failures over real HTTP against the local stack: every payment reason with a
real transaction on the local chain, every credential failure, and a table of
malformed requests across the endpoints.

Each must be a clean 4xx in the docs/api.md error shape ``{detail, code, reason}``
(never a 5xx) and must write nothing: the operator's views (``/api/stats``,
``/api/billing/ledger``), the device leases, the contract, its postings and
its samples are compared before and after.
"""

from __future__ import annotations

import base64
import json
import time

import pytest
from solders.keypair import Keypair

from .client import (
    LAMPORTS_PER_SOL,
    Api,
    Payer,
    extend_terms,
    price_lamports,
    random_signature,
    rent_terms,
    settle_headers,
)

pytestmark = pytest.mark.e2e


# ------------------------------------------------------------------ fixtures
class Ctx:
    """One live contract (wallet A, device D) and a second one (wallet B, device E ≠ D)."""


@pytest.fixture(scope="module")
def ctx(api, payer, local_stack):
    c = Ctx()
    c.treasury = local_stack["treasury"]
    c.keys = local_stack["device_keys"]
    c.a, c.b = payer.new_wallet(3 * LAMPORTS_PER_SOL), payer.new_wallet()
    for name, kp, tier in (("c1", c.a, "M3_ULTRA"), ("c2", c.b, "THOR")):
        sig = payer.pay(kp, c.treasury, price_lamports(tier, 1), memo=rent_terms(tier, 1))
        r = api.post("/api/rent", {"wallet": str(kp.pubkey()), "tier": tier, "duration_hours": 1, "tx_signature": sig})
        assert r.status == 201, r
        setattr(c, name, r.body["contract_id"])
        setattr(c, name + "_device", r.body["device_id"])
    assert c.c1_device != c.c2_device
    c.key = c.keys[c.c1_device]
    c.other_key = c.keys[c.c2_device]
    yield c
    for cid, kp in ((c.c1, c.a), (c.c2, c.b)):  # leave no contract running
        r = api.post(f"/api/contracts/{cid}/settle", data=b"", headers=settle_headers(kp, cid))
        assert r.status == 200 and r.body["status"] == "SETTLED", r


def contract_state(api: Api, cid: str) -> dict:
    """What must not change about a contract (live figures excluded)."""
    view = api.get(f"/api/contracts/{cid}")
    assert view.status == 200, view
    v = view.body
    samples = api.get(f"/api/contracts/{cid}/metrics")
    assert samples.status == 200, samples
    return {
        "view": {
            k: v[k]
            for k in (
                "status",
                "prepaid_lamports",
                "cost_lamports",
                "duration_seconds",
                "expires_at",
                "settled_at",
                "refund",
                "device_id",
                "wallet",
            )
        },
        "samples": samples.body["samples"],
        "entries": api.entries(cid),
    }


def world(api: Api, ctx: Ctx) -> dict:
    return {"snapshot": api.snapshot(), "c1": contract_state(api, ctx.c1), "c2": contract_state(api, ctx.c2)}


def assert_error(r, status: int, code: str, reason=None) -> None:
    assert r.status == status, r
    assert r.is_error_shape, r
    assert r.body["code"] == code, r
    if reason is not None:
        allowed = reason if isinstance(reason, tuple) else (reason,)
        assert r.body["reason"] in allowed, r
    assert "Traceback" not in r.text and 'File "' not in r.text, r
    assert r.headers.get("Content-Type", "").startswith("application/json"), r


# ------------------------------------------------------------------ payments
def rent_body(wallet, sig: str, tier: str = "M2", hours=0.1) -> dict:
    return {"wallet": str(wallet), "tier": tier, "duration_hours": hours, "tx_signature": sig}


def test_payment_reasons_are_402_and_write_nothing(api, payer, ctx):
    price = price_lamports("M2", 0.1)
    terms = rent_terms("M2", 0.1)  # every payment is bound to the request, so the payment itself is judged
    a = ctx.a
    poor = payer.new_wallet(50_000_000)  # 0.05 SOL
    stranger = ctx.b.pubkey()  # a new account could not receive less than the rent-exempt minimum
    cases = {
        "not_found": (a.pubkey(), random_signature()),
        "insufficient_amount": (a.pubkey(), payer.pay(a, ctx.treasury, price - 1, memo=terms)),
        "wrong_recipient": (a.pubkey(), payer.pay(a, stranger, price, memo=terms)),  # B: an existing account
        "wrong_payer": (ctx.b.pubkey(), payer.pay(a, ctx.treasury, price, memo=terms)),  # B claims A's payment
        # lands on chain with an error and a fee: sent without preflight, more than the wallet holds
        "failed_on_chain": (poor.pubkey(), payer.pay(poor, ctx.treasury, LAMPORTS_PER_SOL, skip_preflight=True)),
    }
    failed = payer.status(cases["failed_on_chain"][1])
    assert failed is not None and failed.err is not None, "the chain did not record the failed transfer"

    before = world(api, ctx)
    for reason, (wallet, sig) in cases.items():
        r = api.post("/api/rent", rent_body(wallet, sig))
        assert_error(r, 402, "payment_invalid", reason)
        assert reason in r.body["detail"]
    # an extension pays like a rental: from the contract's own wallet only
    sig_b = payer.pay(ctx.b, ctx.treasury, price_lamports("M3_ULTRA", 0.1), memo=extend_terms(ctx.c1, 0.1))
    r = api.post(f"/api/contracts/{ctx.c1}/extend", {"additional_hours": 0.1, "tx_signature": sig_b})
    assert_error(r, 402, "payment_invalid", "wrong_payer")
    r = api.post(f"/api/contracts/{ctx.c1}/extend", {"additional_hours": 0.1, "tx_signature": random_signature()})
    assert_error(r, 402, "payment_invalid", "not_found")
    assert world(api, ctx) == before

    # a refused payment was not consumed: its rightful owner can still use it
    wallet, sig = cases["wrong_payer"]
    r = api.post("/api/rent", rent_body(a.pubkey(), sig))
    assert r.status == 201, r
    settle = api.post(
        f"/api/contracts/{r.body['contract_id']}/settle", data=b"", headers=settle_headers(a, r.body["contract_id"])
    )
    assert settle.status == 200, settle


@pytest.fixture(scope="module")
def short_age_stack(tmp_path_factory):
    """A stack of its own that refuses payments older than 1 s (the default is 24 h)."""
    from tests.fixtures.stack import start_stack

    with start_stack(
        tmp_path_factory.mktemp("stack-max-age"), SI64_PAYMENT_MAX_AGE_SECONDS="1", SI64_RATE_LIMIT="100000/10"
    ) as info:
        yield info


def test_payment_too_old_is_402(short_age_stack):
    api = Api(short_age_stack["api_url"], short_age_stack["admin_key"])
    payer = Payer(short_age_stack["rpc_url"])
    assert api.get("/api/pricing").body["payment_max_age_seconds"] == 1
    wallet = payer.new_wallet()
    sig = payer.pay(wallet, short_age_stack["treasury"], price_lamports("M2", 0.1), memo=rent_terms("M2", 0.1))
    before = api.snapshot()
    time.sleep(2.2)  # block time is whole seconds: now − block_time > 1 s
    r = api.post("/api/rent", rent_body(wallet.pubkey(), sig))
    assert_error(r, 402, "payment_invalid", "too_old")
    assert api.snapshot() == before


# ------------------------------------------------------------------ credentials
def test_settle_credentials(api, ctx):
    before = world(api, ctx)
    cid, path = ctx.c1, f"/api/contracts/{ctx.c1}/settle"
    good = settle_headers(ctx.a, cid)
    now = int(time.time())
    impostor = Keypair()
    forged = dict(good, **{"X-Signature": str(impostor.sign_message(f"si64:POST {path}:{now}".encode()))})
    other_path = settle_headers(ctx.a, cid, path=f"/api/contracts/{ctx.c2}/settle")
    other_method = settle_headers(ctx.a, cid, method="GET")
    with_stage = settle_headers(ctx.a, cid, path=f"/api{path}")
    tampered_ts = dict(good, **{"X-Timestamp": str(int(good["X-Timestamp"]) + 1)})
    cases = {
        "no headers": {},
        "no X-Wallet": {k: v for k, v in good.items() if k != "X-Wallet"},
        "no X-Timestamp": {k: v for k, v in good.items() if k != "X-Timestamp"},
        "no X-Signature": {k: v for k, v in good.items() if k != "X-Signature"},
        "empty X-Signature": dict(good, **{"X-Signature": ""}),
        "stale timestamp (301 s)": settle_headers(ctx.a, cid, ts=now - 301),
        "stale timestamp (1 day)": settle_headers(ctx.a, cid, ts=now - 86_400),
        "future timestamp (400 s)": settle_headers(ctx.a, cid, ts=now + 400),
        "timestamp in ms": settle_headers(ctx.a, cid, ts=now * 1000),
        "non-numeric timestamp": dict(good, **{"X-Timestamp": "yesterday"}),
        "negative timestamp": dict(good, **{"X-Timestamp": f"-{now}"}),
        "signature by another key": forged,
        "signature of another path": other_path,
        "signature of another method": other_method,
        "signature with a stage prefix": with_stage,
        "timestamp not the signed one": tampered_ts,
        "malformed base58 signature": dict(good, **{"X-Signature": "0OIl" * 22}),
        "short signature": dict(good, **{"X-Signature": good["X-Signature"][:40]}),
        "malformed wallet": dict(good, **{"X-Wallet": "not-a-wallet"}),
        "X-Wallet swapped for another key": dict(good, **{"X-Wallet": str(impostor.pubkey())}),
    }
    for name, headers in cases.items():
        r = api.post(path, data=b"", headers=headers)
        assert r.status == 401, (name, r)
        assert_error(r, 401, "unauthorized")
    # B's perfectly valid signature, for A's contract
    r = api.post(path, data=b"", headers=settle_headers(ctx.b, cid))
    assert_error(r, 403, "forbidden")
    assert world(api, ctx) == before
    assert api.get(f"/api/contracts/{cid}").body["status"] == "ACTIVE"


def test_device_credentials(api, ctx):
    before = world(api, ctx)
    path = f"/api/metrics/{ctx.c1}"
    sample = {"cpu_percent": 10, "memory_mb": 100, "disk_io_mbps": 1, "network_io_mbps": 1}
    device, secret = ctx.key[3:].split("_", 1)
    flipped = "A" if secret[-1] != "A" else "B"
    cases = {
        "no key": {},
        "empty key": {"X-Device-Key": ""},
        "garbage key": {"X-Device-Key": "hello"},
        "forged secret for the right device": {"X-Device-Key": f"dk_{device}_{secret[:-1]}{flipped}"},
        "truncated key": {"X-Device-Key": ctx.key[:-4]},
        "key for a device that does not exist": {"X-Device-Key": f"dk_device-x-999_{secret}"},
        "right secret, other device's id": {"X-Device-Key": f"dk_{ctx.c2_device}_{secret}"},
        "key of another device": None,  # 403 below
        "admin key as device key": {"X-Device-Key": api.admin_key},
        "oversize key": {"X-Device-Key": "dk_" + device + "_" + "x" * 5000},
    }
    for name, headers in cases.items():
        if headers is None:
            continue
        r = api.post(path, sample, headers=headers)
        assert r.status == 401, (name, r)
        assert_error(r, 401, "unauthorized")
    # a genuine key, but the contract is not leased on that device
    r = api.post(path, sample, headers={"X-Device-Key": ctx.other_key})
    assert_error(r, 403, "forbidden")
    r = api.post(f"/api/metrics/{ctx.c1}", {"samples": [sample] * 3}, headers={"X-Device-Key": ctx.other_key})
    assert_error(r, 403, "forbidden")
    assert world(api, ctx) == before


@pytest.mark.parametrize(
    "path", ["/api/billing/ledger", "/api/billing/entries?contract_id=CTR-xxxxxxxxxxxxxxxxxxxx", "/api/stats"]
)
def test_admin_credentials(api, ctx, path):
    for headers in (
        {},
        {"X-Admin-Key": ""},
        {"X-Admin-Key": "wrong"},
        {"X-Admin-Key": api.admin_key + "x"},
        {"X-Admin-Key": api.admin_key[:-1]},
        {"X-Admin-Key": "x" + api.admin_key},
        {"X-Admin-Key": api.admin_key.upper() if api.admin_key.upper() != api.admin_key else api.admin_key.lower()},
        {"X-Device-Key": ctx.key},
        {"Authorization": f"Bearer {api.admin_key}"},
    ):
        r = api.get(path, headers=headers)
        assert r.status == 401, (headers, r)
        assert_error(r, 401, "unauthorized")
    assert api.get(path, admin=True).status == 200


# ------------------------------------------------------------------ malformed requests
def _b64(obj) -> str:
    return base64.urlsafe_b64encode(json.dumps(obj).encode()).decode().rstrip("=")


BIG = "x" * (64 * 1024 + 1)
SIG = "{sig}"  # a well-formed signature of no transaction: validation must refuse first
W = "{wallet}"
RENT_OK = f'{{"wallet": "{W}", "tier": "M2", "duration_hours": 0.1, "tx_signature": "{SIG}"}}'


class Raw(str):
    """A JSON literal written as is (NaN, 1e400 ...)."""


DROP = object()
SAMPLE = {"cpu_percent": 10, "memory_mb": 100, "disk_io_mbps": 1, "network_io_mbps": 1}


def _raw(base: dict, fields: dict) -> str:
    """`base` with `fields` replaced (or DROPped), Raw values written as JSON literals."""
    body = dict(base)
    for k, v in fields.items():
        if v is DROP:
            body.pop(k)
        else:
            body[k] = v
    return "{" + ", ".join(f'"{k}": {v if isinstance(v, Raw) else json.dumps(v)}' for k, v in body.items()) + "}"


def rent_raw(**fields) -> str:
    return _raw({"wallet": W, "tier": "M2", "duration_hours": 0.1, "tx_signature": SIG}, fields)


def metrics_raw(**fields) -> str:
    return _raw(SAMPLE, fields)


def samples_raw(samples) -> str:
    return json.dumps({"samples": samples})


# (id, method, path, raw body or None, header kind, status, code, reason(s))
MALFORMED = [
    # ---- POST /api/rent: the body
    ("rent-not-json", "POST", "/api/rent", "not json", None, 400, "invalid_request", "body"),
    ("rent-empty-body", "POST", "/api/rent", "", None, 400, "invalid_request", "body"),
    ("rent-array-body", "POST", "/api/rent", '[{"wallet": "x"}]', None, 400, "invalid_request", "body"),
    ("rent-string-body", "POST", "/api/rent", '"rent"', None, 400, "invalid_request", "body"),
    ("rent-null-body", "POST", "/api/rent", "null", None, 400, "invalid_request", "body"),
    ("rent-number-body", "POST", "/api/rent", "42", None, 400, "invalid_request", "body"),
    ("rent-truncated-json", "POST", "/api/rent", '{"wallet": "', None, 400, "invalid_request", "body"),
    ("rent-trailing-garbage", "POST", "/api/rent", RENT_OK + " x", None, 400, "invalid_request", "body"),
    ("rent-invalid-utf8", "POST", "/api/rent", b'{"wallet": "\xff\xfe"}', None, 400, "invalid_request", "body"),
    ("rent-empty-object", "POST", "/api/rent", "{}", None, 400, "invalid_request", "wallet"),
    # ---- duration_hours
    (
        "rent-NaN",
        "POST",
        "/api/rent",
        rent_raw(duration_hours=Raw("NaN")),
        None,
        400,
        "invalid_request",
        ("body", "duration_hours"),
    ),
    (
        "rent-Infinity",
        "POST",
        "/api/rent",
        rent_raw(duration_hours=Raw("Infinity")),
        None,
        400,
        "invalid_request",
        ("body", "duration_hours"),
    ),
    (
        "rent-minus-Infinity",
        "POST",
        "/api/rent",
        rent_raw(duration_hours=Raw("-Infinity")),
        None,
        400,
        "invalid_request",
        ("body", "duration_hours"),
    ),
    (
        "rent-1e400-hours",
        "POST",
        "/api/rent",
        rent_raw(duration_hours=Raw("1e400")),
        None,
        400,
        "invalid_request",
        "duration_hours",
    ),
    (
        "rent-1E+999999999-hours",
        "POST",
        "/api/rent",
        rent_raw(duration_hours=Raw("1E+999999999")),
        None,
        400,
        "invalid_request",
        "duration_hours",
    ),
    (
        "rent-1e-400-hours",
        "POST",
        "/api/rent",
        rent_raw(duration_hours=Raw("1e-400")),
        None,
        400,
        "invalid_request",
        "duration_hours",
    ),
    (
        "rent-negative-hours",
        "POST",
        "/api/rent",
        rent_raw(duration_hours=-1),
        None,
        400,
        "invalid_request",
        "duration_hours",
    ),
    (
        "rent-zero-hours",
        "POST",
        "/api/rent",
        rent_raw(duration_hours=0),
        None,
        400,
        "invalid_request",
        "duration_hours",
    ),
    (
        "rent-minus-zero-hours",
        "POST",
        "/api/rent",
        rent_raw(duration_hours=Raw("-0.0")),
        None,
        400,
        "invalid_request",
        "duration_hours",
    ),
    (
        "rent-721-hours",
        "POST",
        "/api/rent",
        rent_raw(duration_hours=721),
        None,
        400,
        "invalid_request",
        "duration_hours",
    ),
    (
        "rent-below-minimum",
        "POST",
        "/api/rent",
        rent_raw(duration_hours=0.01),
        None,
        400,
        "invalid_request",
        "duration_hours",
    ),
    (
        "rent-hours-as-string",
        "POST",
        "/api/rent",
        rent_raw(duration_hours="1"),
        None,
        400,
        "invalid_request",
        "duration_hours",
    ),
    (
        "rent-hours-as-bool",
        "POST",
        "/api/rent",
        rent_raw(duration_hours=True),
        None,
        400,
        "invalid_request",
        "duration_hours",
    ),
    (
        "rent-hours-as-list",
        "POST",
        "/api/rent",
        rent_raw(duration_hours=[1]),
        None,
        400,
        "invalid_request",
        "duration_hours",
    ),
    (
        "rent-hours-null",
        "POST",
        "/api/rent",
        rent_raw(duration_hours=None),
        None,
        400,
        "invalid_request",
        "duration_hours",
    ),
    (
        "rent-hours-missing",
        "POST",
        "/api/rent",
        rent_raw(duration_hours=DROP),
        None,
        400,
        "invalid_request",
        "duration_hours",
    ),
    # ---- tier
    ("rent-unknown-tier", "POST", "/api/rent", rent_raw(tier="GPU9000"), None, 400, "invalid_request", "tier"),
    ("rent-lowercase-tier", "POST", "/api/rent", rent_raw(tier="m2"), None, 400, "invalid_request", "tier"),
    ("rent-tier-as-number", "POST", "/api/rent", rent_raw(tier=2), None, 400, "invalid_request", "tier"),
    ("rent-tier-missing", "POST", "/api/rent", rent_raw(tier=DROP), None, 400, "invalid_request", "tier"),
    # ---- wallet and signature
    (
        "rent-wallet-not-base58",
        "POST",
        "/api/rent",
        rent_raw(wallet="0OIl" * 11),
        None,
        400,
        "invalid_request",
        "wallet",
    ),
    ("rent-wallet-too-short", "POST", "/api/rent", rent_raw(wallet="1111"), None, 400, "invalid_request", "wallet"),
    ("rent-wallet-too-long", "POST", "/api/rent", rent_raw(wallet="z" * 60), None, 400, "invalid_request", "wallet"),
    ("rent-wallet-as-number", "POST", "/api/rent", rent_raw(wallet=123), None, 400, "invalid_request", "wallet"),
    (
        "rent-wallet-as-object",
        "POST",
        "/api/rent",
        rent_raw(wallet={"pubkey": "x"}),
        None,
        400,
        "invalid_request",
        "wallet",
    ),
    (
        "rent-sig-not-base58",
        "POST",
        "/api/rent",
        rent_raw(tx_signature="0" * 88),
        None,
        400,
        "invalid_request",
        "tx_signature",
    ),
    (
        "rent-sig-too-short",
        "POST",
        "/api/rent",
        rent_raw(tx_signature="abc"),
        None,
        400,
        "invalid_request",
        "tx_signature",
    ),
    (
        "rent-sig-as-list",
        "POST",
        "/api/rent",
        rent_raw(tx_signature=[SIG]),
        None,
        400,
        "invalid_request",
        "tx_signature",
    ),
    (
        "rent-sig-missing",
        "POST",
        "/api/rent",
        rent_raw(tx_signature=DROP),
        None,
        400,
        "invalid_request",
        "tx_signature",
    ),
    ("rent-negative-amount", "POST", "/api/rent", rent_raw(amount=-1), None, 400, "invalid_request", "amount"),
    ("rent-amount-as-string", "POST", "/api/rent", rent_raw(amount="lots"), None, 400, "invalid_request", "amount"),
    ("rent-oversize-body", "POST", "/api/rent", rent_raw(padding=BIG), None, 413, "payload_too_large", None),
    (
        "rent-idempotency-key-too-long",
        "POST",
        "/api/rent",
        RENT_OK,
        "idem-long",
        400,
        "invalid_request",
        "Idempotency-Key",
    ),
    # ---- POST /api/contracts/{id}/extend
    ("extend-not-json", "POST", "/api/contracts/{c1}/extend", "{", None, 400, "invalid_request", "body"),
    ("extend-array-body", "POST", "/api/contracts/{c1}/extend", "[]", None, 400, "invalid_request", "body"),
    (
        "extend-negative-hours",
        "POST",
        "/api/contracts/{c1}/extend",
        f'{{"additional_hours": -0.5, "tx_signature": "{SIG}"}}',
        None,
        400,
        "invalid_request",
        "additional_hours",
    ),
    (
        "extend-zero-hours",
        "POST",
        "/api/contracts/{c1}/extend",
        f'{{"additional_hours": 0, "tx_signature": "{SIG}"}}',
        None,
        400,
        "invalid_request",
        "additional_hours",
    ),
    (
        "extend-NaN-string",
        "POST",
        "/api/contracts/{c1}/extend",
        f'{{"additional_hours": "NaN", "tx_signature": "{SIG}"}}',
        None,
        400,
        "invalid_request",
        "additional_hours",
    ),
    (
        "extend-Infinity",
        "POST",
        "/api/contracts/{c1}/extend",
        f'{{"additional_hours": Infinity, "tx_signature": "{SIG}"}}',
        None,
        400,
        "invalid_request",
        ("body", "additional_hours"),
    ),
    (
        "extend-beyond-maximum-total",
        "POST",
        "/api/contracts/{c1}/extend",
        f'{{"additional_hours": 720, "tx_signature": "{SIG}"}}',
        None,
        400,
        "invalid_request",
        "additional_hours",
    ),
    (
        "extend-sig-missing",
        "POST",
        "/api/contracts/{c1}/extend",
        '{"additional_hours": 1}',
        None,
        400,
        "invalid_request",
        "tx_signature",
    ),
    (
        "extend-sig-malformed",
        "POST",
        "/api/contracts/{c1}/extend",
        '{"additional_hours": 1, "tx_signature": "not a signature"}',
        None,
        400,
        "invalid_request",
        "tx_signature",
    ),
    (
        "extend-junk-contract",
        "POST",
        "/api/contracts/junk/extend",
        f'{{"additional_hours": 1, "tx_signature": "{SIG}"}}',
        None,
        404,
        "not_found",
        "contract_id",
    ),
    (
        "extend-unknown-contract",
        "POST",
        "/api/contracts/CTR-AAAAAAAAAAAAAAAAAAAAAA/extend",
        f'{{"additional_hours": 1, "tx_signature": "{SIG}"}}',
        None,
        404,
        "not_found",
        "contract_id",
    ),
    (
        "extend-oversize-body",
        "POST",
        "/api/contracts/{c1}/extend",
        json.dumps({"pad": BIG}),
        None,
        413,
        "payload_too_large",
        None,
    ),
    # ---- POST /api/metrics/{id}
    (
        "metrics-cpu-1e9",
        "POST",
        "/api/metrics/{c1}",
        metrics_raw(cpu_percent=1e9),
        "device",
        400,
        "invalid_request",
        "cpu_percent",
    ),
    (
        "metrics-cpu-negative",
        "POST",
        "/api/metrics/{c1}",
        metrics_raw(cpu_percent=-1),
        "device",
        400,
        "invalid_request",
        "cpu_percent",
    ),
    (
        "metrics-cpu-NaN",
        "POST",
        "/api/metrics/{c1}",
        metrics_raw(cpu_percent=Raw("NaN")),
        "device",
        400,
        "invalid_request",
        ("body", "cpu_percent"),
    ),
    (
        "metrics-disk-Infinity",
        "POST",
        "/api/metrics/{c1}",
        metrics_raw(disk_io_mbps=Raw("Infinity")),
        "device",
        400,
        "invalid_request",
        ("body", "disk_io_mbps"),
    ),
    (
        "metrics-memory-as-string",
        "POST",
        "/api/metrics/{c1}",
        metrics_raw(memory_mb="lots"),
        "device",
        400,
        "invalid_request",
        "memory_mb",
    ),
    (
        "metrics-network-missing",
        "POST",
        "/api/metrics/{c1}",
        metrics_raw(network_io_mbps=DROP),
        "device",
        400,
        "invalid_request",
        "network_io_mbps",
    ),
    (
        "metrics-timestamp-future",
        "POST",
        "/api/metrics/{c1}",
        metrics_raw(timestamp_ms="{future_ms}"),
        "device",
        400,
        "invalid_request",
        "timestamp_ms",
    ),
    (
        "metrics-timestamp-negative",
        "POST",
        "/api/metrics/{c1}",
        metrics_raw(timestamp_ms=-5),
        "device",
        400,
        "invalid_request",
        "timestamp_ms",
    ),
    (
        "metrics-timestamp-fraction",
        "POST",
        "/api/metrics/{c1}",
        metrics_raw(timestamp_ms=1.5),
        "device",
        400,
        "invalid_request",
        "timestamp_ms",
    ),
    (
        "metrics-batch-of-121",
        "POST",
        "/api/metrics/{c1}",
        samples_raw([SAMPLE] * 121),
        "device",
        400,
        "invalid_request",
        "samples",
    ),
    ("metrics-batch-empty", "POST", "/api/metrics/{c1}", samples_raw([]), "device", 400, "invalid_request", "samples"),
    (
        "metrics-batch-not-a-list",
        "POST",
        "/api/metrics/{c1}",
        samples_raw("x"),
        "device",
        400,
        "invalid_request",
        "samples",
    ),
    (
        "metrics-batch-of-numbers",
        "POST",
        "/api/metrics/{c1}",
        samples_raw([1]),
        "device",
        400,
        "invalid_request",
        "samples[0]",
    ),
    (
        "metrics-batch-one-bad-sample",
        "POST",
        "/api/metrics/{c1}",
        samples_raw([SAMPLE] * 5 + [dict(SAMPLE, cpu_percent=25_601)]),
        "device",
        400,
        "invalid_request",
        "samples[5].cpu_percent",
    ),
    ("metrics-array-body", "POST", "/api/metrics/{c1}", json.dumps([SAMPLE]), "device", 400, "invalid_request", "body"),
    ("metrics-not-json", "POST", "/api/metrics/{c1}", "cpu=10", "device", 400, "invalid_request", "body"),
    (
        "metrics-oversize-body",
        "POST",
        "/api/metrics/{c1}",
        samples_raw([dict(SAMPLE, pad=BIG)]),
        "device",
        413,
        "payload_too_large",
        None,
    ),
    (
        "metrics-junk-contract",
        "POST",
        "/api/metrics/junk",
        json.dumps(SAMPLE),
        "device",
        404,
        "not_found",
        "contract_id",
    ),
    (
        "metrics-unknown-contract",
        "POST",
        "/api/metrics/CTR-AAAAAAAAAAAAAAAAAAAAAA",
        json.dumps(SAMPLE),
        "device",
        404,
        "not_found",
        "contract_id",
    ),
    # ---- settle
    ("settle-junk-contract", "POST", "/api/contracts/junk/settle", "", "renter-junk", 404, "not_found", None),
    (
        "settle-unknown-contract",
        "POST",
        "/api/contracts/CTR-AAAAAAAAAAAAAAAAAAAAAA/settle",
        "",
        "renter-unknown",
        404,
        "not_found",
        "contract_id",
    ),
    (
        "settle-oversize-body",
        "POST",
        "/api/contracts/{c1}/settle",
        json.dumps({"pad": BIG}),
        "renter",
        413,
        "payload_too_large",
        None,
    ),
    # ---- reads
    ("status-junk-contract", "GET", "/api/contracts/junk", None, None, 404, "not_found", "contract_id"),
    (
        "status-unknown-contract",
        "GET",
        "/api/contracts/CTR-AAAAAAAAAAAAAAAAAAAAAA",
        None,
        None,
        404,
        "not_found",
        "contract_id",
    ),
    (
        "status-contract-id-with-quote",
        "GET",
        "/api/contracts/CTR-AAAAAAAAAAAAAAAA%22%27%3B",
        None,
        None,
        404,
        "not_found",
        "contract_id",
    ),
    ("status-very-long-id", "GET", "/api/contracts/CTR-" + "A" * 2000, None, None, 404, "not_found", "contract_id"),
    ("samples-junk-contract", "GET", "/api/contracts/junk/metrics", None, None, 404, "not_found", "contract_id"),
    ("devices-unknown-tier", "GET", "/api/devices/GPU9000", None, None, 404, "not_found", None),
    ("devices-lowercase-tier", "GET", "/api/devices/m2", None, None, 404, "not_found", None),
    # ---- operator queries
    ("ledger-limit-zero", "GET", "/api/billing/ledger?limit=0", None, "admin", 400, "invalid_request", "limit"),
    ("ledger-limit-word", "GET", "/api/billing/ledger?limit=abc", None, "admin", 400, "invalid_request", "limit"),
    ("ledger-limit-1001", "GET", "/api/billing/ledger?limit=1001", None, "admin", 400, "invalid_request", "limit"),
    ("ledger-limit-negative", "GET", "/api/billing/ledger?limit=-1", None, "admin", 400, "invalid_request", "limit"),
    (
        "ledger-limit-huge",
        "GET",
        "/api/billing/ledger?limit=" + "9" * 40,
        None,
        "admin",
        400,
        "invalid_request",
        "limit",
    ),
    (
        "ledger-token-garbage",
        "GET",
        "/api/billing/ledger?next_token=%21%21not-a-token",
        None,
        "admin",
        400,
        "invalid_request",
        "next_token",
    ),
    (
        "ledger-token-not-an-object",
        "GET",
        "/api/billing/ledger?next_token=" + _b64([1, 2]),
        None,
        "admin",
        400,
        "invalid_request",
        "next_token",
    ),
    (
        "ledger-token-foreign-object",
        "GET",
        "/api/billing/ledger?next_token=" + _b64({"x": 1}),
        None,
        "admin",
        400,
        "invalid_request",
        "next_token",
    ),
    (
        "ledger-token-wrong-key-type",
        "GET",
        "/api/billing/ledger?next_token=" + _b64({"contract_id": {"N": "1"}}),
        None,
        "admin",
        400,
        "invalid_request",
        "next_token",
    ),
    ("entries-no-filter", "GET", "/api/billing/entries", None, "admin", 400, "invalid_request", None),
    (
        "entries-both-filters",
        "GET",
        "/api/billing/entries?contract_id={c1}&account=revenue",
        None,
        "admin",
        400,
        "invalid_request",
        None,
    ),
    (
        "entries-limit-zero",
        "GET",
        "/api/billing/entries?contract_id={c1}&limit=0",
        None,
        "admin",
        400,
        "invalid_request",
        "limit",
    ),
    (
        "entries-token-garbage",
        "GET",
        "/api/billing/entries?contract_id={c1}&next_token=%7B%7B",
        None,
        "admin",
        400,
        "invalid_request",
        "next_token",
    ),
    (
        "entries-by-contract-token-foreign-object",
        "GET",
        "/api/billing/entries?contract_id={c1}&next_token=" + _b64({"x": 1}),
        None,
        "admin",
        400,
        "invalid_request",
        "next_token",
    ),
    (
        "entries-token-foreign-object",
        "GET",
        "/api/billing/entries?account=revenue&next_token=" + _b64({"y": "z"}),
        None,
        "admin",
        400,
        "invalid_request",
        "next_token",
    ),
]


@pytest.fixture(scope="module")
def baseline(api, ctx):
    """The world before the first malformed request (compared by the last test)."""
    return world(api, ctx)


@pytest.mark.parametrize("case", MALFORMED, ids=[c[0] for c in MALFORMED])
def test_malformed_request_is_a_clean_4xx(api, ctx, baseline, case):
    name, method, path, raw, auth, status, code, reason = case
    fill = {
        "c1": ctx.c1,
        "sig": random_signature(),
        "wallet": str(ctx.a.pubkey()),
        "future_ms": int(time.time() * 1000) + 3_600_000,
    }
    path = path.replace("{c1}", ctx.c1)
    if isinstance(raw, str):
        raw = (
            raw.replace("{sig}", fill["sig"])
            .replace("{wallet}", fill["wallet"])
            .replace('"{future_ms}"', str(fill["future_ms"]))
        )
    headers = {}
    if auth == "device":
        headers["X-Device-Key"] = ctx.key
    elif auth == "admin":
        headers["X-Admin-Key"] = api.admin_key
    elif auth == "idem-long":
        headers["Idempotency-Key"] = "k" * 256
    elif auth and auth.startswith("renter"):
        headers.update(settle_headers(ctx.a, ctx.c1, path=path.split("?")[0]))
    r = api.request(method, path, data=raw, headers=headers)
    assert 400 <= r.status < 500, r
    assert_error(r, status, code, reason)


def test_malformed_requests_wrote_nothing(api, ctx, baseline):
    assert len(MALFORMED) >= 30
    assert world(api, ctx) == baseline
    # and the contract still works afterwards
    r = api.post(f"/api/metrics/{ctx.c1}", SAMPLE, headers={"X-Device-Key": ctx.key})
    assert r.status == 200, r


def test_unknown_routes_and_methods_write_nothing(api, ctx):
    """Outside docs/api.md's routes: whatever the HTTP front answers, it is a 4xx and writes nothing."""
    before = world(api, ctx)
    for method, path in (
        ("DELETE", f"/api/contracts/{ctx.c1}"),
        ("PUT", "/api/rent"),
        ("GET", "/api/rent"),
        ("POST", f"/api/contracts/{ctx.c1}"),
        ("GET", "/api/nothing-here"),
    ):
        r = api.request(method, path, data=b"{}" if method != "GET" else None)
        assert 400 <= r.status < 500, r
    assert world(api, ctx) == before
