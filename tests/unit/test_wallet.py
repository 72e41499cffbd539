"""`python -m si64.wallet` without a stack: one-line failures, and every check made before paying.

The API is a fake behind `wallet.api_client`; the chain is a recorder in place of `Renter` that
fails the test if the wallet would have paid."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest

from chalicelib.domain import signing
from si64 import wallet as w
from si64.client import ApiError

PRICING = {
    "treasury": "T",
    "tiers": [{"tier": "M2", "lamports_per_hour": 1_000_000}, {"tier": "THOR", "lamports_per_hour": 35_000_000}],
    "min_duration_seconds": 60,
    "max_duration_hours": 720,
}


class FakeApi:
    api_url = "http://api.test"

    def __init__(self, contracts=()):
        self.contracts = {c["contract_id"]: c for c in contracts}
        self.paths: list[str] = []

    def get(self, path):
        self.paths.append(path)
        if path == "/api/pricing":
            return PRICING
        cid = path.rsplit("/", 1)[1]
        if cid in self.contracts:
            return self.contracts[cid]
        raise ApiError(404, {"detail": "No such contract.", "code": "not_found"}, "GET", path)


class NoPayment:
    def __init__(self, *a, **k):
        raise AssertionError("the wallet reached the chain although a check should have refused first")


@pytest.fixture
def state(tmp_path, monkeypatch):
    monkeypatch.setenv("SI64_STATE_DIR", str(tmp_path))
    (tmp_path / "stack.json").write_text(
        json.dumps({"api_url": "http://api.test", "rpc_url": "http://rpc.test", "treasury": "T"})
    )
    monkeypatch.setattr(w, "Renter", NoPayment)
    return tmp_path


def _contract(state, **kw):
    me = w.load_or_create_keypair(state / "wallets" / "demo.json").pubkey()
    c = {
        "contract_id": "CTR-" + "a" * 22,
        "wallet": str(me),
        "tier": "THOR",
        "status": "ACTIVE",
        "remaining_seconds": 600,
        "duration_seconds": 3600,
    }
    c.update(kw)
    return c


def one_line(capsys) -> str:
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    return err


@pytest.mark.parametrize(
    "argv, says",
    [
        (["pay", "--hours", "-1"], "more than 0: '-1'"),
        (["pay", "--hours", "0"], "more than 0: '0'"),
        (["pay", "--hours", "nan"], "more than 0: 'nan'"),
        (["pay", "--hours", "1" * 50], "more than 0"),
        (["pay", "--lamports", "-5"], "lamports ≥ 1"),
        (["sign", "POST", "/api/rent", "--body", "/no/such/file.json"], "cannot read --body /no/such/file.json"),
        (["tx", "not-a-signature"], "not a base58 transaction signature"),
        (["balance", "0OIl"], "not a base58 address"),
    ],
)
def test_bad_arguments_fail_in_one_line_with_status_2(state, capsys, argv, says):
    assert w.main(argv) == 2
    assert says in one_line(capsys)


def test_no_stack_json_is_one_line(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("SI64_STATE_DIR", str(tmp_path / "none"))
    assert w.main(["pay"]) == 2
    assert "stack.json not found: start the stack with `make run` first" in one_line(capsys)


@pytest.mark.parametrize(
    "argv, contract, says",
    [
        (["pay", "--contract", "CTR-nope"], None, "no contract CTR-nope at http://api.test (404); nothing was paid"),
        (["pay", "--contract", "C", "--memo", "none"], None, "no contract C"),
        (["pay", "--contract", "X"], {"status": "SETTLED", "remaining_seconds": 0}, "has ended (SETTLED)"),
        # past its expiry, not swept yet: ended all the same
        (["pay", "--contract", "X"], {"status": "ACTIVE", "remaining_seconds": 0}, "has ended (ACTIVE)"),
        (["pay", "--contract", "X"], {"wallet": "Someone"}, "belongs to wallet Someone, not to this one"),
        (["pay", "--contract", "X", "--hours", "720"], {}, "more than 720 hours in all"),
        (["pay", "--hours", "0.01"], None, "'--hours' must be at least 60 seconds. Nothing was paid."),
        (["pay", "--hours", "721"], None, "at most 720 hours"),
        (["pay", "--memo", "extend"], None, "--memo extend needs --contract"),
        (["pay", "--memo", "rent", "--contract", "X"], {}, "--contract is for an extension"),
    ],
)
def test_pay_checks_with_the_api_before_it_pays(state, capsys, monkeypatch, argv, contract, says):
    api = FakeApi(
        [_contract(state, contract_id=argv[argv.index("--contract") + 1], **contract)] if contract is not None else []
    )
    monkeypatch.setattr(w, "api_client", lambda stack: api)
    assert w.main(argv) in (1, 2)
    assert says in one_line(capsys)


def test_the_planned_payment_prices_the_contracts_tier_and_binds_its_terms(state):
    c = _contract(state)
    me = c["wallet"]
    args = w.build_parser().parse_args(["pay", "--contract", c["contract_id"], "--hours", "0.25"])
    assert w.plan_payment(args, FakeApi([c]), me) == (8_750_000, signing.extend_memo(c["contract_id"], 900))
    args = w.build_parser().parse_args(["pay", "--tier", "THOR", "--hours", "0.5", "--lamports", "7"])
    assert w.plan_payment(args, FakeApi(), me) == (7, signing.rent_memo("THOR", 1800))
    args = w.build_parser().parse_args(["pay", "--hours", "1", "--memo", "none"])
    assert args.hours == Decimal(1) and w.plan_payment(args, FakeApi(), me) == (1_000_000, None)


def test_tx_summary_reads_a_refunds_memo_and_amount():
    refund = {
        "slot": 42,
        "blockTime": 1_800_000_000,
        "meta": {"err": None, "fee": 5_000, "innerInstructions": []},
        "transaction": {
            "message": {
                "instructions": [
                    {
                        "program": "system",
                        "parsed": {"type": "transfer", "info": {"source": "T", "destination": "W", "lamports": 123}},
                    },
                    {"program": "spl-memo", "parsed": "si64:refund:CTR-x"},
                    {"program": "compute-budget", "parsed": {"type": "setComputeUnitPrice"}},
                ]
            }
        },
    }
    out = w.tx_summary(refund, "S", "W", "finalized")
    assert out["memo"] == "si64:refund:CTR-x" and out["wallet_received_lamports"] == 123
    assert out["transfers"] == [{"from": "T", "to": "W", "lamports": 123}]
    assert (out["status"], out["slot"], out["fee_lamports"]) == ("finalized", 42, 5_000)
    assert w.tx_summary(refund, "S", "Other", None)["wallet_received_lamports"] == 0
    refund["meta"]["err"] = {"InstructionError": [0, "Custom"]}
    assert w.tx_summary(refund, "S", "W", "confirmed")["status"] == "failed"
