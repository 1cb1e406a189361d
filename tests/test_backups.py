"""On-demand backups, point-in-time recovery and restores (`dynamodel.schema.backups`).

Round trips run on moto, which implements the backups API (it restores a backup's items, and a
point-in-time restore copies the source table as it is now, whatever the time asked). dynoxide
has no backups API: there the tests check the "endpoint does not support" error instead.
Errors moto never returns (PITR off, a time outside the window) are driven by hand.
"""

from __future__ import annotations

import datetime as dt
import uuid
import warnings
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from backends import Backend
from conftest import SentLog, throw_into, user_items

from dynamodel import GSI, Connection, Model, Table, schema
from dynamodel.core.errors import ServiceError, TableNotFound, ValidationError
from dynamodel.core.flows import CONNECTION_INPUTS, Inputs, Request
from dynamodel.modelling.table import UnsupportedOperationWarning
from dynamodel.schema import backups
from dynamodel.testing import FaultInjector

TABLE = Table(
    "backup-src",
    indexes=[GSI("gsi1", pk="gsi1pk", sk="gsi1sk")],
    ttl="expires",
    stream="NEW_AND_OLD_IMAGES",
    point_in_time_recovery=True,
    deletion_protection=True,
    tags={"team": "orders", "env": "test"},
)


class Invoice(Model):
    class Meta:
        table = TABLE
        pk = "CUSTOMER#{customer}"
        sk = "INVOICE#{number}"
        indexes = {"gsi1": ("STATUS#{status}", "{number}")}

    customer: str
    number: int
    status: str = "open"
    total: int = 0
    expires: int | None = None


@pytest.fixture
def moto_backups(fresh_db: Backend, backend_name: str) -> Iterator[Table]:
    """TABLE, created with a few invoices, on a backend with the backups API."""
    if backend_name != "moto":
        pytest.skip(f"{backend_name} has no backups API (test_unsupported_on_dynoxide)")
    TABLE.create(poll=0.01)
    for number in range(6):
        Invoice(customer="c1", number=number, total=10 * number).save()
    yield TABLE
    TABLE.unbind()


def raw_items(ddb: Any, name: str) -> list[dict[str, Any]]:
    items = user_items(ddb.scan(TableName=name, ConsistentRead=True)["Items"])
    return sorted(items, key=lambda i: (i["pk"]["S"], i["sk"]["S"]))


class NoServer:
    """A client that fails the test if any request reaches it."""

    meta = type("Meta", (), {"endpoint_url": "http://nowhere", "region_name": "us-east-1"})()

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"a request was sent: {name}")


OFFLINE = Table("backup-offline", ttl="expires").bind(connection=Connection(client=NoServer()))
WHEN = dt.datetime(2025, 3, 1, 9, 30, tzinfo=dt.UTC)


# -- round trips on moto --------------------------------------------------------------------------


