"""Backfills: a parallel scan of one model's items, a transform, batched writes, checkpoints.

Each scan segment is a flow: read a page, transform its items, write the results through the
batch layer (chunks of 25 with retries of unprocessed items), and only then store the
segment's checkpoint (the page's ``LastEvaluatedKey``, counts and failed items) in a
transaction that also checks the migration lock. A run killed at any point resumes from the
last checkpoint: the pages after it are read again, and writes made after it (but before the
kill) are made again, so a transform must be idempotent: given an item it already migrated,
it returns None or the same write.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from dynamodel.core.codec import Item
from dynamodel.core.errors import ValidationError
from dynamodel.core.flows import Flow, Request, Sleep, call, connection_policy
from dynamodel.io.scope import resolve_connection
from dynamodel.migrations.errors import BackfillFailed
from dynamodel.migrations.rate import RateLimiter
from dynamodel.migrations.transform import FailedItem, Output, Transformer, known_attributes
from dynamodel.model import Model
from dynamodel.modelling.tenancy import refuse_in_tenant_scope
from dynamodel.ops.batch import BatchWriteError, BatchWriteResult
from dynamodel.ops.batch_flows import (
    ChunkReport,
    Progress,
    WriteRequest,
    chunk_writes,
    deduplicate,
    write_flow,
)
from dynamodel.ops.pagination import decode_cursor, encode_cursor

if TYPE_CHECKING:
    from dynamodel.core.expressions import Condition
    from dynamodel.io.clients import Connection
    from dynamodel.migrations.lock import MigrationLock
    from dynamodel.migrations.store import Store


@dataclass(frozen=True)
class BackfillSettings:
    """How a backfill reads and writes.

    Args:
        segments: parallel scan segments (each runs in its own thread).
        page_size: items DynamoDB evaluates per scan request; a checkpoint is stored after each
            page, so this bounds the work repeated after a crash.
        rate: at most this many items scanned per second (all segments together).
        capacity_fraction: at most this fraction of the table's provisioned read and write
            capacity (provisioned tables only).
        max_failures: stop once more items than this have failed (they are kept and retried).
    """

    segments: int = 4
    page_size: int | None = 500
    rate: float | None = None
    capacity_fraction: float | None = None
    max_failures: int = 100

    def __post_init__(self) -> None:
        if not isinstance(self.segments, int) or not 1 <= self.segments <= 1_000_000:
            raise ValidationError(f"segments must be an int from 1 to 1000000, got {self.segments}")
        if self.page_size is not None and self.page_size < 1:
            raise ValidationError(f"page_size must be >= 1, got {self.page_size}")
        if self.rate is not None and not self.rate > 0:
            raise ValidationError(f"rate must be > 0 items per second, got {self.rate}")
        if self.capacity_fraction is not None and not 0 < self.capacity_fraction <= 1:
            raise ValidationError(
                f"capacity_fraction must be in (0, 1], got {self.capacity_fraction}"
            )
        if self.max_failures < 0:
            raise ValidationError(f"max_failures must be >= 0, got {self.max_failures}")


@dataclass
class Checkpoint:
    """Where one scan segment of a backfill stands (stored after every page)."""

    segment: int
    total: int
    cursor: str | None = None
    done: bool = False
    scanned: int = 0
    written: int = 0
    unchanged: int = 0
    pages: int = 0
    failures: list[FailedItem] = field(default_factory=list)
    revision: int = 0  # of the stored item (0: not stored yet)

    def to_json(self) -> dict[str, Any]:
        """The stored form."""
        return {
            "segment": self.segment,
            "total": self.total,
            "cursor": self.cursor,
            "done": self.done,
            "scanned": self.scanned,
            "written": self.written,
            "unchanged": self.unchanged,
            "pages": self.pages,
            "failures": [f.as_dict() for f in self.failures],
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Checkpoint:
        """Inverse of `to_json`."""
        return cls(
            segment=int(data["segment"]),
            total=int(data["total"]),
            cursor=data.get("cursor"),
            done=bool(data.get("done")),
            scanned=int(data.get("scanned", 0)),
            written=int(data.get("written", 0)),
            unchanged=int(data.get("unchanged", 0)),
            pages=int(data.get("pages", 0)),
            failures=[FailedItem.from_dict(f) for f in data.get("failures", [])],
        )


class Progressing(Protocol):
    """What a segment's progress record carries (a `Checkpoint` or a shared segment)."""

    done: bool
    scanned: int
    written: int
    unchanged: int
    failures: list[FailedItem]


