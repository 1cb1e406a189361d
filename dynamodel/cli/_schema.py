"""``dynamodel schema``: the entity chart, exports of the table definition, and
``dynamodel schema policy``: the tenant IAM policy derived from the models."""

from __future__ import annotations

import json
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table as RichTable

from dynamodel import schema
from dynamodel.cli._common import (
    BAD_INPUT,
    FAILED,
    AppOption,
    Group,
    TableNameOption,
    TableOption,
    console,
    fail,
    open_project,
)
from dynamodel.core.errors import PolicyRefused, ValidationError
from dynamodel.migrations.store import RESERVED_PARTITION
from dynamodel.modelling.table import Table

if TYPE_CHECKING:
    from dynamodel.modelling.base import ModelBase

app = typer.Typer(
    cls=Group,
    invoke_without_command=True,
    rich_markup_mode="markdown",
    help="Show the single-table design or export the table definition; `policy`: a tenant "
    "IAM policy.",
)


class Format(StrEnum):
    """Output formats of ``dynamodel schema``."""

    chart = "chart"
    cloudformation = "cloudformation"
    json = "json"
    workbench = "workbench"


def _key_columns(table: Table) -> tuple[list[tuple[str, int, str]], list[schema.ChartRow]]:
    """The chart's key columns (where, position, label) and its rows."""
    columns: list[tuple[str, int, str]] = []
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
            if attribute is not None:
                columns.append((where, position, attribute))
    return columns, schema.entity_chart(table)


def _title(table: Table) -> str:
    return f"{table.physical_name}: entities and their keys"


def _caption() -> str:
    return (
        f"Partition {RESERVED_PARTITION!r} is reserved for `dynamodel migrate` (lock, state, "
        "checkpoints). '-': not in that index."
    )


def chart(table: Table) -> RichTable:
    """The entity chart: one row per entity, one column per key attribute.

    Key templates never wrap or get cut (``no_wrap``, ``overflow="ignore"``): when the grid
    does not fit the terminal, :func:`show_chart` prints :func:`chart_blocks` instead."""
    columns, rows = _key_columns(table)
    grid = RichTable(title=escape(_title(table)), show_lines=True)
    grid.add_column("Entity", style="bold", no_wrap=True)
    grid.add_column("Model", overflow="fold")
    for where, _, attribute in columns:
        label = attribute if where == "table" else f"{where}\n{attribute}"
        grid.add_column(escape(label), no_wrap=True, overflow="ignore")
    for row in rows:
        cells = []
        for where, position, _ in columns:
            text = row.keys[where][position]
            cells.append(escape(text) if text is not None else "[dim]-[/dim]")
        grid.add_row(escape(row.entity), escape(row.model), *cells, end_section=False)
    grid.caption = _caption()
    return grid


def chart_blocks(table: Table) -> str:
    """The entity chart for narrow terminals: one block per entity, one key per line, each
    template whole on its line (plain text)."""
    columns, rows = _key_columns(table)
    labels = [
        attribute if where == "table" else f"{where}.{attribute}" for where, _, attribute in columns
    ]
    width = max((len(label) for label in labels), default=0)
    lines = [_title(table), ""]
    for row in rows:
        lines.append(f"{row.entity} ({row.model})")
        for (where, position, _), label in zip(columns, labels, strict=True):
            text = row.keys[where][position]
            if text is not None:
                lines.append(f"  {label.ljust(width)}  {text}")
        lines.append("")
    lines.append(_caption().replace("`", ""))
    return "\n".join(lines)


def show_chart(table: Table, target: Console) -> None:
    """Print the grid when it fits ``target``'s width, else the blocks (templates never cut)."""
    from rich.measure import Measurement

    grid = chart(table)
    needed = Measurement.get(target, target.options.update_width(10_000), grid).maximum
    if needed <= target.width:
        target.print(grid)
    else:
        target.print(chart_blocks(table), markup=False, highlight=False, soft_wrap=True)


def export(table: Table, fmt: Format) -> dict[str, Any]:
    """The document of an export format."""
    if fmt is Format.cloudformation:
        return schema.cloudformation(table)
    if fmt is Format.workbench:
        return schema.workbench_model(table)
    if table.periods is not None:  # the current period's table (rotation makes the others)
        import datetime as dt

        return table.period_table(dt.datetime.now(dt.UTC)).create_table_request()
    return table.create_table_request()


