"""The repository stands on its own: no tracked file points outside it (the sibling `shared/` folder), and the
API reference it cites is its own, docs/api.md — not a contract or design page that a clone
does not have. Reads the tracked files (git ls-files; every file under the root without git)."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
THIS = Path(__file__).resolve().relative_to(ROOT).as_posix()
SKIP_DIRS = {".git", ".venv", ".local", "build", "node_modules", "__pycache__", ".pytest_cache", ".ruff_cache"}
OUTSIDE = re.compile(r"\.\./shared|/work/shared")
FOREIGN_DOCS = re.compile(r"(?<![\w/.])(API|DESIGN)\.md")  # docs/api.md is the project's own


def tracked_files() -> list[str]:
    try:
        out = subprocess.run(
            ["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True, timeout=30
        ).stdout.decode()
        return [f for f in out.split("\0") if f]
    except (OSError, subprocess.CalledProcessError, subprocess.TimeoutExpired):
        return [
            p.relative_to(ROOT).as_posix()
            for p in ROOT.rglob("*")
            if p.is_file() and not SKIP_DIRS & set(p.relative_to(ROOT).parts)
        ]


def offenders(pattern: re.Pattern) -> list[str]:
    found = []
    for name in tracked_files():
        path = ROOT / name
        if name == THIS or path.is_symlink() or not path.is_file():
            continue
        try:
            text = path.read_text(encoding="utf-8")
        except (UnicodeDecodeError, OSError):
            continue  # binary
        found += [f"{name}:{n}: {line.strip()}" for n, line in enumerate(text.splitlines(), 1) if pattern.search(line)]
    return found


def test_no_tracked_file_refers_outside_the_repository():
    assert offenders(OUTSIDE) == [], "files that point at the sibling shared/ folder (cite docs/api.md or an ADR)"


def test_no_tracked_file_cites_api_md_or_design_md_instead_of_the_projects_own_docs():
    assert offenders(FOREIGN_DOCS) == [], "cite docs/api.md (the API reference) or docs/adr/ (decisions)"


def test_the_patterns_catch_what_they_must():
    assert OUTSIDE.search("see .." + "/shared/API.md") and OUTSIDE.search("/work/shared/DESIGN.md")
    assert FOREIGN_DOCS.search('(API.md "Errors")') and FOREIGN_DOCS.search("the notes of DESIGN.md")
    assert not FOREIGN_DOCS.search("docs/api.md") and not FOREIGN_DOCS.search("see docs/API.md")
