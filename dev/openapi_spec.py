"""The OpenAPI 3.1 document of the whole SI64 API, built here and written as JSON to
``chalicelib/api/openapi.json`` (the file `GET /api/openapi.json` serves; ``docs/openapi.json``
links to it).

    python -m dev.openapi_spec            # rewrite chalicelib/api/openapi.json
    python -m dev.openapi_spec --check    # exit 1 when the file differs from this builder

The one source of the API's contract: it takes the tiers, error codes and their statuses,
limits, signed strings and statuses from chalicelib's own constants, so the document follows
the code. The file is committed (the Lambda package serves it as it is, and a change of the
contract shows in review as a diff of it); tests/integration/test_openapi.py keeps it equal to
this builder and in step with ``app.routes``. The views (tests/unit/test_views.py), the gateway
responses (tests/infra/test_packaged_template.py) and docs/api.md (tests/unit/test_api_reference.py)
are checked against it; tests/e2e/test_schemathesis.py fuzzes the local stack against it.
This is operator tooling: it imports chalicelib, chalicelib never imports it.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from chalicelib.adapters.claims import IDEMPOTENCY_TTL_MS
from chalicelib.api import errors, operators, schemas, views
from chalicelib.config import Settings
from chalicelib.domain import books as book_counters
from chalicelib.domain import contracts, money, signing, usage_receipts
from chalicelib.domain import refunds as domain_refunds
from chalicelib.domain import webhooks as domain_webhooks
from chalicelib.services import idempotency, telemetry
from si64_protocol.receipts import receipt_message

ROOT = Path(__file__).resolve().parents[1]
SPEC_PATH = ROOT / "chalicelib" / "api" / "openapi.json"

# Everything the code decides comes from chalicelib itself: the tiers, the error codes and their
# statuses, the limits, the strings a renter signs and the statuses a contract or refund can take.
# What only the document says (descriptions, types of the fields) is written here, and
# tests/unit/test_views.py checks every view's output against the schemas below.
TIERS = list(money.TIERS)
ERROR_STATUS = {code: status for status, code in [*errors.STATUS.values(), errors.INTERNAL]}
ERROR_CODES = list(ERROR_STATUS)
STATUSES = list(book_counters.CONTRACT_STATUSES)
LISTED_REFUND_STATUSES = list(domain_refunds.STATUSES)  # what GET /api/admin/refunds lists
REFUND_STATUSES = [contracts.REFUND_NONE, *LISTED_REFUND_STATUSES]
IDEMPOTENCY_HOURS = IDEMPOTENCY_TTL_MS // 3_600_000
BODY_KIB = schemas.MAX_BODY_BYTES // 1024
MAX_METRIC = schemas.MAX_METRIC
REDRIVE_MAX = operators.REDRIVE_MAX_MESSAGES
PAGE_LIMIT = f"1 to {schemas.PAGE_MAX} (default {schemas.PAGE_DEFAULT})"
PAGE_PATTERN = f"^[0-9]{{1,{len(str(schemas.PAGE_MAX))}}}$"
RECEIPT_MESSAGE = receipt_message("{contract_id}", "{seq}", "{from_ms}", "{to_ms}", "{samples_sha256}", "{prev_sha256}")  # type: ignore[arg-type]
RENT_MEMO = signing.rent_memo("{tier}", "{duration_seconds}")  # type: ignore[arg-type]
SIGNED = signing.renter_message("{METHOD}", "{PATH}", "{X-Timestamp}").decode()

# --------------------------------------------------------------------------- schema helpers
INT = {"type": "integer"}
LAMPORTS = {"type": "integer", "minimum": 0}
NUM = {"type": "number"}
STR = {"type": "string"}
HEX64 = {"type": "string", "pattern": "^[0-9a-f]{64}$"}
SAMPLES_JSON = 'json.dumps(samples, sort_keys=True, separators=(",", ":"))'
BOOL = {"type": "boolean"}
SOL = {"type": "number", "description": "display only, derived from the `_lamports` figure beside it"}
TS = {"type": "integer", "description": "Unix seconds"}
TS_MS = {"type": "integer", "description": "Unix milliseconds"}
TIMES_MS = {
    "created_at_ms": {"type": "integer", "description": "the server's milliseconds, on which usage runs"},
    "expires_at_ms": {"type": "integer"},
    "settled_at_ms": {"type": ["integer", "null"]},
}
COVERAGE = {  # docs/api.md "Proven usage and downtime credit": so far while ACTIVE, final once ended
    "covered_ms": {"type": "integer", "minimum": 0, "description": "time the device proved it served the contract"},
    "uncovered_ms": {"type": "integer", "minimum": 0},
    "credit_lamports": {
        "type": "integer",
        "minimum": 0,
        "description": "downtime credit: elapsed-time usage minus covered-time usage, refunded with the rest",
    },
}


def nullable(schema: dict) -> dict:
    t = schema.get("type")
    return {**schema, "type": [t, "null"]} if isinstance(t, str) else {"anyOf": [schema, {"type": "null"}]}


def obj(required: dict, optional: dict | None = None, *, closed: bool = True, **extra) -> dict:
    props = {**required, **(optional or {})}
    out = {"type": "object", "required": list(required), "properties": props}
    if closed:
        out["additionalProperties"] = False
    return {**out, **extra}


def ref(name: str) -> dict:
    return {"$ref": f"#/components/schemas/{name}"}


def with_sol(**names) -> dict:
    """`name` (SOL, display) and `name_lamports` (integer) for each name."""
    out = {}
    for n in names:
        out[n] = SOL
        out[f"{n}_lamports"] = LAMPORTS
    return out


# --------------------------------------------------------------------------- component schemas
SCHEMAS = {
    "Error": obj(
        {"detail": STR, "code": {"type": "string", "enum": ERROR_CODES}, "reason": nullable(STR)},
        {"request_id": {"type": "string", "description": "present on 5xx answers"}},
        description='Every error (docs/api.md "Errors"); nothing was written. `x-status-of-code`: the HTTP '
        "status each code is answered with.",
        **{"x-status-of-code": ERROR_STATUS},
    ),
    "Health": obj({"status": {"const": "ok"}}),
    "Pricing": obj(
        {
            "treasury": STR,
            "network": STR,
            "tiers": {
                "type": "array",
                "items": obj(
                    {"tier": {"enum": TIERS}, "lamports_per_hour": LAMPORTS, "sol_per_hour": SOL, "memory": STR}
                ),
            },
            "min_duration_seconds": INT,
            "max_duration_hours": INT,
            "refund_min_lamports": LAMPORTS,
            "payment_max_age_seconds": INT,
        }
    ),
    "Fleet": obj(
        {
            "tiers": {
                "type": "array",
                "items": obj(
                    {
                        "tier": {"enum": TIERS},
                        "lamports_per_hour": LAMPORTS,
                        "sol_per_hour": SOL,
                        "memory": STR,
                        "devices": {"type": "integer", "minimum": 0},
                        "slots": {"type": "integer", "minimum": 0},
                        "slots_free": {"type": "integer", "minimum": 0},
                    }
                ),
            },
            "server_time": INT,
        }
    ),
    "Device": obj(
        {
            "id": STR,
            "name": STR,
            "tier": {"enum": TIERS},
            "uri": STR,
            "address": STR,
            "region": STR,
            "ram": STR,
            "leases": {"type": "integer", "minimum": 0},
            "capacity": {"type": "integer", "minimum": 0},
            "available": {"type": "integer", "minimum": 0},
            "uptime": {"type": "string", "pattern": "%$", "examples": ["99.8%"]},
            "audited": BOOL,
            "pubkey": {
                **nullable(STR),
                "description": "The ed25519 public key (base58) that signs this device's usage receipts; "
                "null: the device sends none.",
            },
            "previous_pubkeys": {
                "type": "array",
                "items": STR,
                "description": "Keys that signed its receipts before `pubkey`, oldest first.",
            },
        }
    ),
    "QuoteRequest": {
        "oneOf": [
            obj(
                {"tier": {"type": "string", "enum": TIERS}, "duration_hours": {"type": "number", "exclusiveMinimum": 0}}
            ),
            obj({"contract_id": STR, "additional_hours": {"type": "number", "exclusiveMinimum": 0}}),
        ],
        "description": "A rental (tier, duration_hours) or an extension (contract_id, additional_hours).",
    },
    "Quote": obj(
        {
            "quote_id": STR,
            "kind": {"enum": ["rent", "extend"]},
            "tier": {"enum": TIERS},
            "contract_id": nullable(STR),
            "duration_seconds": INT,
            "lamports": LAMPORTS,
            "sol": SOL,
            "recipient": STR,
            "reference": {"type": "string", "description": "base58 key the paying transfer carries (Solana Pay)"},
            "memo": STR,
            "expires_at": TS,
            "solana_pay_url": {"type": "string", "pattern": "^solana:"},
        }
    ),
    "QuoteStatus": obj(
        {
            "quote_id": STR,
            "status": {"enum": ["OPEN", "PAID", "EXPIRED", "REFUSED"]},
            "contract_id": nullable(STR),
            "tx_signature": nullable(STR),
            "reason": nullable(STR),
        }
    ),
    "RentRequest": obj(
        {
            "wallet": {"type": "string", "description": "base58 public key of the payer"},
            "tier": {"type": "string", "enum": TIERS},
            "duration_hours": {"type": "number", "exclusiveMinimum": 0},
            "tx_signature": {"type": "string", "description": "base58 signature of the paying transaction"},
        },
        {"amount": {"type": "number", "description": "informational (SOL); what the chain received counts"}},
        closed=False,
        description="Unknown fields are ignored.",
    ),
    "RentReceipt": obj(
        {
            "contract_id": STR,
            "status": {"const": "ACTIVE"},
            "tier": {"enum": TIERS},
            "device_id": STR,
            "duration_hours": NUM,
            "duration_seconds": INT,
            "cost_sol": SOL,
            "cost_lamports": LAMPORTS,
            "prepaid_sol": SOL,
            "prepaid_lamports": LAMPORTS,
            "created_at": TS,
            "expires_at": TS,
        },
        {
            **{k: v for k, v in TIMES_MS.items() if k != "settled_at_ms"},
            "payment_tx_signature": {"type": "string", "description": "the payment this rent spent"},
        },
        description="The `_ms` times and `payment_tx_signature` are absent only from receipts stored before "
        "they were added (a replay answers the stored receipt).",
    ),
    "Refund": obj(
        {"status": {"enum": REFUND_STATUSES}, "lamports": LAMPORTS, "tx_signature": nullable(STR)},
        {"reason": STR},
    ),
    "Contract": obj(
        {
            "contract_id": STR,
            "wallet": STR,
            "tier": {"enum": TIERS},
            "device_id": STR,
            "status": {"enum": STATUSES},
            "prepaid_sol": SOL,
            "prepaid_lamports": LAMPORTS,
            "cost_lamports": LAMPORTS,
            "used_sol": SOL,
            "used_lamports": LAMPORTS,
            **with_sol(refund_available=1),
            "duration_hours": NUM,
            "duration_seconds": INT,
            "elapsed_hours": NUM,
            "remaining_seconds": {"type": "integer", "minimum": 0},
            **COVERAGE,
            "created_at": TS,
            "expires_at": TS,
            "settled_at": nullable(TS),
            **TIMES_MS,
            "refund": ref("Refund"),
            "booked": {
                "type": "boolean",
                "description": "false while a contract past its expiry awaits the billing sweep (up to a minute): "
                "it is shown EXPIRED with exactly the figures the sweep will book",
            },
        }
    ),
    "ExtendRequest": obj(
        {"additional_hours": {"type": "number", "exclusiveMinimum": 0}, "tx_signature": STR},
        closed=False,
        description="Unknown fields are ignored.",
    ),
    "ExtendReceipt": obj(
        {
            "contract_id": STR,
            "extended_hours": NUM,
            "extended_seconds": INT,
            "additional_cost_sol": SOL,
            "additional_cost_lamports": LAMPORTS,
            "prepaid_lamports": LAMPORTS,
            **with_sol(new_total_cost=1),
            "new_expiration": TS,
            "duration_seconds": INT,
        },
        {
            "payment_received_lamports": {
                **LAMPORTS,
                "description": "what this extension's payment brought (the legacy `prepaid_lamports`)",
            },
            "new_expiration_ms": TS_MS,
            "payment_tx_signature": {"type": "string", "description": "the payment this extension spent"},
        },
    ),
    "Settlement": obj(
        {
            "contract_id": STR,
            "status": {"enum": ["SETTLED", "EXPIRED"]},
            "prepaid_sol": SOL,
            "prepaid_lamports": LAMPORTS,
            "cost_lamports": LAMPORTS,
            "used_sol": SOL,
            "used_lamports": LAMPORTS,
            "refund_sol": SOL,
            "refund_lamports": LAMPORTS,
            "refund_status": {"enum": REFUND_STATUSES},
            **COVERAGE,
            "tx_signature": {**nullable(STR), "description": "legacy name of `refund_tx_signature`"},
            "refund_tx_signature": {
                **nullable(STR),
                "description": "the refund's transaction once sent (null before); never the payment's",
            },
            "settled_at": nullable(TS),
            **TIMES_MS,
        }
    ),
    "Sample": obj(
        {  # the bounds of schemas._sample
            name: {"type": "number", "minimum": 0, "maximum": schemas.MAX_CPU if name == "cpu_percent" else MAX_METRIC}
            for name in schemas.SAMPLE_FIELDS
        },
        {"timestamp_ms": TS_MS},
        closed=False,
    ),
    "MetricsReport": {
        "oneOf": [
            ref("Sample"),
            obj(
                {"samples": {"type": "array", "minItems": 1, "maxItems": schemas.MAX_BATCH, "items": ref("Sample")}},
                {"receipt": ref("Receipt")},
                closed=False,
            ),
        ],
        "description": f"One sample, or a batch of at most {schemas.MAX_BATCH}; a device with a registered "
        "`pubkey` sends a batch with its `receipt`.",
    },
    "Receipt": obj(
        {
            "seq": {"type": "integer", "minimum": 0, "maximum": usage_receipts.MAX_SEQ},
            "from_ms": {**TS_MS, "description": "the smallest timestamp_ms of the batch"},
            "to_ms": {**TS_MS, "description": "the largest timestamp_ms of the batch"},
            "samples_sha256": {
                **HEX64,
                "description": 'sha256 hex of json.dumps(samples, sort_keys=True, separators=(",", ":"))',
            },
            "prev_sha256": {
                **HEX64,
                "description": "sha256 hex of the previous receipt's message (64 zeros for seq 0)",
            },
            "signature": {**STR, "description": f"base58 ed25519 over {RECEIPT_MESSAGE}"},
        },
        description="A device-signed receipt of one metrics batch.",
    ),
    "CoverageReceipt": obj(
        {
            "seq": {"type": "integer", "minimum": 0},
            "from_ms": TS_MS,
            "to_ms": TS_MS,
            "samples_sha256": HEX64,
            "prev_sha256": HEX64,
            "signature": STR,
            "pubkey": {**STR, "description": "the device key it was checked with"},
            "received_at_ms": {**TS_MS, "description": "the server time its report counted at"},
        },
        description="An accepted receipt: the signed fields, the signature, the key and the server time.",
    ),
    "Coverage": obj(
        {
            "contract_id": STR,
            "tier": {"enum": TIERS, "description": "the device's key is published in GET /api/devices/{tier}"},
            "device_id": STR,
            "status": {"enum": STATUSES},
            "created_at_ms": TS_MS,
            "expires_at_ms": TS_MS,
            "covered_ms": {"type": "integer", "minimum": 0},
            "uncovered_ms": {"type": "integer", "minimum": 0},
            "grace_ms": {"type": "integer", "minimum": 0},
            "gaps": {
                "type": "array",
                "items": obj({"from_ms": TS_MS, "to_ms": TS_MS}),
                "description": "the uncovered parts [from_ms, to_ms) of the life so far",
            },
            "receipts": {"type": "array", "items": ref("CoverageReceipt"), "description": "in seq order"},
            "server_time_ms": TS_MS,
        },
        description="A contract's covered time with its proof: the gaps and the device-signed receipts.",
    ),
    "PubkeyRequest": obj({"pubkey": {**STR, "description": "base58 of a 32-byte ed25519 public key"}}, closed=False),
    "MetricsRecorded": obj(
        {
            "contract_id": STR,
            "metrics_recorded": {"const": True},
            "samples_recorded": {"type": "integer", "minimum": 1},
            "elapsed_hours": NUM,
            "cost_so_far": SOL,
            "cost_so_far_lamports": LAMPORTS,
            **with_sol(refund_available=1),
        }
    ),
    "Samples": obj(
        {
            "contract_id": STR,
            "samples": {
                "type": "array",
                "maxItems": telemetry.LATEST_SAMPLES,
                "items": obj({name: TS_MS if name == "timestamp_ms" else NUM for name in views.SAMPLE_VIEW_FIELDS}),
            },
        }
    ),
    "LedgerPage": obj(
        {
            "active_contracts": {
                "type": "array",
                "items": obj(
                    {
                        "contract_id": STR,
                        "wallet": STR,
                        "tier": {"enum": TIERS},
                        "status": {"const": "ACTIVE"},
                        "device_id": STR,
                        "expires_at": TS,
                        **with_sol(prepaid=1, used=1, refund=1),
                    }
                ),
            },
            "completed_settlements": {
                "type": "array",
                "items": obj(
                    {
                        "contract_id": STR,
                        "wallet": STR,
                        "tier": {"enum": TIERS},
                        "status": {"enum": ["SETTLED", "EXPIRED"]},
                        "settlement_time": TS,
                        "refund_status": {"enum": REFUND_STATUSES},
                        "refund_tx": nullable(STR),
                        "booked": {"type": "boolean", "description": "false: past its expiry, awaiting the sweep"},
                        "credit_lamports": {**COVERAGE["credit_lamports"], "description": "downtime credit"},
                        **with_sol(prepaid=1, used=1, refund=1),
                    }
                ),
            },
            "page_contracts": {"type": "integer", "minimum": 0},
            "totals_scope": {"enum": ["page", "book"], "description": "book: whole-book counters"},
            "next_token": nullable(STR),
            **with_sol(total_active_value=1, total_used=1, total_pending_refunds=1),
        }
    ),
    "Entry": obj(
        {
            "entry_id": STR,
            "contract_id": STR,
            "account": STR,
            "debit_lamports": LAMPORTS,
            "credit_lamports": LAMPORTS,
            "kind": STR,
            "created_at": TS,
            "created_at_ms": TS_MS,
            "ref": nullable(STR),
        }
    ),
    "EntriesPage": obj(
        {
            "entries": {"type": "array", "items": ref("Entry")},
            "debit_lamports": LAMPORTS,
            "credit_lamports": LAMPORTS,
            "balance_lamports": {"type": "integer", "description": "legacy: debits − credits of the page"},
            "debit_minus_credit_lamports": {"type": "integer", "description": "debits − credits of the page"},
            "next_token": nullable(STR),
        },
        {
            "account": STR,
            "normal_side": {"enum": ["debit", "credit"], "description": "the side on which the account grows"},
            "account_balance_lamports": {
                "type": "integer",
                "description": "the page's balance on the account's own side (revenue earned is positive)",
            },
        },
        description="With `?account=`, also `account`, `normal_side` and `account_balance_lamports`.",
    ),
    "QueueDepth": nullable(
        obj({"visible": {"type": "integer", "minimum": 0}, "in_flight": {"type": "integer", "minimum": 0}})
    ),
    "Stats": obj(
        {
            "contracts": obj(
                {s: {"type": "integer", "minimum": 0} for s in STATUSES},
                description="as of now: a contract past its expiry counts as EXPIRED before the sweep books it",
            ),
            "contracts_booked": obj(
                {s: {"type": "integer", "minimum": 0} for s in STATUSES}, description="as the books hold them"
            ),
            "expired_awaiting_sweep": obj(
                {"count": {"type": "integer", "minimum": 0}, "complete": BOOL},
                description="ACTIVE in the books, past their expiry (complete: false when counted only to 100 "
                "per shard)",
            ),
            "devices": obj({"count": INT, "slots_leased": INT, "slots_free": INT, "capacity": INT}),
            "refunds_by_status": {"type": "object", "additionalProperties": {"type": "integer", "minimum": 0}},
            "queues": obj({"refund_queue": ref("QueueDepth"), "dead_letter_queue": ref("QueueDepth")}),
            "treasury": STR,
            "rpc_reachable": BOOL,
            "server_time": TS,
            "server_time_ms": TS_MS,
            **with_sol(revenue=1, pending_refunds=1, active_prepaid=1, downtime_credit=1),
        }
    ),
    "AdminDevices": obj(
        {"devices": {"type": "array", "items": ref("AdminDevice")}, "count": INT, "server_time_ms": TS_MS}
    ),
    "IssuedKey": obj(
        {
            "device_id": STR,
            "device_key": {"type": "string", "pattern": "^dk_", "description": "shown once; only its hash is stored"},
            "detail": STR,
        }
    ),
    "AuditedRequest": obj({"audited": BOOL}, closed=False),
    "PaymentRefund": obj(
        {
            "payment": {"type": "string", "description": "the orphan payment's transaction signature"},
            "refund_id": STR,
            "wallet": STR,
            "refund_lamports": LAMPORTS,
            "refund_sol": SOL,
            "refund": ref("Refund"),
        },
        description="The refund of a payment that no contract holds (an orphan), to its payer.",
    ),
    "RefundRetried": obj(
        {
            "refund_id": STR,
            "wallet": STR,
            "status": {"enum": REFUND_STATUSES},
            "lamports": LAMPORTS,
            "tx_signature": nullable(STR),
            "attempt": {"type": "integer", "minimum": 0},
        },
        {"reason": STR},
    ),
    "AdminRefund": obj(
        {
            "refund_id": STR,
            "kind": {"enum": ["contract", "payment"]},
            "wallet": STR,
            "status": {"enum": REFUND_STATUSES},
            "lamports": LAMPORTS,
            "tx_signature": nullable(STR),
            "attempt": {"type": "integer", "minimum": 0},
            "fee_lamports": nullable(LAMPORTS),
            "confirmed_at_ms": nullable(TS_MS),
            "reason": nullable(STR),
        }
    ),
    "AdminRefunds": obj(
        {
            "status": {"enum": LISTED_REFUND_STATUSES},
            "refunds": {"type": "array", "items": ref("AdminRefund")},
            "count": INT,
            "next_token": nullable(STR),
        }
    ),
    "Redriven": obj({"moved": {"type": "integer", "minimum": 0}, "limit": INT, "detail": STR}),
    "Unbooked": obj(
        {
            "signature": STR,
            "kind": {"enum": ["orphan", "recent_payment", "claimed_unbooked", "refund_in_flight", "unexplained"]},
            "lamports": {"type": "integer", "description": "the treasury's balance change (+ in, − out)"},
            "slot": INT,
            "block_time": nullable(TS),
            "payer": nullable(STR),
            "refund_id": nullable(STR),
            "note": STR,
        }
    ),
    "Reconciliation": obj(
        {
            "ok": BOOL,
            "mismatches": {"type": "array", "items": STR},
            "treasury": obj(
                {
                    "address": STR,
                    "chain_lamports": LAMPORTS,
                    "chain_slot": INT,
                    "baseline_lamports": LAMPORTS,
                    "baseline_slot": nullable(INT),
                    "baseline_source": STR,
                    "ledger_lamports": INT,
                    "unbooked_lamports": INT,
                    "difference_lamports": INT,
                }
            ),
            "orphans": {"type": "array", "items": ref("Unbooked")},
            "unbooked": {"type": "array", "items": ref("Unbooked")},
            "refunds": obj(
                {
                    "confirmed_checked": INT,
                    "problems": {
                        "type": "array",
                        "items": obj(
                            {
                                "refund_id": STR,
                                "tx_signature": nullable(STR),
                                "problems": {"type": "array", "items": STR},
                            }
                        ),
                    },
                }
            ),
            "phantom_refs": {"type": "array", "items": STR},
            "orphan_age_seconds": INT,
            "complete": BOOL,
            "notes": {"type": "array", "items": STR},
            "reads": obj({"signatures": INT, "transactions": INT}),
        },
        description='The books against the chain: see docs/operations.md "Reconciliation".',
    ),
    "OpenApiDocument": {"type": "object", "required": ["openapi", "paths"]},
}
_device = SCHEMAS["Device"]
SCHEMAS["AdminDevice"] = obj(
    {**_device["properties"], "last_seen_ms": nullable(TS_MS), "last_seen": nullable(TS), "key_set": BOOL},
    description="A device as operators see it: the public view plus its last report and whether a key is set "
    "(never the key nor its hash).",
)

# --------------------------------------------------------------------------- responses
# What each status of the edge means; `{codes}` is filled with the codes errors.STATUS answers
# with it, so a code added there appears here (and a status added there needs its line here).
ERROR_TEXT = {
    400: "Bad input ({codes}, `reason` names the field); nothing written",
    401: "Credentials missing, malformed, expired or wrong ({codes})",
    402: "The payment does not prove what it must ({codes}, `reason` says why)",
    403: "Valid credentials, not for this resource ({codes})",
    404: "No such contract, tier or device ({codes})",
    409: "Conflict: {codes}; retry `idempotency_in_progress` after `Retry-After`",
    413: f"Body over {BODY_KIB} KiB ({{codes}})",
    415: "A Content-Type other than JSON's accepted names ({codes}, reason `Content-Type`)",
    429: "Rate limited ({codes}); `Retry-After` in seconds",
    500: "A bug ({codes}); the body carries `request_id`",
    503: "The chain RPC or the database did not answer ({codes}); nothing was changed",
}


def codes_of(status: int) -> str:
    names = [f"`{code}`" for code, s in ERROR_STATUS.items() if s == status]
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " or " + names[-1]


def error_text(status: int) -> str:
    if status not in ERROR_TEXT:
        raise KeyError(f"status {status} of chalicelib/api/errors.py has no line in ERROR_TEXT")
    return ERROR_TEXT[status].format(codes=codes_of(status))


def err(status: int) -> dict:
    out = {"description": error_text(status), "content": {"application/json": {"schema": ref("Error")}}}
    if status == 429:
        out["headers"] = {"Retry-After": {"schema": {"type": "string"}, "description": "seconds"}}
    return out


def ok(schema: dict, description: str = "OK", headers: dict | None = None) -> dict:
    out = {"description": description, "content": {"application/json": {"schema": schema}}}
    if headers:
        out["headers"] = headers
    return out


REPLAYED = {
    "Idempotent-Replayed": {
        "schema": {"type": "string", "enum": ["true"]},
        "description": "present when an Idempotency-Key replay answered",
    }
}
ALWAYS = (429, 500, 503)  # any route: the rate limit, a bug, an outage


def responses(success: dict, *errors: int) -> dict:
    out = dict(success)
    for status in sorted(set(errors) | set(ALWAYS)):
        out[str(status)] = err(status)
    return out


def body(schema_name: str, required: bool = True) -> dict:
    return {"required": required, "content": {"application/json": {"schema": ref(schema_name)}}}


def path_param(name: str, description: str, **schema) -> dict:
    return {
        "name": name,
        "in": "path",
        "required": True,
        "description": description,
        "schema": {"type": "string", **schema},
    }


def query_param(name: str, description: str, **schema) -> dict:
    return {
        "name": name,
        "in": "query",
        "required": False,
        "description": description,
        "schema": {"type": "string", **schema},
    }


IDEMPOTENCY = {
    "name": "Idempotency-Key",
    "in": "header",
    "required": False,
    "description": f"≤ {idempotency.MAX_KEY_CHARS} characters; the same key with the same body returns the first "
    f"answer for {IDEMPOTENCY_HOURS} h",
    "schema": {"type": "string", "minLength": 1, "maxLength": idempotency.MAX_KEY_CHARS},
}
CONTRACT_ID = path_param("contract_id", "`CTR-` and a random URL-safe id")
POST_ERRORS = (400, 413, 415)  # every POST: bad JSON / bad field, body too large, not JSON
RENTER = [{"renterWallet": [], "renterTimestamp": [], "renterSignature": []}]
RENTER_OPTIONAL = [*RENTER, {}]
DEVICE = [{"deviceKey": []}]
ADMIN = [{"adminKey": []}]
PUBLIC: list = []
SECURITY_OF_AUTH = {  # endpoint(auth=...) → what a client must send
    None: PUBLIC,
    "renter": RENTER,
    "renter_optional": RENTER_OPTIONAL,
    "device": DEVICE,
    "admin": ADMIN,
    "renter_or_admin": [*RENTER, *ADMIN],
}


def route_auth() -> dict[tuple[str, str], str | None]:
    """(METHOD, path) → the auth mode its endpoint() checks, for every route the app serves."""
    from app import app

    return {
        (method, path): entry.view_function.auth
        for path, entries in app.routes.items()
        for method, entry in entries.items()
        if method != "OPTIONS"
    }


def with_security(paths: dict) -> dict:
    """PATHS with each operation's security taken from its route's endpoint(auth=...)."""
    auth = route_auth()
    out: dict = {}
    for path, item in paths.items():
        out[path] = {}
        for method, operation in item.items():
            key = (method.upper(), path)
            if key not in auth:
                raise KeyError(f"{method.upper()} {path} is in PATHS but the app serves no such route")
            out[path][method] = {**operation, "security": SECURITY_OF_AUTH[auth[key]]}
    return out


def op(
    op_id: str,
    summary: str,
    resp: dict,
    *,
    tags: list[str],
    params: list | None = None,
    request: dict | None = None,
    description: str | None = None,
) -> dict:
    out = {"operationId": op_id, "summary": summary, "tags": tags}
    if description:
        out["description"] = description
    if params:
        out["parameters"] = params
    if request:
        out["requestBody"] = request
    out["security"] = PUBLIC  # set by build() from the credentials the route checks
    out["responses"] = resp
    return out


PATHS = {
    "/api/health": {
        "get": op("health", "The function can reach its table", responses({"200": ok(ref("Health"))}), tags=["public"])
    },
    "/api/pricing": {
        "get": op(
            "pricing",
            "Where and how much to pay: treasury, network, tiers, limits",
            responses({"200": ok(ref("Pricing"))}),
            tags=["public"],
        )
    },
    "/api/fleet": {
        "get": op(
            "fleet",
            "Per tier: price, devices, slots and free slots (money-free, cached at most 5 s)",
            responses({"200": ok(ref("Fleet"))}),
            tags=["public"],
        )
    },
    "/api/devices/{tier}": {
        "get": op(
            "devices_of_tier",
            "Devices of a tier with live leases, capacity and free slots",
            responses({"200": ok({"type": "array", "items": ref("Device")})}, 404),
            tags=["public"],
            params=[path_param("tier", "one of the tiers of /api/pricing")],
        )
    },
    "/api/rent": {
        "post": op(
            "rent",
            "Open a contract paid by a bound payment",
            responses(
                {
                    "201": ok(ref("RentReceipt"), "Rented"),
                    "200": ok(ref("RentReceipt"), "The same request again: the first answer", REPLAYED),
                },
                *POST_ERRORS,
                401,
                402,
                403,
                409,
            ),
            tags=["renter"],
            params=[IDEMPOTENCY],
            request=body("RentRequest"),
            description="The payment must be bound to the request: a memo `" + RENT_MEMO + "` in "
            "the paying transaction, or the renter headers signed by the paying wallet over the body.",
        )
    },
    "/api/quotes": {
        "post": op(
            "create_quote",
            "A Solana Pay transfer request for a rental or an extension",
            responses({"201": ok(ref("Quote"), "Quoted")}, *POST_ERRORS, 404, 409),
            tags=["renter"],
            request=body("QuoteRequest"),
        )
    },
    "/api/quotes/{quote_id}": {
        "get": op(
            "quote_status",
            "A quote's status: OPEN, PAID, EXPIRED or REFUSED",
            responses({"200": ok(ref("QuoteStatus"))}, 404),
            tags=["renter"],
            params=[path_param("quote_id", "`QTE-` and a random URL-safe id")],
        )
    },
    "/api/contracts/{contract_id}": {
        "get": op(
            "contract",
            "A contract's live figures and refund",
            responses({"200": ok(ref("Contract"))}, 404),
            tags=["renter"],
            params=[CONTRACT_ID],
        )
    },
    "/api/contracts/{contract_id}/extend": {
        "post": op(
            "extend",
            "Extend an ACTIVE contract with a bound payment from its wallet",
            responses({"200": ok(ref("ExtendReceipt"), headers=REPLAYED)}, *POST_ERRORS, 401, 402, 403, 404, 409),
            tags=["renter"],
            params=[CONTRACT_ID, IDEMPOTENCY],
            request=body("ExtendRequest"),
        )
    },
    "/api/contracts/{contract_id}/settle": {
        "post": op(
            "settle",
            "End the contract now and queue its refund (renter-signed)",
            responses({"200": ok(ref("Settlement"), headers=REPLAYED)}, *POST_ERRORS, 401, 403, 404, 409),
            tags=["renter"],
            params=[CONTRACT_ID, IDEMPOTENCY],
            request={"required": False, "content": {"application/json": {"schema": {}}}},
        )
    },
    "/api/metrics/{contract_id}": {
        "post": op(
            "report_metrics",
            f"A device reports usage (one sample or a batch of ≤ {schemas.MAX_BATCH}) in one write",
            responses({"200": ok(ref("MetricsRecorded"), headers=REPLAYED)}, *POST_ERRORS, 401, 403, 404, 409),
            tags=["device"],
            params=[CONTRACT_ID, IDEMPOTENCY],
            request=body("MetricsReport"),
        )
    },
    "/api/contracts/{contract_id}/coverage": {
        "get": op(
            "contract_coverage",
            "Covered time, its gaps and the device-signed receipts (renter-signed, or admin)",
            responses({"200": ok(ref("Coverage"))}, 401, 403, 404),
            tags=["renter"],
            params=[CONTRACT_ID],
        )
    },
    "/api/contracts/{contract_id}/metrics": {
        "get": op(
            "contract_metrics",
            "The latest ≤ 100 samples of a contract, oldest first",
            responses({"200": ok(ref("Samples"))}, 404),
            tags=["renter"],
            params=[CONTRACT_ID],
        )
    },
    "/api/billing/ledger": {
        "get": op(
            "ledger_page",
            "A page of contracts, active and completed, with the page's totals",
            responses({"200": ok(ref("LedgerPage"))}, 400, 401),
            tags=["operator"],
            params=[
                query_param("limit", PAGE_LIMIT, pattern=PAGE_PATTERN),
                query_param("next_token", "from the previous page"),
            ],
        )
    },
    "/api/billing/entries": {
        "get": op(
            "ledger_entries",
            "Postings of one contract or one account, oldest first",
            responses({"200": ok(ref("EntriesPage"))}, 400, 401),
            tags=["operator"],
            params=[
                query_param("contract_id", "exactly one of contract_id and account"),
                query_param(
                    "account", "treasury, revenue, refunds_payable, retained_dust, downtime_credit or escrow:{contract}"
                ),
                query_param("limit", PAGE_LIMIT, pattern=PAGE_PATTERN),
                query_param("next_token", "from the previous page"),
            ],
        )
    },
    "/api/stats": {
        "get": op(
            "stats",
            "System health for operators",
            responses({"200": ok(ref("Stats"))}, 401),
            tags=["operator"],
        )
    },
    "/api/admin/devices": {
        "get": op(
            "admin_devices",
            "Every device: leases, capacity, uptime, audited, last report, key set",
            responses({"200": ok(ref("AdminDevices"))}, 401),
            tags=["operator"],
        )
    },
    "/api/admin/devices/{device_id}/key": {
        "post": op(
            "admin_issue_device_key",
            "Issue a new device key (returned once; the old key stops working)",
            responses({"201": ok(ref("IssuedKey"), "Issued")}, 400, 401, 404),
            tags=["operator"],
            params=[path_param("device_id", "a device of the inventory")],
            description="No body. `Idempotency-Key` is refused (400): the key must exist only in this answer.",
        )
    },
    "/api/admin/devices/{device_id}/pubkey": {
        "post": op(
            "register_pubkey",
            "Register the ed25519 key that signs a device's usage receipts (published with the device)",
            responses({"200": ok(ref("AdminDevice"), headers=REPLAYED)}, *POST_ERRORS, 401, 403, 404),
            tags=["operator"],
            params=[path_param("device_id", "a device of the inventory"), IDEMPOTENCY],
            request=body("PubkeyRequest"),
            description="The same key again changes nothing. Another key only while the device leases no "
            "contract (403, reason `leases`); the replaced key stays in `previous_pubkeys`.",
        )
    },
    "/api/admin/devices/{device_id}/audited": {
        "post": op(
            "admin_set_device_audited",
            "Mark a device audited or not",
            responses({"200": ok(ref("AdminDevice"), headers=REPLAYED)}, *POST_ERRORS, 401, 404),
            tags=["operator"],
            params=[path_param("device_id", "a device of the inventory"), IDEMPOTENCY],
            request=body("AuditedRequest"),
        )
    },
    "/api/payments/{tx_signature}/refund": {
        "post": op(
            "refund_payment",
            "Refund a payment that no contract holds to its payer (payer-signed)",
            responses(
                {
                    "201": ok(ref("PaymentRefund"), "Refund booked and queued"),
                    "200": ok(ref("PaymentRefund"), "Booked before: the same refund", REPLAYED),
                },
                *POST_ERRORS,
                401,
                402,
                403,
                409,
            ),
            tags=["renter"],
            params=[path_param("tx_signature", "the payment's transaction signature (base58)"), IDEMPOTENCY],
            request={"required": False, "content": {"application/json": {"schema": {}}}},
            description="409 `payment_already_used` when the payment paid for a contract; 402 when it is not a "
            "payment by the signing wallet to the treasury.",
        ),
        "get": op(
            "payment_refund",
            "The refund of an orphan payment, if one was requested",
            responses({"200": ok(ref("PaymentRefund"))}, 400, 404),
            tags=["renter"],
            params=[
                path_param("tx_signature", "the payment's transaction signature (base58)"),
                {**query_param("payer", "the payer whose share was refunded (one refund per payer)"), "required": True},
            ],
        ),
    },
    "/api/refunds/{refund_id}/retry": {
        "post": op(
            "retry_refund",
            "Queue a FAILED refund again (FAILED → QUEUED); any other refund is returned as it is",
            responses({"200": ok(ref("RefundRetried"), headers=REPLAYED)}, 400, 401, 404, 413, 415),
            tags=["operator"],
            params=[path_param("refund_id", "a contract id, or the id of an orphan payment's refund"), IDEMPOTENCY],
        )
    },
    "/api/admin/refunds": {
        "get": op(
            "admin_refunds",
            "Refunds in one status, newest first (contract refunds, then payment refunds), paged",
            responses({"200": ok(ref("AdminRefunds"))}, 400, 401),
            tags=["operator"],
            params=[
                query_param(
                    "status",
                    "QUEUED, SENT, CONFIRMED, FAILED or DUST (default FAILED)",
                    enum=LISTED_REFUND_STATUSES,
                ),
                query_param("limit", PAGE_LIMIT, pattern=PAGE_PATTERN),
                query_param("next_token", "from the previous page"),
            ],
            description="One or two Query calls on the sparse `refunds-by-status` indexes; never a scan.",
        )
    },
    "/api/admin/refunds/redrive": {
        "post": op(
            "admin_redrive_refunds",
            "Move the refund dead-letter queue's messages back to the refund queue",
            responses({"200": ok(ref("Redriven"), headers=REPLAYED)}, 400, 401, 413, 415),
            tags=["operator"],
            params=[
                query_param(
                    "limit",
                    f"at most this many messages (1 to {REDRIVE_MAX}, default {REDRIVE_MAX})",
                    pattern=f"^[0-9]{{1,{len(str(REDRIVE_MAX))}}}$",
                ),
                IDEMPOTENCY,
            ],
            description="Receive (10 at a time), send to the refund queue, then delete from the DLQ: a message is "
            "never lost, at worst duplicated (the refund worker is idempotent).",
        )
    },
    "/api/admin/payments/{tx_signature}/refund": {
        "post": op(
            "admin_refund_orphan",
            "Refund an orphan payment to its payer (operator)",
            responses(
                {"201": ok(ref("PaymentRefund"), "Refund booked and queued", REPLAYED)},
                *POST_ERRORS,
                401,
                402,
                409,
            ),
            tags=["operator"],
            params=[
                path_param("tx_signature", "the orphan payment's transaction signature (base58)"),
                query_param("payer", "the payer whose share to refund, when several payers' shares are unclaimed"),
                IDEMPOTENCY,
            ],
            request={"required": False, "content": {"application/json": {"schema": {}}}},
            description="The payer is read from the chain (the source of the transfer to the treasury, which "
            "signed it; the treasury did not). 409 `payment_already_used` when a contract or a refund already "
            "holds the signature; 402 `payment_invalid` when it is not such a transfer.",
        )
    },
    "/api/admin/reconcile": {
        "get": op(
            "admin_reconcile",
            "The books against the chain: treasury balance, confirmed refunds, orphan payments",
            responses({"200": ok(ref("Reconciliation"))}, 400, 401),
            tags=["operator"],
            params=[
                query_param(
                    "orphan_age",
                    "seconds after which an unclaimed transfer is an orphan "
                    f"(default {operators.ORPHAN_AGE_DEFAULT_SECONDS})",
                    pattern="^[0-9]{1,10}$",
                ),
                query_param(
                    "baseline_slot",
                    "reconcile the history after this slot only (default: from the first booked transaction)",
                    pattern="^[0-9]{1,19}$",
                ),
            ],
            description="Read-only. `ok` is false and `mismatches` names each difference.",
        )
    },
    "/api/openapi.json": {
        "get": op("openapi", "This document", responses({"200": ok(ref("OpenApiDocument"))}), tags=["public"])
    },
}

# --------------------------------------------------------------------------- webhooks
WEBHOOK_EVENTS = list(domain_webhooks.EVENTS)
_WEBHOOK = {
    "webhook_id": {"type": "string", "pattern": "^WH-"},
    "url": {"type": "string", "maxLength": domain_webhooks.MAX_URL_CHARS},
    "events": {"type": "array", "items": {"type": "string", "enum": WEBHOOK_EVENTS}},
    "created_at": TS,
}
SCHEMAS["WebhookRequest"] = obj(
    {
        "url": {
            "type": "string",
            "minLength": 1,
            "maxLength": domain_webhooks.MAX_URL_CHARS,
            "description": "https and a public host in production (SSRF); http and any address locally",
        },
        "events": {"type": "array", "minItems": 1, "items": {"type": "string", "enum": WEBHOOK_EVENTS}},
    }
)
SCHEMAS["Webhook"] = obj(_WEBHOOK, description="A webhook as listed: never its secret.")
SCHEMAS["WebhookRegistered"] = obj(
    {
        **_WEBHOOK,
        "secret": {"type": "string", "pattern": "^whsec_", "description": "shown once: signs every delivery"},
        "detail": STR,
    }
)
SCHEMAS["Webhooks"] = obj({"webhooks": {"type": "array", "items": ref("Webhook")}, "count": INT})
SCHEMAS["WebhookDeleted"] = obj({"webhook_id": STR, "deleted": BOOL})
PATHS["/api/webhooks"] = {
    "post": op(
        "register_webhook",
        "Register a webhook (renter: the wallet's contracts; admin: every event); the secret is shown once",
        responses({"201": ok(ref("WebhookRegistered"), "Registered")}, *POST_ERRORS, 401),
        tags=["renter"],
        request=body("WebhookRequest"),
        description=f"At most {domain_webhooks.MAX_WEBHOOKS_PER_OWNER} per owner. `Idempotency-Key` is refused "
        "(400): the secret must exist only in this answer.",
    ),
    "get": op(
        "list_webhooks",
        "The caller's webhooks, oldest first (never a secret)",
        responses({"200": ok(ref("Webhooks"))}, 401),
        tags=["renter"],
    ),
}
PATHS["/api/webhooks/{webhook_id}"] = {
    "delete": op(
        "delete_webhook",
        "Delete one of the caller's webhooks",
        responses({"200": ok(ref("WebhookDeleted"))}, 401, 404),
        tags=["renter"],
        params=[path_param("webhook_id", "`WH-` and a random URL-safe id")],
    )
}

PATHS["/api/webhooks/{webhook_id}/deliveries"] = {
    "get": op(
        "list_webhook_deliveries",
        "The newest deliveries of one of the caller's webhooks and each one's status",
        responses({"200": ok(ref("WebhookDeliveries"))}, 401, 404),
        tags=["renter"],
        params=[path_param("webhook_id", "`WH-` and a random URL-safe id")],
        description=f"At most {domain_webhooks.DELIVERY_LOG_KEEP}, newest first. Another owner's webhook is 404.",
    )
}
SCHEMAS["WebhookDelivery"] = obj(
    {
        "event_id": {"type": "string", "pattern": "^evt_"},
        "type": {"type": "string", "enum": WEBHOOK_EVENTS},
        "status": {"type": "string", "enum": list(domain_webhooks.DELIVERY_STATUSES)},
        "attempts": INT,
        "next_try_at": nullable(TS),
        "last_status": nullable(INT),
        "last_error": nullable(STR),
        "event_created": TS,
        "updated_at": TS,
    }
)
SCHEMAS["WebhookDeliveries"] = obj(
    {"webhook_id": STR, "deliveries": {"type": "array", "items": ref("WebhookDelivery")}, "count": INT}
)

SECURITY_SCHEMES = {
    "adminKey": {
        "type": "apiKey",
        "in": "header",
        "name": "X-Admin-Key",
        "description": "The operator key (SSM parameter when deployed, a file locally)",
    },
    "deviceKey": {
        "type": "apiKey",
        "in": "header",
        "name": "X-Device-Key",
        "description": "`dk_<device_id>_<secret>`, issued by `si64 devices issue-key`",
    },
    "renterWallet": {"type": "apiKey", "in": "header", "name": "X-Wallet", "description": "base58 public key"},
    "renterTimestamp": {
        "type": "apiKey",
        "in": "header",
        "name": "X-Timestamp",
        "description": f"Unix seconds, within ±{Settings.signature_window_seconds} s of server time",
    },
    "renterSignature": {
        "type": "apiKey",
        "in": "header",
        "name": "X-Signature",
        "description": f"base58 ed25519 signature of `{SIGNED}` "
        "(+ `:{sha256 hex of the raw body}` when the body is not empty)",
    },
}


def build() -> dict:
    for code in ERROR_STATUS:
        statuses = {s for s, c in [*errors.STATUS.values(), errors.INTERNAL] if c == code}
        if len(statuses) != 1:
            raise ValueError(f"error code {code!r} is answered with several statuses: {sorted(statuses)}")
    missing = sorted(set(ERROR_STATUS.values()) - set(ERROR_TEXT))
    if missing:
        raise KeyError(f"statuses of chalicelib/api/errors.py with no line in ERROR_TEXT: {missing}")
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "SI64 billing API",
            "version": "1.0.0",
            "description": "Prepaid compute rentals paid in SOL. Money is integer lamports in every `_lamports` "
            "field; `_sol` fields are display values derived from them. Every error is "
            "`{detail, code, reason}` (+ `request_id` on 5xx) and writes nothing. The contract "
            "is docs/api.md. Every path also answers CORS "
            "preflights (OPTIONS) for the origins the stage allows (SI64_CORS_ORIGINS; operator "
            "routes SI64_CORS_ADMIN_ORIGINS; device routes never).",
        },
        "servers": [{"url": "/", "description": "the API's base URL (the local stack, or a stage's /api root)"}],
        "tags": [{"name": t} for t in ("public", "renter", "device", "operator")],
        "paths": with_security(PATHS),
        "components": {"schemas": SCHEMAS, "securitySchemes": SECURITY_SCHEMES},
    }


def render() -> str:
    return json.dumps(build(), indent=1, ensure_ascii=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m dev.openapi_spec", description=__doc__.split("\n")[0])
    p.add_argument("--check", action="store_true", help="exit 1 when the file differs from the builder")
    args = p.parse_args(argv)
    text = render()
    if args.check:
        same = SPEC_PATH.exists() and SPEC_PATH.read_text() == text
        state = "is up to date" if same else "differs: run python -m dev.openapi_spec"
        print(f"{SPEC_PATH.relative_to(ROOT)} {state}")
        return 0 if same else 1
    SPEC_PATH.write_text(text)
    print(f"wrote {SPEC_PATH.relative_to(ROOT)} ({len(build()['paths'])} paths)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
