"""``dynamodel migrate``: new, status, up, down, worker, statemachine, unlock."""

from __future__ import annotations

import json
import os
import shlex
import signal
import sys
import threading
import time
from pathlib import Path
from types import FrameType
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.progress import (
    BarColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table as RichTable

from dynamodel.cli._common import (
    BAD_INPUT,
    LOCKED,
    WAITING,
    AppOption,
    EndpointOption,
    Group,
    JsonOption,
    MigrationsOption,
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
from dynamodel.cli._project import Project, ProjectError, migrations_folder, read_config
from dynamodel.migrations import (
    BackfillFailed,
    BackfillProgress,
    BackfillResult,
    BackfillSettings,
    LockHeld,
    LockLost,
    Migration,
    MigrationError,
    MigrationFailed,
    Migrator,
    Reporter,
    RunResult,
    SegmentLeased,
    Worker,
    parse_target,
)
from dynamodel.migrations.backfill import describe_failures
from dynamodel.migrations.files import create

app = typer.Typer(
    cls=Group,
    name="migrate",
    help="Versioned, resumable data migrations; state and lock live in the table itself.",
    no_args_is_help=True,
    rich_markup_mode="markdown",
)

ToOption = Annotated[
    str | None,
    typer.Option(
        "--to",
        help="Target version (e.g. 3 or 0003). up: apply up to and including it; down: revert "
        "every migration above it (0 reverts all).",
        show_default=False,
    ),
]
DryRunOption = Annotated[
    bool,
    typer.Option("--dry-run", help="List the migrations that would run; run and write nothing."),
]
WaitOption = Annotated[
    float,
    typer.Option(
        help="Seconds to wait for another run's lock to be released (or to expire) before "
        "giving up."
    ),
]
LeaseOption = Annotated[
    float,
    typer.Option(
        help="Lock lease in seconds: a crashed run's lock expires this long after its last "
        "heartbeat."
    ),
]
SegmentsOption = Annotated[
    int, typer.Option(min=1, help="Parallel scan segments for backfills (one thread each).")
]
PageSizeOption = Annotated[
    int,
    typer.Option(
        min=1, help="Items per scan page for backfills; a checkpoint is stored after each page."
    ),
]
RateOption = Annotated[
    float | None,
    typer.Option(help="Backfill rate limit: items scanned per second (all segments).", min=0.001),
]
CapacityOption = Annotated[
    float | None,
    typer.Option(
        "--capacity-fraction",
        min=0.001,
        max=1.0,
        help="Backfill rate limit: fraction of the table's provisioned read and write capacity.",
    ),
]
MaxFailuresOption = Annotated[
    int,
    typer.Option(
        min=0, help="Stop a backfill once more items than this failed (they are kept and retried)."
    ),
]
ReportOption = Annotated[
    Path | None,
    typer.Option(
        "--failed-report",
        help="Write the items a backfill could not migrate to this file (JSON lines).",
    ),
]


class RichReporter(Reporter):
    """Draws runs in the terminal: one line per migration, a progress bar per backfill."""

    def __init__(self) -> None:
        self.progress: Progress | None = None
        self.task: TaskID | None = None
        self.started = 0.0
        self.scanned_before = 0
        self._mutex = threading.Lock()

    def migration_started(self, migration: Migration, direction: str, resumed: bool) -> None:
        verb = "applying" if direction == "up" else "reverting"
        again = " (resuming an unfinished run)" if resumed else ""
        console.print(f"{verb} [bold]{escape(migration.title)}[/bold]{again}", highlight=False)

    def migration_finished(self, migration: Migration, direction: str, seconds: float) -> None:
        verb = "applied" if direction == "up" else "reverted"
        console.print(
            f"  [green]{verb}[/green] {escape(migration.title)} in {seconds:.1f}s",
            highlight=False,
        )

    def migration_failed(self, migration: Migration, direction: str, error: BaseException) -> None:
        self._stop()
        console.print(f"  [red]failed[/red] {escape(migration.title)}", highlight=False)

    def backfill_started(self, progress: BackfillProgress, resumed: bool) -> None:
        self._stop()
        self.started = time.monotonic()
        self.scanned_before = progress.scanned
        if resumed:
            console.print(
                f"  backfill {progress.name}: resuming from checkpoints "
                f"({progress.scanned:,} scanned, {progress.segments_done}/{progress.segments} "
                "segments done)",
                highlight=False,
                markup=False,
            )
        self.progress = Progress(
            TextColumn("  {task.description}"),
            BarColumn(),
            TextColumn("{task.fields[scanned]:>10,} scanned"),
            TextColumn("{task.fields[written]:>10,} written"),
            TextColumn("{task.fields[failed]} failed"),
            TextColumn("{task.fields[rate]:>8,.0f} items/s"),
            TimeElapsedColumn(),
            TextColumn("ETA"),
            TimeRemainingColumn(),
            console=console,
            transient=False,
        )
        self.task = self.progress.add_task(
            escape(progress.name),  # the description column renders markup
            total=max(progress.estimate or 0, progress.scanned) or None,
            completed=progress.scanned,
            **self._fields(progress),
        )
        self.progress.start()

    def _fields(self, progress: BackfillProgress) -> dict[str, Any]:
        elapsed = max(time.monotonic() - self.started, 1e-6)
        return {
            "scanned": progress.scanned,
            "written": progress.written,
            "failed": progress.failed,
            "rate": (progress.scanned - self.scanned_before) / elapsed,
        }

    def backfill_progress(self, progress: BackfillProgress) -> None:
        with self._mutex:
            if self.progress is None or self.task is None:
                return
            total = self.progress.tasks[0].total
            if total is not None and progress.scanned > total:
                total = progress.scanned
            self.progress.update(
                self.task, completed=progress.scanned, total=total, **self._fields(progress)
            )

    def backfill_finished(self, result: BackfillResult) -> None:
        if self.progress is not None and self.task is not None:
            self.progress.update(self.task, total=self.progress.tasks[0].completed)
        self._stop()
        console.print(
            f"  backfill {result.name}: {result.scanned:,} scanned, {result.written:,} written, "
            f"{result.unchanged:,} unchanged, {len(result.failed)} failed in "
            f"{result.elapsed:.1f}s ({result.segments} segments"
            f"{', resumed' if result.resumed else ''})",
            highlight=False,
            markup=False,
        )

    def message(self, text: str) -> None:
        console.print(f"  {text}", highlight=False, markup=False)

    def _stop(self) -> None:
        with self._mutex:
            if self.progress is not None:
                self.progress.stop()
            self.progress = None
            self.task = None


def _folder(migrations: Path | None) -> Path:
    try:
        return migrations_folder(migrations, read_config())
    except ProjectError as error:
        fail(str(error), BAD_INPUT)


@app.command()
def new(
    name: Annotated[str, typer.Argument(help="What the migration does, e.g. 'add order index'.")],
    migrations: MigrationsOption = None,
) -> None:
    """Create the next migration file (version one above the highest) from a template."""
    folder = _folder(migrations)
    try:
        path = create(folder, name)
    except MigrationError as error:
        fail(str(error), BAD_INPUT)
    console.print(f"Created {path}", highlight=False, markup=False)


def _migrator(
    app: str | None,
    table: str | None,
    table_name: str | None,
    endpoint_url: str | None,
    region: str | None,
    migrations: Path | None,
    settings: BackfillSettings | None = None,
    lease: float = 60.0,
) -> tuple[Project, Migrator]:
    project = open_project(app, table, table_name, endpoint_url, region, migrations)
    command = "dynamodel " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    return project, Migrator(
        project.table,
        project.migrations,
        settings=settings,
        lease=lease,
        reporter=RichReporter(),
        command=command,
    )


@app.command()
def status(
    app: AppOption = None,
    table: TableOption = None,
    table_name: TableNameOption = None,
    endpoint_url: EndpointOption = None,
    region: RegionOption = None,
    migrations: MigrationsOption = None,
    as_json: JsonOption = False,
) -> None:
    """List every migration with its state (pending, applied, running, failed...), backfill
    progress of unfinished runs, and who holds the lock."""
    project, migrator = _migrator(app, table, table_name, endpoint_url, region, migrations)
    with errors(project):
        try:
            states = migrator.status()
        except MigrationError as error:
            fail(str(error), BAD_INPUT)
        lock = migrator.lock_info()
    if as_json:
        print_json(
            {
                "migrations": [
                    {
                        "version": s.version,
                        "name": s.name,
                        "state": s.state,
                        "file": str(s.migration.path) if s.migration else None,
                        "modified": s.modified,
                        "record": s.record.to_json() if s.record else None,
                        "progress": [p.__dict__ for p in s.progress],
                    }
                    for s in states
                ],
                "lock": lock.__dict__ if lock else None,
            }
        )
        return
    grid = RichTable("Version", "Name", "State", "Applied at", "Notes")
    colour = {"applied": "green", "pending": "cyan", "running": "yellow", "reverting": "yellow"}
    for s in states:
        notes = []
        if s.migration is None:
            notes.append("file missing")
        if s.modified:
            notes.append("file changed since applied")
        if s.record is not None and s.record.error:
            notes.append(s.record.error)
        for p in s.progress:
            notes.append(
                f"backfill {p.name}: {p.scanned:,} scanned, {p.written:,} written, "
                f"{p.failed} failed, {p.segments_done}/{p.segments} segments done"
                + (f", {p.workers} worker(s) active" if p.workers else "")
            )
        if s.record is not None and s.record.waiting and s.state == "running":
            notes.append(f"waiting for workers: job {s.record.waiting}")
        style = colour.get(s.state, "red")
        applied = s.record.applied_at if s.record and s.record.applied_at else ""
        grid.add_row(
            escape(str(s.version)),
            escape(s.name),
            f"[{style}]{escape(s.state)}[/{style}]",
            escape(str(applied)),
            escape("\n".join(notes)),
        )
    if states:
        console.print(grid)
    else:
        console.print(f"No migrations in {migrator.folder}.", highlight=False, markup=False)
    if lock is not None:
        state = "expired" if lock.expired() else "held"
        console.print(f"Lock {state}: {lock.describe()}", highlight=False, markup=False)


def _settings(
    segments: int, page_size: int, rate: float | None, capacity: float | None, max_failures: int
) -> BackfillSettings:
    return BackfillSettings(
        segments=segments,
        page_size=page_size,
        rate=rate,
        capacity_fraction=capacity,
        max_failures=max_failures,
    )


def _write_report(path: Path | None, results: list[BackfillResult]) -> None:
    if path is None:
        return
    with path.open("w", encoding="utf-8") as handle:
        for result in results:
            for failed in result.failed:
                handle.write(json.dumps({"backfill": result.name, **failed.as_dict()}, default=str))
                handle.write("\n")
    count = sum(len(r.failed) for r in results)
    console.print(f"Wrote {count} failed item(s) to {path}", highlight=False, markup=False)


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def _run(
    direction: str,
    project: Project,
    migrator: Migrator,
    to: str | None,
    dry_run: bool,
    wait: float,
    report: Path | None,
) -> RunResult:
    # SIGTERM (kill, docker stop) stops like Ctrl-C: each backfill segment finishes its page
    # and stores its checkpoint, the failure is recorded and the lock released
    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        return _run_locked(direction, project, migrator, to, dry_run, wait, report)
    finally:
        signal.signal(signal.SIGTERM, previous)


def _run_locked(
    direction: str,
    project: Project,
    migrator: Migrator,
    to: str | None,
    dry_run: bool,
    wait: float,
    report: Path | None,
) -> RunResult:
    with errors(project):
        try:
            target = parse_target(to)
            if direction == "up":
                result = migrator.up(target, dry_run=dry_run, wait=wait)
            else:
                result = migrator.down(target, dry_run=dry_run, wait=wait)
        except LockHeld as error:
            fail(
                f"{error}\nAnother run is migrating this table; wait for it (--wait SECONDS).",
                LOCKED,
            )
        except MigrationFailed as error:
            cause = error.cause
            if isinstance(cause, BackfillFailed):
                err_console.print(describe_failures(cause.failed), markup=False, highlight=False)
                _write_report(report, [cause.result])
            fail(
                f"{error}\nThe failure is recorded (see `dynamodel migrate status`); fix it and "
                f"run `dynamodel migrate {direction}` again: it resumes where it stopped."
            )
        except LockLost as error:
            fail(f"{error}; another run took over. Check `dynamodel migrate status`.")
        except MigrationError as error:
            fail(str(error), BAD_INPUT)
    _summary(result, migrator)
    _write_report(report, result.backfills)
    return result


def _summary(result: RunResult, migrator: Migrator) -> None:
    if result.dry_run:
        if not result.planned:
            console.print("Nothing to do.")
            return
        verb = "apply" if result.direction == "up" else "revert"
        console.print(f"Would {verb}, in this order:")
        for migration in result.planned:
            console.print(
                f"  {migration.title}  {migration.description()}", highlight=False, markup=False
            )
        return
    if not result.planned:
        console.print(
            "Nothing to do: "
            + (
                "all migrations are applied."
                if result.direction == "up"
                else "no migration is applied."
            )
        )
        return
    verb = "Applied" if result.direction == "up" else "Reverted"
    console.print(f"{verb} {len(result.done)} migration(s).", highlight=False)
    if result.waiting is not None:
        console.print(
            f"Waiting for workers: {result.waiting.migration}, backfill "
            f"{result.waiting.backfill!r}, job {result.waiting.job} "
            f"({result.waiting.segments} segments).",
            highlight=False,
            markup=False,
        )


@app.command()
def up(
    app: AppOption = None,
    table: TableOption = None,
    table_name: TableNameOption = None,
    endpoint_url: EndpointOption = None,
    region: RegionOption = None,
    migrations: MigrationsOption = None,
    to: ToOption = None,
    dry_run: DryRunOption = False,
    wait: WaitOption = 0.0,
    lease: LeaseOption = 60.0,
    segments: SegmentsOption = 4,
    page_size: PageSizeOption = 500,
    rate: RateOption = None,
    capacity_fraction: CapacityOption = None,
    max_failures: MaxFailuresOption = 100,
    failed_report: ReportOption = None,
    workers: Annotated[
        int,
        typer.Option(
            min=0,
            help="Run distributed backfills here with this many worker processes (each "
            "`dynamodel migrate worker`), then go on. 0: stop at a distributed backfill and "
            "exit with 4, for workers elsewhere (processes, containers, Step Functions).",
        ),
    ] = 0,
) -> None:
    """Apply pending migrations in version order (all, or up to --to).

    Takes the table's migration lock (another run waits up to --wait seconds, else exits with
    3), records each migration as it runs, and resumes an interrupted one from its backfill
    checkpoints. A failing migration is recorded as failed and stops the run (exit 1). A
    distributed backfill (`ctx.backfill(..., distributed=True)`) stops the run for workers
    (exit 4) unless --workers runs them here.
    """
    settings = _settings(segments, page_size, rate, capacity_fraction, max_failures)
    project, migrator = _migrator(
        app, table, table_name, endpoint_url, region, migrations, settings, lease
    )
    project_args = _project_args(app, table, table_name, endpoint_url, region, migrations)
    while True:
        result = _run("up", project, migrator, to, dry_run, wait, failed_report)
        if result.waiting is None:
            return
        if not workers:
            fail(
                f"{result.waiting}\nWorkers: `dynamodel migrate worker` on any number of "
                "machines, then `dynamodel migrate up` again (or pass --workers N).",
                WAITING,
            )
        _local_workers(result.waiting.job, workers, project_args)


def _project_args(
    app: str | None,
    table: str | None,
    table_name: str | None,
    endpoint_url: str | None,
    region: str | None,
    migrations: Path | None,
) -> list[str]:
    """The options that make a `dynamodel migrate worker` open the same project."""
    args = []
    for flag, value in (
        ("--app", app),
        ("--table", table),
        ("--table-name", table_name),
        ("--endpoint-url", endpoint_url),
        ("--region", region),
        ("--migrations", migrations),
    ):
        if value is not None:
            args += [flag, str(value)]
    return args


def _local_workers(job: str, count: int, project_args: list[str]) -> None:
    """Run ``count`` worker processes on ``job`` until they end; exit 1 if one failed."""
    import subprocess

    command = [sys.executable, "-m", "dynamodel.cli", "migrate", "worker", "--job", job]
    console.print(f"Starting {count} worker process(es) for job {job}.", highlight=False)
    processes = [subprocess.Popen([*command, *project_args]) for _ in range(count)]
    try:
        codes = [process.wait() for process in processes]
    except BaseException:
        for process in processes:
            process.terminate()
        raise
    failed = [code for code in codes if code != 0]
    if failed:
        fail(
            f"{len(failed)} of {count} worker process(es) failed (exit codes {failed}); the "
            "job keeps its progress: run `dynamodel migrate up --workers N` again to resume"
        )


@app.command()
def down(
    app: AppOption = None,
    table: TableOption = None,
    table_name: TableNameOption = None,
    endpoint_url: EndpointOption = None,
    region: RegionOption = None,
    migrations: MigrationsOption = None,
    to: ToOption = None,
    dry_run: DryRunOption = False,
    wait: WaitOption = 0.0,
    lease: LeaseOption = 60.0,
    segments: SegmentsOption = 4,
    page_size: PageSizeOption = 500,
    rate: RateOption = None,
    capacity_fraction: CapacityOption = None,
    max_failures: MaxFailuresOption = 100,
    failed_report: ReportOption = None,
) -> None:
    """Revert the latest applied migration, or every one above --to (--to 0: all), newest
    first, with each migration's down(ctx). Locked, recorded and resumable like `up`."""
    settings = _settings(segments, page_size, rate, capacity_fraction, max_failures)
    project, migrator = _migrator(
        app, table, table_name, endpoint_url, region, migrations, settings, lease
    )
    _run("down", project, migrator, to, dry_run, wait, failed_report)


@app.command()
def worker(
    app: AppOption = None,
    table: TableOption = None,
    table_name: TableNameOption = None,
    endpoint_url: EndpointOption = None,
    region: RegionOption = None,
    migrations: MigrationsOption = None,
    job: Annotated[
        str | None,
        typer.Option(help="The job (default: the one a migration waits on).", show_default=False),
    ] = None,
    segment: Annotated[
        int | None,
        typer.Option(
            min=0, help="Work on this segment only (default: any free ones).", show_default=False
        ),
    ] = None,
    deadline: Annotated[
        float | None,
        typer.Option(
            min=0,
            help="Seconds to work; the segment in hand is handed back before then "
            "(default: until the job is done).",
            show_default=False,
        ),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Work on a distributed backfill: claim segments with leases, migrate their items,
    checkpoint each page with its writes. Run any number of these, anywhere; a killed worker's
    segments are taken over once its lease expires."""
    project = open_project(app, table, table_name, endpoint_url, region, migrations)
    runner = Worker(project.table, project.migrations)
    # SIGTERM (docker stop, kill, a scheduler) hands the segment in hand back at once
    previous = signal.signal(signal.SIGTERM, lambda signum, frame: runner.stop())
    with errors(project):
        try:
            report = runner.work(job, segment=segment, seconds=deadline)
        except SegmentLeased as error:
            fail(str(error), LOCKED)
        except MigrationError as error:
            fail(str(error), BAD_INPUT)
        finally:
            signal.signal(signal.SIGTERM, previous)
    if as_json:
        print_json(report.to_json())
        return
    state = "job complete" if report.complete else "job not complete"
    console.print(
        f"Worker {report.owner}: {len(report.segments)} segment(s) worked on, "
        f"{len(report.finished)} finished, {len(report.handed_back)} handed back; "
        f"{report.scanned:,} scanned, {report.written:,} written, {report.failed} failed; "
        f"{state}.",
        highlight=False,
        markup=False,
    )


#: the state machine definition the Step Functions example deploys, shipped with dynamodel
STATE_MACHINE = Path(__file__).resolve().parent.parent / "migrations" / "statemachine"
_PROJECT_ENV = "DYNAMODEL_STATEMACHINE_PROJECT"


def statemachine_handler() -> Any:
    """The Lambda handler of the project named in ``$DYNAMODEL_STATEMACHINE_PROJECT`` (built
    once in each worker process of `dynamodel migrate statemachine`)."""
    from dynamodel.cli._project import load_project
    from dynamodel.migrations import lambda_handler

    options = json.loads(os.environ[_PROJECT_ENV])
    migrations = options.pop("migrations")
    project = load_project(**options, migrations=Path(migrations) if migrations else None)
    return lambda_handler(project.table, project.migrations)


@app.command()
def statemachine(
    app: AppOption = None,
    table: TableOption = None,
    table_name: TableNameOption = None,
    endpoint_url: EndpointOption = None,
    region: RegionOption = None,
    migrations: MigrationsOption = None,
    workers: Annotated[
        int, typer.Option(min=1, help="Worker processes the Map's iterations run in.")
    ] = 4,
    timeout: Annotated[
        float,
        typer.Option(min=1, help="Seconds each worker invocation may run (Lambda's timeout)."),
    ] = 900.0,
    to: ToOption = None,
    definition: Annotated[
        Path | None,
        typer.Option(
            help="A state machine definition (default: the one examples/stepfunctions deploys).",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Play the Step Functions state machine of distributed backfills here: Start, a Map of
    the waiting backfill's segments over N worker processes (each a stand-in for a Lambda
    invocation, with its timeout), Start again, Verify. Exits 1 if the execution fails."""
    from dynamodel.migrations.asl import load_definition, run_state_machine

    open_project(app, table, table_name, endpoint_url, region, migrations)  # fails early
    os.environ[_PROJECT_ENV] = json.dumps(
        {
            "app": app,
            "table": table,
            "table_name": table_name,
            "endpoint_url": endpoint_url,
            "region": region,
            "migrations": str(migrations) if migrations else None,
        }
    )
    source = definition or STATE_MACHINE / "backfill.asl.json"
    machine = load_definition(source, {"WorkerFunctionArn": "local"})
    started = time.monotonic()
    execution = run_state_machine(
        machine,
        {"target": to} if to else {},
        handlers={"local": "dynamodel.cli._migrate:statemachine_handler"},
        workers=workers,
        timeout=timeout,
    )
    entered = execution.entered()
    counts = {state: entered.count(state) for state in dict.fromkeys(entered)}
    console.print(
        f"Execution {execution.status} in {time.monotonic() - started:.1f} s; states entered: "
        + ", ".join(f"{state} x{count}" for state, count in counts.items())
        + f"; {len(execution.retries())} retries.",
        highlight=False,
        markup=False,
    )
    if execution.status != "SUCCEEDED":
        fail(f"the execution failed: {execution.error}: {execution.cause}")
    console.print(json.dumps(execution.output, default=str), highlight=False, markup=False)


@app.command()
def unlock(
    app: AppOption = None,
    table: TableOption = None,
    table_name: TableNameOption = None,
    endpoint_url: EndpointOption = None,
    region: RegionOption = None,
    yes: Annotated[
        bool,
        typer.Option(
            "--yes", "-y", help="Remove the lock even if its lease has not expired (no prompt)."
        ),
    ] = False,
) -> None:
    """Remove the migration lock of a run that is known to be dead.

    An expired lock needs no unlocking: the next run takes it over. Removing a live run's lock
    makes that run stop at its next checkpoint.
    """
    project, migrator = _migrator(app, table, table_name, endpoint_url, region, None)
    with errors(project):
        info = migrator.lock_info()
        if info is None:
            console.print("The migration lock is not held.")
            return
        console.print(f"Lock: {info.describe()}", highlight=False, markup=False)
        if not info.expired() and not yes:
            if not sys.stdin.isatty():
                fail("the lock's lease has not expired: pass --yes to remove it anyway", BAD_INPUT)
            typer.confirm("Remove it although its lease has not expired?", abort=True)
        migrator.unlock()
    console.print("Lock removed.")
