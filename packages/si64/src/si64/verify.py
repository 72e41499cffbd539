"""Check a contract's covered time against its device's signed receipts, trusting no operator figure.

``check(...)`` is pure (no I/O): given the ``GET /api/contracts/{id}/coverage`` answer, the
contract's status and the device's ed25519 public key, it verifies

1. every receipt's signature (solders) over ``si64_protocol.receipts.receipt_message`` for THIS
   contract (a tampered field or another contract's receipt fails here), with the device's key
   (or one it held before, ``previous``: a contract's receipts are all signed with one key);
2. the chain (``chain_problem``): ``seq`` from 0 with no gap, each ``prev_sha256`` the hash of
   the previous receipt's message (a missing, reordered or inserted receipt fails here);
3. the operator's figures against each other: the gaps lie inside the contract's life, in order,
   do not overlap and add up to ``uncovered_ms``; covered + uncovered is the time elapsed;
4. that every covered millisecond claimed is backed: inside the start-up allowance
   ``[created, created + grace)`` or inside ``[from_ms − grace, to_ms + slack)`` of a receipt
   whose signature verified. ``slack`` allows for the time between a batch's last sample (the
   device's clock) and its arrival (the server's clock, at which the server counts it).

What it does not prove: docs/operations.md "Verifying covered time".
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from si64_protocol.receipts import RECEIPT_FIELDS, chain_problem, receipt_message

Interval = tuple[int, int]
_HEX64 = re.compile(r"[0-9a-f]{64}")


@dataclass
class Verdict:
    contract_id: str
    device_id: str | None
    pubkey: str | None
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    receipts: int = 0
    signatures_ok: int = 0
    created_ms: int | None = None
    end_ms: int | None = None
    covered_ms: int | None = None
    uncovered_ms: int | None = None
    gaps: list[Interval] = field(default_factory=list)
    proven_ms: int = 0
    unproven: list[Interval] = field(default_factory=list)
    grace_ms: int = 0
    slack_ms: int = 0

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def unproven_ms(self) -> int:
        return length(self.unproven)

    def as_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "contract_id": self.contract_id,
            "device_id": self.device_id,
            "pubkey": self.pubkey,
            "problems": self.problems,
            "notes": self.notes,
            "receipts": self.receipts,
            "signatures_ok": self.signatures_ok,
            "created_ms": self.created_ms,
            "end_ms": self.end_ms,
            "covered_ms": self.covered_ms,
            "uncovered_ms": self.uncovered_ms,
            "gaps": [{"from_ms": a, "to_ms": b} for a, b in self.gaps],
            "proven_ms": self.proven_ms,
            "unproven_ms": self.unproven_ms,
            "unproven": [{"from_ms": a, "to_ms": b} for a, b in self.unproven],
            "grace_ms": self.grace_ms,
            "slack_ms": self.slack_ms,
        }


# ------------------------------------------------------------------ half-open interval sets
def union(intervals: list[Interval]) -> list[Interval]:
    """The sorted, disjoint union of half-open intervals (empty ones dropped)."""
    out: list[Interval] = []
    for lo, hi in sorted(i for i in intervals if i[0] < i[1]):
        if out and lo <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], hi))
        else:
            out.append((lo, hi))
    return out


def subtract(a: list[Interval], b: list[Interval]) -> list[Interval]:
    """The parts of union(a) outside union(b)."""
    out: list[Interval] = []
    cuts = union(b)
    for lo, hi in union(a):
        at = lo
        for c_lo, c_hi in cuts:
            if c_hi <= at or c_lo >= hi:
                continue
            if c_lo > at:
                out.append((at, c_lo))
            at = max(at, c_hi)
        if at < hi:
            out.append((at, hi))
    return out


def length(intervals: list[Interval]) -> int:
    return sum(hi - lo for lo, hi in union(intervals))


# ------------------------------------------------------------------ checks
def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _receipt_shape(i: int, r: Any) -> str | None:
    if not isinstance(r, dict):
        return f"receipt {i}: not an object"
    missing = [k for k in RECEIPT_FIELDS if k not in r]
    if missing:
        return f"receipt {i}: missing {', '.join(missing)}"
    if any(_int(r[k]) is None or r[k] < 0 for k in ("seq", "from_ms", "to_ms")):
        return f"receipt {i}: seq, from_ms and to_ms must be non-negative integers"
    if not all(isinstance(r[k], str) and _HEX64.fullmatch(r[k]) for k in ("samples_sha256", "prev_sha256")):
        return f"receipt {i}: samples_sha256 and prev_sha256 must be 64 lowercase hex digits"
    if not isinstance(r["signature"], str):
        return f"receipt {i}: signature must be a base58 string"
    if r["from_ms"] > r["to_ms"]:
        return f"receipt {i} (seq {r['seq']}): to_ms {r['to_ms']} is before from_ms {r['from_ms']}"
    return None


def signature_ok(pubkey: Any, contract_id: str, r: dict[str, Any]) -> bool:
    """Whether `r`'s signature is the device's over this contract's receipt message."""
    from solders.signature import Signature

    message = receipt_message(contract_id, r["seq"], r["from_ms"], r["to_ms"], r["samples_sha256"], r["prev_sha256"])
    try:
        return bool(Signature.from_string(r["signature"]).verify(pubkey, message.encode()))
    except ValueError:
        return False


def _parse_pubkey(text: str | None) -> Any:
    from solders.pubkey import Pubkey

    if not text:
        return None
    try:
        return Pubkey.from_string(text)
    except ValueError:
        return None


