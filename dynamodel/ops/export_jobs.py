"""Starting and following exports: ExportTableToPointInTime, DescribeExport, waits (see
`dynamodel.ops.exports`)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from dynamodel.core.errors import DynamodelError, ValidationError
from dynamodel.core.flows import Flow, Request, Sleep, call, connection_inputs
from dynamodel.ops.export_errors import (
    ExportFormat,
    explained,
)

if TYPE_CHECKING:
    from dynamodel.io.clients import Connection
    from dynamodel.modelling.table import Table


# -- the API: start and follow an export --------------------------------------------------------


def _endpoint(connection: Connection) -> str | None:
    if connection.endpoint_url:
        return connection.endpoint_url
    return None


def _export_flow(
    table: Table,
    params: dict[str, Any],
    endpoint: str | None,
) -> Flow[dict[str, Any]]:

    def start() -> Flow[dict[str, Any]]:
        described = yield from table._describe_flow()
        request = {"TableArn": described["TableArn"], **params}
        response: dict[str, Any] = yield from call(
            Request("export_table_to_point_in_time", request, control=True)
        )
        return response

    response = yield from explained(start(), "ExportTableToPointInTime", endpoint)
    description: dict[str, Any] = response["ExportDescription"]
    return description


def export_request(
    *,
    bucket: str,
    prefix: str | None = None,
    export_time: dt.datetime | None = None,
    export_format: ExportFormat = "DYNAMODB_JSON",
    bucket_owner: str | None = None,
    client_token: str | None = None,
) -> dict[str, Any]:
    """The ``ExportTableToPointInTime`` parameters besides ``TableArn`` (a full export)."""
    if export_format not in ("DYNAMODB_JSON", "ION"):
        raise ValidationError(f"export_format must be DYNAMODB_JSON or ION, got {export_format!r}")
    params: dict[str, Any] = {
        "S3Bucket": bucket,
        "ExportFormat": export_format,
        "ExportType": "FULL_EXPORT",
    }
    if prefix:
        params["S3Prefix"] = prefix.strip("/")
    if export_time is not None:
        if export_time.utcoffset() is None:
            raise ValidationError(
                f"export_time {export_time.isoformat()} has no time zone: give an aware "
                "datetime (datetime(..., tzinfo=UTC))"
            )
        params["ExportTime"] = export_time
    if bucket_owner:
        params["S3BucketOwner"] = bucket_owner
    if client_token:
        params["ClientToken"] = client_token
    return params


def _token() -> str:
    import uuid

    return uuid.uuid4().hex


def export_table(
    table: Table,
    *,
    bucket: str,
    prefix: str | None = None,
    export_time: dt.datetime | None = None,
    export_format: ExportFormat = "DYNAMODB_JSON",
    bucket_owner: str | None = None,
    client_token: str | None = None,
    connection: Connection | None = None,
) -> dict[str, Any]:
    """Start a full export of the table to S3 (``ExportTableToPointInTime``); returns its
    ``ExportDescription`` (``ExportArn``, ``ExportStatus``...).

    The table needs point-in-time recovery (``Table(point_in_time_recovery=True)``). The
    export reads no capacity. ``export_time``: the point in time to export (aware datetime,
    within the PITR window; default: now). ``client_token`` makes retries idempotent (one is
    drawn when not given). An endpoint without the API raises `UnsupportedOperation`.
    """
    from dynamodel.io.executors import run

    params = export_request(
        bucket=bucket,
        prefix=prefix,
        export_time=export_time,
        export_format=export_format,
        bucket_owner=bucket_owner,
        client_token=client_token or _token(),
    )
    resolved = table._resolve(connection)
    return run(_export_flow(table, params, _endpoint(resolved)), resolved)


async def aexport_table(
    table: Table,
    *,
    bucket: str,
    prefix: str | None = None,
    export_time: dt.datetime | None = None,
    export_format: ExportFormat = "DYNAMODB_JSON",
    bucket_owner: str | None = None,
    client_token: str | None = None,
    connection: Connection | None = None,
) -> dict[str, Any]:
    """Async `export_table`."""
    from dynamodel.io.executors import arun

    params = export_request(
        bucket=bucket,
        prefix=prefix,
        export_time=export_time,
        export_format=export_format,
        bucket_owner=bucket_owner,
        client_token=client_token or _token(),
    )
    resolved = table._resolve(connection)
    return await arun(_export_flow(table, params, _endpoint(resolved)), resolved)


def _describe_flow(
    op: str, arn_name: str, arn: str, key: str, endpoint: str | None
) -> Flow[dict[str, Any]]:
    api = "".join(p.capitalize() for p in op.split("_"))
    response = yield from explained(call(Request(op, {arn_name: arn}, control=True)), api, endpoint)
    description: dict[str, Any] = response[key]
    return description


def wait_flow(
    op: str,
    arn_name: str,
    arn: str,
    key: str,
    status_key: str,
    timeout: float,
    poll: float,
    endpoint: str | None,
) -> Flow[dict[str, Any]]:
    """Describe until the status is no longer in progress; raise on failure or timeout."""
    clock = (yield from connection_inputs()).clock
    deadline = clock() + timeout
    while True:
        description = yield from _describe_flow(op, arn_name, arn, key, endpoint)
        status = description.get(status_key)
        if status == "COMPLETED":
            return description
        if status in ("FAILED", "CANCELLED"):
            raise DynamodelError(
                f"{arn}: {status}: {description.get('FailureCode')}: "
                f"{description.get('FailureMessage')}",
                code=str(description.get("FailureCode") or status),
            )
        if clock() >= deadline:
            raise DynamodelError(f"{arn} still {status} after {timeout:.0f}s")
        yield Sleep(poll)


def _connection(connection: Connection | None, table: Table | None = None) -> Connection:
    """``connection``, else the scoped one, else ``table``'s, else the default one."""
    from dynamodel.io.scope import resolve_connection

    return resolve_connection(table, connection)


