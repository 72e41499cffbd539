"""Fixtures for the infrastructure tests: the packaged stage template, built once."""

from __future__ import annotations

import importlib.util
import os
import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]


def load_package_module():
    spec = importlib.util.spec_from_file_location("si64_package", ROOT / "infra" / "package.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def package_module():
    return load_package_module()


@pytest.fixture(scope="session")
def packaged(tmp_path_factory, package_module):
    """(path, template) of `infra/package.py --stage prod` run into a fresh directory."""
    out = tmp_path_factory.mktemp("package")
    old = os.environ.get("AWS_DEFAULT_REGION")
    os.environ["AWS_DEFAULT_REGION"] = old or "us-east-1"
    try:
        sam = package_module.package("prod", out)
    finally:
        if old is None:
            os.environ.pop("AWS_DEFAULT_REGION", None)
    return sam, yaml.safe_load(sam.read_text())


@pytest.fixture(scope="session")
def template(packaged):
    return packaged[1]


@pytest.fixture(scope="session")
def resources(template):
    return template["Resources"]


SUB_VAR = re.compile(r"\$\{([^}!]+)\}")


def sub_names(text: str) -> set[str]:
    """Names referenced as ${Name} / ${Res.Attr} in a Fn::Sub string (not ${!literal})."""
    return set(SUB_VAR.findall(text))
