"""``dynamodel export`` and ``dynamodel import``: S3 exports and imports of the declared table,
and exports read back (checked, converted) through the models."""

from __future__ import annotations

import datetime as dt
import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from enum import StrEnum
from pathlib import Path
from typing import IO, Annotated, Any

import typer
from rich.markup import escape

from dynamodel.cli._common import (
    BAD_INPUT,
    FAILED,
    AppOption,
    EndpointOption,
    Group,
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

app = typer.Typer(
    cls=Group,
    name="export",
    help="Export the table to S3 (point in time), follow an export, and read an export's files "
    "back through your models: check them, convert them to JSON lines or to import-ready files.",
    no_args_is_help=True,
    rich_markup_mode="markdown",
)
import_app = typer.Typer(
    cls=Group,
    name="import",
    help="Create a new table from S3 data (ImportTable) with the declared keys and indexes, "
    "and follow the import.",
    no_args_is_help=True,
    rich_markup_mode="markdown",
)


def register(parent: typer.Typer) -> None:
    """Add ``export`` and ``import`` to the ``dynamodel`` application."""
    parent.add_typer(app, name="export")
    parent.add_typer(import_app, name="import")


class Target(StrEnum):
    """What ``export convert`` writes."""

    jsonl = "jsonl"
    import_files = "import"


class Unrouted(StrEnum):
    """What ``export convert`` does with the items no model takes."""

    keep = "keep"
    skip = "skip"
    fail = "fail"


BucketOption = Annotated[str, typer.Option("--bucket", help="The S3 bucket.", show_default=False)]
JsonOut = Annotated[
    bool,
    typer.Option("--json", help="Print only JSON on stdout (the result); notes go to stderr."),
]
WaitOption = Annotated[
    bool, typer.Option("--wait", help="Wait until it is COMPLETED (or FAILED: exit 1).")
]
TimeoutOption = Annotated[float, typer.Option(help="Seconds to wait with --wait.")]
PollOption = Annotated[float, typer.Option(help="Seconds between two status requests.")]
NoManifestOption = Annotated[
    bool,
    typer.Option(
        "--no-manifest",
        help="Read a folder without manifest-files.json (every file under data/), unverified.",
    ),
]
NoVerifyOption = Annotated[
    bool,
    typer.Option(
        "--no-verify", help="Do not compare item counts and checksums with the manifests."
    ),
]


def _connection(endpoint_url: str | None, region: str | None) -> Any:
    if endpoint_url is None and region is None:
        return None
    from dynamodel.io.clients import Connection

    return Connection(endpoint_url=endpoint_url, region=region)


def _export_time(text: str | None) -> dt.datetime | None:
    if text is None:
        return None
    try:
        value = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        fail(f"--time {text!r} is not an ISO 8601 time (e.g. 2025-01-31T12:00:00Z)", BAD_INPUT)
    return value if value.utcoffset() is not None else value.replace(tzinfo=dt.UTC)


def _describe_json(description: dict[str, Any]) -> dict[str, Any]:
    return json.loads(json.dumps(description, default=str))  # type: ignore[no-any-return]


def _show_export(description: dict[str, Any], machine: bool) -> None:
    from dynamodel.ops.exports import export_location

    if machine:
        print_json(_describe_json(description))
        return
    out = console
    out.print(
        f"Export [bold]{escape(str(description.get('ExportArn')))}[/bold]: "
        f"{escape(str(description.get('ExportStatus')))}",
        highlight=False,
    )
    for label, key in (
        ("items", "ItemCount"),
        ("billed bytes", "BilledSizeBytes"),
        ("export time", "ExportTime"),
        ("format", "ExportFormat"),
        ("failure", "FailureCode"),
        ("message", "FailureMessage"),
    ):
        if description.get(key) is not None:
            out.print(f"  {label}: {escape(str(description[key]))}", highlight=False)
    location = export_location(description)
    if location and description.get("ExportStatus") == "COMPLETED":
        out.print(
            f"  files: {escape(location)}\n  read them: dynamodel export convert "
            f"{escape(location)} --to jsonl",
            highlight=False,
        )


@app.command()
def start(
    bucket: BucketOption,
    prefix: Annotated[
        str | None,
        typer.Option(help="Key prefix under which AWSDynamoDB/<ExportId>/ is written."),
    ] = None,
    time: Annotated[
        str | None,
        typer.Option(
            "--time",
            help="Point in time to export, ISO 8601 (no zone: UTC); within the PITR window. "
            "Default: now.",
            show_default=False,
        ),
    ] = None,
    export_format: Annotated[
        str, typer.Option("--format", help="DYNAMODB_JSON or ION.")
    ] = "DYNAMODB_JSON",
    bucket_owner: Annotated[
        str | None, typer.Option(help="Account id owning the bucket, if another account.")
    ] = None,
    app: AppOption = None,
    table: TableOption = None,
    table_name: TableNameOption = None,
    endpoint_url: EndpointOption = None,
    region: RegionOption = None,
    wait: WaitOption = False,
    timeout: TimeoutOption = 3600.0,
    poll: PollOption = 10.0,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Print the request; send nothing.")
    ] = False,
    as_json: JsonOut = False,
) -> None:
    """Start a full export of the table to S3 (ExportTableToPointInTime).

    The table needs point-in-time recovery (`Table(point_in_time_recovery=True)`, then
    `dynamodel table sync`). The export consumes no read capacity.
    """
    from dynamodel.ops import exports

    project = open_project(app, table, table_name, endpoint_url, region)
    target = project.table
    format_name = export_format.upper()
    if format_name not in ("DYNAMODB_JSON", "ION"):
        fail(f"--format must be DYNAMODB_JSON or ION, got {export_format!r}", BAD_INPUT)
    with errors(project):
        params = exports.export_request(
            bucket=bucket,
            prefix=prefix,
            export_time=_export_time(time),
            export_format=format_name,  # type: ignore[arg-type]
            bucket_owner=bucket_owner,
        )
    if dry_run:
        request = {"TableArn": f"<ARN of {target.physical_name}>", **params}
        print_json(
            [{"operation": "ExportTableToPointInTime", "parameters": _describe_json(request)}]
        )
        return
    with errors(project):
        description = exports.export_table(
            target,
            bucket=bucket,
            prefix=prefix,
            export_time=_export_time(time),
            export_format=format_name,  # type: ignore[arg-type]
            bucket_owner=bucket_owner,
        )
        if wait:
            if not as_json:
                err_console.print(f"Waiting for {description['ExportArn']} ...", markup=False)
            description = exports.wait_export(
                description["ExportArn"], timeout=timeout, poll=poll, table=target
            )
    _show_export(description, as_json)


