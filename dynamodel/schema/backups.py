"""On-demand backups, point-in-time recovery (PITR) and restores of a declared table.

```python
backup = backups.create_backup(table)                  # CreateBackup, named after the table
restored = backups.restore_from_backup(table, backup.arn, to="orders-restored")
restored = backups.restore_to_point_in_time(table, to="orders-0930", at=when)  # aware datetime
window = backups.pitr_window(table)                    # earliest/latest restorable times
```

A restore always creates a **new** table. DynamoDB does not carry over TTL, the stream, tags or
(for point-in-time restores) PITR itself; each restore here waits until the new table is ACTIVE,
then applies them again from the declaration (the `Table`'s follow-up requests, its stream, tags
and deletion protection), and returns a copy of the declaration bound to the new name. Your
models keep using their own `Table`: point them at the restored table with
``table.bind(name=restored.physical_name)`` once you have checked it (docs/backups.md).

Every function takes the declared `Table` (its physical name and connection). Names are checked
(3-255 characters of ``A-Z a-z 0-9 _ . -``) and naive datetimes refused before any request. An
endpoint without the backups API (dynoxide, for one) raises `BackupsUnsupported`, naming the
endpoint and the operation.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, TypeVar

from dynamodel.core.errors import (
    UNSUPPORTED_CODES,
    DynamodelError,
    TableNotFound,
    ValidationError,
)
from dynamodel.core.flows import Flow, Request, call, connection_inputs
from dynamodel.io.scope import resolve_connection
from dynamodel.modelling.table import Table, _check_name
from dynamodel.modelling.tenancy import refuse_in_tenant_scope
from dynamodel.schema.changes import PlanStep, _operation_name
from dynamodel.schema.live import apply_flow, describe_flow
from dynamodel.schema.shapes import on_off

if TYPE_CHECKING:
    from dynamodel.io.clients import Connection

T = TypeVar("T")

__all__ = [
    "Backup",
    "BackupNotFound",
    "BackupType",
    "BackupsUnsupported",
    "PitrUnavailable",
    "PitrWindow",
    "RestoreTargetExists",
    "aapply_restore_settings",
    "acreate_backup",
    "adelete_backup",
    "adescribe_backup",
    "aenable_pitr",
    "alist_backups",
    "apitr_window",
    "apply_restore_settings",
    "arestore_from_backup",
    "arestore_to_point_in_time",
    "create_backup",
    "delete_backup",
    "describe_backup",
    "enable_pitr",
    "list_backups",
    "pitr_window",
    "restore_from_backup",
    "restore_requests",
    "restore_to_point_in_time",
]

#: PITR's longest recovery period, and its default (``RecoveryPeriodInDays``: 1 to 35)
MAX_RECOVERY_DAYS = 35

BackupType = Literal["USER", "SYSTEM", "AWS_BACKUP", "ALL"]


# -- errors ---------------------------------------------------------------------------------------


class BackupsUnsupported(DynamodelError):
    """The endpoint does not implement a backup or restore operation (a local emulator).

    Attributes:
        operation: the API operation (``CreateBackup``, ``RestoreTableToPointInTime``...).
        endpoint: the endpoint URL, when known.
    """

    def __init__(
        self,
        operation: str,
        detail: str = "",
        *,
        endpoint: str | None = None,
        code: str | None = None,
    ) -> None:
        where = f"the endpoint {endpoint}" if endpoint else "the endpoint"
        text = f"{where} does not support {operation}"
        if detail:
            text += f" ({detail})"
        super().__init__(
            text + ": use DynamoDB itself, or moto (`dynamodel local`) to try backups locally",
            code=code,
        )
        self.operation = operation
        self.detail = detail
        self.endpoint = endpoint

    def at(self, endpoint: str) -> BackupsUnsupported:
        """The same error naming ``endpoint``."""
        return BackupsUnsupported(self.operation, self.detail, endpoint=endpoint, code=self.code)


class BackupNotFound(DynamodelError, LookupError):
    """No backup has this ARN (deleted, or in another account or region). ``arn``: the ARN."""

    code = "BackupNotFoundException"

    def __init__(self, message: str, *, arn: str) -> None:
        super().__init__(message)
        self.arn = arn


class RestoreTargetExists(DynamodelError):
    """A restore was asked into a table that already exists (restores create a new table).

    ``table`` is its name, ``table_status`` its status (``ACTIVE``, ``DELETING``...) when known.
    """

    code = "TableAlreadyExistsException"

    def __init__(self, message: str, *, table: str, table_status: str | None = None) -> None:
        super().__init__(message)
        self.table = table
        self.table_status = table_status


class PitrUnavailable(DynamodelError):
    """A point-in-time restore of a table without point-in-time recovery, or at a time outside
    its recovery window. ``window`` is the `PitrWindow` when it could be read."""

    def __init__(
        self, message: str, *, code: str | None = None, window: PitrWindow | None = None
    ) -> None:
        super().__init__(message, code=code)
        self.window = window


# -- results --------------------------------------------------------------------------------------


def _utc(value: Any) -> dt.datetime | None:
    """A response timestamp as an aware UTC datetime (boto3 gives datetimes, JSON epochs)."""
    if value is None:
        return None
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:  # botocore always sets a zone; be safe
            return value.replace(tzinfo=dt.UTC)
        return value.astimezone(dt.UTC)
    if isinstance(value, int | float):
        return dt.datetime.fromtimestamp(value, dt.UTC)
    return dt.datetime.fromisoformat(str(value)).astimezone(dt.UTC)


def _iso(value: dt.datetime | None) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value is not None else None


def _table_of_arn(arn: str) -> str | None:
    """``orders`` from ``arn:aws:dynamodb:region:account:table/orders/backup/0170...``."""
    _, _, rest = arn.partition(":table/")
    name = rest.split("/", 1)[0]
    return name or None


@dataclass(frozen=True)
class Backup:
    """One on-demand backup.

    Attributes:
        arn: the backup's ARN (what `restore_from_backup` and `delete_backup` take).
        name: its name.
        table_name: the table it was made of.
        status: ``CREATING``, ``AVAILABLE`` or ``DELETED``.
        size_bytes: its size (DynamoDB reports it some hours late; None when not reported).
        created: when it was made (aware, UTC).
        type: ``USER`` (CreateBackup), ``SYSTEM`` (made by DynamoDB, e.g. when a table is
            deleted with a backup) or ``AWS_BACKUP`` (made by AWS Backup).
        expires: when a ``SYSTEM`` backup expires (None otherwise).
        raw: the response member it was read from (``DescribeBackup`` adds the source table's
            details and features: ``SourceTableDetails``, ``SourceTableFeatureDetails``).
    """

    arn: str
    name: str
    table_name: str | None
    status: str
    size_bytes: int | None
    created: dt.datetime | None
    type: str | None = None
    expires: dt.datetime | None = None
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_response(cls, data: dict[str, Any], table_name: str | None = None) -> Backup:
        """From a ``BackupSummary``, ``BackupDetails`` or ``BackupDescription``."""
        details = data.get("BackupDetails", data)
        source = data.get("SourceTableDetails") or {}
        arn = str(details["BackupArn"])
        size = details.get("BackupSizeBytes")
        return cls(
            arn=arn,
            name=str(details.get("BackupName", "")),
            table_name=data.get("TableName")
            or source.get("TableName")
            or table_name
            or _table_of_arn(arn),
            status=str(details.get("BackupStatus", "")),
            size_bytes=int(size) if size is not None else None,
            created=_utc(details.get("BackupCreationDateTime")),
            type=details.get("BackupType"),
            expires=_utc(details.get("BackupExpiryDateTime")),
            raw=dict(data),
        )

    def as_dict(self) -> dict[str, Any]:
        """Plain JSON-ready values (times as ISO-8601 text in UTC)."""
        return {
            "arn": self.arn,
            "name": self.name,
            "table": self.table_name,
            "status": self.status,
            "size_bytes": self.size_bytes,
            "created": _iso(self.created),
            "type": self.type,
            "expires": _iso(self.expires),
        }


@dataclass(frozen=True)
class PitrWindow:
    """A table's point-in-time recovery settings and restorable window.

    Attributes:
        table_name: the table.
        status: ``ENABLED``, ``ENABLING`` or ``DISABLED``.
        earliest: the earliest restorable time (aware, UTC; None while disabled).
        latest: the latest restorable time, typically about 5 minutes ago.
        recovery_period_days: how many days back restores can go (1-35; 35 by default).
        continuous_backups: ``ContinuousBackupsStatus`` (``ENABLED`` on every current table).
    """

    table_name: str
    status: str
    earliest: dt.datetime | None
    latest: dt.datetime | None
    recovery_period_days: int | None
    continuous_backups: str | None = None

    @property
    def enabled(self) -> bool:
        """Whether point-in-time recovery is on (or being turned on)."""
        return self.status in ("ENABLED", "ENABLING")

    @classmethod
    def from_response(cls, table_name: str, data: dict[str, Any]) -> PitrWindow:
        """From a ``ContinuousBackupsDescription``."""
        pitr = data.get("PointInTimeRecoveryDescription") or {}
        days = pitr.get("RecoveryPeriodInDays")
        return cls(
            table_name=table_name,
            status=str(pitr.get("PointInTimeRecoveryStatus", "DISABLED")),
            earliest=_utc(pitr.get("EarliestRestorableDateTime")),
            latest=_utc(pitr.get("LatestRestorableDateTime")),
            recovery_period_days=int(days) if days is not None else None,
            continuous_backups=data.get("ContinuousBackupsStatus"),
        )

    def as_dict(self) -> dict[str, Any]:
        """Plain JSON-ready values (times as ISO-8601 text in UTC)."""
        return {
            "table": self.table_name,
            "status": self.status,
            "enabled": self.enabled,
            "earliest": _iso(self.earliest),
            "latest": _iso(self.latest),
            "recovery_period_days": self.recovery_period_days,
            "continuous_backups": self.continuous_backups,
        }

    def describe(self) -> str:
        """One line: the status and, when enabled, the window."""
        if not self.enabled:
            return f"point-in-time recovery is {self.status.lower()} on table {self.table_name!r}"
        days = self.recovery_period_days or MAX_RECOVERY_DAYS
        return (
            f"point-in-time recovery is {self.status.lower()} on table {self.table_name!r}: "
            f"restorable from {_iso(self.earliest)} to {_iso(self.latest)} "
            f"(recovery period {days} days)"
        )


# -- checks and requests --------------------------------------------------------------------------


def _check_time(at: dt.datetime) -> dt.datetime:
    if not isinstance(at, dt.datetime):
        raise ValidationError(f"a restore time must be a datetime, got {at!r}. Nothing was sent")
    if at.utcoffset() is None:
        raise ValidationError(
            f"restore time {at.isoformat()} is a naive datetime (no time zone), so the instant it "
            "means depends on this machine's clock zone: pass an aware one, e.g. "
            "datetime(2025, 3, 1, 9, 30, tzinfo=UTC). Nothing was sent"
        )
    return at.astimezone(dt.UTC)


def _check_days(days: int | None) -> None:
    if days is not None and (
        isinstance(days, bool) or not isinstance(days, int) or not 1 <= days <= MAX_RECOVERY_DAYS
    ):
        raise ValidationError(
            f"recovery_period_days must be a whole number of days from 1 to {MAX_RECOVERY_DAYS}, "
            f"got {days!r}. Nothing was sent"
        )


def restore_requests(
    table: Table,
    to: str,
    *,
    backup_arn: str | None = None,
    at: dt.datetime | None = None,
    latest: bool = False,
) -> list[Request]:
    """The requests a restore sends, in order, without sending them (``--dry-run``).

    The restore itself (``RestoreTableFromBackup`` with ``backup_arn``, else
    ``RestoreTableToPointInTime`` at ``at`` or the ``latest`` restorable time), then what the
    declaration asks for and a restore does not carry over: the stream and deletion protection
    (``UpdateTable``), the follow-up requests of `Table.create` (TTL, PITR...) and the tags
    (``TagResource``; the new table's ARN is known only once it exists, shown here as
    ``<arn of NEW>``). At run time, a setting the new table already has is not sent again.

    Raises `dynamodel.core.errors.ValidationError` for a bad name, a naive datetime, or not
    exactly one of ``backup_arn``, ``at`` and ``latest``.
    """
    target = _target(table, to)
    first = _restore_request(table, to, backup_arn, at, latest)
    return [first, *_settings_requests(target, f"<arn of {to}>")]


def _target(table: Table, to: str) -> Table:
    """A copy of the declaration bound to the restored table's name (the models registered on
    it too, so multi-attribute GSIs know their key types; they keep using ``table``)."""
    _check_name("restored table name", to)
    target = table.replace()
    for model in table.entities.values():
        target.register(model)
    return target.bind(name=to)


def _restore_request(
    table: Table, to: str, backup_arn: str | None, at: dt.datetime | None, latest: bool
) -> Request:
    chosen = [x for x in (backup_arn is not None, at is not None, latest) if x]
    if len(chosen) != 1:
        raise ValidationError(
            "restore from exactly one of: a backup ARN, a point in time (an aware datetime), or "
            "the latest restorable time. Nothing was sent"
        )
    _check_name("restored table name", to)
    if backup_arn is not None:
        if not isinstance(backup_arn, str) or not (
            backup_arn.startswith("arn:") and "/backup/" in backup_arn
        ):
            raise ValidationError(
                f"{backup_arn!r} is not a backup ARN (arn:aws:dynamodb:REGION:ACCOUNT:table/"
                "TABLE/backup/ID; list them with backups.list_backups or `dynamodel table "
                "backups`). Nothing was sent"
            )
        return Request(
            "restore_table_from_backup",
            {"TargetTableName": to, "BackupArn": backup_arn},
            control=True,
        )
    params: dict[str, Any] = {"SourceTableName": table.physical_name, "TargetTableName": to}
    if at is not None:
        params["RestoreDateTime"] = _check_time(at)
    else:
        params["UseLatestRestorableTime"] = True
    return Request("restore_table_to_point_in_time", params, control=True)


def _settings_requests(target: Table, arn: str, live: Any = None) -> list[Request]:
    """What a restore drops and the declaration asks for; with ``live`` (a `LiveTable` of the
    restored table), only what it lacks."""
    shape = live.shape if live is not None else None
    name = target.physical_name
    out: list[Request] = []
    if target.stream and (shape is None or shape.stream is None):
        spec = {"StreamEnabled": True, "StreamViewType": target.stream}
        out.append(
            Request("update_table", {"TableName": name, "StreamSpecification": spec}, control=True)
        )
    if target.deletion_protection and (shape is None or not shape.deletion_protection):
        out.append(
            Request(
                "update_table",
                {"TableName": name, "DeletionProtectionEnabled": True},
                control=True,
            )
        )
    for request in target.follow_up_requests():
        if shape is not None and request.op == "update_time_to_live" and shape.ttl == target.ttl:
            continue
        if shape is not None and request.op == "update_continuous_backups" and shape.pitr:
            continue
        out.append(request)
    if target.tags:
        tags = [{"Key": k, "Value": v} for k, v in target.tags.items()]
        out.append(Request("tag_resource", {"ResourceArn": arn, "Tags": tags}, control=True))
    return out


# -- flows ----------------------------------------------------------------------------------------


def _backup_call(request: Request) -> Flow[dict[str, Any]]:
    """Send one backups-API request, turning its errors into ones that say what to do."""
    try:
        response = yield from call(request)
    except DynamodelError as error:
        mapped = _translate(error, request)
        if mapped is error:
            raise
        raise mapped from error
    return response


def _translate(error: DynamodelError, request: Request) -> DynamodelError:
    operation = _operation_name(request.op)
    params = request.params
    code = error.code
    if code in UNSUPPORTED_CODES:
        return BackupsUnsupported(operation, str(error).rstrip(": "), code=code)
    if code in ("TableNotFoundException", "SourceTableNotFoundException"):
        name = params.get("TableName") or params.get("SourceTableName")
        return TableNotFound(
            f"{error}. No table {name!r} here: check the table name, region and endpoint",
            table=name,
        )
    if code == "BackupNotFoundException":
        arn = str(params.get("BackupArn"))
        return BackupNotFound(
            f"{error}. No backup {arn} here (deleted, or in another account or region): list "
            "them with backups.list_backups or `dynamodel table backups`",
            arn=arn,
        )
    restoring = request.op.startswith("restore_")
    if restoring and code in ("TableAlreadyExistsException", "TableInUseException"):
        return _exists_error(str(params.get("TargetTableName")), None)
    return error


def _exists_error(name: str, status: str | None) -> RestoreTargetExists:
    state = f" ({status})" if status else ""
    hint = (
        "wait until its deletion ends, or restore into another name"
        if status == "DELETING"
        else "a restore always creates a new table: choose a name no table has, or delete "
        "that table first"
    )
    return RestoreTargetExists(
        f"table {name!r} already exists{state}; {hint}. Nothing was restored",
        table=name,
        table_status=status,
    )


def create_backup_flow(table: Table, name: str | None = None) -> Flow[Backup]:
    """CreateBackup of the table; ``name`` defaults to ``<table>-<UTC time>``."""
    refuse_in_tenant_scope(f"backing up table {table.physical_name!r}")
    if name is None:
        now = (yield from connection_inputs()).now()
        name = f"{table.physical_name[:230]}-{now:%Y%m%d-%H%M%S}"
    _check_name("backup name", name)
    response = yield from _backup_call(
        Request(
            "create_backup", {"TableName": table.physical_name, "BackupName": name}, control=True
        )
    )
    return Backup.from_response(response["BackupDetails"], table.physical_name)


def list_backups_flow(table: Table, kind: BackupType = "ALL") -> Flow[list[Backup]]:
    """ListBackups of the table, every page, oldest first."""
    params: dict[str, Any] = {"TableName": table.physical_name, "BackupType": kind}
    found: list[Backup] = []
    while True:
        response = yield from _backup_call(Request("list_backups", dict(params), control=True))
        found += [Backup.from_response(s) for s in response.get("BackupSummaries") or []]
        last = response.get("LastEvaluatedBackupArn")
        if not last:
            break
        params["ExclusiveStartBackupArn"] = last
    oldest = dt.datetime.min.replace(tzinfo=dt.UTC)
    return sorted(found, key=lambda b: (b.created or oldest, b.arn))


def describe_backup_flow(arn: str) -> Flow[Backup]:
    """DescribeBackup."""
    response = yield from _backup_call(Request("describe_backup", {"BackupArn": arn}, control=True))
    return Backup.from_response(response["BackupDescription"])


def delete_backup_flow(arn: str) -> Flow[Backup]:
    """DeleteBackup (the backup as it was, with status ``DELETED``)."""
    response = yield from _backup_call(Request("delete_backup", {"BackupArn": arn}, control=True))
    return Backup.from_response(response["BackupDescription"])


def pitr_window_flow(table: Table) -> Flow[PitrWindow]:
    """DescribeContinuousBackups of the table."""
    response = yield from _backup_call(
        Request("describe_continuous_backups", {"TableName": table.physical_name}, control=True)
    )
    return PitrWindow.from_response(table.physical_name, response["ContinuousBackupsDescription"])


def enable_pitr_flow(table: Table, recovery_period_days: int | None = None) -> Flow[PitrWindow]:
    """UpdateContinuousBackups turning point-in-time recovery on."""
    _check_days(recovery_period_days)
    refuse_in_tenant_scope(f"changing table {table.physical_name!r}")
    spec: dict[str, Any] = {"PointInTimeRecoveryEnabled": True}
    if recovery_period_days is not None:
        spec["RecoveryPeriodInDays"] = recovery_period_days
    response = yield from _backup_call(
        Request(
            "update_continuous_backups",
            {"TableName": table.physical_name, "PointInTimeRecoverySpecification": spec},
            control=True,
        )
    )
    return PitrWindow.from_response(table.physical_name, response["ContinuousBackupsDescription"])


def restore_flow(
    table: Table,
    to: str,
    *,
    backup_arn: str | None = None,
    at: dt.datetime | None = None,
    latest: bool = False,
    timeout: float = 3600.0,
    poll: float = 2.0,
    on_step: Callable[[PlanStep], None] | None = None,
) -> Flow[Table]:
    """Restore into a new table ``to``, wait until it is ACTIVE, apply the settings a restore
    does not carry over, and return the declaration bound to ``to``."""
    target = _target(table, to)  # checks the name
    request = _restore_request(table, to, backup_arn, at, latest)  # checks the rest
    refuse_in_tenant_scope(f"restoring into table {to!r}")
    if at is not None:
        now = (yield from connection_inputs()).now()
        if request.params["RestoreDateTime"] > now:
            raise ValidationError(
                f"restore time {_iso(request.params['RestoreDateTime'])} is in the future (now "
                f"{_iso(now)}); the latest restorable time is about 5 minutes ago. Nothing was "
                "sent"
            )
    try:
        existing = yield from target._describe_flow()
    except TableNotFound:
        pass
    else:
        raise _exists_error(to, existing.get("TableStatus"))
    if on_step is not None:
        on_step(PlanStep(request, 0, describe=_describe_restore(table, to, backup_arn, at)))
    try:
        yield from _backup_call(request)
    except DynamodelError as error:
        if error.code not in (
            "PointInTimeRecoveryUnavailableException",
            "InvalidRestoreTimeException",
        ):
            raise
        raise (yield from _pitr_error(table, error, request)) from error
    yield from apply_restore_settings_flow(target, timeout=timeout, poll=poll, on_step=on_step)
    return target


def _describe_restore(table: Table, to: str, arn: str | None, at: dt.datetime | None) -> str:
    if arn is not None:
        return f"restore backup {arn} into new table {to}"
    when = _iso(at.astimezone(dt.UTC)) if at is not None else "the latest restorable time"
    return f"restore table {table.physical_name} as of {when} into new table {to}"


def _pitr_error(table: Table, error: DynamodelError, request: Request) -> Flow[PitrUnavailable]:
    window: PitrWindow | None
    try:
        window = yield from pitr_window_flow(table)
    except DynamodelError:
        window = None
    if error.code == "PointInTimeRecoveryUnavailableException" or (
        window is not None and not window.enabled
    ):
        text = (
            f"point-in-time recovery is not enabled on table {table.physical_name!r}, so it "
            "cannot be restored to a point in time: declare Table(point_in_time_recovery=True) "
            "and run `dynamodel table sync` (or backups.enable_pitr, `dynamodel table pitr "
            "--enable`); restores can then reach back to when it was turned on"
        )
    else:
        when = _iso(request.params.get("RestoreDateTime"))
        span = window.describe() if window is not None else "its window could not be read"
        text = f"table {table.physical_name!r} cannot be restored to {when}: {span}"
    return PitrUnavailable(f"{text} ({error})", code=error.code, window=window)


def apply_restore_settings_flow(
    table: Table,
    *,
    timeout: float = 3600.0,
    poll: float = 2.0,
    on_step: Callable[[PlanStep], None] | None = None,
) -> Flow[dict[str, Any]]:
    """Wait until the (restored) table is ACTIVE, then apply what the declaration asks for and
    a restore does not carry over; returns the final ``DescribeTable`` description."""
    refuse_in_tenant_scope(f"changing table {table.physical_name!r}")
    description = yield from table._wait_active_flow(timeout, poll)
    live = yield from describe_flow(table)
    steps = [
        PlanStep(request, 0, wait=request.op == "update_table", describe=_describe(request))
        for request in _settings_requests(table, str(description.get("TableArn")), live)
    ]
    # a step the endpoint does not support is skipped with an UnsupportedOperationWarning
    yield from apply_flow(table, steps, timeout=timeout, poll=poll, on_step=on_step)
    return (yield from table._describe_flow())


def _describe(request: Request) -> str:
    params = request.params
    if request.op == "update_time_to_live":
        return f"TTL on {params['TimeToLiveSpecification']['AttributeName']}"
    if request.op == "update_continuous_backups":
        return "point-in-time recovery on"
    if request.op == "tag_resource":
        return f"tags {', '.join(t['Key'] for t in params['Tags'])}"
    if "StreamSpecification" in params:
        return f"stream {params['StreamSpecification']['StreamViewType']}"
    if "DeletionProtectionEnabled" in params:
        return f"deletion protection {on_off(params['DeletionProtectionEnabled'])}"
    return _operation_name(request.op)


# -- sync and async entry points ------------------------------------------------------------------


def endpoint_of(connection: Connection) -> str:
    """The endpoint URL a connection sends to (its own, else its client's), for messages."""
    if connection.endpoint_url:
        return connection.endpoint_url
    try:
        return str(connection.client(control=True).meta.endpoint_url)
    except Exception:
        return "(the configured endpoint)"


def _on_connection(target: Table, table: Table, connection: Connection | None) -> Table:
    """The restored table's declaration on the connection the restore went through: the one
    given, else the one ``table`` is bound to (none: the scoped or default one, as ``table``)."""
    chosen = connection if connection is not None else table._binding.connection
    if chosen is not None:
        target.bind(connection=chosen)
    return target


def _run(flow: Flow[T], table: Table, connection: Connection | None) -> T:
    from dynamodel.io.executors import run

    resolved = resolve_connection(table, connection)
    try:
        return run(flow, resolved)
    except BackupsUnsupported as error:
        if error.endpoint is not None:
            raise
        raise error.at(endpoint_of(resolved)) from error.__cause__


async def _arun(flow: Flow[T], table: Table, connection: Connection | None) -> T:
    from dynamodel.io.executors import arun

    resolved = resolve_connection(table, connection)
    try:
        return await arun(flow, resolved)
    except BackupsUnsupported as error:
        if error.endpoint is not None:
            raise
        raise error.at(endpoint_of(resolved)) from error.__cause__


def create_backup(
    table: Table, name: str | None = None, *, connection: Connection | None = None
) -> Backup:
    """Make an on-demand backup of the table (``CreateBackup``).

    ``name`` (3-255 characters of ``A-Z a-z 0-9 _ . -``) defaults to ``<table>-<UTC time>``,
    e.g. ``orders-20250301-093000``. The backup is usable at once (``CREATING`` for a moment
    on DynamoDB) and kept until deleted. ``connection``: where to send it (default: the scoped
    connection, else the table's; see `dynamodel.use_connection`).
    """
    return _run(create_backup_flow(table, name), table, connection)


async def acreate_backup(
    table: Table, name: str | None = None, *, connection: Connection | None = None
) -> Backup:
    """Async `create_backup`."""
    return await _arun(create_backup_flow(table, name), table, connection)


def list_backups(
    table: Table, *, kind: BackupType = "ALL", connection: Connection | None = None
) -> list[Backup]:
    """The table's backups, oldest first, with status, size and creation time (``ListBackups``,
    every page). ``kind``: ``USER``, ``SYSTEM``, ``AWS_BACKUP`` or ``ALL`` (the default)."""
    return _run(list_backups_flow(table, kind), table, connection)


async def alist_backups(
    table: Table, *, kind: BackupType = "ALL", connection: Connection | None = None
) -> list[Backup]:
    """Async `list_backups`."""
    return await _arun(list_backups_flow(table, kind), table, connection)


def describe_backup(table: Table, arn: str, *, connection: Connection | None = None) -> Backup:
    """One backup (``DescribeBackup``); ``Backup.raw`` holds the source table's details.
    Raises `BackupNotFound` for an unknown ARN."""
    return _run(describe_backup_flow(arn), table, connection)


async def adescribe_backup(
    table: Table, arn: str, *, connection: Connection | None = None
) -> Backup:
    """Async `describe_backup`."""
    return await _arun(describe_backup_flow(arn), table, connection)


def delete_backup(table: Table, arn: str, *, connection: Connection | None = None) -> Backup:
    """Delete a backup (``DeleteBackup``); returns it with status ``DELETED``. Raises
    `BackupNotFound` for an unknown ARN."""
    return _run(delete_backup_flow(arn), table, connection)


async def adelete_backup(table: Table, arn: str, *, connection: Connection | None = None) -> Backup:
    """Async `delete_backup`."""
    return await _arun(delete_backup_flow(arn), table, connection)


def pitr_window(table: Table, *, connection: Connection | None = None) -> PitrWindow:
    """The table's point-in-time recovery status and restorable window
    (``DescribeContinuousBackups``)."""
    return _run(pitr_window_flow(table), table, connection)


async def apitr_window(table: Table, *, connection: Connection | None = None) -> PitrWindow:
    """Async `pitr_window`."""
    return await _arun(pitr_window_flow(table), table, connection)


def enable_pitr(
    table: Table,
    *,
    recovery_period_days: int | None = None,
    connection: Connection | None = None,
) -> PitrWindow:
    """Turn point-in-time recovery on (``UpdateContinuousBackups``).

    ``recovery_period_days`` (1-35) sets how far back restores can go (DynamoDB's default: 35).
    Declaring ``Table(point_in_time_recovery=True)`` and running `dynamodel.schema.apply` (or
    ``dynamodel table sync``) turns it on too, with the default period.
    """
    return _run(enable_pitr_flow(table, recovery_period_days), table, connection)


async def aenable_pitr(
    table: Table,
    *,
    recovery_period_days: int | None = None,
    connection: Connection | None = None,
) -> PitrWindow:
    """Async `enable_pitr`."""
    return await _arun(enable_pitr_flow(table, recovery_period_days), table, connection)


def restore_from_backup(
    table: Table,
    backup_arn: str,
    to: str,
    *,
    timeout: float = 3600.0,
    poll: float = 2.0,
    on_step: Callable[[PlanStep], None] | None = None,
    connection: Connection | None = None,
) -> Table:
    """Restore a backup into a new table named ``to`` (``RestoreTableFromBackup``).

    The name is checked and an existing table ``to`` refused (`RestoreTargetExists`) before
    the restore is sent. Then waits until the new table is ACTIVE (``timeout`` seconds; large
    tables take a while) and applies what the declaration asks for and DynamoDB does not
    restore: the stream, deletion protection, TTL, point-in-time recovery and tags (a setting
    the endpoint does not support is skipped with an `UnsupportedOperationWarning`).
    ``on_step`` is called before each request.

    Returns a copy of the declaration bound to ``to`` (same connection). The models keep
    using ``table``: check the restored table, then ``table.bind(name=to)`` to point them at
    it (docs/backups.md).
    """
    flow = restore_flow(
        table, to, backup_arn=backup_arn, timeout=timeout, poll=poll, on_step=on_step
    )
    return _on_connection(_run(flow, table, connection), table, connection)


async def arestore_from_backup(
    table: Table,
    backup_arn: str,
    to: str,
    *,
    timeout: float = 3600.0,
    poll: float = 2.0,
    on_step: Callable[[PlanStep], None] | None = None,
    connection: Connection | None = None,
) -> Table:
    """Async `restore_from_backup`."""
    flow = restore_flow(
        table, to, backup_arn=backup_arn, timeout=timeout, poll=poll, on_step=on_step
    )
    return _on_connection(await _arun(flow, table, connection), table, connection)


def restore_to_point_in_time(
    table: Table,
    to: str,
    *,
    at: dt.datetime | None = None,
    latest: bool = False,
    timeout: float = 3600.0,
    poll: float = 2.0,
    on_step: Callable[[PlanStep], None] | None = None,
    connection: Connection | None = None,
) -> Table:
    """Restore the table as it was at ``at`` (an aware datetime), or at the latest restorable
    time with ``latest=True``, into a new table named ``to`` (``RestoreTableToPointInTime``).

    Needs point-in-time recovery on the table; ``at`` must fall in its window (`pitr_window`),
    else `PitrUnavailable` says what the window is. Naive datetimes and times in the future are
    refused before any request. Then as `restore_from_backup`: an existing ``to`` is refused,
    the new table is waited for and given the settings a restore does not carry over (here
    point-in-time recovery too), and a copy of the declaration bound to ``to`` is returned.
    """
    flow = restore_flow(
        table, to, at=at, latest=latest, timeout=timeout, poll=poll, on_step=on_step
    )
    return _on_connection(_run(flow, table, connection), table, connection)


async def arestore_to_point_in_time(
    table: Table,
    to: str,
    *,
    at: dt.datetime | None = None,
    latest: bool = False,
    timeout: float = 3600.0,
    poll: float = 2.0,
    on_step: Callable[[PlanStep], None] | None = None,
    connection: Connection | None = None,
) -> Table:
    """Async `restore_to_point_in_time`."""
    flow = restore_flow(
        table, to, at=at, latest=latest, timeout=timeout, poll=poll, on_step=on_step
    )
    return _on_connection(await _arun(flow, table, connection), table, connection)


def apply_restore_settings(
    table: Table,
    name: str,
    *,
    timeout: float = 3600.0,
    poll: float = 2.0,
    on_step: Callable[[PlanStep], None] | None = None,
    connection: Connection | None = None,
) -> Table:
    """Finish a restore made elsewhere (the console, the AWS CLI) or one whose wait timed out:
    wait until table ``name`` is ACTIVE, apply the settings of the declaration a restore does
    not carry over (only those it lacks), and return the declaration bound to ``name``."""
    target = _target(table, name)
    flow = apply_restore_settings_flow(target, timeout=timeout, poll=poll, on_step=on_step)
    _run(flow, table, connection)
    return _on_connection(target, table, connection)


async def aapply_restore_settings(
    table: Table,
    name: str,
    *,
    timeout: float = 3600.0,
    poll: float = 2.0,
    on_step: Callable[[PlanStep], None] | None = None,
    connection: Connection | None = None,
) -> Table:
    """Async `apply_restore_settings`."""
    target = _target(table, name)
    flow = apply_restore_settings_flow(target, timeout=timeout, poll=poll, on_step=on_step)
    await _arun(flow, table, connection)
    return _on_connection(target, table, connection)
