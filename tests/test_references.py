"""Every dotted ``dynamodel.…`` name the docs and docstrings mention exists: a module moved or
renamed without its references updated fails here, not in a reader's hands."""

from __future__ import annotations

import importlib
import re
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
REFERENCE = re.compile(r"\bdynamodel(?:\.[A-Za-z_][A-Za-z0-9_]*)+")


def _resolves(reference: str) -> bool:
    parts = reference.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            found: Any = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        for name in parts[cut:]:
            if not hasattr(found, name):
                # an instance attribute set in __init__ counts
                return isinstance(found, type) and name in found.__init__.__code__.co_names
            found = getattr(found, name)
        return True
    return False


def test_every_dotted_dynamodel_name_in_docs_and_docstrings_exists() -> None:
    files = [
        *sorted((ROOT / "dynamodel").rglob("*.py")),
        *sorted((ROOT / "docs").rglob("*.md")),
        ROOT / "README.md",
    ]
    missing = sorted(
        f"{reference} (in {path.relative_to(ROOT)})"
        for path in files
        for reference in {m.group(0) for m in REFERENCE.finditer(path.read_text())}
        if not _resolves(reference)
    )
    assert missing == []


def test_a_stale_reference_is_caught() -> None:
    assert _resolves("dynamodel.ops.shard_guard.forget_shard_checks")
    assert not _resolves("dynamodel.sharding.forget_shard_checks")
    assert not _resolves("dynamodel.ops.items.no_such_function")