@app.command()
def status(
    arn: Annotated[str, typer.Argument(help="The export's ARN (ExportArn).")],
    endpoint_url: EndpointOption = None,
    region: RegionOption = None,
    wait: WaitOption = False,
    timeout: TimeoutOption = 3600.0,
    poll: PollOption = 10.0,
    as_json: JsonOut = False,
) -> None:
    """Show an export's status (DescribeExport); exit 1 when it FAILED."""
    from dynamodel.ops import exports

    connection = _connection(endpoint_url, region)
    with errors():
        if wait:
            description = exports.wait_export(
                arn, timeout=timeout, poll=poll, connection=connection
            )
        else:
            description = exports.describe_export(arn, connection=connection)
    _show_export(description, as_json)
    if description.get("ExportStatus") == "FAILED":
        raise typer.Exit(FAILED)


# -- reading an export ------------------------------------------------------------------------


def _reader(
    path: str, project: Any, no_manifest: bool, no_verify: bool, on_unrouted: Any = None
) -> Any:
    from dynamodel.ops.exports import ExportError, read_export

    try:
        return read_export(
            path,
            table=project.table,
            verify=not no_verify,
            strict=False,
            require_manifest=not no_manifest,
            on_unrouted=on_unrouted,
        )
    except ExportError as error:
        fail(str(error), BAD_INPUT)