def test_backup_list_restore_round_trip_and_models_read_it_after_bind(
    moto_backups: Table, ddb: Any
) -> None:
    before = raw_items(ddb, "backup-src")
    made = backups.create_backup(TABLE, "before-cleanup")
    assert (made.name, made.table_name, made.status) == (
        "before-cleanup",
        "backup-src",
        "AVAILABLE",
    )
    assert made.created is not None and made.created.tzinfo is dt.UTC
    default = backups.create_backup(TABLE)  # named after the table and the UTC time
    assert default.name.startswith("backup-src-20") and len(default.name) == len("backup-src-") + 15

    listed = backups.list_backups(TABLE)
    assert {b.arn for b in listed} == {made.arn, default.arn}
    first = next(b for b in listed if b.arn == made.arn)
    assert first.status == "AVAILABLE" and first.size_bytes is not None and first.type == "USER"
    assert first.as_dict()["created"].endswith("Z")
    assert backups.describe_backup(TABLE, made.arn) == first

    # what happens after the backup is not in the restored table
    Invoice(customer="c1", number=99).save()
    Invoice.delete_item({"customer": "c1", "number": 0})

    steps: list[str] = []
    restored = backups.restore_from_backup(
        TABLE, made.arn, "backup-restored", poll=0.01, on_step=lambda s: steps.append(s.describe)
    )
    assert restored.physical_name == "backup-restored" and restored == TABLE  # same declaration
    assert steps[0].startswith("restore backup arn:") and steps[1:] == [
        "stream NEW_AND_OLD_IMAGES",
        "deletion protection on",
        "TTL on expires",
        "point-in-time recovery on",
        "tags team, env",
    ]
    assert raw_items(ddb, "backup-restored") == before
    # TTL, stream, PITR and deletion protection were applied again: nothing differs
    assert schema.diff(restored) == []
    arn = restored.describe()["TableArn"]
    tags = ddb.list_tags_of_resource(ResourceArn=arn)["Tags"]
    assert sorted((t["Key"], t["Value"]) for t in tags) == [("env", "test"), ("team", "orders")]

    # the models keep using their table until it is bound to the restored one
    assert Invoice.get(customer="c1", number=99).number == 99
    TABLE.bind(name=restored.physical_name)
    assert [i.number for i in Invoice.query(customer="c1").all()] == [0, 1, 2, 3, 4, 5]
    assert Invoice.get_or_none(customer="c1", number=99) is None
    assert len(Invoice.query(index="gsi1", status="open").all()) == 6  # its GSI came back too
    TABLE.bind(name="backup-src")
    assert Invoice.get_or_none(customer="c1", number=0) is None

    gone = backups.delete_backup(TABLE, made.arn)
    assert (gone.arn, gone.status) == (made.arn, "DELETED")
    with pytest.raises(backups.BackupNotFound, match="list them") as caught:
        backups.describe_backup(TABLE, made.arn)
    assert caught.value.arn == made.arn
    assert [b.arn for b in backups.list_backups(TABLE)] == [default.arn]


def test_point_in_time_restore_and_the_window(moto_backups: Table, ddb: Any, sent: SentLog) -> None:
    window = backups.pitr_window(TABLE)
    assert window.enabled and window.status == "ENABLED"  # declared: create() turned it on
    assert window.earliest is not None and window.latest is not None
    assert window.earliest.tzinfo is dt.UTC and window.recovery_period_days == 35

    sent.clear()
    restored = backups.restore_to_point_in_time(TABLE, "backup-latest", latest=True, poll=0.01)
    restore = sent.params[sent.index("restore_table_to_point_in_time")]
    assert restore == {
        "SourceTableName": "backup-src",
        "TargetTableName": "backup-latest",
        "UseLatestRestorableTime": True,
    }
    assert sent.index("describe_table") < sent.index("restore_table_to_point_in_time")
    assert raw_items(ddb, "backup-latest") == raw_items(ddb, "backup-src")
    assert schema.diff(restored) == []  # PITR itself included
    assert backups.pitr_window(restored).enabled

    # an aware time in another zone is sent in UTC (moto copies the table as it is now)
    sent.clear()
    paris = dt.timezone(dt.timedelta(hours=1))
    at = dt.datetime.now(paris) - dt.timedelta(minutes=10)
    backups.restore_to_point_in_time(TABLE, "backup-at", at=at, poll=0.01)
    params = sent.params[sent.index("restore_table_to_point_in_time")]
    assert params["RestoreDateTime"] == at and params["RestoreDateTime"].tzinfo is dt.UTC
    assert "UseLatestRestorableTime" not in params


async def test_async_restore_and_finishing_a_restore_twice(moto_backups: Table, ddb: Any) -> None:
    made = await backups.acreate_backup(TABLE, "async-backup")
    assert [b.arn for b in await backups.alist_backups(TABLE)] == [made.arn]
    restored = await backups.arestore_from_backup(TABLE, made.arn, "backup-async", poll=0.01)
    assert restored.physical_name == "backup-async"
    assert raw_items(ddb, "backup-async") == raw_items(ddb, "backup-src")
    # finishing again (after a timed-out wait, or a restore made in the console) sends only
    # what is missing: TTL is already on, so no UpdateTimeToLive (it would be refused)
    again = await backups.aapply_restore_settings(TABLE, "backup-async", poll=0.01)
    assert again.physical_name == "backup-async" and schema.diff(again) == []