class PolicyFormat(StrEnum):
    """Output formats of ``dynamodel schema policy``."""

    json = "json"
    cloudformation = "cloudformation"


class AccessLevel(StrEnum):
    """``--access`` of ``dynamodel schema policy``."""

    read_only = "read-only"
    read_write = "read-write"


IdentityOption = Annotated[
    str,
    typer.Option(
        "--identity",
        help="Whose key: 'cognito' (the Cognito identity pool identity id), 'tag:NAME' (the "
        "principal tag NAME) or a policy variable such as '${aws:username}'.",
    ),
]
AccessOption = Annotated[
    AccessLevel,
    typer.Option("--access", help="read-only: GetItem and Query; read-write: and writes."),
]
TransactionsOption = Annotated[
    bool,
    typer.Option(
        "--transactions",
        help="Allow the item actions inside transactions (and ConditionCheckItem).",
    ),
]
BatchOption = Annotated[
    bool, typer.Option("--batch", help="Allow BatchGetItem (and BatchWriteItem).")
]
AttributesOption = Annotated[
    bool,
    typer.Option(
        "--attributes",
        help="Restrict the attributes requests may name to the models' stored attributes.",
    ),
]


def _models_named(table: Table, names: list[str], what: str) -> list[type[ModelBase]]:
    """The table's models by class or entity name (exit 2 naming the unknown ones)."""
    by_name: dict[str, type[ModelBase]] = {}
    for entity, model in table.entities.items():
        by_name.setdefault(model.__name__, model)
        by_name.setdefault(entity, model)
    unknown = [n for n in names if n not in by_name]
    if unknown:
        fail(
            f"{what}: table {table.name!r} has no model {unknown[0]!r}; its models: "
            f"{sorted({m.__name__ for m in table.entities.values()})}",
            BAD_INPUT,
        )
    return [by_name[n] for n in names]


def _tenant_models(table: Table, field: str, names: list[str] | None) -> list[type[ModelBase]]:
    """``--model`` names, else every model of the table with a field named ``field``."""
    if names:
        return _models_named(table, names, "--model")
    found = [m for m in table.entities.values() if field in m.model_fields]
    if not found:
        fail(f"no model of table {table.name!r} has a field {field!r}", BAD_INPUT)
    return found


def _policy_errors(error: ValidationError) -> NoReturn:
    if isinstance(error, PolicyRefused):
        fail(str(error), FAILED)
    fail(str(error), BAD_INPUT)


def _write(text: str, output: Path | None, what: str) -> None:
    if output is not None:
        output.write_text(text + "\n", encoding="utf-8")
        console.print(f"Wrote {what} to {output}", highlight=False, markup=False)
    else:
        typer.echo(text)


OutputOption = Annotated[
    Path | None,
    typer.Option("--output", "-o", help="Write the export to this file instead of stdout."),
]


@app.callback()
def command(
    ctx: typer.Context,
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
    output: OutputOption = None,
    width: Annotated[
        int | None,
        typer.Option(
            "--width",
            min=20,
            help="Chart width in columns. Default: the terminal's ($COLUMNS; 80 when piped). "
            "A chart wider than that is printed as one block per entity.",
            show_default=False,
        ),
    ] = None,
    tenant_field: Annotated[
        str | None,
        typer.Option(
            "--tenant-policy",
            help="With --format cloudformation: add an AWS::IAM::ManagedPolicy confining "
            "callers to the items whose partition key holds their identity in this field "
            "(see `dynamodel schema policy`).",
            show_default=False,
        ),
    ] = None,
    identity: IdentityOption = "cognito",
    tenant_models: Annotated[
        list[str] | None,
        typer.Option(
            "--tenant-model",
            help="With --tenant-policy: a model the tenant may use (repeat it). Default: every "
            "model with the field.",
            show_default=False,
        ),
    ] = None,
    public_models: Annotated[
        list[str] | None,
        typer.Option(
            "--public-model",
            help="With --tenant-policy: a model every caller may read (repeat it).",
            show_default=False,
        ),
    ] = None,
    access: AccessOption = AccessLevel.read_write,
    transactions: TransactionsOption = False,
    batch: BatchOption = False,
    attributes: AttributesOption = False,
) -> None:
    """Show the single-table design (which entity uses which key templates), or export the
    table definition as CloudFormation, JSON or a NoSQL Workbench model. Needs no AWS access."""
    if ctx.invoked_subcommand is not None:
        return
    project = open_project(app, table, table_name)
    if tenant_field is not None and fmt is not Format.cloudformation:
        fail("--tenant-policy goes with --format cloudformation", BAD_INPUT)
    if fmt is Format.chart:
        if output is not None:
            with output.open("w", encoding="utf-8") as handle:
                show_chart(project.table, Console(file=handle, width=width or 200))
        elif width is not None:
            show_chart(project.table, Console(width=width, soft_wrap=True))
        else:
            show_chart(project.table, console)
        return
    document = export(project.table, fmt)
    if tenant_field is not None:
        (table_id,) = document["Resources"]
        try:
            policy = schema.tenant_policy_cloudformation(
                _tenant_models(project.table, tenant_field, tenant_models),
                field=tenant_field,
                identity=identity,
                access=access.value,
                transactions=transactions,
                batch=batch,
                attributes=attributes,
                public=_models_named(project.table, public_models or [], "--public-model"),
                table_logical_id=table_id,
            )
        except ValidationError as error:
            _policy_errors(error)
        document["Resources"].update(policy["Resources"])
    _write(json.dumps(document, indent=2), output, f"{fmt.value} export")


