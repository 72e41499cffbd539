"""si64_protocol is the one source of the wire constants for chalicelib and the si64 client,
and the client package imports neither chalicelib nor dev (it installs on its own)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import si64_protocol as p
from chalicelib.api import errors
from chalicelib.domain import contracts, money, signing

ROOT = Path(__file__).resolve().parents[2]
SRC = ROOT / "packages" / "si64" / "src"


def test_chalicelib_uses_the_protocol_objects_themselves():
    assert signing.renter_message is p.renter_message and signing.rent_memo is p.rent_memo
    assert signing.extend_memo is p.extend_memo and signing.refund_memo is p.refund_memo
    assert money.price_lamports is p.price_lamports and money.duration_seconds is p.duration_seconds
    assert tuple(money.TIERS) == p.TIER_NAMES
    assert (contracts.ACTIVE, contracts.SETTLED, contracts.EXPIRED) == (p.ACTIVE, p.SETTLED, p.EXPIRED)


def test_every_error_code_the_edge_answers_is_a_protocol_code_and_back():
    served = {code for _, code in errors.STATUS.values()} | {errors.INTERNAL[1]}
    assert served == set(p.ERROR_CODES)
    assert len(p.ERROR_CODES) == len(set(p.ERROR_CODES))


def test_the_signing_strings():
    assert p.renter_message("post", "/api/rent", "17") == b"si64:POST /api/rent:17"
    assert p.renter_message("POST", "/api/rent", "17", b"{}") == (
        b"si64:POST /api/rent:17:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"
    )
    assert p.rent_memo("M2", 1800) == "si64:rent:M2:1800"
    assert p.extend_memo("CTR-x", 900) == "si64:extend:CTR-x:900"
    assert p.refund_memo("PAY-s") == "si64:refund:PAY-s"


def test_duration_limits_as_the_wallet_checks_them():
    assert p.duration_problem(60, min_seconds=60, max_hours=720) is None
    assert p.duration_problem(59, min_seconds=60, max_hours=720) == "must be at least 60 seconds."
    assert p.duration_problem(720 * 3600 + 1, min_seconds=60, max_hours=720).startswith("must be more than 0")
    assert p.duration_problem(None, min_seconds=60, max_hours=720).startswith("must be more than 0")


def _imported_roots(path: Path) -> set[str]:
    roots = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            roots |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            roots.add(node.module.split(".")[0])
    return roots


def test_the_client_package_imports_neither_chalicelib_nor_dev():
    files = sorted(SRC.rglob("*.py"))
    assert len(files) >= 12
    for f in files:
        bad = _imported_roots(f) & {"chalicelib", "dev", "local", "tests", "app", "infra"}
        assert not bad, f"{f.relative_to(ROOT)} imports {sorted(bad)}"


def test_the_protocol_imports_only_the_standard_library():
    roots = _imported_roots(SRC / "si64_protocol" / "__init__.py")
    assert roots <= set(sys.stdlib_module_names) | {"__future__"}, roots
    out = subprocess.run(
        [sys.executable, "-c", "import sys, si64_protocol; print(sorted(m for m in sys.modules if '.' not in m))"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert not {"chalicelib", "solders", "solana", "rich", "psutil", "boto3"} & set(ast.literal_eval(out.stdout))


def test_vendor_links_the_one_source():
    link = ROOT / "vendor" / "si64_protocol"
    assert link.is_symlink() and link.resolve() == (SRC / "si64_protocol").resolve()