def test_enable_pitr_with_a_recovery_period(fresh_db: Backend, backend_name: str) -> None:
    if backend_name != "moto":
        pytest.skip(f"{backend_name} has no backups API")
    plain = Table("backup-plain")
    plain.create(poll=0.01)
    assert not backups.pitr_window(plain).enabled
    assert "disabled" in backups.pitr_window(plain).describe()
    window = backups.enable_pitr(plain, recovery_period_days=7)
    assert window.enabled and window.recovery_period_days == 7
    assert "recovery period 7 days" in window.describe()
    for bad in (0, 36, 2.5, True):
        with pytest.raises(ValidationError, match="1 to 35"):
            backups.enable_pitr(OFFLINE, recovery_period_days=bad)  # type: ignore[arg-type]


def test_restoring_onto_an_existing_table_is_refused_before_the_restore(
    moto_backups: Table, sent: SentLog
) -> None:
    made = backups.create_backup(TABLE, "exists-test")
    sent.clear()
    with pytest.raises(backups.RestoreTargetExists, match="already exists \\(ACTIVE\\)") as caught:
        backups.restore_from_backup(TABLE, made.arn, "backup-src")
    assert caught.value.table == "backup-src" and caught.value.table_status == "ACTIVE"
    with pytest.raises(backups.RestoreTargetExists, match="creates a new table"):
        backups.restore_to_point_in_time(TABLE, "backup-src", latest=True)
    assert sent == ["describe_table", "describe_table"]  # looked, restored nothing


def test_a_restore_losing_the_race_for_the_name_says_so() -> None:
    """The table appears between the check and the restore: DynamoDB's error, explained."""
    arn = "arn:aws:dynamodb:us-east-1:123456789012:table/backup-src/backup/01-ab"
    flow = backups.restore_flow(TABLE, "backup-race", backup_arn=arn)
    assert next(flow).op == "describe_table"
    step = throw_into(flow, TableNotFound("gone"))
    assert step.op == "restore_table_from_backup"
    error = ServiceError("restore: TableAlreadyExistsException", code="TableAlreadyExistsException")
    with pytest.raises(backups.RestoreTargetExists, match="'backup-race' already exists"):
        throw_into(flow, error)


# -- checks before any request --------------------------------------------------------------------


def test_naive_datetimes_are_refused_before_any_request() -> None:
    with pytest.raises(ValidationError, match=r"naive datetime .* tzinfo=UTC"):
        backups.restore_to_point_in_time(OFFLINE, "offline-restored", at=dt.datetime(2025, 3, 1))
    with pytest.raises(ValidationError, match="naive"):
        backups.restore_requests(OFFLINE, "offline-restored", at=dt.datetime(2025, 3, 1))


def test_times_in_the_future_are_refused_before_any_request() -> None:
    future = dt.datetime.now(dt.UTC) + dt.timedelta(days=1)
    with pytest.raises(ValidationError, match="in the future"):
        backups.restore_to_point_in_time(OFFLINE, "offline-restored", at=future)


@pytest.mark.parametrize("name", ["ab", "bad name", "orders/2", "x" * 256, "", "é-table"])
def test_bad_names_are_refused_before_any_request(name: str) -> None:
    with pytest.raises(ValidationError, match="3-255 characters"):
        backups.restore_to_point_in_time(OFFLINE, name, latest=True)
    arn = "arn:aws:dynamodb:us-east-1:123456789012:table/t/backup/01-ab"
    with pytest.raises(ValidationError, match="3-255 characters"):
        backups.restore_from_backup(OFFLINE, arn, name)
    with pytest.raises(ValidationError, match="3-255 characters"):
        backups.create_backup(OFFLINE, name)
    with pytest.raises(ValidationError, match="3-255 characters"):
        backups.apply_restore_settings(OFFLINE, name)


