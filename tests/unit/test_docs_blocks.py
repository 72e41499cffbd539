"""Every fenced shell block of docs/ is accounted for: run against the local stack by a test, or
marked as not runnable there with its reason — and this test lists those.

Markers (an HTML comment on the line before the fence):
- `<!-- docs:run -->`: run in order, from the repository's root, against a fresh local stack by
  tests/e2e/test_docs_blocks.py (`bash -euo pipefail`, `SI64_STATE_DIR` set to the stack's);
- `<!-- docs:not-run reason="…" -->`: shown only, for the reason given;
- docs/runbook.md has its own markers (`runbook:env|run|aws-only|stage`), run and checked by
  tests/e2e/test_runbook.py.
Pages in NOT_RUN_PAGES are shown only, as a whole, for the reason given there.

A shell block is a fence whose info string is sh, bash, shell, zsh or console. Pure file
reads: no sockets."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
SHELL = {"sh", "bash", "shell", "zsh", "console"}
FENCE = re.compile(r"^```([^\n`]*)\n(.*?)^```[ \t]*$", re.M | re.S)
MARKER = re.compile(r'<!-- (docs|runbook):([a-z-]+)(?: reason="([^"]+)")? -->\s*$')
RUN_KINDS = {("docs", "run"), ("runbook", "run"), ("runbook", "env")}
SHOWN_KINDS = {("docs", "not-run"), ("runbook", "aws-only"), ("runbook", "stage")}
# pages whose shell blocks no test here runs, as a whole (their owner may mark them block by block)
NOT_RUN_PAGES = {
    "deploy.md": "deploying a stage (the deploy page, kept with infra/): its `make package` step is exercised by "
    "tests/infra, the other blocks need an AWS account (none here)",
}


@dataclass(frozen=True)
class Block:
    page: str  # relative to docs/
    line: int
    info: str
    code: str
    marker: tuple[str, str] | None
    reason: str | None


def shell_blocks() -> list[Block]:
    out = []
    for path in sorted(DOCS.rglob("*.md")):
        text = path.read_text()
        for m in FENCE.finditer(text):
            info = m.group(1).strip()
            if not info or info.split()[0] not in SHELL:
                continue
            before = text[: m.start()].rstrip("\n").rsplit("\n", 1)[-1]
            mk = MARKER.match(before.strip())
            out.append(
                Block(
                    page=path.relative_to(DOCS).as_posix(),
                    line=text.count("\n", 0, m.start()) + 1,
                    info=info,
                    code=m.group(2),
                    marker=(mk.group(1), mk.group(2)) if mk else None,
                    reason=mk.group(3) if mk else None,
                )
            )
    return out


def runnable_blocks() -> list[Block]:
    """The `docs:run` blocks (docs/runbook.md's run by its own test)."""
    return [b for b in shell_blocks() if b.marker == ("docs", "run")]


def not_run_blocks() -> list[tuple[str, int, str]]:
    """(page, line, reason) of every shell block no test runs."""
    out = []
    for b in shell_blocks():
        if b.page in NOT_RUN_PAGES and b.marker is None:
            out.append((b.page, b.line, NOT_RUN_PAGES[b.page]))
        elif b.marker in SHOWN_KINDS:
            out.append((b.page, b.line, b.reason or ""))
    return out


def test_every_shell_block_in_docs_is_run_or_marked_with_a_reason():
    unmarked = [
        f"docs/{b.page}:{b.line}"
        for b in shell_blocks()
        if b.page not in NOT_RUN_PAGES and b.marker not in RUN_KINDS | SHOWN_KINDS
    ]
    assert not unmarked, (
        "shell blocks in docs/ that no test runs and no marker explains — put <!-- docs:run --> "
        f'(tests/e2e/test_docs_blocks.py runs it) or <!-- docs:not-run reason="…" --> before each: {unmarked}'
    )
    assert all(b.page == "runbook.md" for b in shell_blocks() if b.marker and b.marker[0] == "runbook")


def test_blocks_that_no_test_runs_are_listed_with_their_reasons(capsys):
    listed = not_run_blocks()
    with capsys.disabled():
        print("\nshell blocks in docs/ that no test runs:")
        for page, line, reason in listed:
            print(f"  docs/{page}:{line}  {reason}")
    assert all(reason.strip() for _, _, reason in listed)
    # the runbook's AWS-only blocks and its deployed set-up are among them
    assert sum(1 for page, _, _ in listed if page == "runbook.md") >= 5


def test_the_docs_have_runnable_blocks_beyond_the_runbook():
    pages = {b.page for b in runnable_blocks()}
    assert {"api.md", "refunds.md"} <= pages
