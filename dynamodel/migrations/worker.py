"""Distributed backfill workers: claim segments, scan, transform, commit writes with checkpoints.

A worker works on one job (`dynamodel.migrations.jobs`). In *any-segment* mode (``dynamodel
migrate worker``: processes, containers) it claims free segments one after another until
every segment is done or its time is up; in *one-segment* mode (a Step Functions Map item) it
claims the segment it is given. For each page of its segment it:

1. reserves the page's items against the job's shared rate (`GlobalRate`) and waits its turn;
2. scans the page (``Segment``/``TotalSegments``, ``Limit``, from the segment's cursor);
3. runs the transform on each item (an item whose transform raises is recorded as failed);
4. commits the page's writes **and** the segment's checkpoint in one ``TransactWriteItems``
   (at most 99 writes and 4 MB each; a larger page is committed in several transactions,
   each checkpointing after its last item). The checkpoint's condition is the worker's lease
   (owner and claim count), so a worker that lost its lease commits nothing, and a page's
   writes and checkpoint land together or not at all: every item is migrated exactly once,
   whatever dies when. The transaction's ``ClientRequestToken`` is derived from the job,
   segment, claim and cursor, so a resend after a lost response does not apply it twice.

It renews its lease with each checkpoint (and while it waits for the rate), and before a page
that might not finish before its deadline it hands the segment back (checkpoint kept, lease
released) for another worker, or the next Lambda invocation, to continue.

Transactions cost twice the write capacity of batch writes; that is the price of exactly
once with workers that may die at any point.
"""

from __future__ import annotations

import hashlib
import random
import threading
import time
import uuid
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from dynamodel.core.codec import Item
from dynamodel.core.errors import TransactionCanceled, ValidationError
from dynamodel.core.flows import Flow, Request, call
from dynamodel.io.scope import resolve_connection
from dynamodel.migrations.backfill import segment_scan
from dynamodel.migrations.errors import LeaseLost, MigrationError, SegmentLeased
from dynamodel.migrations.files import discover
from dynamodel.migrations.global_rate import GlobalRate
from dynamodel.migrations.jobs import Jobs, JobSpec, rate_item_name
from dynamodel.migrations.segments import Segment, Segments
from dynamodel.migrations.store import STATE, Store
from dynamodel.migrations.transform import FailedItem, Transformer, transformer_for
from dynamodel.modelling.tenancy import refuse_in_tenant_scope
from dynamodel.ops.batch_flows import WriteRequest, deduplicate
from dynamodel.ops.pagination import encode_cursor
from dynamodel.ops.transactions import send_flow

if TYPE_CHECKING:
    from dynamodel.io.clients import Connection
    from dynamodel.model import Model
    from dynamodel.modelling.table import Table

#: writes per transaction (DynamoDB's limit of 100 actions, less the checkpoint)
MAX_WRITES = 99
#: bytes of writes per transaction (DynamoDB's 4 MB, less room for the checkpoint)
MAX_BYTES = 4 * 1024 * 1024 - 128 * 1024


@dataclass
class WorkReport:
    """What one worker run did.

    Attributes:
        job: the job. owner: this worker's id.
        segments: the segments it worked on; finished: those it finished; handed_back:
            those it gave back before its deadline.
        scanned / written / unchanged / failed: its own counts.
        complete: every segment of the job is done (as last read).
    """

    job: str
    owner: str
    segments: list[int] = field(default_factory=list)
    finished: list[int] = field(default_factory=list)
    handed_back: list[int] = field(default_factory=list)
    scanned: int = 0
    written: int = 0
    unchanged: int = 0
    failed: int = 0
    complete: bool = False

    def to_json(self) -> dict[str, Any]:
        """JSON-ready form (the CLI's ``--json`` and the Lambda handler's output)."""
        return dict(self.__dict__)


@dataclass
class _Job:
    """One job as this worker runs it."""

    spec: JobSpec
    segments: Segments
    transformer: Transformer
    scan: dict[str, Any]
    rate: GlobalRate | None


def find_waiting_job(store: Store) -> Flow[str | None]:
    """The job a migration is waiting on (None: no migration waits for workers)."""
    data, _ = yield from store.get_json_flow(STATE)
    for record in (data or {}).get("versions", {}).values():
        if record.get("state") == "running" and record.get("waiting"):
            return str(record["waiting"])
    return None