def test_a_restore_needs_exactly_one_source_and_a_backup_arn() -> None:
    for kwargs in (
        {},
        {"latest": True, "at": WHEN},
        {"backup_arn": "arn:x/backup/y", "latest": True},
    ):
        with pytest.raises(ValidationError, match="exactly one"):
            backups.restore_requests(OFFLINE, "offline-restored", **kwargs)  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="is not a backup ARN"):
        backups.restore_from_backup(OFFLINE, "my-backup", "offline-restored")


def test_restore_requests_for_a_dry_run() -> None:
    requests = backups.restore_requests(TABLE, "orders-copy", at=WHEN.astimezone())
    assert [(r.op, r.control) for r in requests] == [
        ("restore_table_to_point_in_time", True),
        ("update_table", True),
        ("update_table", True),
        ("update_time_to_live", True),
        ("update_continuous_backups", True),
        ("tag_resource", True),
    ]
    first = requests[0].params
    assert first == {
        "SourceTableName": "backup-src",
        "TargetTableName": "orders-copy",
        "RestoreDateTime": WHEN,
    }
    assert all(r.params.get("TableName", "orders-copy") == "orders-copy" for r in requests[1:])
    assert requests[-1].params["ResourceArn"] == "<arn of orders-copy>"
    plain = backups.restore_requests(
        Table("plain-table"), "plain-copy", backup_arn="arn:a/backup/b"
    )
    assert plain == [
        Request(
            "restore_table_from_backup",
            {"TargetTableName": "plain-copy", "BackupArn": "arn:a/backup/b"},
            control=True,
        )
    ]


# -- errors DynamoDB returns that moto does not ---------------------------------------------------


def _pitr_flow(**kwargs: Any) -> Any:
    """A point-in-time restore of TABLE driven by hand, up to its RestoreTableToPointInTime."""
    flow = backups.restore_flow(TABLE, "backup-pitr", **kwargs)
    step = next(flow)
    if step is CONNECTION_INPUTS:  # the clock, to refuse future times
        step = flow.send(Inputs(clock=lambda: WHEN.timestamp() + 86_400, random=None))
    assert step == Request("describe_table", {"TableName": "backup-pitr"}, control=True)
    step = throw_into(flow, TableNotFound("no such table"))
    assert step.op == "restore_table_to_point_in_time"
    return flow


def _window(status: str) -> dict[str, Any]:
    description: dict[str, Any] = {"PointInTimeRecoveryStatus": status}
    if status == "ENABLED":
        description |= {
            "EarliestRestorableDateTime": WHEN - dt.timedelta(days=2),
            "LatestRestorableDateTime": WHEN + dt.timedelta(days=1),
            "RecoveryPeriodInDays": 35,
        }
    return {
        "ContinuousBackupsDescription": {
            "ContinuousBackupsStatus": "ENABLED",
            "PointInTimeRecoveryDescription": description,
        }
    }


def test_a_table_without_pitr_cannot_be_restored_to_a_point_in_time() -> None:
    flow = _pitr_flow(latest=True)
    code = "PointInTimeRecoveryUnavailableException"
    step = throw_into(flow, ServiceError(f"restore: {code}", code=code))
    assert step.op == "describe_continuous_backups"
    with pytest.raises(backups.PitrUnavailable, match="not enabled on table 'backup-src'") as e:
        flow.send(_window("DISABLED"))
    assert e.value.code == code and e.value.window is not None and not e.value.window.enabled
    assert "pitr --enable" in str(e.value)


