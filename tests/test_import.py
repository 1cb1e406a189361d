"""``import dynamodel`` stays light: no SDK, server, DAX or CLI packages are imported."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
HEAVY = ("aioboto3", "aiobotocore", "boto3", "botocore", "moto", "amazondax", "typer", "rich")


def _imported_modules(code: str) -> set[str]:
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", code],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    modules = set()
    for line in done.stderr.splitlines():
        if line.startswith("import time:") and line.count("|") == 2:
            name = line.rsplit("|", 1)[1].strip()
            if name != "imported package":
                modules.add(name)
    assert modules, done.stderr  # -X importtime really reported something
    return modules


def _heavy(modules: set[str]) -> list[str]:
    return sorted(m for m in modules if m.split(".")[0] in HEAVY)


def test_import_dynamodel_is_light() -> None:
    modules = _imported_modules("import dynamodel")
    assert "dynamodel" in modules
    assert "pydantic" in modules
    assert _heavy(modules) == []


def test_import_local_module_does_not_import_moto() -> None:
    modules = _imported_modules("import dynamodel.local; dynamodel.LocalDynamoDB")
    assert "dynamodel.local" in modules
    assert _heavy(modules) == []


@pytest.mark.parametrize("names", ["Model, Table, GSI, LSI, Attr, Collection, RetryPolicy"])
def test_public_names_without_heavy_imports(names: str) -> None:
    modules = _imported_modules(f"from dynamodel import {names}")
    assert _heavy(modules) == []


def test_lazy_local_attribute() -> None:
    import dynamodel

    assert dynamodel.LocalDynamoDB.__name__ == "LocalDynamoDB"
    with pytest.raises(AttributeError):
        _ = dynamodel.does_not_exist  # type: ignore[attr-defined]


def _type_checking_imports() -> dict[str, str]:
    """Name -> module of every import under ``if TYPE_CHECKING:`` in dynamodel/__init__.py."""
    import ast

    tree = ast.parse((ROOT / "dynamodel" / "__init__.py").read_text())
    found: dict[str, str] = {}
    for node in tree.body:
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for statement in node.body:
                assert isinstance(statement, ast.ImportFrom), ast.unparse(statement)
                for alias in statement.names:
                    assert alias.asname == alias.name, f"re-export {alias.name} as itself"
                    found[alias.name] = str(statement.module)
    return found


def test_lazy_names_and_type_checking_imports_agree() -> None:
    """The lazy-name table is the one list; the TYPE_CHECKING block must name the same modules."""
    import dynamodel

    assert _type_checking_imports() == dynamodel._LAZY


def test_every_public_name_resolves_and_dir_lists_it() -> None:
    import dynamodel

    assert len(dynamodel.__all__) == len(set(dynamodel.__all__))
    for name in dynamodel.__all__:
        assert getattr(dynamodel, name) is not None, name
    assert set(dynamodel.__all__) <= set(dir(dynamodel))
    assert not {"core", "io", "ops", "modelling", "model", "annotations"} & set(dynamodel.__all__)


def test_an_unknown_public_name_is_an_attribute_error() -> None:
    import dynamodel

    with pytest.raises(AttributeError, match="no attribute 'Modle'"):
        dynamodel.Modle  # noqa: B018