def _report_text(report: Any, where: str) -> None:
    out = err_console
    by_model = ", ".join(f"{name}: {count:,}" for name, count in sorted(report.by_model.items()))
    out.print(
        f"{where}: {report.items:,} items in {len(report.files)} file(s)"
        + (f" (manifest: {report.expected_items:,})" if report.expected_items is not None else ""),
        markup=False,
        highlight=False,
    )
    if by_model:
        out.print(f"  models: {by_model}", markup=False, highlight=False)
    if report.unrouted:
        unrouted = ", ".join(
            f"{kind}: {count:,}" for kind, count in sorted(report.unrouted.items())
        )
        out.print(f"  not routed to a model: {unrouted}", markup=False, highlight=False)
    for problem in report.problems:
        out.print(f"[red]mismatch:[/red] {escape(problem)}", highlight=False)


def _unrouted_json(record: Any) -> dict[str, Any]:
    from dynamodel.ops.exports import item_to_json

    return {
        "unrouted": record.kind,
        "reason": record.reason,
        "file": record.file,
        "line": record.line,
        "entity": record.entity,
        "item": json.loads(item_to_json(record.raw))["Item"] if record.raw is not None else None,
        "text": record.text,
    }


def _plain(value: Any) -> Any:
    """JSON for what a model dump holds besides JSON's own types: bytes as base64, numbers
    (Decimal) and times as text, sets as lists."""
    import base64
    import enum
    import uuid
    from decimal import Decimal

    if isinstance(value, bytes | bytearray):
        return base64.b64encode(bytes(value)).decode("ascii")
    if isinstance(value, set | frozenset):
        try:
            return sorted(value)
        except TypeError:
            return list(value)
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, Decimal | uuid.UUID):
        return str(value)
    raise TypeError(f"{type(value).__name__} cannot be written as JSON")


@contextmanager
def _output(path: Path | None) -> Iterator[IO[str]]:
    if path is None or str(path) == "-":
        yield sys.stdout
        return
    with path.open("w", encoding="utf-8") as handle:
        yield handle


@app.command()
def check(
    path: Annotated[
        str,
        typer.Argument(
            help="The export folder (.../AWSDynamoDB/<ExportId>), a manifest in it, or its "
            "prefix when it holds one export; a local path or s3://bucket/key."
        ),
    ],
    app: AppOption = None,
    table: TableOption = None,
    no_manifest: NoManifestOption = False,
    as_json: JsonOut = False,
) -> None:
    """Read every item of an export through the models: counts per model, items no model
    takes, and the manifests' item counts and checksums. Exit 1 on a mismatch, an item that
    does not fit its model or a line that is not an item."""
    project = open_project(app, table)
    reader = _reader(path, project, no_manifest, False, on_unrouted=lambda record: None)
    with errors(project):
        for _ in reader:
            pass
    report = reader.report
    if as_json:
        print_json({"location": reader.manifest.location, **report.as_dict()})
    else:
        _report_text(report, reader.manifest.location)
    broken = report.unrouted.get("invalid_item", 0) + report.unrouted.get("invalid_line", 0)
    if report.problems or broken:
        raise typer.Exit(FAILED)


def _disposal(record: Any, unrouted: Unrouted, failed: list[str]) -> bool:
    """Whether to keep an unrouted record; one that is neither kept nor skipped is added to
    ``failed``."""
    if unrouted is Unrouted.skip:
        return False
    if unrouted is Unrouted.keep and record.raw is not None:
        return True
    failed.append(f"{record.file} line {record.line}: {record.kind}: {record.reason}")
    return False