def test_a_time_outside_the_window_names_the_window() -> None:
    flow = _pitr_flow(at=WHEN - dt.timedelta(days=30))
    code = "InvalidRestoreTimeException"
    step = throw_into(flow, ServiceError(f"restore: {code}", code=code))
    assert step.op == "describe_continuous_backups"
    with pytest.raises(backups.PitrUnavailable, match="cannot be restored to 2025-01-30") as e:
        flow.send(_window("ENABLED"))
    assert "restorable from 2025-02-27T09:30:00Z to 2025-03-02T09:30:00Z" in str(e.value)
    assert e.value.window is not None and e.value.window.recovery_period_days == 35


# -- endpoints without the backups API ------------------------------------------------------------

UNSUPPORTED = [
    ("create_backup", lambda t: backups.create_backup(t, "any-name"), "CreateBackup"),
    ("list_backups", backups.list_backups, "ListBackups"),
    ("describe_continuous_backups", backups.pitr_window, "DescribeContinuousBackups"),
    (
        "restore_table_to_point_in_time",
        lambda t: backups.restore_to_point_in_time(t, "backup-nowhere", latest=True),
        "RestoreTableToPointInTime",
    ),
]


@pytest.mark.parametrize(("op", "action", "api"), UNSUPPORTED, ids=[u[0] for u in UNSUPPORTED])
def test_an_endpoint_without_the_api_is_named(
    fresh_db: Backend, op: str, action: Any, api: str
) -> None:
    """A fault-injecting client answers UnknownOperationException, as dynoxide does."""
    table = Table("backup-faulty")
    table.create(poll=0.01)
    real = boto3.client("dynamodb", endpoint_url=fresh_db.endpoint_url)
    faulty = FaultInjector(
        real, throttle=1.0, throttle_code="UnknownOperationException", operations={op}
    )
    table.bind(connection=Connection(client=faulty))
    with pytest.raises(backups.BackupsUnsupported) as caught:
        action(table)
    assert str(caught.value).startswith(
        f"the endpoint {fresh_db.endpoint_url} does not support {api} "
    )
    assert (caught.value.operation, caught.value.endpoint) == (api, fresh_db.endpoint_url)
    assert caught.value.code == "UnknownOperationException"


def test_settings_the_endpoint_lacks_are_skipped_with_a_warning(moto_backups: Table) -> None:
    made = backups.create_backup(TABLE, "warn-test")
    real = boto3.client("dynamodb", endpoint_url=TABLE.connection.client().meta.endpoint_url)
    faulty = FaultInjector(
        real,
        throttle=1.0,
        throttle_code="UnknownOperationException",
        operations={"update_continuous_backups"},
    )
    with pytest.warns(UnsupportedOperationWarning, match="UpdateContinuousBackups|update_cont"):
        restored = backups.restore_from_backup(
            TABLE, made.arn, "backup-warned", poll=0.01, connection=Connection(client=faulty)
        )
    assert restored.connection.client() is faulty  # bound where the restore went
    assert [c.subject for c in schema.diff(restored)] == ["point-in-time recovery"]


def test_unsupported_on_dynoxide(fresh_db: Backend, backend_name: str) -> None:
    """dynoxide itself: every backups call names the endpoint and the operation."""
    if backend_name != "dynoxide":
        pytest.skip("moto implements the backups API (see test_an_endpoint_without_the_api_...)")
    table = Table(f"backup-dx-{uuid.uuid4().hex[:6]}")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UnsupportedOperationWarning)
        table.create(poll=0.01)
    for action, api in [
        (lambda: backups.create_backup(table, "dx-backup"), "CreateBackup"),
        (lambda: backups.list_backups(table), "ListBackups"),
        (lambda: backups.pitr_window(table), "DescribeContinuousBackups"),
        (
            lambda: backups.restore_to_point_in_time(table, "dx-copy", latest=True),
            "RestoreTableToPointInTime",
        ),
    ]:
        with pytest.raises(backups.BackupsUnsupported) as caught:
            action()
        expected = f"the endpoint {fresh_db.endpoint_url} does not support {api} "
        assert str(caught.value).startswith(expected)