@app.command("policy")
def policy_command(
    field: Annotated[
        str,
        typer.Option(
            "--field",
            help="The key field that holds the caller's identity (a str field in each "
            "model's partition key, after literal text only).",
            show_default=False,
        ),
    ],
    app: AppOption = None,
    table: TableOption = None,
    table_name: TableNameOption = None,
    identity: IdentityOption = "cognito",
    models: Annotated[
        list[str] | None,
        typer.Option(
            "--model",
            "-m",
            help="A model the tenant may use, by class or entity name (repeat it). Default: "
            "every model of the table with the field.",
            show_default=False,
        ),
    ] = None,
    public: Annotated[
        list[str] | None,
        typer.Option(
            "--public",
            help="A model every caller may read (GetItem, Query on its own key prefix); repeat it.",
            show_default=False,
        ),
    ] = None,
    access: AccessOption = AccessLevel.read_write,
    transactions: TransactionsOption = False,
    batch: BatchOption = False,
    attributes: AttributesOption = False,
    table_arn: Annotated[
        str | None,
        typer.Option(
            "--table-arn",
            help="The table's ARN (json format). Default: arn:PARTITION:dynamodb:REGION:"
            "ACCOUNT:table/NAME.",
            show_default=False,
        ),
    ] = None,
    region: Annotated[str, typer.Option("--region", help="Region in the default table ARN.")] = "*",
    account: Annotated[
        str, typer.Option("--account", help="Account id in the default table ARN.")
    ] = "*",
    partition: Annotated[
        str, typer.Option("--partition", help="Partition in the default table ARN.")
    ] = "aws",
    fmt: Annotated[
        PolicyFormat,
        typer.Option(
            "--format",
            "-f",
            help="json: the IAM policy document; cloudformation: a template with an "
            "AWS::IAM::ManagedPolicy (ARNs from the stack's region and account).",
        ),
    ] = PolicyFormat.json,
    output: OutputOption = None,
) -> None:
    """Print a least-privilege IAM policy that confines each caller to the items whose
    partition key holds their identity (`dynamodb:LeadingKeys`), derived from the models' key
    templates. Exits 1 naming each model IAM cannot confine, and why. Needs no AWS access."""
    project = open_project(app, table, table_name)
    chosen = _tenant_models(project.table, field, models)
    shared = _models_named(project.table, public or [], "--public")
    try:
        if fmt is PolicyFormat.cloudformation:
            document = schema.tenant_policy_cloudformation(
                chosen,
                field=field,
                identity=identity,
                access=access.value,
                transactions=transactions,
                batch=batch,
                attributes=attributes,
                public=shared,
            )
        else:
            document = schema.tenant_policy(
                chosen,
                field=field,
                identity=identity,
                access=access.value,
                transactions=transactions,
                batch=batch,
                attributes=attributes,
                public=shared,
                table_arn=table_arn,
                partition=partition,
                region=region,
                account=account,
            )
    except ValidationError as error:
        _policy_errors(error)
    _write(json.dumps(document, indent=2), output, "tenant policy")
