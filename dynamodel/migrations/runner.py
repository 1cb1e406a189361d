"""The migration runner: plan, lock, run ``up``/``down`` in order, record every outcome.

Applied state lives in the table (see `dynamodel.migrations.store`): one record per version,
``running`` while it runs, then ``applied`` or ``failed`` (with the error); ``down`` marks it
``reverting`` and removes it when reverted (``revert_failed`` if it raised). A run killed
without a chance to record anything leaves ``running``; the next run (once the dead run's lock
lease has expired) resumes that migration, and its backfills continue from their checkpoints.
"""

from __future__ import annotations

import datetime as dt
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TypeVar, cast

from dynamodel.core.errors import ValidationError
from dynamodel.io.scope import resolve_connection
from dynamodel.migrations.backfill import (
    BackfillProgress,
    BackfillResult,
    BackfillSettings,
    Checkpoint,
    Checkpoints,
    run_backfill,
)
from dynamodel.migrations.errors import (
    BackfillFailed,
    BackfillPending,
    LockLost,
    MigrationError,
    MigrationFailed,
)
from dynamodel.migrations.files import Migration, create, discover
from dynamodel.migrations.lock import (
    DEFAULT_LEASE,
    LockInfo,
    MigrationLock,
    force_unlock_flow,
    read_lock_flow,
)
from dynamodel.migrations.store import STATE, Store
from dynamodel.migrations.transform import Output
from dynamodel.model import Model
from dynamodel.ops.batch import BatchWriter

if TYPE_CHECKING:
    from dynamodel.core.expressions import Condition
    from dynamodel.core.flows import Flow
    from dynamodel.modelling.table import Table

M = TypeVar("M", bound=Model)
Direction = Literal["up", "down"]
State = Literal["pending", "running", "applied", "failed", "reverting", "revert_failed"]


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


@dataclass
class Record:
    """What the table records about one migration version."""

    version: str
    name: str
    state: State
    direction: Direction
    run: str
    checksum: str = ""
    owner: str = ""
    started_at: str | None = None
    finished_at: str | None = None
    applied_at: str | None = None
    error: str | None = None
    backfills: dict[str, dict[str, Any]] = field(default_factory=dict)
    waiting: str | None = None  # the distributed backfill job it waits on

    def to_json(self) -> dict[str, Any]:
        """The stored form."""
        return dict(self.__dict__)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Record:
        """Inverse of `to_json` (unknown keys from newer versions are ignored)."""
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        return cls(**known)


@dataclass(frozen=True)
class MigrationStatus:
    """One migration as `Migrator.status` reports it.

    Attributes:
        version / name: from the file (or the record when the file is gone).
        state: ``pending`` (never applied), ``applied``, ``running`` (in progress, or killed:
            see ``lock``), ``failed``, ``reverting`` or ``revert_failed``.
        migration: the file (None when the record's file no longer exists).
        record: the stored record (None when pending).
        modified: the file changed since it was applied.
        progress: backfill progress of an unfinished run, from its checkpoints.
    """

    version: str
    name: str
    state: State
    migration: Migration | None
    record: Record | None
    modified: bool = False
    progress: tuple[BackfillProgress, ...] = ()


@dataclass
class RunResult:
    """What `Migrator.up` / `Migrator.down` did (or, on a dry run, would do)."""

    direction: Direction
    planned: list[Migration]
    done: list[Migration] = field(default_factory=list)
    dry_run: bool = False
    backfills: list[BackfillResult] = field(default_factory=list)
    #: the distributed backfill the run stopped at, waiting for workers (None: it did not)
    waiting: BackfillPending | None = None


