"""Batch writes and reads that never lose an item.

```python
with batch_write() as batch:          # or: async with batch_write() as batch
    batch.put(order, customer)
    batch.delete(old_order, Key(Note, customer_id="c1", written_at=t))
print(batch.result.written, batch.result.retries)

found = batch_get([Key(Order, ...), Key(Customer, ...)])   # or: await abatch_get([...])
```

Requests are validated and serialised when added, de-duplicated (last write wins), split into
BatchWriteItem chunks of 25 (BatchGetItem: 100 keys) and 16 MB, and sent several chunks at a
time. Unprocessed items and retryable errors are resent with the retry policy's full-jitter
backoff. When the policy gives up, `BatchWriteError` / `BatchGetError` carries exactly what was
not done and what was. The logic lives in `dynamodel.ops.batch_flows`; see docs/batch.md.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from types import TracebackType
from typing import TYPE_CHECKING, Any, Generic, Self, TypeVar

from dynamodel.core.codec import Item, item_size
from dynamodel.core.errors import DynamodelError, ValidationError
from dynamodel.io.scope import resolve_connection
from dynamodel.modelling.base import ModelBase
from dynamodel.modelling.tenancy import check_keys
from dynamodel.ops.batch_flows import (
    MAX_BATCH_BYTES,
    MAX_GET_KEYS,
    ChunkReport,
    GetEntry,
    ItemId,
    Key,
    Progress,
    WriteRequest,
    as_key,
    batch_get_flow,
    chunk_writes,
    chunked,
    deduplicate,
    delete_write_request,
    get_entries,
    group_by_connection,
    put_write_request,
    write_flow,
)
from dynamodel.ops.items import expired, guard_shards, hides_expired

if TYPE_CHECKING:
    from dynamodel.core.flows import Flow
    from dynamodel.core.retry import RetryPolicy
    from dynamodel.io.clients import Connection
    from dynamodel.modelling.table import Table

__all__ = [
    "BatchError",
    "BatchGetError",
    "BatchGetResult",
    "BatchStats",
    "BatchWriteError",
    "BatchWriteResult",
    "BatchWriter",
    "Key",
    "WriteRequest",
    "abatch_get",
    "batch_get",
    "batch_write",
]

M = TypeVar("M", bound=ModelBase)

#: chunks sent at once by default (sync: threads; async: tasks)
DEFAULT_CONCURRENCY = 4


# -- results and errors --------------------------------------------------------------------------


@dataclass(kw_only=True)
class BatchStats:
    """What a batch cost.

    Attributes:
        calls: BatchWriteItem / BatchGetItem calls dynamodel made (botocore's retries inside
            a call not included).
        chunks: chunks the requests were split into (each sent by at least one call).
        unprocessed_retries: calls that resent items or keys DynamoDB returned unprocessed.
        error_retries: calls that resent a chunk after a retryable error (throttling, 5xx).
        botocore_retries: retries botocore made inside the calls (``RetryAttempts``).
        backoff_seconds: total backoff slept between calls (summed over chunks, which sleep
            concurrently).
        consumed_capacity: capacity units DynamoDB reported, by table name.
    """

    calls: int = 0
    chunks: int = 0
    unprocessed_retries: int = 0
    error_retries: int = 0
    botocore_retries: int = 0
    backoff_seconds: float = 0.0
    consumed_capacity: dict[str, float] = field(default_factory=dict)

    @property
    def retries(self) -> int:
        """Calls that resent something: ``unprocessed_retries + error_retries``."""
        return self.unprocessed_retries + self.error_retries

    def _add_reports(self, reports: Iterable[ChunkReport[Any]]) -> None:
        for report in reports:
            self.chunks += 1
            self.calls += report.calls
            self.unprocessed_retries += report.unprocessed_retries
            self.error_retries += report.error_retries
            self.botocore_retries += report.botocore_retries
            self.backoff_seconds += report.backoff_seconds
            for name, units in report.consumed_capacity.items():
                self.consumed_capacity[name] = self.consumed_capacity.get(name, 0.0) + units

    def _add_stats(self, other: BatchStats) -> None:
        self.calls += other.calls
        self.chunks += other.chunks
        self.unprocessed_retries += other.unprocessed_retries
        self.error_retries += other.error_retries
        self.botocore_retries += other.botocore_retries
        self.backoff_seconds += other.backoff_seconds
        for name, units in other.consumed_capacity.items():
            self.consumed_capacity[name] = self.consumed_capacity.get(name, 0.0) + units


@dataclass(kw_only=True)
class BatchWriteResult(BatchStats):
    """The outcome of a batch write (see `BatchStats` for the counters).

    Attributes:
        written: the requests DynamoDB confirmed, in the order they were added.
        superseded: requests not sent because a later request on the same item replaced them
            (last write wins).
    """

    written: list[WriteRequest] = field(default_factory=list)
    superseded: list[WriteRequest] = field(default_factory=list)


@dataclass(kw_only=True)
class BatchGetResult(BatchStats, Generic[M]):
    """The outcome of a batch get (see `BatchStats` for the counters).

    Attributes:
        items: the items found, as models, in the order their keys were first requested
            (a key requested twice appears once; missing keys are skipped).
        by_key: the same items by `Key`.
        missing: the keys with no stored item, in request order.
        duplicates: requested keys that repeated an earlier one (merged, read once).
    """

    items: list[M] = field(default_factory=list)
    by_key: dict[Key[M], M] = field(default_factory=dict)
    missing: list[Key[M]] = field(default_factory=list)
    duplicates: int = 0

    def __iter__(self) -> Iterator[M]:
        return iter(self.items)

    def __len__(self) -> int:
        return len(self.items)


class BatchError(DynamodelError):
    """A batch operation stopped before finishing.

    Attributes:
        cause: the error that stopped it (the last error of the chunk the retry policy gave up
            on, or a transport error), or None when DynamoDB kept returning entries unprocessed
            until the policy's budget was spent. Also ``__cause__`` when set.
    """

    def __init__(self, message: str, *, cause: BaseException | None) -> None:
        code = cause.code if isinstance(cause, DynamodelError) else None
        super().__init__(message, code=code)
        self.cause = cause


class BatchWriteError(BatchError):
    """A batch write gave up. Nothing was dropped silently:

    Attributes:
        unprocessed: exactly the requests that were not confirmed written, in the order they
            were added (resend them with ``batch_write().add(*error.unprocessed)``). After an
            HTTP 5xx a request may have been applied anyway; puts and deletes are idempotent,
            so resending is safe.
        written: the requests DynamoDB confirmed.
        result: the partial `BatchWriteResult` (``written``, ``superseded``, counters).
    """

    def __init__(
        self,
        message: str,
        *,
        unprocessed: list[WriteRequest],
        result: BatchWriteResult,
        cause: BaseException | None,
    ) -> None:
        super().__init__(message, cause=cause)
        self.unprocessed = unprocessed
        self.result = result

    @property
    def written(self) -> list[WriteRequest]:
        """The requests DynamoDB confirmed (``result.written``)."""
        return self.result.written


class BatchGetError(BatchError):
    """A batch get gave up.

    Attributes:
        unprocessed: the keys that were not read, in request order.
        result: the partial `BatchGetResult`: the items read and the keys found missing.
    """

    def __init__(
        self,
        message: str,
        *,
        unprocessed: list[Key[Any]],
        result: BatchGetResult[Any],
        cause: BaseException | None,
    ) -> None:
        super().__init__(message, cause=cause)
        self.unprocessed = unprocessed
        self.result = result


# -- running chunks ------------------------------------------------------------------------------


@dataclass
class _Job:
    """The chunks that go through one connection."""

    connection: Connection
    reports: list[ChunkReport[Any]]
    flows: list[Flow[Any]]
    guard: Flow[None] | None = None  # shard-count checks, run before the chunks


def _check_concurrency(value: int) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ValidationError(f"max_concurrency must be an int >= 1, got {value!r}")
    return value


def _note_failures(job: _Job, outcomes: list[Any], progress: Progress) -> None:
    """A flow that raised (a transport error) leaves its pending entries unprocessed."""
    for report, outcome in zip(job.reports, outcomes, strict=True):
        if isinstance(outcome, Exception):
            report.error = report.error or outcome
            progress.stop(outcome)


def _run(jobs: list[_Job], progress: Progress, max_concurrency: int) -> None:
    from dynamodel.io.executors import run, run_many

    for job in jobs:
        if job.guard is not None:
            run(job.guard, job.connection)
        _note_failures(job, run_many(job.flows, job.connection, max_concurrency), progress)


async def _arun(jobs: list[_Job], progress: Progress, max_concurrency: int) -> None:
    from dynamodel.io.executors import arun, arun_many

    for job in jobs:
        if job.guard is not None:
            await arun(job.guard, job.connection)
        outcomes = await arun_many(job.flows, job.connection, max_concurrency)
        _note_failures(job, outcomes, progress)


def _why(cause: BaseException | None) -> str:
    if cause is None:
        return ": DynamoDB kept returning them unprocessed until the retry budget was spent"
    return f": {cause}"


def _raise_from(error: BatchError) -> None:
    if error.cause is not None:
        raise error from error.cause
    raise error


# -- batch write ---------------------------------------------------------------------------------


@dataclass
class _WritePlan:
    requests: list[WriteRequest]
    superseded: list[WriteRequest]
    jobs: list[_Job]
    progress: Progress


class BatchWriter:
    """Collects puts and deletes of any models in any tables, then writes them in batches.

    Use it as a context manager (``with`` sends on exit through the sync client, ``async with``
    through the async client) or call `flush` / `aflush`. Requests are buffered until then;
    a later request on the same item replaces an earlier one (last write wins). If the block
    raises, nothing still buffered is sent (see `pending`).

    Args:
        retry: the retry policy for unprocessed items and retryable errors (default: each
            table's connection's policy).
        max_concurrency: chunks in flight at once (sync: a thread pool when > 1; async: tasks).
        connection: send every request through this connection (default: the scoped one,
            see `dynamodel.use_connection`, else each table's).
        skip_version_check: allow models with ``Meta.version``; they are written as they are,
            without the optimistic-locking check (batches cannot carry conditions).
    """

    def __init__(
        self,
        *,
        retry: RetryPolicy | None = None,
        max_concurrency: int = DEFAULT_CONCURRENCY,
        connection: Connection | None = None,
        skip_version_check: bool = False,
    ) -> None:
        self.retry = retry
        self.max_concurrency = _check_concurrency(max_concurrency)
        self.connection = connection
        self.skip_version_check = skip_version_check
        #: totals over every flush of this writer
        self.result = BatchWriteResult()
        self._requests: list[WriteRequest] = []

    # -- collecting ------------------------------------------------------------------------------

    def put(self, *items: ModelBase) -> Self:
        """Buffer puts of whole model instances (serialised and validated now).

        Each item is stamped (``Meta.timestamps``) and draws its new random shards now, with
        the clock and random source of the connection in effect for its table when it is
        added (this writer's ``connection``, else the scoped one, else the table's)."""
        for item in items:
            if isinstance(item, ModelBase):
                item.before_write("batch_put")
        return self.add(*(self._put_request(item) for item in items))

    def _put_request(self, item: ModelBase) -> WriteRequest:
        return put_write_request(
            item, skip_version_check=self.skip_version_check, connection=self.connection
        )

    def delete(self, *targets: ModelBase | Key[Any]) -> Self:
        """Buffer deletes, given model instances or `Key` objects."""
        for target in targets:
            if isinstance(target, ModelBase):
                target.before_write("batch_delete")
        return self.add(
            *(delete_write_request(t, skip_version_check=self.skip_version_check) for t in targets)
        )

    def add(self, *requests: WriteRequest) -> Self:
        """Buffer prepared requests, for example ``BatchWriteError.unprocessed`` to retry them."""
        for request in requests:
            if not isinstance(request, WriteRequest):
                raise ValidationError(f"BatchWriter.add: expected a WriteRequest, got {request!r}")
        self._requests.extend(requests)
        return self

    @property
    def pending(self) -> list[WriteRequest]:
        """The buffered requests not sent yet, de-duplicated, in the order they will be sent."""
        return deduplicate(self._requests)[0]

    # -- sending ---------------------------------------------------------------------------------

    def _plan(self) -> _WritePlan:
        check_keys(((w.model, w.key.fields) for w in self._requests), "batch write")
        requests, superseded = deduplicate(self._requests)
        progress = Progress()
        jobs: list[_Job] = []
        groups = group_by_connection(  # resolved before any chunk is sent (dynamodel.io.scope)
            requests, lambda w: resolve_connection(w.model._spec().table, self.connection)
        )
        for connection, group in groups:
            policy = self.retry or connection.retry
            chunks = chunk_writes(group, "batch write")
            reports: list[ChunkReport[Any]] = [ChunkReport(pending=chunk) for chunk in chunks]
            flows: list[Flow[Any]] = [write_flow(r, policy, progress) for r in reports]
            guard = guard_shards((w.model for w in group), write=True)
            jobs.append(_Job(connection, reports, flows, guard))
        self._requests = []
        return _WritePlan(requests, superseded, jobs, progress)

    def _finish(self, plan: _WritePlan, interrupted: bool = False) -> BatchWriteResult:
        """Record what a flush did; raise `BatchWriteError` if something was not written.

        After an interruption (KeyboardInterrupt, task cancellation) the requests not confirmed
        go back to the buffer instead, and the caller re-raises.
        """
        done = {id(w) for job in plan.jobs for report in job.reports for w in report.done}
        result = BatchWriteResult(
            written=[w for w in plan.requests if id(w) in done], superseded=plan.superseded
        )
        result._add_reports(report for job in plan.jobs for report in job.reports)
        self.result._add_stats(result)
        self.result.written.extend(result.written)
        self.result.superseded.extend(result.superseded)
        for written in result.written:
            instance = written.item
            if isinstance(instance, ModelBase):
                if written.action == "put":
                    instance._dm_stored(written.request["PutRequest"]["Item"])
                instance.after_write("batch_put" if written.action == "put" else "batch_delete")
        unprocessed = [w for w in plan.requests if id(w) not in done]
        if interrupted:
            self._requests[:0] = unprocessed
        elif unprocessed:
            cause = plan.progress.cause
            _raise_from(
                BatchWriteError(
                    f"batch write: {len(unprocessed):,} of {len(plan.requests):,} requests not "
                    f"written ({len(result.written):,} written){_why(cause)}",
                    unprocessed=unprocessed,
                    result=result,
                    cause=cause,
                )
            )
        return result

    def flush(self) -> BatchWriteResult:
        """Send everything buffered with the sync client; return what this flush did.

        Raises:
            BatchWriteError: the retry policy gave up (or a call failed for good); it lists
                exactly the requests not written and the ones written.
        """
        plan = self._plan()
        try:
            _run(plan.jobs, plan.progress, self.max_concurrency)
        except BaseException:
            self._finish(plan, interrupted=True)
            raise
        return self._finish(plan)

    async def aflush(self) -> BatchWriteResult:
        """Async `flush`: chunks are sent as concurrent tasks through the async client."""
        plan = self._plan()
        try:
            await _arun(plan.jobs, plan.progress, self.max_concurrency)
        except BaseException:
            self._finish(plan, interrupted=True)
            raise
        return self._finish(plan)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None:
            self.flush()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None:
            await self.aflush()

    def __repr__(self) -> str:
        return f"<BatchWriter pending={len(self.pending)} written={len(self.result.written)}>"


def batch_write(
    *,
    retry: RetryPolicy | None = None,
    max_concurrency: int = DEFAULT_CONCURRENCY,
    connection: Connection | None = None,
    skip_version_check: bool = False,
) -> BatchWriter:
    """A `BatchWriter`: ``with batch_write() as batch: batch.put(...)`` (or ``async with``)."""
    return BatchWriter(
        retry=retry,
        max_concurrency=max_concurrency,
        connection=connection,
        skip_version_check=skip_version_check,
    )


# -- batch get -----------------------------------------------------------------------------------


@dataclass
class _GetPlan(Generic[M]):
    keys: list[Key[M]]
    entries: list[GetEntry]
    duplicates: int
    jobs: list[_Job]
    progress: Progress


def _plan_get(
    keys: Iterable[Key[M] | M],
    consistent: bool,
    retry: RetryPolicy | None,
    connection: Connection | None,
) -> _GetPlan[M]:
    if isinstance(keys, Key | ModelBase):
        raise ValidationError("batch_get takes an iterable of keys, not a single key")
    unique, entries, duplicates = get_entries(as_key(k, "batch_get") for k in keys)
    check_keys(((k.model, k.fields) for e in entries for k in e.keys), "batch_get")
    progress = Progress()
    jobs: list[_Job] = []
    groups = group_by_connection(  # resolved before any chunk is sent (dynamodel.io.scope)
        entries, lambda e: resolve_connection(e.keys[0].model._spec().table, connection)
    )
    for conn, group in groups:
        policy = retry or conn.retry
        chunks = chunked(
            group,
            max_count=MAX_GET_KEYS,
            max_bytes=MAX_BATCH_BYTES,
            size=lambda e: item_size(e.item_key),
            what="batch get",
        )
        reports: list[ChunkReport[Any]] = [ChunkReport(pending=chunk) for chunk in chunks]
        flows: list[Flow[Any]] = [batch_get_flow(r, policy, progress, consistent) for r in reports]
        guard = guard_shards((e.keys[0].model for e in group), write=False, index=None)
        jobs.append(_Job(conn, reports, flows, guard))
    return _GetPlan(unique, entries, duplicates, jobs, progress)


def _finish_get(plan: _GetPlan[M]) -> BatchGetResult[M]:
    reports = [report for job in plan.jobs for report in job.reports]
    found: dict[ItemId, Item] = {}
    read_by: dict[ItemId, Connection] = {}  # whose clock says whether an item has expired
    missing_ids: set[ItemId] = set()
    for job in plan.jobs:
        for report in job.reports:
            found.update(report.found)
            read_by.update(dict.fromkeys(report.found, job.connection))
            missing_ids.update(entry.id for entry in report.missing)
    times: dict[int, dt.datetime] = {}  # each connection's clock, read once

    def expired_by_clock(table: Table, ident: ItemId, raw: Item) -> bool:
        if not hides_expired(table):
            return False
        connection = read_by[ident]
        now = times.get(id(connection))
        if now is None:
            now = times[id(connection)] = connection.inputs.now()
        return expired(table, raw, now)

    result: BatchGetResult[M] = BatchGetResult(duplicates=plan.duplicates)
    result._add_reports(reports)
    ids = {key: entry.id for entry in plan.entries for key in entry.keys}
    unprocessed: list[Key[M]] = []
    for key in plan.keys:
        ident = ids[key]
        raw = found.get(ident)
        if raw is not None and expired_by_clock(key.model._spec().table, ident, raw):
            result.missing.append(key)  # expired: DynamoDB has not deleted it yet
        elif raw is not None:
            model = key.model.from_item(raw)
            result.items.append(model)
            result.by_key[key] = model
        elif ident in missing_ids:
            result.missing.append(key)
        else:
            unprocessed.append(key)
    if unprocessed:
        cause = plan.progress.cause
        _raise_from(
            BatchGetError(
                f"batch get: {len(unprocessed):,} of {len(plan.keys):,} keys not read{_why(cause)}",
                unprocessed=unprocessed,
                result=result,
                cause=cause,
            )
        )
    return result


def batch_get(
    keys: Iterable[Key[M] | M],
    *,
    consistent: bool = False,
    retry: RetryPolicy | None = None,
    max_concurrency: int = DEFAULT_CONCURRENCY,
    connection: Connection | None = None,
) -> BatchGetResult[M]:
    """Read many items by key (any models, any tables) with the sync client.

    Args:
        keys: `Key` objects or model instances (their keys are read), in any mix.
        consistent: strongly consistent reads.
        retry: the retry policy (default: each table's connection's policy).
        max_concurrency: chunks of 100 keys in flight at once (a thread pool when > 1).
        connection: read every key through this connection (default: the scoped one,
            see `dynamodel.use_connection`, else each table's).

    Raises:
        BatchGetError: the retry policy gave up; ``unprocessed`` lists the keys not read.
    """
    _check_concurrency(max_concurrency)
    plan = _plan_get(keys, consistent, retry, connection)
    _run(plan.jobs, plan.progress, max_concurrency)
    return _finish_get(plan)


async def abatch_get(
    keys: Iterable[Key[M] | M],
    *,
    consistent: bool = False,
    retry: RetryPolicy | None = None,
    max_concurrency: int = DEFAULT_CONCURRENCY,
    connection: Connection | None = None,
) -> BatchGetResult[M]:
    """Async `batch_get`: chunks are read as concurrent tasks through the async client."""
    _check_concurrency(max_concurrency)
    plan = _plan_get(keys, consistent, retry, connection)
    await _arun(plan.jobs, plan.progress, max_concurrency)
    return _finish_get(plan)