@dataclass(frozen=True)
class BackfillProgress:
    """A snapshot of a running backfill, totals over every run of it.

    ``estimate`` is the table's approximate item count (DynamoDB updates it about every six
    hours), or None when unknown; ``workers`` counts the workers holding a live lease on a
    segment of a distributed backfill (0 otherwise).
    """

    name: str
    segments: int
    segments_done: int
    scanned: int
    written: int
    unchanged: int
    failed: int
    estimate: int | None
    elapsed: float
    workers: int = 0

    @classmethod
    def of(
        cls,
        name: str,
        parts: Sequence[Progressing],
        *,
        estimate: int | None = None,
        elapsed: float = 0.0,
        workers: int = 0,
    ) -> BackfillProgress:
        """The progress summed over a backfill's segments (checkpoints or shared segments)."""
        return cls(
            name=name,
            segments=len(parts),
            segments_done=sum(1 for p in parts if p.done),
            scanned=sum(p.scanned for p in parts),
            written=sum(p.written for p in parts),
            unchanged=sum(p.unchanged for p in parts),
            failed=sum(len(p.failures) for p in parts),
            estimate=estimate,
            elapsed=elapsed,
            workers=workers,
        )


@dataclass
class BackfillResult:
    """What a backfill did.

    Attributes:
        name: the backfill's name within its migration.
        model: the model's name.
        segments: scan segments.
        resumed: it continued from checkpoints of an earlier run.
        scanned / written / unchanged / pages: this run's counts (items evaluated by the
            scan, write requests confirmed, items the transform left as they were, scan pages).
        retried: items that had failed in an earlier run and were tried again.
        failed: items not migrated (all runs), with their keys and errors.
        total_scanned / total_written: the counts over every run.
        elapsed: seconds this run took.
    """

    name: str
    model: str
    segments: int
    resumed: bool = False
    scanned: int = 0
    written: int = 0
    unchanged: int = 0
    pages: int = 0
    retried: int = 0
    failed: list[FailedItem] = field(default_factory=list)
    total_scanned: int = 0
    total_written: int = 0
    elapsed: float = 0.0


class Checkpoints:
    """The checkpoint items of one migration run."""

    def __init__(self, store: Store, owner: str, prefix: str) -> None:
        self.store = store
        self.owner = owner
        self.prefix = prefix  # "<version>#<run>"

    def item_name(self, backfill: str, segment: int) -> str:
        """The runner item name of one segment's checkpoint."""
        return f"CHECKPOINT#{self.prefix}#{backfill}#{segment:06d}"

    def load_flow(self, backfill: str, total: int) -> Flow[list[Checkpoint]]:
        """Every segment's checkpoint (a fresh one where none is stored)."""
        out = []
        for segment in range(total):
            data, revision = yield from self.store.get_json_flow(self.item_name(backfill, segment))
            checkpoint = Checkpoint.from_json(data) if data else Checkpoint(segment, total)
            checkpoint.revision = revision
            out.append(checkpoint)
        return out

    def save_flow(self, backfill: str, checkpoint: Checkpoint) -> Flow[None]:
        """Store a checkpoint unless another run wrote it since this run read it."""
        name = self.item_name(backfill, checkpoint.segment)
        checkpoint.revision = yield from self.store.put_json_flow(
            self.owner, name, checkpoint.to_json(), checkpoint.revision
        )