class Reporter:
    """Receives progress of a run (the CLI draws it; the default ignores it).

    Methods may be called from the threads of a backfill's segments.
    """

    def migration_started(self, migration: Migration, direction: Direction, resumed: bool) -> None:
        """A migration's function is about to run."""

    def migration_finished(
        self, migration: Migration, direction: Direction, seconds: float
    ) -> None:
        """It returned and its state is recorded."""

    def migration_failed(
        self, migration: Migration, direction: Direction, error: BaseException
    ) -> None:
        """It raised (the failure is recorded when the lock still allows)."""

    def backfill_started(self, progress: BackfillProgress, resumed: bool) -> None:
        """A backfill begins (``resumed``: from an earlier run's checkpoints)."""

    def backfill_progress(self, progress: BackfillProgress) -> None:
        """A page of a backfill was written and checkpointed."""

    def backfill_finished(self, result: BackfillResult) -> None:
        """A backfill ended (also when it ends with failed items)."""

    def message(self, text: str) -> None:
        """A line for the user (from `MigrationContext.echo` and the runner)."""


class MigrationContext:
    """What a migration's ``up(ctx)`` / ``down(ctx)`` receives.

    Attributes:
        table: the table being migrated (bound to the run's name and connection).
        models: entity type -> model class, for every model of the table.
        version / name / direction: the migration running and which way.
        settings: the run's default `BackfillSettings` (from the command line).
    """

    def __init__(
        self,
        migrator: Migrator,
        migration: Migration,
        direction: Direction,
        record: Record,
        lock: MigrationLock,
    ) -> None:
        self.table = migrator.table
        self.models = migrator.table.entities
        self.version = migration.version
        self.name = migration.name
        self.direction: Direction = direction
        self.settings = migrator.settings
        self.backfills: list[BackfillResult] = []
        self._migrator = migrator
        self._migration = migration
        self._record = record
        self._lock = lock
        self._batch: BatchWriter | None = None
        self._names: set[str] = set()

    def model(self, entity: str) -> type[Model]:
        """The model class stored under an entity type."""
        found = self.models.get(entity)
        if found is None:
            raise ValidationError(
                f"table {self.table.name!r} has no model for entity {entity!r}; "
                f"known: {sorted(self.models)}"
            )
        return cast("type[Model]", found)  # every registered model derives from Model

    @property
    def batch(self) -> BatchWriter:
        """A batch writer sent when the migration function returns (not if it raises)."""
        if self._batch is None:
            self._batch = BatchWriter(connection=resolve_connection(self.table))
        return self._batch

    def batch_writer(self, **options: Any) -> BatchWriter:
        """A new `BatchWriter` on the table's connection (send it yourself)."""
        options.setdefault("connection", resolve_connection(self.table))
        return BatchWriter(**options)

    def scan(
        self, model: type[M], *, segments: int | None = None, filter: Condition | None = None
    ) -> Iterator[M]:
        """Every item of ``model``, read with a parallel scan of ``segments`` segments."""
        self._own(model)
        scan = model.scan()
        if filter is not None:
            scan = scan.filter(filter)
        count = segments or self.settings.segments
        if count > 1:
            return iter(scan.parallel(count))
        return iter(scan)

    def backfill(
        self,
        model: type[M],
        transform: Callable[[M], Output],
        *,
        name: str | None = None,
        filter: Condition | None = None,
        segments: int | None = None,
        page_size: int | None = None,
        rate: float | None = None,
        capacity_fraction: float | None = None,
        max_failures: int | None = None,
        drop_unknown: bool = False,
        skip_version_check: bool = False,
        allow_failures: bool = False,
        distributed: bool = False,
        lease: float | None = None,
    ) -> BackfillResult:
        """Scan ``model``'s items in parallel, transform each, write the results in batches.

        ``transform(item)`` returns None (leave the item as it is), a model instance (put), a
        `WriteRequest` (``put_write_request``/``delete_write_request``), or a list of those.
        It must be idempotent: after a crash the pages since the last checkpoint are processed
        again. A put that would lose attributes of the item its model does not
        declare is refused, unless ``drop_unknown``, which leaves them out of every put of a
        model instance (an instance read from the table otherwise carries them, see
        ``Meta.unknown_attributes``, so returning the transformed instance keeps them).

        Progress is checkpointed per segment after each page; a run that stopped resumes there.
        Items whose transform or write preparation raised are recorded with their error and
        retried first by the next run; when some remain, `BackfillFailed` is raised (unless
        ``allow_failures``), so the migration is not recorded as applied. Options default to
        the run's `settings`; ``name`` tells apart several backfills in one migration
        (default ``backfill1``, ``backfill2``...).

        ``distributed=True`` hands the backfill to workers on any number of machines (see
        docs/distributed-backfills.md): the first run creates the job and stops the migration
        with `BackfillPending` (the lock is released); workers claim its segments with leases
        of ``lease`` seconds (default: the run's lock lease); ``rate`` is shared by all of them.
        The next run after every segment is done returns the totals. ``transform`` must then
        be a function defined at the top level of the migration file (workers look it up by
        name), and every page is committed with its checkpoint in one transaction, so each
        item is migrated exactly once.

        Returns:
            the `BackfillResult` (counts, failed items, whether it resumed).
        """
        self._own(model)
        name = name or f"backfill{len(self._names) + 1}"
        if name in self._names:
            raise ValidationError(f"this migration already ran a backfill named {name!r}")
        self._names.add(name)
        changes = {
            key: value
            for key, value in {
                "segments": segments,
                "page_size": page_size,
                "rate": rate,
                "capacity_fraction": capacity_fraction,
                "max_failures": max_failures,
            }.items()
            if value is not None
        }
        settings = BackfillSettings(**{**self.settings.__dict__, **changes})
        settings = self._migrator._register_backfill(
            self._record, name, settings, model, distributed
        )
        reporter = self._migrator.reporter
        common: dict[str, Any] = {
            "model": model,
            "transform": transform,
            "name": name,
            "settings": settings,
            "condition": filter,
            "drop_unknown": drop_unknown,
            "skip_version_check": skip_version_check,
            "allow_failures": allow_failures,
        }
        self._lock.check()
        try:
            if distributed:
                from dynamodel.migrations.jobs import run_distributed

                result = run_distributed(
                    store=self._migrator.store,
                    owner=self._lock.owner,
                    migration=self._migration,
                    run_id=self._record.run,
                    lease=lease or self._migrator.lease,
                    **common,
                )
            else:
                checkpoints = Checkpoints(
                    self._migrator.store, self._lock.owner, f"{self.version}#{self._record.run}"
                )
                result = run_backfill(
                    checkpoints=checkpoints,
                    lock=self._lock,
                    on_start=reporter.backfill_started,
                    on_progress=reporter.backfill_progress,
                    **common,
                )
        except BackfillFailed as error:
            reporter.backfill_finished(error.result)
            self.backfills.append(error.result)
            raise
        reporter.backfill_finished(result)
        self.backfills.append(result)
        return result

    def echo(self, text: str) -> None:
        """Show a line to whoever runs the migration."""
        self._migrator.reporter.message(text)

    def _own(self, model: type[Model]) -> None:
        if model._spec().table is not self.table:
            raise ValidationError(
                f"{model.__name__} belongs to table {model._spec().table.name!r}, not "
                f"{self.table.name!r} (the table being migrated)"
            )

    def _flush(self) -> None:
        if self._batch is not None:
            self._batch.flush()


