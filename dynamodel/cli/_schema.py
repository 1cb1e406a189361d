"""``dynamodel schema``: the entity chart, and exports of the table definition."""

from __future__ import annotations

import json
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table as RichTable

from dynamodel import schema
from dynamodel.cli._common import AppOption, TableNameOption, TableOption, console, open_project
from dynamodel.migrations.store import RESERVED_PARTITION
from dynamodel.modelling.table import Table


class Format(StrEnum):
    """Output formats of ``dynamodel schema``."""

    chart = "chart"
    cloudformation = "cloudformation"
    json = "json"
    workbench = "workbench"


def chart(table: Table) -> RichTable:
    """The entity chart: one row per entity, one column per key attribute."""
    rows = schema.entity_chart(table)
    grid = RichTable(title=f"{table.physical_name}: entities and their keys", show_lines=True)
    grid.add_column("Entity", style="bold")
    grid.add_column("Model")
    columns: list[tuple[str, int]] = []
    keys = {"table": (table.pk, table.sk)}
    for index in table.indexes:
        found = table.index_keys(index.name)
        if found.multi:  # several attributes per key: one column each for pk and sk
            joined = ", ".join(found.sk_attrs)
            keys[index.name] = (", ".join(found.pk_attrs), joined or None)
        else:
            keys[index.name] = (found.pk, found.sk)
    for where, (pk, sk) in keys.items():
        for position, attribute in enumerate((pk, sk)):
            if attribute is None:
                continue
            label = attribute if where == "table" else f"{where}\n{attribute}"
            grid.add_column(label)
            columns.append((where, position))
    for row in rows:
        cells = []
        for where, position in columns:
            text = row.keys[where][position]
            cells.append(escape(text) if text is not None else "[dim]-[/dim]")
        grid.add_row(row.entity, row.model, *cells, end_section=False)
    grid.caption = (
        f"Partition {RESERVED_PARTITION!r} is reserved for `dynamodel migrate` (lock, state, "
        "checkpoints). '-': not in that index."
    )
    return grid


def export(table: Table, fmt: Format) -> dict[str, Any]:
    """The document of an export format."""
    if fmt is Format.cloudformation:
        return schema.cloudformation(table)
    if fmt is Format.workbench:
        return schema.workbench_model(table)
    return table.create_table_request()


def command(
    app: AppOption = None,
    table: TableOption = None,
    table_name: TableNameOption = None,
    fmt: Annotated[
        Format,
        typer.Option(
            "--format",
            "-f",
            help="chart: entities x keys in the terminal; cloudformation: an "
            "AWS::DynamoDB::Table template (JSON); json: the CreateTable request (for "
            "`aws dynamodb create-table --cli-input-json`); workbench: a NoSQL Workbench data "
            "model.",
        ),
    ] = Format.chart,
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", help="Write the export to this file instead of stdout."),
    ] = None,
) -> None:
    """Show the single-table design (which entity uses which key templates), or export the
    table definition as CloudFormation, JSON or a NoSQL Workbench model. Needs no AWS access."""
    project = open_project(app, table, table_name)
    if fmt is Format.chart:
        if output is not None:
            with output.open("w", encoding="utf-8") as handle:
                from rich.console import Console

                Console(file=handle, width=200).print(chart(project.table))
        else:
            console.print(chart(project.table))
        return
    text = json.dumps(export(project.table, fmt), indent=2)
    if output is not None:
        output.write_text(text + "\n", encoding="utf-8")
        console.print(f"Wrote {fmt.value} export to {output}", highlight=False, markup=False)
    else:
        typer.echo(text)