class _Shared:
    """State shared by the segments of one backfill (thread-safe)."""

    def __init__(
        self,
        result: BackfillResult,
        checkpoints: list[Checkpoint],
        settings: BackfillSettings,
        estimate: int | None,
        lock: MigrationLock | None,
        on_progress: Callable[[BackfillProgress], None] | None,
        limiters: tuple[RateLimiter | None, RateLimiter | None, RateLimiter | None],
    ) -> None:
        self.result = result
        self.checkpoints = checkpoints
        self.settings = settings
        self.estimate = estimate
        self.lock = lock
        self.on_progress = on_progress
        self.items, self.reads, self.writes = limiters
        self.error: BaseException | None = None
        self.started = time.monotonic()
        self._mutex = threading.Lock()

    def failures(self) -> int:
        return sum(len(c.failures) for c in self.checkpoints)

    def should_stop(self) -> bool:
        if self.lock is not None:
            self.lock.check()
        return self.error is not None or self.failures() > self.settings.max_failures

    def fail(self, error: BaseException) -> None:
        with self._mutex:
            if self.error is None:
                self.error = error

    def page_done(self, scanned: int, written: int, unchanged: int, retried: int = 0) -> None:
        with self._mutex:
            self.result.scanned += scanned
            self.result.written += written
            self.result.unchanged += unchanged
            self.result.retried += retried
            self.result.pages += 0 if retried else 1
            snapshot = self.progress()
        if self.on_progress is not None:
            self.on_progress(snapshot)

    def progress(self) -> BackfillProgress:
        return BackfillProgress.of(
            self.result.name,
            self.checkpoints,
            estimate=self.estimate,
            elapsed=time.monotonic() - self.started,
        )

    def delay(self, items: int, read_units: float, write_units: float) -> float:
        waits = [
            limiter.charge(amount)
            for limiter, amount in (
                (self.items, items),
                (self.reads, read_units),
                (self.writes, write_units),
            )
            if limiter is not None
        ]
        return max(waits, default=0.0)


@dataclass
class _Job(Transformer):
    """Everything one backfill's segments share that is not mutable."""

    base: dict[str, Any]
    checkpoints: Checkpoints
    shared: _Shared

    # -- writing --------------------------------------------------------------------------------

    def write_flow(self, writes: list[WriteRequest]) -> Flow[tuple[int, float]]:
        """Write through the batch layer; returns (requests written, write units consumed)."""
        requests, _ = deduplicate(writes)
        policy = yield from connection_policy()  # the running connection's
        written = 0
        units = 0.0
        chunks = chunk_writes(requests, f"backfill {self.name!r}")
        for chunk in chunks:
            report: ChunkReport[WriteRequest] = ChunkReport(pending=chunk)
            yield from write_flow(report, policy, Progress())
            written += len(report.done)
            units += sum(report.consumed_capacity.values())
            if report.pending:
                raise BatchWriteError(
                    f"backfill {self.name!r}: {len(report.pending)} writes not confirmed; the "
                    "segment stopped at its last checkpoint (run again to resume)",
                    unprocessed=report.pending,
                    result=BatchWriteResult(written=report.done),
                    cause=report.error,
                )
        return written, units

    # -- one segment ----------------------------------------------------------------------------

    def retry_failures_flow(self, checkpoint: Checkpoint) -> Flow[None]:
        """Read the items that failed in an earlier run again and migrate them."""
        still: list[FailedItem] = []
        retried = written = 0
        for failure in checkpoint.failures:
            request = Request(
                "get_item",
                {
                    "TableName": self.table.physical_name,
                    "Key": decode_cursor(failure.cursor),
                    "ConsistentRead": True,
                },
            )
            raw = (yield from call(request)).get("Item")
            retried += 1
            if raw is None:
                continue  # deleted since: nothing to migrate
            writes, failures, _ = self.process([raw], checkpoint.segment)
            count, _units = yield from self.write_flow(writes)
            written += count
            still.extend(failures)
        checkpoint.failures = still
        checkpoint.written += written
        yield from self.checkpoints.save_flow(self.name, checkpoint)
        self.shared.page_done(0, written, 0, retried)

    def segment_flow(self, checkpoint: Checkpoint) -> Flow[Checkpoint]:
        """Scan one segment from its checkpoint to the end (or until told to stop)."""
        try:
            if checkpoint.failures:
                yield from self.retry_failures_flow(checkpoint)
            while not checkpoint.done:
                if self.shared.should_stop():
                    return checkpoint
                params = segment_scan(
                    self.base, checkpoint.segment, checkpoint.total, checkpoint.cursor
                )
                response = yield from call(Request("scan", params))
                raws: list[Item] = response.get("Items", [])
                scanned = int(response.get("ScannedCount", len(raws)))
                read_units = float((response.get("ConsumedCapacity") or {}).get("CapacityUnits", 0))
                writes, failures, unchanged = self.process(raws, checkpoint.segment)
                written, write_units = yield from self.write_flow(writes)
                last = response.get("LastEvaluatedKey")
                checkpoint.cursor = encode_cursor(last)
                checkpoint.done = last is None
                checkpoint.scanned += scanned
                checkpoint.written += written
                checkpoint.unchanged += unchanged
                checkpoint.pages += 1
                checkpoint.failures.extend(failures)
                if self.shared.lock is not None:
                    self.shared.lock.check()
                yield from self.checkpoints.save_flow(self.name, checkpoint)
                self.shared.page_done(scanned, written, unchanged)
                delay = self.shared.delay(scanned, read_units, write_units)
                if delay > 0:
                    yield Sleep(delay)
            return checkpoint
        except Exception as error:
            self.shared.fail(error)
            raise