def describe_export(
    arn: str, *, table: Table | None = None, connection: Connection | None = None
) -> dict[str, Any]:
    """The ``ExportDescription`` of an export (``DescribeExport``): status, item count,
    ``ExportManifest`` (the S3 key of its ``manifest-summary.json``)..."""
    from dynamodel.io.executors import run

    resolved = _connection(connection, table)
    flow = _describe_flow(
        "describe_export", "ExportArn", arn, "ExportDescription", _endpoint(resolved)
    )
    return run(flow, resolved)


async def adescribe_export(
    arn: str, *, table: Table | None = None, connection: Connection | None = None
) -> dict[str, Any]:
    """Async `describe_export`."""
    from dynamodel.io.executors import arun

    resolved = _connection(connection, table)
    flow = _describe_flow(
        "describe_export", "ExportArn", arn, "ExportDescription", _endpoint(resolved)
    )
    return await arun(flow, resolved)


def wait_export(
    arn: str,
    *,
    timeout: float = 3600.0,
    poll: float = 10.0,
    table: Table | None = None,
    connection: Connection | None = None,
) -> dict[str, Any]:
    """Wait until the export is COMPLETED and return its description; a FAILED export raises
    `DynamodelError` with its ``FailureCode`` and ``FailureMessage``."""
    from dynamodel.io.executors import run

    resolved = _connection(connection, table)
    flow = wait_flow(
        "describe_export",
        "ExportArn",
        arn,
        "ExportDescription",
        "ExportStatus",
        timeout,
        poll,
        _endpoint(resolved),
    )
    return run(flow, resolved)


async def await_export(
    arn: str,
    *,
    timeout: float = 3600.0,
    poll: float = 10.0,
    table: Table | None = None,
    connection: Connection | None = None,
) -> dict[str, Any]:
    """Async `wait_export`."""
    from dynamodel.io.executors import arun

    resolved = _connection(connection, table)
    flow = wait_flow(
        "describe_export",
        "ExportArn",
        arn,
        "ExportDescription",
        "ExportStatus",
        timeout,
        poll,
        _endpoint(resolved),
    )
    return await arun(flow, resolved)


def export_location(description: Mapping[str, Any]) -> str | None:
    """The ``s3://`` URL of a completed export's folder (from ``ExportManifest``, the key of
    its ``manifest-summary.json``), or None when the description does not say."""
    bucket = description.get("S3Bucket")
    manifest = description.get("ExportManifest")
    if not isinstance(bucket, str) or not isinstance(manifest, str):
        return None
    folder = manifest.rsplit("/", 1)[0] if "/" in manifest else ""
    return f"s3://{bucket}/{folder}"