class Worker:
    """Works on a distributed backfill of ``table``, whose migrations are in ``folder``.

    Args:
        table: the table (bound as the migration was: same name, same models).
        folder: the migration files (the transform is looked up in its migration's file).
        owner: this worker's id (default: host, pid and a random suffix).
        margin: seconds kept free before the deadline (at least this, or twice the slowest
            page so far, whichever is more).
        clock: wall clock in epoch seconds (leases); monotonic: the deadline's clock;
            sleep: how it waits (tests pass fakes).
    """

    def __init__(
        self,
        table: Table,
        folder: str | Path,
        *,
        owner: str | None = None,
        margin: float = 5.0,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.table = table
        self.folder = Path(folder)
        self.store = Store(table)
        self.jobs = Jobs(self.store)
        self.owner = owner or f"worker-{uuid.uuid4().hex[:12]}"
        self.margin = margin
        self.clock = clock
        self.monotonic = monotonic
        self.sleep = sleep
        self._connection: Connection | None = None
        self._deadline = float("inf")
        self._slowest = 0.0
        self._stop = threading.Event()

    def stop(self) -> None:
        """Ask the worker to hand its segment back and return (thread- and signal-safe: the
        CLI calls it on SIGTERM)."""
        self._stop.set()

    def _run(self, flow: Flow[Any]) -> Any:
        from dynamodel.io.executors import run

        return run(flow, resolve_connection(self.table, self._connection))

    # -- entry ----------------------------------------------------------------------------------

    def work(
        self, job: str | None = None, *, segment: int | None = None, seconds: float | None = None
    ) -> WorkReport:
        """Work on ``job`` (default: the job a migration waits on) for at most ``seconds``.

        With ``segment``, claim that segment only (raises `SegmentLeased` if another worker
        holds it) and work on it until it is done or time is up; otherwise claim free segments
        until every segment is done (waiting for dead workers' leases to expire) or time is up.
        """
        refuse_in_tenant_scope("a backfill worker")
        self._connection = resolve_connection(self.table)
        self._deadline = self.monotonic() + seconds if seconds is not None else float("inf")
        if job is None:
            job = self._run(find_waiting_job(self.store))
            if job is None:
                raise MigrationError(
                    f"table {self.table.physical_name!r}: no migration is waiting for workers "
                    "(see `dynamodel migrate status`; `dynamodel migrate up` starts the job)"
                )
        spec = self._run(self.jobs.load_flow(job))
        if spec is None:
            raise MigrationError(
                f"table {self.table.physical_name!r}: there is no distributed backfill job "
                f"{job!r} (finished and cleaned up, or never started)"
            )
        running = self._prepare(spec)
        report = WorkReport(job=job, owner=self.owner)
        if segment is not None:
            if not 0 <= segment < spec.segments:
                raise ValidationError(
                    f"job {job}: segment {segment} out of range (0 to {spec.segments - 1})"
                )
            claimed = self._claim(running, segment)
            if claimed is None:
                report.finished.append(segment)  # done already (by another worker)
            else:
                self._segment(running, claimed, report)
            segments = self._run(running.segments.load_flow())
            report.complete = all(s.done for s in segments)
            return report
        self._any(running, report)
        return report

    def _prepare(self, spec: JobSpec) -> _Job:
        migration = next((m for m in discover(self.folder) if m.version == spec.migration), None)
        if migration is None:
            raise MigrationError(
                f"job {spec.job}: migration {spec.migration} is not in {str(self.folder)!r}; "
                "workers need the same migration files as the run that started the job"
            )
        if migration.checksum != spec.checksum:
            raise MigrationError(
                f"job {spec.job}: {migration.path} differs from the file the job was started "
                "with (checksum); deploy the same migration files to every worker"
            )
        function = getattr(migration.load(), spec.function, None)
        if not callable(function):
            raise MigrationError(f"{migration.path}: has no function {spec.function!r}")
        found = self.table.entities.get(spec.entity)
        if found is None:
            raise MigrationError(
                f"job {spec.job}: table {self.table.name!r} has no model for entity "
                f"{spec.entity!r}; import the module that declares it before starting workers"
            )
        model = cast("type[Model]", found)  # every registered model derives from Model
        connection = resolve_connection(self.table, self._connection)
        transformer = transformer_for(
            model,
            function,
            name=spec.backfill,
            cutoff=spec.cutoff_time,
            drop_unknown=spec.drop_unknown,
            skip_version_check=spec.skip_version_check,
            connection=connection,
        )
        rate = None
        if spec.rate:
            rate = GlobalRate(self.store, rate_item_name(spec.job), spec.rate, clock=self.clock)
        scan = spec.scan_params(self.table.physical_name)
        scan["Limit"] = spec.page_size
        return _Job(spec, self.jobs.segments(spec), transformer, scan, rate)

    # -- claiming -------------------------------------------------------------------------------

    def _left(self) -> float:
        return self._deadline - self.monotonic()

    def _out_of_time(self) -> bool:
        return self._stop.is_set() or self._left() < max(self.margin, 2 * self._slowest)

    def _claim(self, job: _Job, number: int) -> Segment | None:
        """Claim ``number`` (None: it is already done)."""
        now = self.clock()
        claimed: Segment = self._run(
            job.segments.claim_flow(number, self.owner, now, job.spec.lease)
        )
        return None if claimed.done else claimed

    def _any(self, job: _Job, report: WorkReport) -> None:
        poll = min(1.0, job.spec.lease / 4)
        while not self._out_of_time():
            segments: list[Segment] = self._run(job.segments.load_flow())
            if all(s.done for s in segments):
                report.complete = True
                return
            now = self.clock()
            free = [s.number for s in segments if not s.done and not s.leased(now)]
            random.shuffle(free)  # workers starting together spread over the segments
            for number in free:
                if self._out_of_time():
                    return
                try:
                    claimed = self._claim(job, number)
                except SegmentLeased:
                    continue
                if claimed is None:
                    continue
                try:
                    self._segment(job, claimed, report)
                except LeaseLost:
                    continue  # stalled past its lease: another worker has it now
            if not free:  # all leased by others: wait for them (or their leases) to end
                live = [s.lease_until for s in segments if not s.done]
                self.sleep(max(0.05, min(poll, min(live) - self.clock() + 0.05)))

    # -- one segment ----------------------------------------------------------------------------

    def _segment(self, job: _Job, segment: Segment, report: WorkReport) -> None:
        report.segments.append(segment.number)
        try:
            self._work_on(job, segment, report)
        except LeaseLost:
            raise
        except BaseException:
            # give the segment back at once rather than make others wait for the lease
            with suppress(Exception):
                self._run(
                    job.segments.save_flow(
                        segment, self.owner, self.clock(), job.spec.lease, release=True
                    )
                )
            raise

    def _work_on(self, job: _Job, segment: Segment, report: WorkReport) -> None:
        while not segment.done:
            if self._out_of_time():
                self._run(
                    job.segments.save_flow(
                        segment, self.owner, self.clock(), job.spec.lease, release=True
                    )
                )
                report.handed_back.append(segment.number)
                return
            started = self.monotonic()
            self._keep(job, segment)
            if job.rate is not None:
                self._wait(job, segment, self._run(job.rate.reserve_flow(job.spec.page_size)))
            self._page(job, segment, report)
            self._slowest = max(self._slowest, self.monotonic() - started)
        report.finished.append(segment.number)

    def _keep(self, job: _Job, segment: Segment) -> None:
        """Renew the lease when half of it is gone."""
        now = self.clock()
        if segment.lease_until - now < job.spec.lease / 2:
            self._run(job.segments.renew_flow(segment, self.owner, now, job.spec.lease))

    def _wait(self, job: _Job, segment: Segment, seconds: float) -> None:
        """Wait for the shared rate, renewing the lease meanwhile."""
        end = self.monotonic() + seconds
        while (left := end - self.monotonic()) > 0:
            self.sleep(min(left, job.spec.lease / 3))
            self._keep(job, segment)

    def _page(self, job: _Job, segment: Segment, report: WorkReport) -> None:
        params = segment_scan(job.scan, segment.number, segment.total, segment.cursor)
        response = self._run(call(Request("scan", params)))
        raws: list[Item] = response.get("Items", [])
        last = response.get("LastEvaluatedKey")
        entries = [self._transform(job, segment, raw) for raw in raws]
        chunks = _chunks(entries)
        for index, chunk in enumerate(chunks):
            final = index == len(chunks) - 1
            after = replace(segment, failures=list(segment.failures))
            if final:
                after.cursor = encode_cursor(last)
                after.done = last is None
                after.scanned += int(response.get("ScannedCount", len(raws)))
                after.pages += 1
            else:
                after.cursor = encode_cursor(self._key(chunk[-1][0]))
            writes = [w for _, found, _ in chunk for w in found]
            after.written += len(writes)
            after.unchanged += sum(1 for _, found, failure in chunk if not found and not failure)
            after.failures += [failure for _, _, failure in chunk if failure is not None]
            self._commit(job, segment, after, writes, index)
            report.scanned += after.scanned - segment.scanned
            report.written += len(writes)
            report.unchanged += after.unchanged - segment.unchanged
            report.failed += len(after.failures) - len(segment.failures)
            segment.__dict__.update(after.__dict__)

    def _key(self, raw: Item) -> Item:
        return {a: raw[a] for a in self.table.key_attributes() if a in raw}

    def _transform(
        self, job: _Job, segment: Segment, raw: Item
    ) -> tuple[Item, list[WriteRequest], FailedItem | None]:
        try:
            writes, _ = deduplicate(job.transformer.writes_of(raw))
            if len(writes) > MAX_WRITES:
                raise ValidationError(
                    f"the transform returned {len(writes)} writes for one item; a distributed "
                    f"backfill commits at most {MAX_WRITES} per item (one transaction)"
                )
        except Exception as error:  # recorded with the item; the backfill goes on
            return raw, [], job.transformer.failure(raw, segment.number, error)
        return raw, writes, None

    def _commit(
        self, job: _Job, before: Segment, after: Segment, writes: list[WriteRequest], index: int
    ) -> None:
        now = self.clock()
        if not writes:
            self._run(job.segments.save_flow(after, self.owner, now, job.spec.lease))
            return
        update = job.segments.checkpoint_params(after, self.owner, now, job.spec.lease, False)
        actions = [_action(w) for w in writes] + [{"Update": update}]
        seed = f"{job.spec.job}|{before.number}|{before.claims}|{before.cursor}|{index}"
        token = hashlib.sha256(seed.encode()).hexdigest()[:36]
        request = Request(
            "transact_write_items", {"TransactItems": actions, "ClientRequestToken": token}
        )
        try:
            self._run(send_flow(request))
        except TransactionCanceled as error:
            reasons = error.reasons
            if reasons and reasons[-1].code == "ConditionalCheckFailed":
                raise job.segments.lost(before, self.owner) from None
            raise
        after.lease_until = 0.0 if after.done else now + job.spec.lease
        if after.done:
            after.owner = None


def _action(write: WriteRequest) -> dict[str, Any]:
    """A batch write request as a transaction action."""
    if write.action == "put":
        return {"Put": {"TableName": write.table_name, "Item": write.request["PutRequest"]["Item"]}}
    key = write.request["DeleteRequest"]["Key"]
    return {"Delete": {"TableName": write.table_name, "Key": key}}


Entry = tuple[Item, list[WriteRequest], FailedItem | None]


def _chunks(entries: list[Entry]) -> list[list[Entry]]:
    """Consecutive items grouped so each group's writes fit one transaction (at most
    `MAX_WRITES` writes and `MAX_BYTES`, each item written once); always at least one group."""
    chunks: list[list[Entry]] = [[]]
    count = size = 0
    ids: set[Any] = set()
    for entry in entries:
        writes = entry[1]
        wsize = sum(w.size for w in writes)
        wids = {w.id for w in writes}
        if chunks[-1] and (
            count + len(writes) > MAX_WRITES or size + wsize > MAX_BYTES or ids & wids
        ):
            chunks.append([])
            count = size = 0
            ids = set()
        chunks[-1].append(entry)
        count += len(writes)
        size += wsize
        ids |= wids
    return chunks