class Migrator:
    """Runs the migrations of one folder against one table.

    Args:
        table: the table (its models are the context's ``models``).
        folder: the folder of ``<version>_<name>.py`` files.
        settings: default backfill settings (segments, page size, rate...).
        lease: seconds the lock survives without a heartbeat (a crashed run's lock expires
            after this long).
        reporter: receives progress (default: ignored).
        command: what this run is, shown to runs that find the lock held.
        clock: the lock's wall clock (leases, ``wait``); see `MigrationLock` (tests pass
            fakes).
        sleep: how the lock waits between attempts (tests pass fakes).
    """

    def __init__(
        self,
        table: Table,
        folder: str | Path,
        *,
        settings: BackfillSettings | None = None,
        lease: float = DEFAULT_LEASE,
        reporter: Reporter | None = None,
        command: str = "",
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.table = table
        self.folder = Path(folder)
        self.settings = settings or BackfillSettings()
        self.lease = lease
        self.reporter = reporter or Reporter()
        self.command = command
        self.clock = clock
        self.sleep = sleep
        self.store = Store(table)
        self._records: dict[int, Record] = {}
        self._revision = 0
        self._lock: MigrationLock | None = None

    def _run(self, flow: Flow[Any]) -> Any:
        from dynamodel.io.executors import run

        return run(flow, resolve_connection(self.table))

    # -- reading --------------------------------------------------------------------------------

    def migrations(self) -> list[Migration]:
        """The migration files, ordered by version."""
        return discover(self.folder)

    def records(self) -> dict[int, Record]:
        """The stored records by version number (raises TableNotFound without a table)."""
        return self._read_state()[0]

    def _read_state(self) -> tuple[dict[int, Record], int]:
        data, revision = self._run(self.store.get_json_flow(STATE))
        versions = (data or {}).get("versions", {})
        return {int(v): Record.from_json(r) for v, r in versions.items()}, revision

    def lock_info(self) -> LockInfo | None:
        """Who holds the migration lock now (None: nobody)."""
        info: LockInfo | None = self._run(read_lock_flow(self.store))
        return info

    def unlock(self) -> LockInfo | None:
        """Remove the lock whoever holds it (after making sure that run is dead)."""
        info: LockInfo | None = self._run(force_unlock_flow(self.store))
        return info

    def status(self) -> list[MigrationStatus]:
        """Every migration, from the files and the records, ordered by version."""
        files = {m.number: m for m in self.migrations()}
        records = self.records()
        out = []
        for number in sorted(set(files) | set(records)):
            migration, record = files.get(number), records.get(number)
            progress: tuple[BackfillProgress, ...] = ()
            if record is not None and record.state != "applied":
                progress = tuple(self._progress(record))
            named = migration or record
            assert named is not None
            out.append(
                MigrationStatus(
                    version=named.version,
                    name=named.name,
                    state=record.state if record else "pending",
                    migration=migration,
                    record=record,
                    modified=bool(migration and record and record.checksum != migration.checksum),
                    progress=progress,
                )
            )
        return out

    def _progress(self, record: Record) -> Iterator[BackfillProgress]:
        from dynamodel.migrations.jobs import job_id, progress
        from dynamodel.migrations.segments import Segments

        checkpoints = Checkpoints(self.store, "", f"{record.version}#{record.run}")
        for name, info in record.backfills.items():
            if info.get("distributed"):
                job = Segments(
                    self.store, job_id(record.version, record.run, name), info["segments"]
                )
                try:
                    segments = self._run(job.load_flow())
                except MigrationError:
                    continue  # the job was not created (the run stopped before)
                yield progress(name, segments, self.clock())
                continue
            loaded: list[Checkpoint] = self._run(checkpoints.load_flow(name, info["segments"]))
            yield BackfillProgress.of(name, loaded)

    # -- planning -------------------------------------------------------------------------------

    def plan(self, direction: Direction, target: int | None = None) -> list[Migration]:
        """The migrations `up` / `down` would run now, in the order they would run.

        ``up`` runs every migration not applied with version <= ``target`` (all by default).
        ``down`` reverts every recorded migration with version > ``target`` (by default only
        the latest one), newest first.
        """
        return self._plan(direction, target, self.migrations(), self.records())

    def _plan(
        self,
        direction: Direction,
        target: int | None,
        files: list[Migration],
        records: dict[int, Record],
    ) -> list[Migration]:
        by_number = {m.number: m for m in files}
        if target is not None and target != 0 and target not in by_number and target not in records:
            known = ", ".join(m.version for m in files) or "none"
            raise MigrationError(f"there is no migration with version {target} (known: {known})")
        if direction == "up":
            return [
                m
                for m in files
                if (target is None or m.number <= target)
                and (m.number not in records or records[m.number].state != "applied")
            ]
        if target is None:
            chosen = sorted(records)[-1:]
        else:
            chosen = sorted((n for n in records if n > target), reverse=True)
        missing = [records[n] for n in chosen if n not in by_number]
        if missing:
            names = ", ".join(f"{r.version}_{r.name}" for r in missing)
            raise MigrationError(
                f"cannot revert {names}: the migration file is gone from {str(self.folder)!r}"
            )
        return [by_number[n] for n in chosen]

    # -- running --------------------------------------------------------------------------------

    def up(
        self, target: int | None = None, *, dry_run: bool = False, wait: float = 0.0
    ) -> RunResult:
        """Apply pending migrations (up to ``target``), in version order; see `plan`.

        Raises:
            LockHeld: another run holds the lock (after waiting ``wait`` seconds for it).
            MigrationFailed: a migration raised; it is recorded as failed, later ones not run.
        """
        return self._execute("up", target, dry_run, wait)

    def down(
        self, target: int | None = None, *, dry_run: bool = False, wait: float = 0.0
    ) -> RunResult:
        """Revert the latest migration, or every one above ``target`` (0: all); see `plan`."""
        return self._execute("down", target, dry_run, wait)

    def new(self, name: str) -> Path:
        """Create the next migration file from the template; returns its path."""
        return create(self.folder, name)

    def _execute(
        self, direction: Direction, target: int | None, dry_run: bool, wait: float
    ) -> RunResult:
        files = self.migrations()
        if dry_run:
            planned = self._plan(direction, target, files, self.records())
            for migration in planned:
                migration.function(direction)  # a broken file fails the dry run too
            return RunResult(direction, planned, dry_run=True)
        self.records()  # a missing table fails here, before the lock is taken
        lock = MigrationLock(
            self.store, lease=self.lease, command=self.command, clock=self.clock, sleep=self.sleep
        )
        lock.acquire(wait=wait)
        try:
            result = self._execute_locked(direction, target, files, lock)
        except BaseException:
            self._lock = None
            with suppress(Exception):  # keep the original error; the lease expires anyway
                lock.release()
            raise
        self._lock = None
        lock.release()
        return result

    def _execute_locked(
        self, direction: Direction, target: int | None, files: list[Migration], lock: MigrationLock
    ) -> RunResult:
        records, self._revision = self._read_state()  # under the lock: no run changes them
        planned = self._plan(direction, target, files, records)
        functions = [m.function(direction) for m in planned]  # load all before running any
        result = RunResult(direction, planned)
        self._records = records
        self._lock = lock
        for migration, function in zip(planned, functions, strict=True):
            lock.check()
            try:
                result.backfills += self._one(migration, function, direction, lock)
            except BackfillPending as pending:
                result.waiting = pending
                return result
            result.done.append(migration)
        return result

    def _save(self, lock: MigrationLock) -> None:
        lock.check()
        data = {"versions": {str(n): r.to_json() for n, r in sorted(self._records.items())}}
        self._revision = self._run(
            self.store.put_json_flow(lock.owner, STATE, data, self._revision)
        )

    def _one(
        self,
        migration: Migration,
        function: Callable[[Any], Any],
        direction: Direction,
        lock: MigrationLock,
    ) -> list[BackfillResult]:
        previous = self._records.get(migration.number)
        unfinished = ("running", "failed") if direction == "up" else ("reverting", "revert_failed")
        resumed = previous is not None and previous.state in unfinished
        record = Record(
            version=migration.version,
            name=migration.name,
            state="running" if direction == "up" else "reverting",
            direction=direction,
            run=previous.run if resumed and previous else uuid.uuid4().hex[:8],
            checksum=migration.checksum,
            owner=lock.owner,
            started_at=_now(),
            applied_at=previous.applied_at if previous and direction == "down" else None,
            backfills=dict(previous.backfills) if resumed and previous else {},
        )
        self._records[migration.number] = record
        self._save(lock)
        self.reporter.migration_started(migration, direction, resumed)
        started = time.monotonic()
        context = MigrationContext(self, migration, direction, record, lock)
        try:
            function(context)
            context._flush()
        except BackfillPending as pending:
            record.waiting = pending.job
            self._save(lock)
            self.reporter.message(str(pending))
            raise
        except BaseException as error:
            self._record_failure(record, direction, error, lock)
            self.reporter.migration_failed(migration, direction, error)
            if isinstance(error, LockLost | KeyboardInterrupt | SystemExit):
                raise
            raise MigrationFailed(
                f"migration {migration.title} ({direction}) failed: "
                f"{type(error).__name__}: {error}",
                version=migration.version,
                direction=direction,
                cause=error,
            ) from error
        record.finished_at = _now()
        record.error = None
        record.waiting = None
        if direction == "up":
            record.state = "applied"
            record.applied_at = record.finished_at
        else:
            del self._records[migration.number]
        self._save(lock)
        self._clean_checkpoints(record)
        self.reporter.migration_finished(migration, direction, time.monotonic() - started)
        return context.backfills

    def _record_failure(
        self, record: Record, direction: Direction, error: BaseException, lock: MigrationLock
    ) -> None:
        record.state = "failed" if direction == "up" else "revert_failed"
        if isinstance(error, KeyboardInterrupt):
            record.error = "interrupted (Ctrl-C or SIGTERM); run again to resume"
        else:
            record.error = f"{type(error).__name__}: {error}"
        record.finished_at = _now()
        if isinstance(error, LockLost):
            return  # another run owns the state now
        try:
            self._save(lock)
        except LockLost:
            return  # taken over meanwhile: the new holder sees "running" and resumes
        except Exception as save_error:  # the original error matters more; say so
            self.reporter.message(f"could not record the failure in the table: {save_error}")

    def _register_backfill(
        self,
        record: Record,
        name: str,
        settings: BackfillSettings,
        model: type[Model],
        distributed: bool = False,
    ) -> BackfillSettings:
        stored = record.backfills.get(name)
        if stored is not None:
            if stored["segments"] != settings.segments:
                self.reporter.message(
                    f"backfill {name!r} resumes with its original {stored['segments']} segments "
                    f"(not {settings.segments})"
                )
                settings = BackfillSettings(**{**settings.__dict__, "segments": stored["segments"]})
            return settings
        record.backfills[name] = {"segments": settings.segments, "model": model.__name__}
        if distributed:
            record.backfills[name]["distributed"] = True
        assert self._lock is not None
        self._save(self._lock)
        return settings

    def _clean_checkpoints(self, record: Record) -> None:
        checkpoints = Checkpoints(self.store, "", f"{record.version}#{record.run}")
        from dynamodel.migrations.jobs import job_id, job_item_names

        names = []
        for backfill, info in record.backfills.items():
            if info.get("distributed"):
                job = job_id(record.version, record.run, backfill)
                names += job_item_names(self.store, job, info["segments"])
            else:
                names += [checkpoints.item_name(backfill, s) for s in range(info["segments"])]
        try:
            self._run(self.store.delete_flow(names))
        except Exception as error:  # harmless leftovers: a later run uses new keys
            self.reporter.message(f"could not delete old checkpoints ({error}); ignored")


def parse_target(text: str | int | None) -> int | None:
    """A version given as ``3``, ``"0003"`` or ``"0003_name"`` -> 3 (None stays None)."""
    if text is None or isinstance(text, int):
        return text
    head = str(text).split("_", 1)[0]
    if not head.isdigit():
        raise MigrationError(f"version {text!r} is not a number (e.g. 3 or 0003)")
    return int(head)
