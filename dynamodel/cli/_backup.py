"""``dynamodel table backup | backups | restore | pitr | delete-backup``: on-demand backups,
point-in-time recovery and restores into a new table (`dynamodel.schema.backups`).

The commands live on the ``table`` group: `register` adds them to it.
"""

from __future__ import annotations

import datetime as dt
import sys
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table as RichTable

from dynamodel import schema
from dynamodel.cli._common import (
    BAD_INPUT,
    AppOption,
    EndpointOption,
    JsonOption,
    RegionOption,
    TableNameOption,
    TableOption,
    console,
    err_console,
    errors,
    fail,
    open_project,
    print_json,
)
from dynamodel.core.errors import ValidationError
from dynamodel.schema import backups
from dynamodel.schema.changes import PlanStep

MachineJsonOption = Annotated[
    bool,
    typer.Option(
        "--json",
        help="Print only JSON on stdout (the result, or the requests with --dry-run); notes, "
        "tables and progress go to stderr.",
    ),
]
YesOption = Annotated[
    bool,
    typer.Option("--yes", "-y", help="Do it without asking (required when not a TTY)."),
]


def _interactive() -> bool:
    return sys.stdin.isatty()


def _confirm(question: str, refusal: str, yes: bool) -> None:
    """Ask in a terminal; elsewhere, without --yes, exit 2 with ``refusal``."""
    if yes:
        return
    if not _interactive():
        fail(f"{refusal}: pass --yes to confirm", BAD_INPUT)
    typer.confirm(question, default=False, abort=True, err=True)


def _size(value: int | None) -> str:
    return f"{value:,}" if value is not None else "?"


def backup(
    app: AppOption = None,
    table: TableOption = None,
    table_name: TableNameOption = None,
    endpoint_url: EndpointOption = None,
    region: RegionOption = None,
    name: Annotated[
        str | None,
        typer.Option(
            "--name",
            help="Backup name (3-255 characters of A-Z a-z 0-9 _ . -). Default: "
            "<table>-<UTC time>, e.g. orders-20250301-093000.",
            show_default=False,
        ),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Make an on-demand backup of the table (kept until deleted; restore it with
    `dynamodel table restore --backup ARN --to NEW_NAME`)."""
    project = open_project(app, table, table_name, endpoint_url, region)
    target = project.table
    with errors(project):
        try:
            made = backups.create_backup(target, name)
        except ValidationError as error:
            fail(str(error), BAD_INPUT)
    if as_json:
        print_json(made.as_dict())
        return
    console.print(
        f"Backup [bold]{escape(made.name)}[/bold] of table {escape(target.physical_name)}: "
        f"{escape(made.status)}\n{escape(made.arn)}",
        highlight=False,
    )


def list_backups(
    app: AppOption = None,
    table: TableOption = None,
    table_name: TableNameOption = None,
    endpoint_url: EndpointOption = None,
    region: RegionOption = None,
    as_json: JsonOption = False,
) -> None:
    """List the table's on-demand backups, oldest first: name, creation time (UTC), status,
    size, type and ARN."""
    project = open_project(app, table, table_name, endpoint_url, region)
    target = project.table
    with errors(project):
        found = backups.list_backups(target)
    if as_json:
        print_json([b.as_dict() for b in found])
        return
    if not found:
        console.print(
            f"No backups of table {target.physical_name}; make one with `dynamodel table backup`.",
            markup=False,
            highlight=False,
        )
        return
    grid = RichTable("Name", "Created (UTC)", "Status", "Size (bytes)", "Type")
    for item in found:
        created = f"{item.created:%Y-%m-%d %H:%M:%S}" if item.created else "?"
        grid.add_row(
            escape(item.name),
            created,
            escape(item.status),
            _size(item.size_bytes),
            escape(item.type or "?"),
        )
    console.print(grid)
    for item in found:  # whole lines, to copy into `restore --backup ARN`
        console.print(f"{item.name}: {item.arn}", markup=False, highlight=False)


def delete_backup(
    arn: Annotated[str, typer.Argument(help="The backup's ARN (see `dynamodel table backups`).")],
    app: AppOption = None,
    table: TableOption = None,
    table_name: TableNameOption = None,
    endpoint_url: EndpointOption = None,
    region: RegionOption = None,
    yes: YesOption = False,
    as_json: JsonOption = False,
) -> None:
    """Delete an on-demand backup (asks first; it cannot be undone)."""
    project = open_project(app, table, table_name, endpoint_url, region)
    _confirm(f"Delete backup {arn}?", f"deleting backup {arn} cannot be undone", yes)
    with errors(project):
        gone = backups.delete_backup(project.table, arn)
    if as_json:
        print_json(gone.as_dict())
        return
    console.print(f"Backup {gone.name} deleted ({gone.arn}).", markup=False, highlight=False)


def _parse_time(text: str) -> dt.datetime:
    try:
        when = dt.datetime.fromisoformat(text)
    except ValueError:
        fail(
            f"--time {text!r} is not an ISO-8601 date and time, e.g. 2025-03-01T09:30:00Z",
            BAD_INPUT,
        )
    if when.utcoffset() is None:
        fail(
            f"--time {text!r} has no time zone, so the instant it means depends on this "
            "machine's clock zone: add one, e.g. 2025-03-01T09:30:00Z or "
            "2025-03-01T11:30:00+02:00",
            BAD_INPUT,
        )
    return when


def restore(
    to: Annotated[
        str,
        typer.Option(
            "--to",
            help="Name of the NEW table to restore into (it must not exist).",
            show_default=False,
        ),
    ],
    backup_arn: Annotated[
        str | None,
        typer.Option(
            "--backup",
            help="Restore this on-demand backup (its ARN; see `dynamodel table backups`).",
            show_default=False,
        ),
    ] = None,
    time: Annotated[
        str | None,
        typer.Option(
            "--time",
            help="Restore the table as it was at this time (ISO-8601 with a zone, e.g. "
            "2025-03-01T09:30:00Z); needs point-in-time recovery.",
            show_default=False,
        ),
    ] = None,
    latest: Annotated[
        bool,
        typer.Option(
            "--latest",
            help="Restore the table as of its latest restorable time (about 5 minutes ago); "
            "needs point-in-time recovery.",
        ),
    ] = False,
    app: AppOption = None,
    table: TableOption = None,
    table_name: TableNameOption = None,
    endpoint_url: EndpointOption = None,
    region: RegionOption = None,
    yes: YesOption = False,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Print the requests that would be sent; send nothing.")
    ] = False,
    as_json: MachineJsonOption = False,
    timeout: Annotated[
        float, typer.Option(help="Seconds to wait for the new table to become ACTIVE.")
    ] = 3600.0,
) -> None:
    """Restore a backup, or the table as of a point in time, into a NEW table.

    Waits until the new table is ACTIVE, then applies what the declaration asks for and a
    restore does not carry over (stream, deletion protection, TTL, point-in-time recovery,
    tags), and lists any remaining difference from the declaration. The app keeps using its
    table: check the new one, then point the app at it (`table.bind(name=...)`, or
    `--table-name` for these commands). Asks first in a terminal; elsewhere needs --yes.
    """
    project = open_project(app, table, table_name, endpoint_url, region)
    source = project.table
    if sum(x is not None for x in (backup_arn, time)) + latest != 1:
        fail("choose exactly one of --backup ARN, --time ISO-8601 and --latest", BAD_INPUT)
    at = _parse_time(time) if time is not None else None
    try:
        requests = backups.restore_requests(source, to, backup_arn=backup_arn, at=at, latest=latest)
    except ValidationError as error:
        fail(str(error), BAD_INPUT)
    if dry_run:
        print_json([PlanStep(r, 0).as_dict() for r in requests])
        return
    what = (
        f"backup {backup_arn}"
        if backup_arn is not None
        else f"table {source.physical_name} as of "
        + (at.isoformat() if at is not None else "its latest restorable time")
    )
    _confirm(
        f"Restore {what} into new table {to}?",
        f"restoring {what} creates table {to!r} (billed as a restore)",
        yes,
    )
    human = err_console if as_json else console
    applied: list[PlanStep] = []

    def show(step: PlanStep) -> None:
        applied.append(step)
        human.print(f"- {step.describe} ...", highlight=False, markup=False)

    with errors(project):
        try:
            if backup_arn is not None:
                restored = backups.restore_from_backup(
                    source, backup_arn, to, timeout=timeout, on_step=show
                )
            else:
                restored = backups.restore_to_point_in_time(
                    source, to, at=at, latest=latest, timeout=timeout, on_step=show
                )
        except backups.RestoreTargetExists as error:
            fail(str(error), BAD_INPUT)
        description = restored.describe()
        changes = schema.diff(restored)
    if as_json:
        print_json(
            {
                "TableName": to,
                "source": {"backup": backup_arn}
                if backup_arn is not None
                else {
                    "table": source.physical_name,
                    "time": at.astimezone(dt.UTC).isoformat() if at is not None else "latest",
                },
                "status": description.get("TableStatus"),
                "items": description.get("ItemCount"),
                "applied": [step.as_dict() for step in applied],
                "differences": [
                    {"subject": c.subject, "declared": c.declared, "live": c.live} for c in changes
                ],
            }
        )
    _report(human, to, description, changes)


def _report(out: Console, to: str, description: dict[str, Any], changes: list[Any]) -> None:
    out.print(
        f"Table [bold]{escape(to)}[/bold] is {escape(str(description.get('TableStatus')))} "
        f"({_size(description.get('ItemCount'))} items).",
        highlight=False,
    )
    if changes:
        grid = RichTable("Differs from the declaration", "Declared", "Live")
        for change in changes:
            grid.add_row(escape(change.subject), escape(change.declared), escape(change.live))
        out.print(grid)
        out.print(
            f"Review them with `dynamodel table diff --table-name {escape(to)}`; "
            f"`dynamodel table sync --table-name {escape(to)}` applies the safe ones.",
            highlight=False,
        )
    else:
        out.print("It matches the declaration.", highlight=False)
    out.print(
        f"Check it, then point the app at it: table.bind(name={to!r}) (or --table-name "
        f"{escape(to)} for these commands).",
        highlight=False,
        markup=False,
    )


def pitr(
    app: AppOption = None,
    table: TableOption = None,
    table_name: TableNameOption = None,
    endpoint_url: EndpointOption = None,
    region: RegionOption = None,
    enable: Annotated[
        bool, typer.Option("--enable", help="Turn point-in-time recovery on first.")
    ] = False,
    days: Annotated[
        int | None,
        typer.Option(
            "--days",
            help="With --enable: how many days back restores can reach (1-35; DynamoDB's "
            "default 35).",
            show_default=False,
        ),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Show point-in-time recovery: on or off, and the earliest and latest restorable times
    (`--enable` turns it on; declaring `point_in_time_recovery=True` and `sync` does too)."""
    project = open_project(app, table, table_name, endpoint_url, region)
    target = project.table
    if days is not None and not enable:
        fail("--days goes with --enable", BAD_INPUT)
    with errors(project):
        try:
            window = (
                backups.enable_pitr(target, recovery_period_days=days)
                if enable
                else backups.pitr_window(target)
            )
        except ValidationError as error:
            fail(str(error), BAD_INPUT)
    if as_json:
        print_json(window.as_dict())
        return
    console.print(window.describe() + ".", highlight=False, markup=False)
    if not window.enabled:
        console.print(
            "Turn it on with `dynamodel table pitr --enable` (or declare "
            "point_in_time_recovery=True and run `dynamodel table sync`).",
            highlight=False,
            markup=False,
        )


def register(app: typer.Typer) -> None:
    """Add the backup commands to the ``table`` command group."""
    app.command("backup")(backup)
    app.command("backups")(list_backups)
    app.command("restore")(restore)
    app.command("pitr")(pitr)
    app.command("delete-backup")(delete_backup)
