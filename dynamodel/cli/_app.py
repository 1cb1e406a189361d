"""typer application behind ``dynamodel`` (imported lazily by `dynamodel.cli.main`)."""

from __future__ import annotations

import shlex
import signal
import time
from importlib import metadata
from types import FrameType
from typing import Annotated, NoReturn

import typer
from rich.console import Console
from rich.markup import escape

from dynamodel.cli import _backup, _export, _migrate, _schema, _table
from dynamodel.cli._common import Group

app = typer.Typer(
    cls=Group,
    name="dynamodel",
    help="Single-table DynamoDB modelling: manage the table your models declare, show and "
    "export the schema, run resumable data migrations, and a local server with a demo.",
    no_args_is_help=True,
    rich_markup_mode="markdown",
    add_completion=False,
    pretty_exceptions_show_locals=False,
)
app.add_typer(_table.app, name="table")
_backup.register(_table.app)  # table backup | backups | restore | pitr | delete-backup
app.add_typer(_schema.app, name="schema")
app.add_typer(_migrate.app, name="migrate")
_export.register(app)  # export, import

console = Console()
err_console = Console(stderr=True)


def _missing_local_extra(exc: ModuleNotFoundError) -> NoReturn:
    err_console.print(
        f"[red]error:[/red] {escape(str(exc.name))} is not installed; "
        "run [bold]pip install 'dynamodel\\[local]'[/bold]"
    )
    raise typer.Exit(2)


def _raise_keyboard_interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


@app.command()
def local(
    host: Annotated[
        str, typer.Option(help="Interface to bind. 0.0.0.0 exposes it to the network.")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port (0 picks a free one).")] = 8000,
    region: Annotated[str, typer.Option(help="Region for the exported settings.")] = "us-east-1",
    log_requests: Annotated[
        bool, typer.Option("--log-requests", help="Log every HTTP request.")
    ] = False,
) -> None:
    """Run an in-memory DynamoDB endpoint (moto) until Ctrl-C."""
    from dynamodel.local import LocalDynamoDB

    db = LocalDynamoDB(host=host, port=port, region=region, log_requests=log_requests)
    try:
        endpoint = db.start()
    except ModuleNotFoundError as exc:
        _missing_local_extra(exc)
    except RuntimeError as exc:
        err_console.print(f"[red]error:[/red] {escape(str(exc))}")
        raise typer.Exit(1) from None

    # Treat SIGTERM (docker stop, kill) like Ctrl-C so the server stops cleanly.
    signal.signal(signal.SIGTERM, _raise_keyboard_interrupt)
    try:
        console.print(
            f"[bold green]Local DynamoDB running at[/bold green] [bold]{escape(endpoint)}[/bold]"
        )
        if host not in ("127.0.0.1", "localhost", "::1"):
            console.print(
                f"[yellow]warning:[/yellow] bound to {escape(host)}; anyone who can reach this "
                "port can read and change the data (there is no authentication)."
            )
        console.print("Data is kept in memory only. Paste into a shell to use it:\n")
        for key, value in db.env().items():
            # Plain output so the lines copy-paste cleanly.
            console.print(
                f"export {key}={shlex.quote(value)}", markup=False, highlight=False, soft_wrap=True
            )
        console.print("\nPress [bold]Ctrl-C[/bold] to stop.")
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        db.stop()
    console.print("Stopped.")


@app.command()
def demo(
    endpoint_url: Annotated[
        str | None,
        typer.Option(help="DynamoDB endpoint to use; default: start a private local server."),
    ] = None,
) -> None:
    """Walk through dynamodel's features against a local (or given) endpoint."""
    try:
        from dynamodel.demo import run_demo
    except ImportError as exc:
        if exc.name == "dynamodel.demo":
            err_console.print("[red]error:[/red] the demo is not available in this build.")
            raise typer.Exit(1) from None
        if isinstance(exc, ModuleNotFoundError):
            _missing_local_extra(exc)
        raise
    try:
        run_demo(console=console, endpoint_url=endpoint_url)
    except ModuleNotFoundError as exc:
        if exc.name is None or exc.name.split(".")[0] not in ("moto", "werkzeug", "flask"):
            raise
        _missing_local_extra(exc)
    except KeyboardInterrupt:
        err_console.print("Interrupted.")
        raise typer.Exit(130) from None


@app.command()
def version() -> None:
    """Print the installed dynamodel version."""
    try:
        console.print(metadata.version("dynamodel"), highlight=False, markup=False)
    except metadata.PackageNotFoundError:
        console.print("unknown (dynamodel is not installed as a distribution)", highlight=False)
