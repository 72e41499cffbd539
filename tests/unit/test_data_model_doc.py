"""docs/data-model.md names every attribute of every table, under the name the code writes
(chalicelib/adapters/models.py), and every ledger account the domain books. File reads and
class introspection only: no sockets."""

from __future__ import annotations

import re
from pathlib import Path

from chalicelib.adapters.models import MODELS
from chalicelib.domain import ledger

DOC = Path(__file__).resolve().parents[2] / "docs" / "data-model.md"


def words() -> set[str]:
    return set(re.findall(r"[A-Za-z_][A-Za-z0-9_]*", DOC.read_text()))


def test_every_attribute_of_every_table_is_in_the_data_model():
    known = words()
    missing = sorted(
        f"{table}.{name}" for table, model in MODELS.items() for name in model.get_attributes() if name not in known
    )
    assert not missing, f"docs/data-model.md does not name {missing}"


def test_every_ledger_account_is_in_the_data_model():
    names = vars(ledger).items()
    accounts = {v for k, v in names if k.isupper() and isinstance(v, str) and re.fullmatch(r"[a-z_]+", v)}
    assert {"treasury", "revenue", "refunds_payable", "retained_dust", "network_fees"} <= accounts
    assert not accounts - words(), f"docs/data-model.md lacks the accounts {sorted(accounts - words())}"
