"""Finding the user's models: ``--app module[:attribute]`` or ``[tool.dynamodel]`` settings.

No typer or rich here: the loader is plain Python (tested without the CLI).

```toml
[tool.dynamodel]
app = "myservice.models"      # module declaring the Table and its models (or "module:table")
table = "app"                 # which table, when the module declares several
migrations = "migrations"     # migration folder, relative to pyproject.toml
```
"""

from __future__ import annotations

import importlib
import os
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from dynamodel.model import Model
from dynamodel.modelling.table import Table


class ProjectError(Exception):
    """The app cannot be found or loaded (the message says what to change)."""


@dataclass(frozen=True)
class Config:
    """Settings from ``[tool.dynamodel]`` (each None when unset) and the project root."""

    root: Path
    app: str | None = None
    table: str | None = None
    migrations: str | None = None
    source: Path | None = None


def read_config(start: Path | None = None) -> Config:
    """``[tool.dynamodel]`` of the nearest pyproject.toml (at or above ``start``, default: cwd)
    that has one; its folder is the project root. Without one, the root is ``start``."""
    start = (start or Path.cwd()).resolve()
    for folder in (start, *start.parents):
        path = folder / "pyproject.toml"
        if not path.is_file():
            continue
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except (OSError, tomllib.TOMLDecodeError) as error:
            raise ProjectError(f"{path}: cannot read it: {error}") from error
        if "dynamodel" not in data.get("tool", {}):
            continue  # another project's file (or one not using dynamodel's settings)
        settings = data["tool"]["dynamodel"]
        if not isinstance(settings, dict):
            raise ProjectError(f"{path}: [tool.dynamodel] must be a table")
        unknown = sorted(set(settings) - {"app", "table", "migrations"})
        if unknown:
            raise ProjectError(
                f"{path}: unknown [tool.dynamodel] settings {unknown}; "
                "known: app, table, migrations"
            )
        for key, value in settings.items():
            if not isinstance(value, str):
                raise ProjectError(f"{path}: [tool.dynamodel] {key} must be a string")
        return Config(
            root=folder,
            app=settings.get("app"),
            table=settings.get("table"),
            migrations=settings.get("migrations"),
            source=path,
        )
    return Config(root=start)


def import_app(module_name: str, root: Path) -> ModuleType:
    """Import the app module, with the project root and cwd importable."""
    for folder in (str(Path.cwd()), str(root)):
        if folder not in sys.path:
            sys.path.insert(0, folder)
    try:
        return importlib.import_module(module_name)
    except ModuleNotFoundError as error:
        missing = error.name or ""
        if module_name == missing or module_name.startswith(missing + "."):
            raise ProjectError(
                f"cannot import app module {module_name!r}: no module named {missing!r} "
                f"(looked in {root} and the Python path)"
            ) from error
        raise ProjectError(
            f"importing app module {module_name!r} failed: {type(error).__name__}: {error}"
        ) from error
    except Exception as error:
        raise ProjectError(
            f"importing app module {module_name!r} failed: {type(error).__name__}: {error}"
        ) from error


def tables_in(module: ModuleType) -> dict[str, Table]:
    """Tables a module declares: Table attributes and the tables of its Model classes.

    Keyed by the table's declared name.
    """
    found: dict[str, Table] = {}
    for value in vars(module).values():
        table: Any = None
        if isinstance(value, Table):
            table = value
        elif (
            isinstance(value, type) and issubclass(value, Model) and "__dynamodel__" in vars(value)
        ):
            table = value._spec().table
        if table is not None:
            found.setdefault(table.name, table)
    return found


def _pick(app: str, module: ModuleType, attribute: str, wanted: str | None) -> Table:
    if attribute:
        value = getattr(module, attribute, None)
        if isinstance(value, type) and issubclass(value, Model) and "__dynamodel__" in vars(value):
            value = value._spec().table
        if not isinstance(value, Table):
            raise ProjectError(
                f"{app!r}: {attribute!r} is not a dynamodel Table (or a Model class) "
                f"in module {module.__name__!r}"
            )
        return value
    tables = tables_in(module)
    if not tables:
        raise ProjectError(
            f"module {module.__name__!r} declares no dynamodel Table (no Table attribute and no "
            "Model class bound to one); point --app at the module with your models"
        )
    if wanted is not None:
        for table in tables.values():
            if wanted in (table.name, table.physical_name):
                return table
        raise ProjectError(
            f"module {module.__name__!r} has no table {wanted!r}; it declares {sorted(tables)}"
        )
    if len(tables) > 1:
        raise ProjectError(
            f"module {module.__name__!r} declares several tables {sorted(tables)}: "
            "choose one with --table NAME"
        )
    return next(iter(tables.values()))


@dataclass(frozen=True)
class Project:
    """The loaded app: its table (bound as asked) and where its migrations live."""

    app: str
    table: Table
    root: Path
    migrations: Path


def migrations_folder(option: Path | None, config: Config) -> Path:
    """``--migrations``, else ``[tool.dynamodel] migrations`` (relative to its pyproject.toml),
    else ``migrations`` in the project root."""
    if option is not None:
        return option
    return config.root / (config.migrations or "migrations")


def load_project(
    *,
    app: str | None,
    table: str | None = None,
    migrations: Path | None = None,
    endpoint_url: str | None = None,
    region: str | None = None,
    table_name: str | None = None,
    cwd: Path | None = None,
) -> Project:
    """Import the app and pick its table; options win over ``[tool.dynamodel]``."""
    config = read_config(cwd)
    app = app or os.environ.get("DYNAMODEL_APP") or config.app
    if not app:
        raise ProjectError(
            "no app given: pass --app MODULE (the module declaring your Table and models, "
            'e.g. --app myservice.models) or set app = "myservice.models" under '
            "[tool.dynamodel] in pyproject.toml"
        )
    module_name, _, attribute = app.partition(":")
    module = import_app(module_name, config.root)
    chosen = _pick(app, module, attribute, table or config.table)
    if table_name is not None or endpoint_url is not None or region is not None:
        try:
            chosen.bind(name=table_name, endpoint_url=endpoint_url, region=region)
        except ValueError as error:
            raise ProjectError(str(error)) from error
    return Project(app, chosen, config.root, migrations_folder(migrations, config))
