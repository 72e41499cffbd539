"""`make run`'s choice of DynamoDB engine and its ports, from the environment alone."""

from __future__ import annotations

import pytest

from dev.procs import StackError
from dev.stack import config_from_env


def test_dynamodb_local_is_the_default_with_its_own_port():
    cfg = config_from_env({})
    assert cfg["dynamodb"] == "local" and cfg["ddb_port"] == 4569 and cfg["api_processes"] == 1


def test_moto_is_chosen_only_explicitly_and_anything_else_is_refused():
    assert config_from_env({"SI64_DYNAMODB": "moto"})["dynamodb"] == "moto"
    assert config_from_env({"SI64_DYNAMODB": " MOTO "})["dynamodb"] == "moto"
    with pytest.raises(StackError, match="SI64_DYNAMODB"):
        config_from_env({"SI64_DYNAMODB": "dynamo"})


def test_ports_and_processes_move_with_their_variables():
    cfg = config_from_env({"SI64_DYNAMODB_PORT": "5000", "SI64_API_PROCESSES": "3"})
    assert cfg["ddb_port"] == 5000 and cfg["api_processes"] == 3
    with pytest.raises(StackError, match="SI64_DYNAMODB_PORT"):
        config_from_env({"SI64_DYNAMODB_PORT": "x"})