def _claimed(v: Verdict, coverage: dict[str, Any], contract: dict[str, Any]) -> list[Interval] | None:
    """The covered intervals the operator claims, after checking its figures agree; None if they cannot."""
    created, expires = _int(contract.get("created_at_ms")), _int(contract.get("expires_at_ms"))
    covered, uncovered = _int(coverage.get("covered_ms")), _int(coverage.get("uncovered_ms"))
    v.covered_ms, v.uncovered_ms, v.created_ms = covered, uncovered, created
    if created is None or expires is None:
        v.problems.append("the contract's status has no created_at_ms / expires_at_ms: its life is unknown")
        return None
    if covered is None or uncovered is None or covered < 0 or uncovered < 0:
        v.problems.append("the coverage answer has no valid covered_ms / uncovered_ms")
        return None
    end = created + covered + uncovered
    v.end_ms = end
    if end > expires:
        v.problems.append(f"covered + uncovered = {covered + uncovered} ms runs past the contract's expiry")
    ended_at = _int(contract.get("settled_at_ms"))
    if contract.get("status") not in (None, "ACTIVE") and ended_at is not None and ended_at != end:
        v.problems.append(
            f"covered + uncovered = {covered + uncovered} ms, but the contract ran {ended_at - created} ms"
        )
    raw_gaps = coverage.get("gaps")
    if not isinstance(raw_gaps, list):
        v.problems.append("the coverage answer has no gaps list")
        return None
    at = created
    for i, g in enumerate(raw_gaps):
        lo = _int(g.get("from_ms")) if isinstance(g, dict) else None
        hi = _int(g.get("to_ms")) if isinstance(g, dict) else None
        if lo is None or hi is None or not at <= lo < hi <= end:
            v.problems.append(f"gap {i} {g!r} is not an interval inside the contract's life, after the previous gap")
            return None
        v.gaps.append((lo, hi))
        at = hi
    if length(v.gaps) != uncovered:
        v.problems.append(f"the gaps add up to {length(v.gaps)} ms, but uncovered_ms is {uncovered}")
    return subtract([(created, end)], v.gaps)


def check(
    contract_id: str,
    coverage: dict[str, Any],
    contract: dict[str, Any],
    pubkey: str | None,
    *,
    previous: list[str] | tuple[str, ...] = (),
    grace_ms: int = 60_000,
    slack_ms: int = 10_000,
) -> Verdict:
    """Every check of this module's docstring; the verdict lists each problem found (none: verified)."""
    v = Verdict(contract_id, contract.get("device_id"), pubkey, grace_ms=grace_ms, slack_ms=slack_ms)
    if contract.get("contract_id") not in (None, contract_id):
        v.problems.append(f"the status answered is of contract {contract.get('contract_id')}, not {contract_id}")
    for name in ("contract_id", "device_id", "created_at_ms", "expires_at_ms"):
        said, expected = coverage.get(name), contract_id if name == "contract_id" else contract.get(name)
        if said is not None and said != expected:
            v.problems.append(f"the coverage answer says {name} {said}, the contract {expected}")
    said_grace = coverage.get("grace_ms")
    if _int(said_grace) is not None and said_grace != grace_ms:
        v.notes.append(f"the API says its grace is {said_grace} ms; checked with {grace_ms} ms (--grace-seconds)")
    key = _parse_pubkey(pubkey)
    keys = [k for k in [key, *(_parse_pubkey(p) for p in previous)] if k is not None]
    if key is None:
        v.problems.append(
            f"device {v.device_id} has no valid published signing key ({pubkey!r}): no receipt can be checked"
        )
    receipts = coverage.get("receipts")
    if not isinstance(receipts, list):
        v.problems.append("the coverage answer has no receipts list")
        receipts = []
    v.receipts = len(receipts)
    good: list[dict[str, Any]] = []
    signers: set[str] = set()
    shaped = True
    for i, r in enumerate(receipts):
        problem = _receipt_shape(i, r)
        if problem:
            v.problems.append(problem)
            shaped = False
            continue
        signer = next((k for k in keys if signature_ok(k, contract_id, r)), None)
        if signer is not None:
            v.signatures_ok += 1
            signers.add(str(signer))
            good.append(r)
        elif key is not None:
            v.problems.append(
                f"receipt {i} (seq {r['seq']}): the signature does not verify with the device's key over "
                f"this contract's receipt (a field was changed, or it is another contract's receipt)"
            )
    if len(signers) > 1:
        v.problems.append(f"the receipts are signed with {len(signers)} different keys: {', '.join(sorted(signers))}")
    if shaped:
        problem = chain_problem(contract_id, receipts)
        if problem:
            v.problems.append(f"the receipt chain is broken: {problem}")
    claimed = _claimed(v, coverage, contract)
    if claimed is None or v.created_ms is None or v.end_ms is None:
        return v
    life = [(v.created_ms, v.end_ms)]
    allowance = (v.created_ms, v.created_ms + grace_ms)
    backed = [allowance] + [(r["from_ms"] - grace_ms, r["to_ms"] + slack_ms) for r in good]
    proven = subtract(life, subtract(life, backed))
    v.proven_ms = length(proven)
    v.unproven = subtract(claimed, backed)
    if v.unproven:
        spans = ", ".join(f"[{a}, {b})" for a, b in v.unproven[:5]) + (" …" if len(v.unproven) > 5 else "")
        v.problems.append(f"{v.unproven_ms} ms of the covered time claimed are backed by no valid receipt: {spans}")
    extra = length(subtract(proven, claimed))
    if extra:
        v.notes.append(f"{extra} ms backed by receipts are counted as uncovered (in the renter's favour)")
    return v
