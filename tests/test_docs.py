"""Every docs page's Python blocks not marked ``<!-- illustrative -->`` run, in order, as one
script per page against a fresh local backend: the docs show what the code really does."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from dynamodel.local import LocalDynamoDB

DOCS = Path(__file__).resolve().parent.parent / "docs"
PAGES = sorted(DOCS.glob("*.md"))
_BLOCK = re.compile(r"(^<!-- illustrative -->\n)?^```(\w*)[^\n]*\n(.*?)^```", re.S | re.M)


def executable_blocks(text: str) -> list[str]:
    """The page's Python blocks that are not marked illustrative."""
    return [m.group(3) for m in _BLOCK.finditer(text) if not m.group(1) and m.group(2) == "python"]


RUNNABLE = [p for p in PAGES if executable_blocks(p.read_text())]


def test_most_pages_have_executable_examples() -> None:
    assert len(RUNNABLE) >= len(PAGES) - 1  # the API reference page has none


@pytest.mark.parametrize("page", RUNNABLE, ids=[p.name for p in RUNNABLE])
def test_docs_page_code_runs(page: Path, tmp_path: Path) -> None:
    blocks = executable_blocks(page.read_text())
    script = tmp_path / f"docs_{page.stem.replace('-', '_')}.py"  # never shadows a package
    script.write_text("\n".join(blocks))
    with LocalDynamoDB() as server:
        env = {**os.environ, **server.env()}
        done = subprocess.run(
            [sys.executable, str(script)], env=env, capture_output=True, text=True, timeout=300
        )
    assert done.returncode == 0, f"{page.name}:\n{done.stdout[-2000:]}\n{done.stderr[-4000:]}"


def test_every_code_block_is_python_or_marked_illustrative() -> None:
    for page in PAGES:
        for match in _BLOCK.finditer(page.read_text()):
            marked, language = match.group(1), match.group(2)
            assert marked or language == "python", (
                f"{page.name}: a ```{language} block is neither executed nor marked illustrative"
            )
