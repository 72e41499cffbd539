"""The devnet stage (.chalice/config.json "devnet" + .chalice/policy-devnet-*.json): the prod
stage with its own names, Solana devnet's RPC and finalized refunds. Packaged with
`make package STAGE=devnet`; `make devnet-smoke` drives it (tests/e2e/test_devnet_smoke.py)."""

from __future__ import annotations

import json

from tests.infra.conftest import ROOT

CHALICE = ROOT / ".chalice"


def _rename(text: str) -> str:
    return (
        text.replace("si64-prod", "si64-devnet")
        .replace("si64/prod/", "si64/devnet/")
        .replace("policy-prod-", "policy-devnet-")
    )


def test_devnet_is_the_prod_stage_with_its_own_names_and_the_devnet_cluster():
    stages = json.loads((CHALICE / "config.json").read_text())["stages"]
    devnet, prod = stages["devnet"], json.loads(_rename(json.dumps(stages["prod"])))
    env = devnet["environment_variables"]
    assert env == dict(
        prod["environment_variables"],
        SI64_STAGE="devnet",
        SI64_NETWORK="devnet",
        SOLANA_RPC_URL="https://api.devnet.solana.com",
        SI64_REFUND_COMMITMENT="finalized",
    )
    assert env["SI64_TABLE_PREFIX"] == "si64-devnet"
    assert {k: v for k, v in devnet.items() if k != "environment_variables"} == {
        k: v for k, v in prod.items() if k != "environment_variables"
    }
    # the treasury key is read from SSM by the refund worker only; never a value in the config
    worker = devnet["lambda_functions"]["refund_worker"]["environment_variables"]
    assert worker == {"SI64_TREASURY_KEY_PARAMETER": "/si64/devnet/treasury-key"}
    assert "SI64_TREASURY_KEY_PARAMETER" not in env


def test_devnet_policies_are_the_prod_policies_on_devnet_names():
    for part in ("api", "refunds", "sweep"):
        prod = (CHALICE / f"policy-prod-{part}.json").read_text()
        devnet = (CHALICE / f"policy-devnet-{part}.json").read_text()
        assert json.loads(devnet) == json.loads(_rename(prod)), part
        assert "prod" not in devnet