def segment_scan(
    base: dict[str, Any], segment: int, total: int, cursor: str | None
) -> dict[str, Any]:
    """The scan request of one segment's next page, from its cursor (None: the start)."""
    params = dict(base)
    if total > 1:
        params["Segment"] = segment
        params["TotalSegments"] = total
    if cursor:
        params["ExclusiveStartKey"] = decode_cursor(cursor)
    return params


def capacity_limiters(
    description: dict[str, Any], fraction: float
) -> tuple[RateLimiter, RateLimiter]:
    """Read and write limiters at ``fraction`` of a provisioned table's capacity."""
    throughput = description.get("ProvisionedThroughput") or {}
    mode = (description.get("BillingModeSummary") or {}).get("BillingMode", "PROVISIONED")
    read, write = throughput.get("ReadCapacityUnits", 0), throughput.get("WriteCapacityUnits", 0)
    if mode != "PROVISIONED" or not read or not write:
        raise ValidationError(
            f"table {description.get('TableName')!r} is on-demand: it has no provisioned "
            "capacity to take a fraction of; limit the backfill with a rate (items per second)"
        )
    return RateLimiter(read * fraction), RateLimiter(write * fraction)


def run_backfill(
    *,
    model: type[Model],
    transform: Callable[[Any], Output],
    name: str,
    settings: BackfillSettings,
    checkpoints: Checkpoints,
    lock: MigrationLock | None = None,
    condition: Condition | None = None,
    drop_unknown: bool = False,
    skip_version_check: bool = False,
    allow_failures: bool = False,
    on_start: Callable[[BackfillProgress, bool], None] | None = None,
    on_progress: Callable[[BackfillProgress], None] | None = None,
) -> BackfillResult:
    """Run (or resume) one backfill with the sync client; see `MigrationContext.backfill`."""
    refuse_in_tenant_scope("a backfill")
    from dynamodel.io.executors import run

    spec = model._spec()
    table = spec.table
    # resolved on the calling thread (a `use_connection` scope there applies to every segment)
    connection = resolve_connection(table)
    if spec.version_field is not None and not skip_version_check:
        raise ValidationError(
            f"{model.__name__} is versioned (Meta.version) and batch writes cannot check "
            "versions; pass skip_version_check=True to backfill it anyway (versions are written "
            "as the transform leaves them)"
        )
    started = time.monotonic()
    scan = model.scan()
    if condition is not None:
        scan = scan.filter(condition)
    base = scan._params()
    if settings.page_size is not None:
        base["Limit"] = settings.page_size
    base["ReturnConsumedCapacity"] = "TOTAL"
    loaded = run(checkpoints.load_flow(name, settings.segments), connection)
    description = run(table._describe_flow(), connection)
    items: RateLimiter | None = RateLimiter(settings.rate) if settings.rate else None
    reads = writes = None
    if settings.capacity_fraction is not None:
        reads, writes = capacity_limiters(description, settings.capacity_fraction)
    result = BackfillResult(name=name, model=model.__name__, segments=settings.segments)
    result.resumed = any(c.pages or c.failures for c in loaded)
    estimate = description.get("ItemCount")
    shared = _Shared(
        result,
        loaded,
        settings,
        int(estimate) if estimate else None,
        lock,
        on_progress,
        (items, reads, writes),
    )
    job = _Job(
        table=table,
        model=model,
        transform=transform,
        name=name,
        base=base,
        # expired items are those whose TTL passed before the backfill started, by the clock
        # of the connection it runs on
        parse=scan._parser(connection.inputs.now()),
        checkpoints=checkpoints,
        shared=shared,
        known=known_attributes(model),
        drop_unknown=drop_unknown,
        skip_version_check=skip_version_check,
        connection=connection,
    )
    if on_start is not None:
        on_start(shared.progress(), result.resumed)
    todo = [c for c in loaded if not c.done or c.failures]
    outcomes = _run_segments([job.segment_flow(c) for c in todo], shared, connection)
    result.elapsed = time.monotonic() - started
    result.failed = [f for c in loaded for f in c.failures]
    result.total_scanned = sum(c.scanned for c in loaded)
    result.total_written = sum(c.written for c in loaded)
    errors = [o for o in outcomes if isinstance(o, BaseException)]
    if errors:
        raise errors[0]
    if lock is not None:
        lock.check()
    if result.failed and (not allow_failures or len(result.failed) > settings.max_failures):
        stopped = not all(c.done for c in loaded)
        raise BackfillFailed(
            f"backfill {name!r}: {len(result.failed)} item(s) of {model.__name__} could not be "
            "migrated"
            + (f" (more than max_failures={settings.max_failures}: stopped)" if stopped else "")
            + "; they are kept and retried first by the next run",
            result=result,
        )
    return result


