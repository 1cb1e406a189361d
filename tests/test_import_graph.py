"""The import-graph check (.ci/import_graph.py): dynamodel has no import cycle and every import
goes down the layers; the check itself finds function-level cycles and ignores TYPE_CHECKING."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import textwrap
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / ".ci" / "import_graph.py"


def _checker() -> ModuleType:
    spec = importlib.util.spec_from_file_location("import_graph", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _package(tmp_path: Path, files: dict[str, str]) -> Path:
    root = tmp_path / "dynamodel"
    for name, text in {"__init__.py": "", **files}.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
    return root


def test_dynamodel_has_no_cycle_and_imports_go_down_the_layers() -> None:
    done = subprocess.run(
        [sys.executable, str(SCRIPT)], capture_output=True, text=True, timeout=60, cwd=ROOT
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "no cycle" in done.stdout


def test_a_function_level_import_cycle_is_found(tmp_path: Path) -> None:
    root = _package(
        tmp_path,
        {
            "core/__init__.py": "",
            "core/a.py": "from dynamodel.core.b import x\n",
            "core/b.py": "x = 1\ndef late():\n    from . import a\n    return a\n",
        },
    )
    found = _checker().problems(root)
    assert found[0] == "import cycle among 2 modules:"
    assert "  dynamodel.core.a -> dynamodel.core.b" in found
    assert "  dynamodel.core.b -> dynamodel.core.a" in found


def test_type_checking_imports_do_not_count(tmp_path: Path) -> None:
    root = _package(
        tmp_path,
        {
            "core/__init__.py": "",
            "core/a.py": "from dynamodel.core.b import x\n",
            "core/b.py": (
                "from typing import TYPE_CHECKING\n"
                "if TYPE_CHECKING:\n    from dynamodel.core.a import A\n"
                "x = 1\n"
            ),
        },
    )
    assert _checker().problems(root) == []


def test_an_upward_import_is_a_layer_violation(tmp_path: Path) -> None:
    root = _package(
        tmp_path,
        {
            "core/__init__.py": "",
            "core/codec.py": "def f():\n    from ..ops.items import g\n    return g\n",
            "ops/__init__.py": "",
            "ops/items.py": "def g():\n    return 1\n",
        },
    )
    assert _checker().problems(root) == [
        "layer violation: dynamodel.core.codec (core) imports dynamodel.ops.items (operations)"
    ]


def test_importing_a_name_from_a_package_init_is_an_edge_to_it(tmp_path: Path) -> None:
    root = _package(
        tmp_path,
        {
            "__init__.py": "from .io.clients import C\n__version__ = '1'\n",
            "io/__init__.py": "",
            "io/clients.py": "from .. import __version__\nclass C: ...\n",
        },
    )
    found = _checker().problems(root)
    assert "  dynamodel.io.clients -> dynamodel" in found
    assert "layer violation: dynamodel.io.clients (io) imports dynamodel (facade)" in found
