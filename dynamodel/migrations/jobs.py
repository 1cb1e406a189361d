"""Distributed backfill jobs: what workers need to know, stored in the table.

``ctx.backfill(Model, transform, distributed=True)`` in a migration makes a *job*: one item
(``JOB#<job>``) naming the migration file (and its checksum), the transform (a module-level
function of that file), the model's entity type, the scan (filter included), the number of
segments, the page size, the lease and the shared rate; plus one item per segment
(`dynamodel.migrations.segments`). The migration stops there (`BackfillPending`) and the lock
is released; workers (`dynamodel.migrations.worker`: processes, containers or Lambda
functions) claim the segments; running the migration again once every segment is done goes on
past the backfill, with the job's totals as its result.
"""

from __future__ import annotations

import datetime as dt
import sys
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from dynamodel.core.errors import ValidationError
from dynamodel.core.flows import Flow, Request, call
from dynamodel.io.scope import resolve_connection
from dynamodel.migrations.backfill import BackfillProgress, BackfillResult, BackfillSettings
from dynamodel.migrations.errors import BackfillFailed, BackfillPending
from dynamodel.migrations.segments import Segment, Segments
from dynamodel.migrations.store import Store
from dynamodel.migrations.transform import FailedItem, Output, Transformer, transformer_for
from dynamodel.modelling.tenancy import refuse_in_tenant_scope
from dynamodel.ops.export_items import attributes_from_json, attributes_to_json
from dynamodel.ops.pagination import decode_cursor

if TYPE_CHECKING:
    from dynamodel.core.expressions import Condition
    from dynamodel.migrations.files import Migration
    from dynamodel.model import Model
    from dynamodel.modelling.table import Table


def job_id(version: str, run: str, backfill: str) -> str:
    """The id of a migration run's distributed backfill: ``<version>#<run>#<backfill>``."""
    return f"{version}#{run}#{backfill}"


def job_item_name(job: str) -> str:
    """The runner item name of a job."""
    return f"JOB#{job}"


def rate_item_name(job: str) -> str:
    """The runner item name of a job's shared rate (see `dynamodel.migrations.global_rate`)."""
    return f"RATE#{job}"


def job_item_names(store: Store, job: str, segments: int) -> list[str]:
    """Every runner item a job makes (deleted once its migration is applied)."""
    return [job_item_name(job), rate_item_name(job), *Segments(store, job, segments).names()]


@dataclass(frozen=True)
class JobSpec:
    """A distributed backfill as workers see it (stored as JSON in the job item).

    Attributes:
        job: the id. migration / checksum: the migration file's version and SHA-256 (workers
            refuse to run another version of the file). backfill: the backfill's name.
        entity: the model's entity type. function: the transform's name in the file.
        segments / page_size / lease / rate: the scan's segments, items per page, seconds a
            claim lasts without a checkpoint, and items scanned per second by all workers
            together (None: no limit).
        scan: the scan request (filter included), AttributeValues in JSON form.
        cutoff: epoch seconds; items whose TTL passed before it are skipped (as the in-process
            backfill skips items expired when it started).
        drop_unknown / skip_version_check: as `MigrationContext.backfill`.
    """

    job: str
    migration: str
    checksum: str
    backfill: str
    entity: str
    function: str
    segments: int
    page_size: int
    lease: float
    rate: float | None
    scan: dict[str, Any]
    cutoff: float
    drop_unknown: bool = False
    skip_version_check: bool = False

    def to_json(self) -> dict[str, Any]:
        """The stored form."""
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> JobSpec:
        """Inverse of `to_json`."""
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        return cls(**known)

    def scan_params(self, table_name: str) -> dict[str, Any]:
        """The scan request with AttributeValues restored, on the worker's table name."""
        params = dict(self.scan)
        if "ExpressionAttributeValues" in params:
            params["ExpressionAttributeValues"] = attributes_from_json(
                params["ExpressionAttributeValues"]
            )
        params["TableName"] = table_name
        return params

    @property
    def cutoff_time(self) -> dt.datetime:
        """``cutoff`` as an aware datetime."""
        return dt.datetime.fromtimestamp(self.cutoff, dt.UTC)


