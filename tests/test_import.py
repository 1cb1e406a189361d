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
