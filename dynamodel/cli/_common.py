"""What the command modules share: consoles, common options, exit codes, error handling."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
import typer.core
from rich.console import Console
from rich.markup import escape

from dynamodel.cli._project import Project, ProjectError, load_project
from dynamodel.core.errors import DynamodelError, TableNotFound


def _hide_flag_types(params: list[Any]) -> list[Any]:
    """Give each flag option (``--json``, ``--yes``, ``--help``...) an empty metavar.

    typer's rich help panel prints every option's type, flags included (``--exist-ok <bool>``,
    ``--help <bool>``), which reads as if the flag took a value; an empty metavar prints none.
    """
    for param in params:
        # duck-typed: recent typer versions carry their own copy of click's classes
        if getattr(param, "is_flag", False) and getattr(param, "metavar", "") is None:
            param.metavar = ""
    return params


class Group(typer.core.TyperGroup):
    """The command group of every ``dynamodel`` (sub)command: flags show no ``<bool>`` type.

    Its own options and those of each command it returns (the help option included) are
    passed through `_hide_flag_types` before help is rendered.
    """

    def get_params(self, ctx: Any) -> list[Any]:
        """The group's parameters, flags without a type label."""
        return _hide_flag_types(super().get_params(ctx))

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        """The named command, its flags (and help option) without a type label."""
        command = super().get_command(ctx, cmd_name)
        if command is not None:
            _hide_flag_types(command.params)
            help_option = command.get_help_option(ctx)
            if help_option is not None:
                _hide_flag_types([help_option])
        return command


console = Console(soft_wrap=True)  # long lines stay whole (grep-able, copy-able)
err_console = Console(stderr=True, soft_wrap=True)

#: exit codes (documented in docs/cli.md)
OK = 0
FAILED = 1  # an operation failed, or (diff --exit-code, sync) the table still differs
BAD_INPUT = 2  # unknown module, missing table, bad migration file or version...
LOCKED = 3  # another run holds the migration lock
WAITING = 4  # a distributed backfill waits for workers (run `migrate worker`, then `up` again)
INTERRUPTED = 130

AppOption = Annotated[
    str | None,
    typer.Option(
        "--app",
        "-a",
        help="Module declaring your Table and models: 'module' or 'module:attribute'. "
        "Default: $DYNAMODEL_APP, then 'app' under [tool.dynamodel] in pyproject.toml.",
        show_default=False,
    ),
]
TableOption = Annotated[
    str | None,
    typer.Option(
        "--table",
        help="Which table, by its declared name, when the app declares several.",
        show_default=False,
    ),
]
TableNameOption = Annotated[
    str | None,
    typer.Option(
        "--table-name",
        help="Physical table name to use instead of the declared one (per environment).",
        show_default=False,
    ),
]
EndpointOption = Annotated[
    str | None,
    typer.Option(
        "--endpoint-url",
        help="DynamoDB endpoint URL. Default: boto3's resolution "
        "($AWS_ENDPOINT_URL_DYNAMODB, profiles...).",
        show_default=False,
    ),
]
RegionOption = Annotated[
    str | None,
    typer.Option(
        "--region",
        help="AWS region. Default: boto3's resolution ($AWS_DEFAULT_REGION, profiles...).",
        show_default=False,
    ),
]
MigrationsOption = Annotated[
    Path | None,
    typer.Option(
        "--migrations",
        "-m",
        help="Migrations folder. Default: the 'migrations' setting under [tool.dynamodel] in "
        "pyproject.toml (relative to that file), else 'migrations' in the project root (the "
        "folder of that pyproject.toml, or the current folder).",
        show_default=False,
    ),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]


def fail(message: str, code: int = FAILED) -> NoReturn:
    """Print an error and exit with ``code``."""
    err_console.print(f"[red]error:[/red] {escape(message)}", highlight=False)
    raise typer.Exit(code)


def print_json(data: Any) -> None:
    """JSON on stdout, plain (so it can be redirected to a file)."""
    typer.echo(json.dumps(data, indent=2, default=str))


@contextmanager
def errors(project: Project | None = None) -> Iterator[None]:
    """Turn dynamodel and boto errors into one clear line and an exit code."""
    try:
        yield
    except typer.Exit:
        raise
    except ProjectError as error:
        fail(str(error), BAD_INPUT)
    except TableNotFound as error:
        if project is None or error.table is not None:  # it names the table, where, the fix
            fail(str(error), BAD_INPUT)
        fail(
            f"table {project.table.physical_name!r} does not exist at "
            f"{_endpoint(project)}; create it with `dynamodel table create` ({error})",
            BAD_INPUT,
        )
    except DynamodelError as error:
        fail(str(error))
    except KeyboardInterrupt:
        err_console.print("Interrupted.")
        raise typer.Exit(INTERRUPTED) from None
    except Exception as error:
        from botocore.exceptions import BotoCoreError

        if isinstance(error, BotoCoreError):
            fail(f"{type(error).__name__}: {error}")
        raise


def _endpoint(project: Project) -> str:
    connection = project.table.connection
    if connection.endpoint_url:
        return connection.endpoint_url
    try:
        return str(connection.client().meta.endpoint_url)
    except Exception:
        return "the configured endpoint"


def open_project(
    app: str | None,
    table: str | None,
    table_name: str | None = None,
    endpoint_url: str | None = None,
    region: str | None = None,
    migrations: Path | None = None,
) -> Project:
    """Load the app (exit 2 with the reason when it cannot be loaded)."""
    with errors():
        return load_project(
            app=app,
            table=table,
            table_name=table_name,
            endpoint_url=endpoint_url,
            region=region,
            migrations=migrations,
        )