def transform_name(transform: Callable[..., Any], module_name: str, path: str) -> str:
    """The name workers find ``transform`` under in the migration module, or a clear error."""
    name = getattr(transform, "__name__", "")
    module = sys.modules.get(module_name)
    if (
        getattr(transform, "__module__", None) != module_name
        or module is None
        or getattr(module, name, None) is not transform
    ):
        raise ValidationError(
            f"{path}: a distributed backfill's transform must be a function defined at the top "
            f"level of the migration file (workers import the file and look it up by name); "
            f"got {transform!r}. Define it with `def` in the file and pass it by name"
        )
    return name


def entity_of(table: Table, model: type[Model]) -> str:
    """The entity type ``model`` is registered under in ``table``."""
    for entity, registered in table.entities.items():
        if registered is model:
            return entity
    raise ValidationError(f"{model.__name__} is not a model of table {table.name!r}")


class Jobs:
    """Reads and writes job items and their segments in one table."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def load_flow(self, job: str) -> Flow[JobSpec | None]:
        """The stored job (None: no such job)."""
        data, _ = yield from self.store.get_json_flow(job_item_name(job))
        return JobSpec.from_json(data) if data else None

    def create_flow(self, owner: str, spec: JobSpec) -> Flow[None]:
        """Write the segments, then the job item (conditional: it must not exist)."""
        yield from Segments(self.store, spec.job, spec.segments).create_flow()
        yield from self.store.put_json_flow(owner, job_item_name(spec.job), spec.to_json(), 0)

    def segments(self, spec: JobSpec) -> Segments:
        """The job's segments."""
        return Segments(self.store, spec.job, spec.segments)


def progress(name: str, segments: list[Segment], now: float) -> BackfillProgress:
    """A distributed backfill's progress summed over its segments (``workers``: live leases)."""
    workers = len({s.owner for s in segments if s.leased(now)})
    return BackfillProgress.of(name, segments, workers=workers)


def result_of(name: str, model: str, segments: list[Segment]) -> BackfillResult:
    """A finished distributed backfill's result: the totals over its segments."""
    return BackfillResult(
        name=name,
        model=model,
        segments=len(segments),
        resumed=True,
        scanned=sum(s.scanned for s in segments),
        written=sum(s.written for s in segments),
        unchanged=sum(s.unchanged for s in segments),
        pages=sum(s.pages for s in segments),
        failed=[f for s in segments for f in s.failures],
        total_scanned=sum(s.scanned for s in segments),
        total_written=sum(s.written for s in segments),
    )


