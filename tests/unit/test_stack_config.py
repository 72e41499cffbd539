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


def test_a_stack_started_by_hand_runs_dynamodb_local_with_tiered_c2_and_a_tests_stack_with_c1():
    from dev.dynamodb_local import JIT_OPTIONS

    assert config_from_env({})["ddb_jit"] == "c2"  # `make run`: a stack that runs for a while
    assert config_from_env({"SI64_DYNAMODB_JIT": " C1 "})["ddb_jit"] == "c1"
    assert JIT_OPTIONS["c1"] == ["-XX:TieredStopAtLevel=1"] and JIT_OPTIONS["c2"] == []
    with pytest.raises(StackError, match="SI64_DYNAMODB_JIT"):
        config_from_env({"SI64_DYNAMODB_JIT": "c3"})


def test_launch_gives_its_stacks_c1_unless_told_otherwise(monkeypatch, tmp_path):
    from dev import launch

    seen = []

    def no_spawn(argv, env, out):
        seen.append(env)
        raise RuntimeError("not started")

    monkeypatch.setattr(launch, "spawn", no_spawn)
    monkeypatch.delenv("SI64_DYNAMODB_JIT", raising=False)
    for overrides in ({}, {"SI64_DYNAMODB_JIT": "c2"}):
        with pytest.raises(RuntimeError, match="not started"), launch.launch(tmp_path, **overrides):
            pass
    assert [env["SI64_DYNAMODB_JIT"] for env in seen] == ["c1", "c2"]