@app.command()
def convert(
    path: Annotated[
        str,
        typer.Argument(
            help="The export folder (.../AWSDynamoDB/<ExportId>), a manifest in it, or its "
            "prefix when it holds one export; a local path or s3://bucket/key."
        ),
    ],
    to: Annotated[
        Target,
        typer.Option(
            "--to",
            help='jsonl: one JSON object per model instance ({"model", "item"}); '
            "import: import-ready files (DynamoDB JSON, gzip) and their manifests in --out.",
        ),
    ] = Target.jsonl,
    out: Annotated[
        Path | None,
        typer.Option(
            "--out",
            "-o",
            help="jsonl: the file to write (default: stdout); import: the folder (required).",
            show_default=False,
        ),
    ] = None,
    unrouted: Annotated[
        Unrouted,
        typer.Option(
            help="Items no model takes (unknown entity, invalid item, dynamodel's own "
            'records): keep them (jsonl: as {"unrouted": kind, ...} lines; import: the item '
            "as stored), skip them (counted), or fail (exit 1). Lines that are not items "
            "cannot be kept: they fail unless skipped.",
        ),
    ] = Unrouted.keep,
    max_file_bytes: Annotated[
        int, typer.Option(help="import: bound of one data file before compression.")
    ] = 128 * 1024 * 1024,
    app: AppOption = None,
    table: TableOption = None,
    no_manifest: NoManifestOption = False,
    no_verify: NoVerifyOption = False,
    as_json: Annotated[
        bool,
        typer.Option(
            "--json",
            help="Print the result as JSON (on stdout; on stderr when the JSON lines go to "
            "stdout).",
        ),
    ] = False,
) -> None:
    """Convert an export's files through the models: to JSON lines, or to import-ready files
    (`dynamodel import start --upload FOLDER`). Exit 1 when something did not match or was
    not kept."""
    from dynamodel.ops.exports import ExportItem

    project = open_project(app, table)
    reader = _reader(path, project, no_manifest, no_verify)
    failed: list[str] = []
    written = 0
    if to is Target.import_files:
        if out is None:
            fail("--to import needs --out FOLDER", BAD_INPUT)
        from dynamodel.ops.imports import ImportWriter

        with errors(project):
            with ImportWriter(
                out,
                table=project.table,
                max_file_bytes=max_file_bytes,
                unique_guards=False,  # the export's own guard records are carried over
            ) as writer:
                for record in reader.records():
                    if isinstance(record, ExportItem):
                        writer.write(record.item)
                    elif record.kind == "internal" and record.raw is not None:
                        writer.write_item(record.raw)  # guards, shard layouts: carried over
                    elif _disposal(record, unrouted, failed) and record.raw is not None:
                        writer.write_item(record.raw)
                    elif failed and unrouted is Unrouted.fail:
                        break
                    else:
                        continue
                    written += 1
            files = writer.result
        summary: dict[str, Any] = {
            "folder": str(out),
            "files": len(files.files) if files else 0,
            "items": files.item_count if files else 0,
        }
    else:
        with errors(project), _output(out) as handle:
            for record in reader.records():
                if isinstance(record, ExportItem):
                    line = {
                        "model": type(record.item).__name__,
                        "item": record.item.model_dump(),
                    }
                elif record.kind == "internal":
                    continue  # dynamodel's own records: not application data (counted)
                elif _disposal(record, unrouted, failed):
                    line = _unrouted_json(record)
                elif failed and unrouted is Unrouted.fail:
                    break
                else:
                    continue
                handle.write(json.dumps(line, ensure_ascii=False, default=_plain) + "\n")
                written += 1
        summary = {"file": str(out) if out else "-", "lines": written}
    report = reader.report
    if as_json:
        result = {**summary, "not_kept": failed, "report": report.as_dict()}
        if to is Target.jsonl and (out is None or str(out) == "-"):  # stdout holds the lines
            err_console.print_json(data=result, default=str)
        else:
            print_json(result)
    else:
        _report_text(report, reader.manifest.location)
        for problem in failed[:20]:
            err_console.print(f"[red]not kept:[/red] {escape(problem)}", highlight=False)
        if len(failed) > 20:
            err_console.print(f"... and {len(failed) - 20} more", highlight=False)
        target = summary.get("folder") or summary.get("file")
        err_console.print(
            f"Wrote {written:,} record(s) to {target}.", markup=False, highlight=False
        )
    if report.problems or failed:
        raise typer.Exit(FAILED)


# -- imports ------------------------------------------------------------------------------------


def _show_import(description: dict[str, Any], machine: bool, follow_ups: list[str]) -> None:
    if machine:
        print_json({**_describe_json(description), "FollowUps": follow_ups})
        return
    console.print(
        f"Import [bold]{escape(str(description.get('ImportArn')))}[/bold]: "
        f"{escape(str(description.get('ImportStatus')))}",
        highlight=False,
    )
    for label, key in (
        ("table", "TableArn"),
        ("processed items", "ProcessedItemCount"),
        ("imported items", "ImportedItemCount"),
        ("errors", "ErrorCount"),
        ("failure", "FailureCode"),
        ("message", "FailureMessage"),
    ):
        if description.get(key) is not None:
            console.print(f"  {label}: {escape(str(description[key]))}", highlight=False)
    if follow_ups:
        console.print(
            "  ImportTable does not apply: "
            + escape(", ".join(follow_ups))
            + ". Once the import is COMPLETED, run `dynamodel table sync` on the new table.",
            highlight=False,
        )