def run_distributed(
    *,
    store: Store,
    owner: str,
    migration: Migration,
    run_id: str,
    name: str,
    model: type[Model],
    transform: Callable[[Any], Output],
    settings: BackfillSettings,
    lease: float,
    condition: Condition | None = None,
    drop_unknown: bool = False,
    skip_version_check: bool = False,
    allow_failures: bool = False,
) -> BackfillResult:
    """Start, check on, or finish a distributed backfill; see `MigrationContext.backfill`.

    The first call creates the job and raises `BackfillPending`; later calls raise it again
    while segments remain, and once every segment is done retry the items that failed (read
    again, transformed, written) and return the totals, or raise `BackfillFailed`.
    """
    from dynamodel.io.executors import run

    refuse_in_tenant_scope("a backfill")
    if settings.capacity_fraction is not None:
        raise ValidationError(
            "a distributed backfill takes a rate (items per second, shared by every worker), "
            "not capacity_fraction"
        )
    if model._spec().version_field is not None and not skip_version_check:
        raise ValidationError(
            f"{model.__name__} is versioned (Meta.version) and backfill writes do not check "
            "versions; pass skip_version_check=True to backfill it anyway"
        )
    table = model._spec().table
    connection = resolve_connection(table)
    jobs = Jobs(store)
    job = job_id(migration.version, run_id, name)
    spec: JobSpec | None = run(jobs.load_flow(job), connection)
    if spec is None:
        scan = model.scan()
        if condition is not None:
            scan = scan.filter(condition)
        params = scan._params()
        params.pop("TableName", None)
        if "ExpressionAttributeValues" in params:  # JSON holds binary values as base64
            params["ExpressionAttributeValues"] = attributes_to_json(
                params["ExpressionAttributeValues"]
            )
        spec = JobSpec(
            job=job,
            migration=migration.version,
            checksum=migration.checksum,
            backfill=name,
            entity=entity_of(table, model),
            function=transform_name(transform, migration.module_name, str(migration.path)),
            segments=settings.segments,
            page_size=settings.page_size or 500,
            lease=lease,
            rate=settings.rate,
            scan=params,
            cutoff=connection.inputs.clock(),
            drop_unknown=drop_unknown,
            skip_version_check=skip_version_check,
        )
        run(jobs.create_flow(owner, spec), connection)
        raise _pending(spec, migration, "started")
    segments: list[Segment] = run(jobs.segments(spec).load_flow(), connection)
    if not all(s.done for s in segments):
        done = sum(1 for s in segments if s.done)
        raise _pending(spec, migration, f"{done}/{spec.segments} segments done")
    if any(s.failures for s in segments):
        transformer = transformer_for(
            model,
            transform,
            name=name,
            cutoff=spec.cutoff_time,
            drop_unknown=drop_unknown,
            skip_version_check=skip_version_check,
            connection=connection,
        )
        for segment in segments:
            if segment.failures:
                run(_retry_flow(jobs.segments(spec), segment, transformer), connection)
    result = result_of(name, model.__name__, segments)
    if result.failed and (not allow_failures or len(result.failed) > settings.max_failures):
        raise BackfillFailed(
            f"backfill {name!r}: {len(result.failed)} item(s) of {model.__name__} could not be "
            "migrated; they are kept with the job and retried by the next run",
            result=result,
        )
    return result


def _pending(spec: JobSpec, migration: Migration, state: str) -> BackfillPending:
    return BackfillPending(
        f"distributed backfill {spec.backfill!r} of migration {migration.title} is waiting for "
        f"workers ({state}): job {spec.job}, {spec.segments} segments. Start workers with "
        f"`dynamodel migrate worker` (or `dynamodel migrate up --workers N`, or the Step "
        "Functions state machine); run `dynamodel migrate up` again once they are done",
        job=spec.job,
        segments=spec.segments,
        migration=migration.title,
        backfill=spec.backfill,
    )


def _retry_flow(segments: Segments, segment: Segment, transformer: Transformer) -> Flow[None]:
    """Read a finished segment's failed items again, migrate them, store what still fails."""
    table = transformer.table.physical_name
    still: list[FailedItem] = []
    for failure in segment.failures:
        request = Request(
            "get_item",
            {"TableName": table, "Key": decode_cursor(failure.cursor), "ConsistentRead": True},
        )
        raw = (yield from call(request)).get("Item")
        if raw is None:
            continue  # deleted since: nothing to migrate
        try:
            writes = transformer.writes_of(raw)
        except Exception as error:
            still.append(transformer.failure(raw, segment.number, error))
            continue
        for write in writes:
            if write.action == "put":
                body = {"TableName": write.table_name, **write.request["PutRequest"]}
                yield from call(Request("put_item", body))
            else:
                body = {"TableName": write.table_name, **write.request["DeleteRequest"]}
                yield from call(Request("delete_item", body))
            segment.written += 1
    segment.failures = still
    yield from call(Request("update_item", segments.retry_done_params(segment)))