def _run_segments(
    flows: list[Flow[Checkpoint]], shared: _Shared, connection: Connection
) -> list[Any]:
    """Run the segment flows on threads; returns each one's checkpoint or exception.

    An interruption (Ctrl-C, SIGTERM turned into KeyboardInterrupt) tells every segment to stop
    after its current page, waits for them (their checkpoints are stored), then re-raises.
    """
    from concurrent.futures import ThreadPoolExecutor, wait

    from dynamodel.io.executors import run

    def one(flow: Flow[Checkpoint]) -> Checkpoint | Exception:
        try:
            return run(flow, connection)
        except Exception as error:
            return error
        finally:
            flow.close()

    pool = ThreadPoolExecutor(max_workers=max(1, len(flows)), thread_name_prefix="backfill")
    futures = [pool.submit(one, flow) for flow in flows]
    try:
        while wait(futures, timeout=0.5).not_done:
            pass
    except BaseException as error:
        shared.fail(error)
        pool.shutdown(wait=True)
        raise
    pool.shutdown()
    return [future.result() for future in futures]


def describe_failures(failed: list[FailedItem], limit: int = 10) -> str:
    """A few failed items, one per line (for error messages)."""
    lines = [f"  {json.dumps(f.key, default=str)}: {f.error}" for f in failed[:limit]]
    if len(failed) > limit:
        lines.append(f"  ... and {len(failed) - limit} more")
    return "\n".join(lines)
