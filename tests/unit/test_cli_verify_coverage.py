"""`si64 verify-coverage`: every receipt's signature, the chain, the operator's figures, and that each
covered millisecond claimed is backed by a receipt; and `si64 devices set-key`.

The world: a contract of 60 s created at C whose device reported from C+20 s to C+40 s (four signed
batches of 10 samples, each arriving 300 ms after its last sample), grace 10 s. The server's
covered time is then [C, C+10 s) ∪ [C+15.3 s, C+40.3 s): 35,000 ms, and 25,000 ms in two gaps.
The API is a fake `http_json` (no sockets)."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from solders.keypair import Keypair
from solders.signature import Signature

import si64_protocol as protocol
from si64 import cli
from si64 import client as cl
from si64.device_receipts import ReceiptChain
from si64.renter import load_or_create_keypair
from si64.verify import Verdict, check, subtract, union

CID, DEVICE, C = "CTR-x", "THOR-01", 1_700_000_000_000
GRACE, SLACK = 10_000, 10_000


def _batches(contract_id: str = CID, key: Keypair | None = None) -> tuple[Keypair, list[dict[str, Any]]]:
    kp = key or Keypair()
    chain = ReceiptChain(contract_id, kp)
    out = []
    for to in (25_000, 30_000, 35_000, 40_000):
        samples = [{"timestamp_ms": C + to - 4_500 + 500 * i, "cpu_percent": 5.0} for i in range(10)]
        out.append(chain.sign(samples).receipt)
        chain.acknowledged()
    return kp, out


def _world() -> tuple[Keypair, dict[str, Any], dict[str, Any]]:
    kp, receipts = _batches()
    coverage = {
        "covered_ms": 35_000,
        "uncovered_ms": 25_000,
        "gaps": [{"from_ms": C + 10_000, "to_ms": C + 15_300}, {"from_ms": C + 40_300, "to_ms": C + 60_000}],
        "receipts": receipts,
    }
    contract = {
        "contract_id": CID,
        "device_id": DEVICE,
        "tier": "THOR",
        "status": "SETTLED",
        "created_at_ms": C,
        "expires_at_ms": C + 300_000,
        "settled_at_ms": C + 60_000,
    }
    return kp, coverage, contract


def _check(coverage: dict[str, Any], contract: dict[str, Any], kp: Keypair) -> Verdict:
    return check(CID, coverage, contract, str(kp.pubkey()), grace_ms=GRACE, slack_ms=SLACK)


def test_interval_helpers() -> None:
    assert union([(5, 7), (0, 2), (1, 3), (9, 9)]) == [(0, 3), (5, 7)]
    assert subtract([(0, 10)], [(2, 3), (5, 20)]) == [(0, 2), (3, 5)]


def test_an_honest_answer_is_verified() -> None:
    kp, coverage, contract = _world()
    v = _check(coverage, contract, kp)
    assert v.ok, v.problems
    assert (v.receipts, v.signatures_ok, v.covered_ms, v.unproven_ms) == (4, 4, 35_000, 0)
    # backed: [C, C+10 s) and [C+10.5 s, C+50 s): 49,500 ms, of which 14,500 are counted as uncovered
    assert v.proven_ms == 49_500 and v.notes == [
        "14500 ms backed by receipts are counted as uncovered (in the renter's favour)"
    ]


def _problems(mutate: Any) -> list[str]:
    kp, coverage, contract = _world()
    coverage = copy.deepcopy(coverage)
    mutate(coverage, contract)
    v = _check(coverage, contract, kp)
    assert not v.ok
    return v.problems


def test_a_bad_signature_is_named() -> None:
    def forge(cov: dict[str, Any], _: dict[str, Any]) -> None:
        r = cov["receipts"][1]
        msg = protocol.receipts.receipt_message(CID, 1, r["from_ms"], r["to_ms"], r["samples_sha256"], r["prev_sha256"])
        r["signature"] = str(Keypair().sign_message(msg.encode()))  # the operator's own key

    assert _problems(forge) == [
        "receipt 1 (seq 1): the signature does not verify with the device's key over this contract's receipt "
        "(a field was changed, or it is another contract's receipt)"
    ]


def test_a_missing_receipt_breaks_the_chain() -> None:
    problems = _problems(lambda cov, _: cov["receipts"].pop(1))
    assert problems == ["the receipt chain is broken: receipt 1: seq is 2, expected 1"]


def test_a_reordered_chain_is_refused() -> None:
    def swap(cov: dict[str, Any], _: dict[str, Any]) -> None:
        rs = cov["receipts"]
        rs[1], rs[2] = rs[2], rs[1]

    assert _problems(swap) == ["the receipt chain is broken: receipt 1: seq is 2, expected 1"]


def test_another_contracts_receipt_does_not_verify_here() -> None:
    kp, coverage, contract = _world()
    _, others = _batches("CTR-other", key=kp)  # the same device, another contract: validly signed for it
    coverage["receipts"][2] = others[2]
    v = _check(coverage, contract, kp)
    assert v.problems[0].startswith("receipt 2 (seq 2): the signature does not verify")
    assert "the receipt chain is broken: receipt 2: prev_sha256" in v.problems[1]


def test_a_tampered_interval_fails_its_signature_and_the_next_link() -> None:
    def widen(cov: dict[str, Any], _: dict[str, Any]) -> None:
        cov["receipts"][1]["from_ms"] -= 15_000

    problems = _problems(widen)
    assert problems[0].startswith("receipt 1 (seq 1): the signature does not verify")
    assert problems[1] == "the receipt chain is broken: receipt 2: prev_sha256 does not match the previous receipt"
    # the last receipt has no next link: its signature alone catches it
    assert _problems(lambda cov, _: cov["receipts"][3].update(to_ms=C + 59_000))[0].startswith("receipt 3 (seq 3)")


def test_covered_time_no_receipt_backs_is_refused() -> None:
    def overclaim(cov: dict[str, Any], _: dict[str, Any]) -> None:
        cov.update(covered_ms=54_700, uncovered_ms=5_300, gaps=[{"from_ms": C + 10_000, "to_ms": C + 15_300}])

    assert _problems(overclaim) == [
        f"10000 ms of the covered time claimed are backed by no valid receipt: [{C + 50_000}, {C + 60_000})"
    ]


def test_a_forged_receipt_backs_nothing() -> None:
    kp, coverage, contract = _world()
    coverage.update(covered_ms=54_700, uncovered_ms=5_300, gaps=[{"from_ms": C + 10_000, "to_ms": C + 15_300}])
    coverage["receipts"][3]["to_ms"] = C + 60_000  # would back the claim, were it signed
    v = _check(coverage, contract, kp)
    assert v.unproven_ms == 15_000 and len(v.problems) == 2  # receipt 3 backs nothing: [C+45 s, C+60 s)


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        (
            {"gaps": [{"from_ms": C + 10_000, "to_ms": C + 15_300}]},
            "the gaps add up to 5300 ms, but uncovered_ms is 25000",
        ),
        ({"uncovered_ms": 24_000}, "covered + uncovered = 59000 ms, but the contract ran 60000 ms"),
        (
            {"gaps": [{"from_ms": C + 40_300, "to_ms": C + 60_000}, {"from_ms": C + 10_000, "to_ms": C + 15_300}]},
            "gap 1",
        ),
        ({"gaps": [{"from_ms": C - 5, "to_ms": C + 15_300}]}, "gap 0"),
        ({"receipts": [{"seq": 0}]}, "receipt 0: missing from_ms"),
        ({"covered_ms": "35000"}, "no valid covered_ms"),
    ],
)
def test_figures_that_do_not_add_up_are_refused(change: dict[str, Any], problem: str) -> None:
    problems = _problems(lambda cov, _: cov.update(change))
    assert any(problem in p for p in problems), problems


def test_the_run_time_must_match_the_contracts_life() -> None:
    problems = _problems(lambda _, contract: contract.update(settled_at_ms=C + 61_000))
    assert problems == ["covered + uncovered = 60000 ms, but the contract ran 61000 ms"]


def test_the_answer_must_be_of_this_contract_and_device_and_a_different_grace_is_noted() -> None:
    kp, coverage, contract = _world()
    v = _check(dict(coverage, contract_id="CTR-y", device_id="M2-09", grace_ms=60_000), contract, kp)
    assert v.problems == [
        "the coverage answer says contract_id CTR-y, the contract CTR-x",
        f"the coverage answer says device_id M2-09, the contract {DEVICE}",
    ]
    earlier = _check(dict(coverage, created_at_ms=C - 1, expires_at_ms=C + 300_000), contract, kp)
    assert earlier.problems == [f"the coverage answer says created_at_ms {C - 1}, the contract {C}"]
    assert "the API says its grace is 60000 ms; checked with 10000 ms (--grace-seconds)" in v.notes


def test_no_key_no_verdict() -> None:
    _, coverage, contract = _world()
    v = check(CID, coverage, contract, None, grace_ms=GRACE, slack_ms=SLACK)
    assert not v.ok and "has no valid published signing key" in v.problems[0]
    another = check(CID, coverage, contract, str(Keypair().pubkey()), grace_ms=GRACE, slack_ms=SLACK)
    assert another.signatures_ok == 0 and another.unproven_ms == 25_000  # only the allowance is backed


# ------------------------------------------------------------------ the commands over a fake API


class FakeApi:
    def __init__(self, tmp_path: Path, coverage: dict[str, Any], contract: dict[str, Any], pubkey: str | None):
        self.renter = load_or_create_keypair(tmp_path / "wallets" / "demo.json")
        self.coverage, self.contract, self.pubkey = coverage, contract, pubkey
        self.calls: list[tuple[str, str, Any, dict[str, str]]] = []

    def __call__(
        self, method: str, url: str, body: Any = None, headers: dict[str, str] | None = None, timeout: float = 15
    ) -> tuple[int, Any, dict[str, str]]:
        path = url.removeprefix("http://api.test")
        h = headers or {}
        self.calls.append((method, path, body, h))
        if path == f"/api/contracts/{CID}":
            return 200, self.contract, {}
        if path == f"/api/contracts/{CID}/coverage":
            msg = protocol.renter_message("GET", path, h.get("X-Timestamp", ""))
            signed = Signature.from_string(h.get("X-Signature", "1" * 64)).verify(self.renter.pubkey(), msg)
            if h.get("X-Wallet") != str(self.renter.pubkey()) or not signed:
                return 401, {"code": "unauthorized", "detail": "bad renter signature", "reason": "X-Signature"}, {}
            return 200, self.coverage, {}
        if path == "/api/devices/THOR":
            return 200, [{"id": DEVICE, "tier": "THOR", "pubkey": self.pubkey}, {"id": "THOR-02", "pubkey": None}], {}
        if method == "POST" and path == f"/api/admin/devices/{DEVICE}/pubkey":
            return 200, {"device_id": DEVICE, "pubkey": body["pubkey"]}, {}
        return 404, {"code": "not_found", "detail": path}, {}


@pytest.fixture
def fake(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> FakeApi:
    monkeypatch.setenv("SI64_STATE_DIR", str(tmp_path))
    kp, coverage, contract = _world()
    api = FakeApi(tmp_path, coverage, contract, str(kp.pubkey()))
    monkeypatch.setattr(cl, "http_json", api)
    return api


def _si64(*argv: str) -> int:
    return cli.main(["--api", "http://api.test", "--admin-key", "adm", *argv])


def test_verify_coverage_cli_verified_with_the_published_key(fake: FakeApi, capsys: pytest.CaptureFixture[str]) -> None:
    args = ("verify-coverage", CID, "--grace-seconds", "10")
    assert _si64(*args) == 0
    out = capsys.readouterr().out
    assert f"{CID} on {DEVICE}: VERIFIED" in out and "receipts      4, 4 with a valid signature" in out
    assert "35000 ms (35s) claimed; 0 ms of it unproven" in out and "25000 ms (25s) in 2 gaps" in out
    assert _si64(*args, "--json") == 0
    verdict = json.loads(capsys.readouterr().out)
    assert verdict["ok"] is True and verdict["covered_ms"] == 35_000 and verdict["problems"] == []
    assert not any("X-Admin-Key" in h for _, _, _, h in fake.calls)  # a renter's command sends no admin key


def test_verify_coverage_cli_fails_with_exit_1_and_names_the_problem(
    fake: FakeApi, capsys: pytest.CaptureFixture[str]
) -> None:
    fake.coverage["receipts"][2]["to_ms"] += 1
    assert _si64("verify-coverage", CID, "--grace-seconds", "10") == 1
    captured = capsys.readouterr()
    assert f"{CID} on {DEVICE}: FAILED" in captured.out and "problem: receipt 2 (seq 2)" in captured.out
    assert "covered time is not proven" in captured.err and len(captured.err.strip().splitlines()) == 1


def test_verify_coverage_cli_with_a_pinned_key_that_the_api_does_not_publish(
    fake: FakeApi, capsys: pytest.CaptureFixture[str]
) -> None:
    device_key = fake.pubkey
    fake.pubkey = str(Keypair().pubkey())  # the operator publishes another key than the device's
    assert _si64("verify-coverage", CID, "--grace-seconds", "10") == 1  # the receipts do not verify with it
    assert "FAILED" in capsys.readouterr().out
    # the renter pins the key it got from the device's owner: the receipts verify, the mismatch is named
    assert _si64("verify-coverage", CID, "--grace-seconds", "10", "--pubkey", str(device_key), "--json") == 1
    verdict = json.loads(capsys.readouterr().out)
    assert verdict["signatures_ok"] == 4 and verdict["unproven_ms"] == 0
    assert verdict["problems"] == [f"the API publishes another key for {DEVICE}: {fake.pubkey}"]


def test_verify_coverage_needs_the_renters_wallet(fake: FakeApi, capsys: pytest.CaptureFixture[str]) -> None:
    assert _si64("verify-coverage", CID, "--wallet", "nobody") == 2
    assert "no wallet" in capsys.readouterr().err and not fake.calls  # nothing asked without a wallet


def test_devices_set_key_posts_the_key_to_the_admin_route(fake: FakeApi, capsys: pytest.CaptureFixture[str]) -> None:
    key = str(Keypair().pubkey())
    assert _si64("devices", "set-key", DEVICE, key) == 0
    method, path, body, headers = fake.calls[-1]
    assert (method, path, body, headers.get("X-Admin-Key")) == (
        "POST",
        f"/api/admin/devices/{DEVICE}/pubkey",
        {"pubkey": key},
        "adm",
    )
    assert f"{DEVICE}: signing key {key} registered" in capsys.readouterr().out
    with pytest.raises(SystemExit) as bad:
        _si64("devices", "set-key", DEVICE, "not-a-key")
    assert bad.value.code == 2 and len(fake.calls) == 1  # refused before any request


def test_a_key_the_device_held_before_verifies_its_receipts_but_one_contract_has_one_key() -> None:
    kp, coverage, contract = _world()
    rotated = check(CID, coverage, contract, str(Keypair().pubkey()), previous=[str(kp.pubkey())], grace_ms=GRACE)
    assert rotated.ok and rotated.signatures_ok == 4
    a, b = Keypair(), Keypair()
    chain = ReceiptChain(CID, a)
    mixed = []
    for n, to in enumerate((25_000, 30_000, 35_000, 40_000)):
        chain.keypair = a if n < 2 else b
        mixed.append(chain.sign([{"timestamp_ms": C + to - 4_500}, {"timestamp_ms": C + to}]).receipt)
        chain.acknowledged()
    v = check(
        CID, dict(coverage, receipts=mixed), contract, str(b.pubkey()), previous=[str(a.pubkey())], grace_ms=GRACE
    )
    assert v.signatures_ok == 4 and v.problems == [
        f"the receipts are signed with 2 different keys: {', '.join(sorted([str(a.pubkey()), str(b.pubkey())]))}"
    ]
