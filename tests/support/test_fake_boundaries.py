"""The fakes implement the ports from the domain's own definitions: nothing in tests/support
may import an adapter (`chalicelib.adapters`), or a bug in an adapter's helper would show in
both halves of the contract suite and never be caught. Checked twice: in the source, and by
what importing every support module actually loads."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SUPPORT = ROOT / "tests" / "support"


def _imported_modules(path: Path) -> list[str]:
    names: list[str] = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            names += [node.module] + [f"{node.module}.{a.name}" for a in node.names]
    return names


def test_no_support_module_names_an_adapter() -> None:
    found = {
        f"{path.relative_to(ROOT)}: {name}"
        for path in sorted(SUPPORT.glob("*.py"))
        for name in _imported_modules(path)
        if name == "chalicelib.adapters" or name.startswith("chalicelib.adapters.")
    }
    assert not found, sorted(found)


def test_the_check_sees_an_adapter_import(tmp_path: Path) -> None:
    """The source check above is not vacuous: it finds each import form."""
    for line in (
        "from chalicelib.adapters.claims import rate_key",
        "import chalicelib.adapters.metrics",
        "from chalicelib.adapters import models",
    ):
        f = tmp_path / "m.py"
        f.write_text(line + "\n")
        assert any(n.startswith("chalicelib.adapters") for n in _imported_modules(f)), line


def test_importing_the_fakes_loads_no_adapter() -> None:
    modules = sorted(p.stem for p in SUPPORT.glob("*.py") if p.stem != "__init__")
    assert {"fakes", "fake_store", "fake_chain", "fake_history"} <= set(modules)
    code = (
        "import importlib, sys\n"
        f"for m in {modules!r}: importlib.import_module('tests.support.' + m)\n"
        "print(sorted(m for m in sys.modules if m.startswith('chalicelib.adapters')))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout
