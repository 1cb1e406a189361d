"""``dynamodel table``: create, describe, diff, sync and delete the declared table."""

from __future__ import annotations

import sys
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table as RichTable

from dynamodel import schema
from dynamodel.cli._common import (
    BAD_INPUT,
    FAILED,
    AppOption,
    EndpointOption,
    Group,
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
from dynamodel.core.errors import DynamodelError
from dynamodel.core.flows import Request
from dynamodel.modelling.replicas import replica_requests

app = typer.Typer(
    cls=Group,
    name="table",
    help="Create, inspect, compare and update the table your models declare.",
    no_args_is_help=True,
    rich_markup_mode="markdown",
)

DryRunOption = Annotated[
    bool, typer.Option("--dry-run", help="Print the requests that would be sent; send nothing.")
]
MachineJsonOption = Annotated[
    bool,
    typer.Option(
        "--json",
        help="Print only JSON on stdout (the result, or the requests with --dry-run); notes, "
        "tables and progress go to stderr.",
    ),
]
TimeoutOption = Annotated[
    float,
    typer.Option(help="Seconds to wait for the table (and each new index) to become ACTIVE."),
]


def _requests(requests: list[Request]) -> list[dict[str, object]]:
    return [schema.PlanStep(r, 0).as_dict() for r in requests]


def _interactive() -> bool:
    return sys.stdin.isatty()


@app.command()
def create(
    app: AppOption = None,
    table: TableOption = None,
    table_name: TableNameOption = None,
    endpoint_url: EndpointOption = None,
    region: RegionOption = None,
    exist_ok: Annotated[
        bool, typer.Option("--exist-ok", help="Succeed without changes if the table exists.")
    ] = False,
    dry_run: DryRunOption = False,
    as_json: MachineJsonOption = False,
    timeout: TimeoutOption = 600.0,
) -> None:
    """Create the table from its declaration and wait until it is ACTIVE.

    Then enables TTL and point-in-time recovery when declared, and adds a global table's
    replicas one at a time, each waited for. An existing table is an error (compare it with
    `dynamodel table diff`) unless --exist-ok.
    """
    project = open_project(app, table, table_name, endpoint_url, region)
    target = project.table
    if dry_run:
        first = Request("create_table", target.create_table_request(), control=True)
        requests = [first, *target.follow_up_requests(), *replica_requests(target)]
        print_json(_requests(requests))
        return
    with errors(project):
        try:
            description = target.create(exist_ok=exist_ok, timeout=timeout)
        except DynamodelError as error:
            if error.code == "ResourceInUseException":
                fail(
                    f"table {target.physical_name!r} already exists; compare it with the "
                    "declaration with `dynamodel table diff` (or pass --exist-ok)"
                )
            raise
    indexes = len(description.get("GlobalSecondaryIndexes") or []) + len(
        description.get("LocalSecondaryIndexes") or []
    )
    if as_json:
        print_json(description)
        return
    console.print(
        f"Table [bold]{escape(target.physical_name)}[/bold] is "
        f"{escape(str(description.get('TableStatus')))} "
        f"({indexes} index{'es' if indexes != 1 else ''}).",
        highlight=False,
    )


@app.command()
def describe(
    app: AppOption = None,
    table: TableOption = None,
    table_name: TableNameOption = None,
    endpoint_url: EndpointOption = None,
    region: RegionOption = None,
    as_json: JsonOption = False,
) -> None:
    """Show the live table next to its declaration: keys, indexes, billing, TTL, stream,
    point-in-time recovery, table class, deletion protection, replicas."""
    project = open_project(app, table, table_name, endpoint_url, region)
    with errors(project):
        live = schema.describe(project.table)
    declared = schema.declared_shape(project.table).summary()
    current = live.shape.summary()
    if as_json:
        print_json({"declared": declared, "live": current, "description": live.table})
        return
    shape = live.shape
    console.print(
        f"[bold]{escape(str(shape.name))}[/bold]  {escape(str(shape.status))}  "
        f"items: {_count(shape.item_count)}  "
        f"size: {_count(shape.size_bytes)} bytes\n{escape(shape.arn or '')}",
        highlight=False,
    )
    grid = RichTable("Property", "Declared", "Live", "", show_lines=False)
    for key in dict.fromkeys([*declared, *current]):
        want, have = declared.get(key, "absent"), current.get(key, "absent")
        same = want == have or (key == "point-in-time recovery" and shape.pitr is None)
        grid.add_row(
            escape(key), escape(want), escape(have), "[green]=[/green]" if same else "[red]≠[/red]"
        )
    console.print(grid)


def _count(value: int | None) -> str:
    return f"{value:,}" if value is not None else "?"


def _changes_table(changes: list[schema.Change]) -> RichTable:
    grid = RichTable("Change", "Declared", "Live", "Kind", "Note")
    colour = {"safe": "green", "destructive": "yellow", "impossible": "red"}
    for change in changes:
        kind = f"[{colour[change.safety]}]{change.safety}[/{colour[change.safety]}]"
        grid.add_row(
            escape(change.subject),
            escape(change.declared),
            escape(change.live),
            kind,
            escape(change.note),
        )
    return grid


def _change_json(change: schema.Change) -> dict[str, object]:
    return {
        "subject": change.subject,
        "declared": change.declared,
        "live": change.live,
        "safety": change.safety,
        "note": change.note,
        "requests": [step.as_dict() for step in change.steps],
    }


@app.command()
def diff(
    app: AppOption = None,
    table: TableOption = None,
    table_name: TableNameOption = None,
    endpoint_url: EndpointOption = None,
    region: RegionOption = None,
    as_json: JsonOption = False,
    exit_code: Annotated[
        bool, typer.Option("--exit-code", help="Exit with 1 when the table differs.")
    ] = False,
) -> None:
    """List what differs between the declaration and the live table, and how sync would
    fix it (safe, destructive, or impossible without a new table)."""
    project = open_project(app, table, table_name, endpoint_url, region)
    with errors(project):
        changes = schema.diff(project.table)
    if as_json:
        print_json([_change_json(c) for c in changes])
    elif not changes:
        console.print(f"Table {project.table.physical_name} matches the declaration.", markup=False)
    else:
        console.print(_changes_table(changes))
    if changes and exit_code:
        raise typer.Exit(FAILED)


@app.command()
def sync(
    app: AppOption = None,
    table: TableOption = None,
    table_name: TableNameOption = None,
    endpoint_url: EndpointOption = None,
    region: RegionOption = None,
    dry_run: DryRunOption = False,
    as_json: MachineJsonOption = False,
    yes: Annotated[
        bool,
        typer.Option(
            "--yes",
            "-y",
            help="Also apply destructive changes (deleting or recreating a GSI; removing a "
            "replica; turning TTL, the stream, PITR or deletion protection off) without asking.",
        ),
    ] = False,
    timeout: TimeoutOption = 3600.0,
) -> None:
    """Apply the safe changes that make the live table match the declaration.

    GSIs are added one per UpdateTable call, waiting until each is ACTIVE; TTL, stream, PITR,
    billing, table class and deletion protection follow, then global table replicas, one per
    UpdateTable call. Destructive changes need --yes (or a confirmation at the prompt);
    changes that need a new table are never made. Exits with 1 when something was left
    different.
    """
    project = open_project(app, table, table_name, endpoint_url, region)
    target = project.table
    machine = as_json or dry_run  # stdout carries JSON only; the human text goes to stderr
    human = err_console if machine else console
    with errors(project):
        changes = schema.diff(target)
    if not changes:
        human.print(
            f"Table {target.physical_name} matches the declaration; nothing to do.", markup=False
        )
        if dry_run:
            print_json([])
        elif as_json:
            print_json(_sync_json(schema.ApplyResult(changes=[])))
        return
    human.print(_changes_table(changes))
    destructive = [c for c in changes if c.safety == "destructive"]
    confirmed = yes
    if destructive and not yes and not dry_run and _interactive():
        confirmed = typer.confirm(
            f"Apply {len(destructive)} destructive change(s) to {target.physical_name}?",
            default=False,
            err=True,
        )
    if dry_run:
        steps = schema.plan(changes, destructive=yes)
        print_json([step.as_dict() for step in steps])
        _report_refused(changes, yes, human)
        return

    def show(step: schema.PlanStep) -> None:
        human.print(f"- {step.describe} ...", highlight=False, markup=False)

    with errors(project):
        result = schema.apply(target, destructive=confirmed, timeout=timeout, on_step=show)
    for step in result.skipped:
        human.print(
            f"[yellow]skipped[/yellow] {escape(step.describe)}: not supported by this endpoint"
        )
    human.print(f"Applied {len(result.applied)} request(s).", highlight=False)
    refused = _report_refused(result.changes, confirmed, human)
    if as_json:
        print_json(_sync_json(result))
    if refused:
        raise typer.Exit(FAILED)


def _sync_json(result: schema.ApplyResult) -> dict[str, object]:
    """``sync --json``: what was found, sent, skipped and left different."""
    return {
        "changes": [_change_json(c) for c in result.changes],
        "applied": [step.as_dict() for step in result.applied],
        "skipped": [step.as_dict() for step in result.skipped],
        "not_applied": [c.subject for c in result.refused],
        "in_sync": result.in_sync,
    }


def _report_refused(changes: list[schema.Change], destructive: bool, out: Console) -> bool:
    refused = [
        c
        for c in changes
        if c.safety == "impossible" or (c.safety == "destructive" and not destructive)
    ]
    for change in refused:
        why = (
            (change.note or "needs a new table")
            if change.safety == "impossible"
            else "destructive: run again with --yes to apply it"
        )
        out.print(f"[yellow]not applied[/yellow] {escape(change.subject)}: {why}", highlight=False)
    return bool(refused)


@app.command()
def delete(
    app: AppOption = None,
    table: TableOption = None,
    table_name: TableNameOption = None,
    endpoint_url: EndpointOption = None,
    region: RegionOption = None,
    yes: Annotated[
        bool, typer.Option("--yes", "-y", help="Delete without asking (required when not a TTY).")
    ] = False,
    missing_ok: Annotated[
        bool, typer.Option("--missing-ok", help="Succeed if the table does not exist.")
    ] = False,
    dry_run: DryRunOption = False,
    as_json: MachineJsonOption = False,
) -> None:
    """Delete the table and all its data (asks first; deletion protection must be off)."""
    project = open_project(app, table, table_name, endpoint_url, region)
    target = project.table
    if dry_run:
        request = Request("delete_table", {"TableName": target.physical_name}, control=True)
        print_json(_requests([request]))
        return
    if not yes:
        if not _interactive():
            fail(
                f"deleting table {target.physical_name!r} destroys all its data: "
                "pass --yes to confirm",
                BAD_INPUT,
            )
        typer.confirm(
            f"Delete table {target.physical_name} and all its data?", default=False, abort=True
        )
    with errors(project):
        target.delete(missing_ok=missing_ok)
    if as_json:
        print_json({"TableName": target.physical_name, "deleted": True})
        return
    console.print(f"Table {target.physical_name} deleted.", highlight=False, markup=False)


@app.command()
def rotate(
    app: AppOption = None,
    table: TableOption = None,
    table_name: TableNameOption = None,
    endpoint_url: EndpointOption = None,
    region: RegionOption = None,
    dry_run: DryRunOption = False,
    as_json: MachineJsonOption = False,
    yes: Annotated[
        bool,
        typer.Option("--yes", "-y", help="Delete expired periods' tables without asking."),
    ] = False,
    now: Annotated[
        str | None,
        typer.Option(
            help="Rotate as if it were this time (ISO 8601 with a zone; default: now).",
            show_default=False,
        ),
    ] = None,
    timeout: TimeoutOption = 600.0,
) -> None:
    """Rotate a table with periods: create the current and next periods' tables, move old
    ones to the cold table class and billing, delete expired ones (asks first, or --yes)."""
    import datetime as dt

    from dynamodel.core.errors import ValidationError

    project = open_project(app, table, table_name, endpoint_url, region)
    target = project.table
    machine = as_json or dry_run
    human = err_console if machine else console
    when = None
    if now is not None:
        try:
            when = dt.datetime.fromisoformat(now)
        except ValueError:
            fail(
                f"--now {now!r} is not an ISO 8601 time (e.g. 2026-12-04T00:00:00+00:00)",
                BAD_INPUT,
            )
        if when.tzinfo is None:
            fail(f"--now {now!r} has no time zone; add one (e.g. +00:00 or Z)", BAD_INPUT)
    else:  # one time for the plan shown and the rotation applied: the same periods
        when = dt.datetime.now(dt.UTC)
    with errors(project):
        try:
            plan = schema.rotate(target, now=when, dry_run=True)
        except ValidationError as error:
            fail(str(error), BAD_INPUT)
    data = {
        "current": plan.current,
        "create": plan.create,
        "cold": plan.cold,
        "drop": plan.drop,
    }
    for label, names in (("create", plan.create), ("make cold", plan.cold), ("drop", plan.drop)):
        for name in names:
            human.print(f"- {label} {name}", highlight=False, markup=False)
    if plan.empty:
        human.print(f"Nothing to do (current period: {plan.current}).", highlight=False)
    if dry_run or plan.empty:
        if machine:
            print_json(data)
        return
    confirmed = yes
    if plan.drop and not yes:
        if not _interactive():
            fail(
                f"rotation would delete {len(plan.drop)} expired table(s) "
                f"({', '.join(plan.drop)}): pass --yes to delete them",
                BAD_INPUT,
            )
        confirmed = typer.confirm(
            f"Delete {len(plan.drop)} expired table(s) with their data?", default=False, err=True
        )
        if not confirmed:
            fail("nothing was changed", 1)
    with errors(project):
        schema.rotate(target, now=when, drop=confirmed, timeout=timeout)
    human.print(
        f"Created {len(plan.create)}, made cold {len(plan.cold)}, dropped {len(plan.drop)} "
        "table(s).",
        highlight=False,
    )
    if as_json:
        print_json(data)