@import_app.command("start")
def import_start(
    bucket: BucketOption,
    prefix: Annotated[
        str,
        typer.Option(
            help="Key prefix of the data objects (every object under it is imported; for an "
            "export: <prefix>/AWSDynamoDB/<ExportId>/data/). With --upload: where the folder is "
            "uploaded (its data objects then are under PREFIX/data/).",
            show_default=False,
        ),
    ],
    table_name: Annotated[
        str | None,
        typer.Option(
            "--table-name",
            help="Name of the new table (default: the declared one). It must not exist.",
            show_default=False,
        ),
    ] = None,
    upload: Annotated[
        Path | None,
        typer.Option(
            "--upload",
            help="First upload this folder of import-ready files (written by `dynamodel "
            "export convert --to import`) to s3://BUCKET/PREFIX/.",
            show_default=False,
        ),
    ] = None,
    compression: Annotated[
        str, typer.Option(help="GZIP, ZSTD or NONE: how the data objects are compressed.")
    ] = "GZIP",
    app: AppOption = None,
    table: TableOption = None,
    endpoint_url: EndpointOption = None,
    region: RegionOption = None,
    wait: WaitOption = False,
    timeout: TimeoutOption = 3600.0,
    poll: PollOption = 10.0,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Print the request; send and upload nothing.")
    ] = False,
    as_json: JsonOut = False,
) -> None:
    """Create a NEW table from S3 data (ImportTable), with the keys, billing and GSIs the
    models declare. Consumes no write capacity; tables with LSIs cannot be imported."""
    from dynamodel.ops import imports

    project = open_project(app, table, table_name, endpoint_url, region)
    target = project.table
    compression = compression.upper()
    if compression not in ("GZIP", "ZSTD", "NONE"):
        fail(f"--compression must be GZIP, ZSTD or NONE, got {compression!r}", BAD_INPUT)
    data = imports.data_prefix(prefix) if upload is not None else prefix
    try:
        request = imports.import_request(
            target,
            bucket=bucket,
            prefix=data,
            compression=compression,  # type: ignore[arg-type]
        )
    except DynamodelError as error:
        fail(str(error), BAD_INPUT)
    if dry_run:
        print_json([{"operation": "ImportTable", "parameters": request}])
        return
    follow_ups = imports.import_follow_ups(target)
    with errors(project):
        if upload is not None:
            keys = imports.upload_import_files(upload, bucket=bucket, prefix=prefix)
            if not as_json:
                err_console.print(
                    f"Uploaded {len(keys)} file(s) to s3://{bucket}/{prefix.strip('/')}/",
                    markup=False,
                    highlight=False,
                )
        description = imports.import_table(
            target,
            bucket=bucket,
            prefix=data,
            compression=compression,  # type: ignore[arg-type]
        )
        if wait:
            if not as_json:
                err_console.print(f"Waiting for {description['ImportArn']} ...", markup=False)
            description = imports.wait_import(
                description["ImportArn"], timeout=timeout, poll=poll, table=target
            )
    _show_import(description, as_json, follow_ups)


@import_app.command("status")
def import_status(
    arn: Annotated[str, typer.Argument(help="The import's ARN (ImportArn).")],
    endpoint_url: EndpointOption = None,
    region: RegionOption = None,
    wait: WaitOption = False,
    timeout: TimeoutOption = 3600.0,
    poll: PollOption = 10.0,
    as_json: JsonOut = False,
) -> None:
    """Show an import's status (DescribeImport); exit 1 when it FAILED or was CANCELLED."""
    from dynamodel.ops import imports

    connection = _connection(endpoint_url, region)
    with errors():
        if wait:
            description = imports.wait_import(
                arn, timeout=timeout, poll=poll, connection=connection
            )
        else:
            description = imports.describe_import(arn, connection=connection)
    _show_import(description, as_json, [])
    if description.get("ImportStatus") in ("FAILED", "CANCELLED"):
        raise typer.Exit(FAILED)
