"""si64_protocol.receipts: the message a device signs, its hash chain, and the chain check."""

from __future__ import annotations

import hashlib

from si64_protocol.receipts import GENESIS_PREV, chain_problem, message_sha256, receipt_message, samples_sha256


def test_samples_hash_is_of_the_canonical_json() -> None:
    samples = [{"timestamp_ms": 5, "cpu_percent": 1.5}, {"cpu_percent": 2, "timestamp_ms": 6}]
    canonical = '[{"cpu_percent":1.5,"timestamp_ms":5},{"cpu_percent":2,"timestamp_ms":6}]'
    assert samples_sha256(samples) == hashlib.sha256(canonical.encode()).hexdigest()


def test_message_is_the_documented_string() -> None:
    msg = receipt_message("CTR-x", 3, 1000, 2000, "ab" * 32, "cd" * 32)
    assert msg == f"si64:receipt:CTR-x:3:1000:2000:{'ab' * 32}:{'cd' * 32}"
    assert message_sha256(msg) == hashlib.sha256(msg.encode()).hexdigest()


def _chain(n: int) -> list[dict]:
    out, prev = [], GENESIS_PREV
    for seq in range(n):
        r = {
            "seq": seq,
            "from_ms": seq * 10,
            "to_ms": seq * 10 + 9,
            "samples_sha256": f"{seq:064x}",
            "prev_sha256": prev,
        }
        out.append(r)
        prev = message_sha256(receipt_message("CTR-x", seq, r["from_ms"], r["to_ms"], r["samples_sha256"], prev))
    return out


def test_an_unbroken_chain_passes() -> None:
    assert chain_problem("CTR-x", _chain(4)) is None
    assert chain_problem("CTR-x", []) is None


def test_a_gap_a_wrong_link_or_another_contract_is_named() -> None:
    chain = _chain(4)
    assert "seq" in (chain_problem("CTR-x", chain[:1] + chain[2:]) or "")
    tampered = [dict(r) for r in chain]
    tampered[1]["to_ms"] += 1  # changes receipt 1's message, so receipt 2's link breaks
    assert "receipt 2" in (chain_problem("CTR-x", tampered) or "")
    assert chain_problem("CTR-y", chain) is not None
