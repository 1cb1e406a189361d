"""Migration files: ``<version>_<name>.py`` modules with ``up(ctx)`` and ``down(ctx)``.

Versions are the leading digits (``0001_add_order_status_index.py`` is version ``0001``);
they order the migrations. A file is loaded only when its migration runs, so a bad file fails
with its own name, and only when it matters.
"""

from __future__ import annotations

import hashlib
import importlib.util
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from dynamodel.migrations.errors import MigrationError

FILE_NAME = re.compile(r"^(?P<version>\d+)_(?P<name>[A-Za-z0-9_]+)\.py$")

TEMPLATE = '''"""{title}"""

from __future__ import annotations

from dynamodel.migrations import MigrationContext


def up(ctx: MigrationContext) -> None:
    """Apply the change. Keep it idempotent: a crashed run is resumed or run again."""
    # Example: give existing items an index key their model now renders.
    #   from myapp.models import Order
    #   ctx.backfill(Order, lambda order: order)   # a put renders every index key
    raise NotImplementedError("write this migration")


def down(ctx: MigrationContext) -> None:
    """Revert `up` (delete this function if the migration cannot be reverted)."""
    raise NotImplementedError("write this migration")
'''


@dataclass(frozen=True)
class Migration:
    """One migration file.

    Attributes:
        version: the version text (``"0001"``); ``number`` is its integer value.
        name: the rest of the file name.
        path: the file.
        checksum: SHA-256 of its content.
    """

    version: str
    name: str
    path: Path
    checksum: str

    @property
    def number(self) -> int:
        """The version as an int (migrations run in this order)."""
        return int(self.version)

    @property
    def title(self) -> str:
        """``0001_add_order_index``."""
        return f"{self.version}_{self.name}"

    @property
    def module_name(self) -> str:
        """The name `load` imports the file under."""
        return f"_dynamodel_migration_{self.version}_{self.name}"

    def load(self) -> ModuleType:
        """Import the file as a module (raises `MigrationError` naming the file on failure)."""
        module_name = self.module_name
        spec = importlib.util.spec_from_file_location(module_name, self.path)
        if spec is None or spec.loader is None:
            raise MigrationError(f"{self.path}: cannot be loaded as a Python module")
        module = importlib.util.module_from_spec(spec)
        sys.modules[module_name] = module
        try:
            spec.loader.exec_module(module)
        except Exception as error:
            sys.modules.pop(module_name, None)
            raise MigrationError(
                f"{self.path}: importing the migration failed: {type(error).__name__}: {error}"
            ) from error
        if not callable(getattr(module, "up", None)):
            raise MigrationError(f"{self.path}: the migration has no up(ctx) function")
        return module

    def function(self, direction: str) -> Callable[[Any], Any]:
        """The migration's ``up`` or ``down`` function."""
        module = self.load()
        function = getattr(module, direction, None)
        if not callable(function):
            raise MigrationError(
                f"{self.path}: the migration has no {direction}(ctx) function, so it cannot "
                f"be {'applied' if direction == 'up' else 'reverted'}"
            )
        return function  # type: ignore[no-any-return]

    def description(self) -> str:
        """The first line of the module docstring (without importing the module)."""
        import ast

        try:
            doc = ast.get_docstring(ast.parse(self.path.read_text(encoding="utf-8")))
        except SyntaxError:
            return ""
        return doc.strip().splitlines()[0] if doc else ""


def _checksum(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def discover(folder: Path) -> list[Migration]:
    """The migrations in ``folder``, ordered by version.

    Raises `MigrationError` for a missing folder, a ``.py`` file without a version prefix, or
    two files with the same version.
    """
    if not folder.is_dir():
        raise MigrationError(
            f"migrations folder {str(folder)!r} does not exist; create it with "
            "`dynamodel migrate new NAME` or point --migrations at it"
        )
    found: dict[int, Migration] = {}
    for path in sorted(folder.glob("*.py")):
        if path.name.startswith("_"):
            continue  # __init__.py and helpers
        match = FILE_NAME.match(path.name)
        if match is None:
            raise MigrationError(
                f"{path}: migration files are named <version>_<name>.py, e.g. 0001_add_index.py"
            )
        migration = Migration(match["version"], match["name"], path, _checksum(path))
        clash = found.get(migration.number)
        if clash is not None:
            raise MigrationError(
                f"{clash.path.name} and {path.name} have the same version {migration.number}"
            )
        found[migration.number] = migration
    return [found[n] for n in sorted(found)]


def slug(text: str) -> str:
    """A file-name-safe name: lower case words joined by ``_``."""
    words = re.findall(r"[A-Za-z0-9]+", text)
    if not words:
        raise MigrationError(f"migration name {text!r} needs at least one letter or digit")
    return "_".join(w.lower() for w in words)


def create(folder: Path, name: str) -> Path:
    """Write the next migration file (version one above the highest) from the template."""
    folder.mkdir(parents=True, exist_ok=True)
    existing = discover(folder)
    number = existing[-1].number + 1 if existing else 1
    width = max(4, len(existing[-1].version) if existing else 4)
    path = folder / f"{number:0{width}d}_{slug(name)}.py"
    path.write_text(TEMPLATE.format(title=name.strip().replace('"', "'")), encoding="utf-8")
    return path
