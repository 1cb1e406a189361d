"""Live tables and applying plans: describe a table (DescribeTable, TTL, backups), diff it
against its declaration, and apply the plan, waiting for each step (sync and async)."""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from dynamodel.core.errors import DynamodelError
from dynamodel.core.flows import Flow, Request, call, connection_inputs
from dynamodel.io.scope import resolve_connection
from dynamodel.modelling.replicas import replica_change, settle_replica_flow, warn_ignored
from dynamodel.modelling.table import Table, UnsupportedOperationWarning
from dynamodel.modelling.tenancy import refuse_in_tenant_scope
from dynamodel.schema.changes import Change, PlanStep, compare, plan
from dynamodel.schema.shapes import TableShape, declared_shape, live_shape

if TYPE_CHECKING:
    from dynamodel.io.clients import Connection


UNSUPPORTED = "UnknownOperationException"


@dataclass(frozen=True)
class LiveTable:
    """A live table: the raw descriptions and their normalised `TableShape`."""

    shape: TableShape
    table: dict[str, Any]
    ttl: dict[str, Any] | None
    backups: dict[str, Any] | None


def _optional(request: Request, policy: Any, key: str) -> Flow[dict[str, Any] | None]:
    try:
        response = yield from call(request, policy)
    except DynamodelError as error:
        if error.code != UNSUPPORTED:
            raise
        return None
    value: dict[str, Any] | None = response.get(key)
    return value


def describe_flow(table: Table) -> Flow[LiveTable]:
    """DescribeTable, DescribeTimeToLive and DescribeContinuousBackups of the bound table.

    Raises `dynamodel.core.errors.TableNotFound` when the table does not exist. A table with
    periods is described by its current period's table.
    """
    table = yield from current_period(table)
    name = table.physical_name
    policy = None  # the running connection's
    response = yield from call(Request("describe_table", {"TableName": name}, control=True), policy)
    description: dict[str, Any] = response["Table"]
    ttl = yield from _optional(
        Request("describe_time_to_live", {"TableName": name}, control=True),
        policy,
        "TimeToLiveDescription",
    )
    backups = yield from _optional(
        Request("describe_continuous_backups", {"TableName": name}, control=True),
        policy,
        "ContinuousBackupsDescription",
    )
    return LiveTable(live_shape(description, ttl, backups), description, ttl, backups)


def current_period(table: Table) -> Flow[Table]:
    """``table``, or for a table with periods its current period's table (by the running
    connection's clock): what describe, diff and sync work on (see `rotate` for the others)."""
    if table.periods is None:
        return table
    return table.period_table((yield from connection_inputs()).now())


def describe(table: Table, *, connection: Connection | None = None) -> LiveTable:
    """The live table (sync client). ``connection``: where to ask (default: the scoped
    connection, else the table's; see `dynamodel.use_connection`)."""
    from dynamodel.io.executors import run

    return run(describe_flow(table), resolve_connection(table, connection))


async def adescribe(table: Table, *, connection: Connection | None = None) -> LiveTable:
    """Async `describe`."""
    from dynamodel.io.executors import arun

    return await arun(describe_flow(table), resolve_connection(table, connection))


def diff_flow(table: Table) -> Flow[list[Change]]:
    """Differences between the declaration and the live table (for a table with periods:
    its current period's table)."""
    table = yield from current_period(table)
    live = yield from describe_flow(table)
    return compare(declared_shape(table), live.shape)


def diff(table: Table, *, connection: Connection | None = None) -> list[Change]:
    """Differences between the declaration and the live table (sync client)."""
    from dynamodel.io.executors import run

    changes: list[Change] = run(diff_flow(table), resolve_connection(table, connection))
    return changes


async def adiff(table: Table, *, connection: Connection | None = None) -> list[Change]:
    """Async `diff`."""
    from dynamodel.io.executors import arun

    changes: list[Change] = await arun(diff_flow(table), resolve_connection(table, connection))
    return changes


@dataclass
class ApplyResult:
    """What `apply` did.

    Attributes:
        changes: every difference found before applying anything.
        applied: the steps sent, in order (all of them: a failing step raises).
        refused: destructive changes left alone (not confirmed) and impossible ones.
        skipped: steps the endpoint does not support (local emulators), with a warning.
        dry_run: nothing was sent; ``applied`` lists what would have been.
    """

    changes: list[Change]
    applied: list[PlanStep] = field(default_factory=list)
    refused: list[Change] = field(default_factory=list)
    skipped: list[PlanStep] = field(default_factory=list)
    dry_run: bool = False

    @property
    def in_sync(self) -> bool:
        """Whether the live table matches the declaration after this run (nothing refused)."""
        return not self.refused


def apply_flow(
    table: Table,
    steps: Iterable[PlanStep],
    *,
    timeout: float = 3600.0,
    poll: float = 2.0,
    on_step: Callable[[PlanStep], None] | None = None,
) -> Flow[tuple[list[PlanStep], list[PlanStep]]]:
    """Send each step; after an UpdateTable, wait until the table and its GSIs are ACTIVE
    (and, after a replica change, until that replica is ACTIVE or gone).

    Returns ``(applied, skipped)``; a step the endpoint does not know is skipped with an
    `UnsupportedOperationWarning`, and so is a replica the endpoint does not create.
    """
    refuse_in_tenant_scope(f"changing table {table.physical_name!r}")
    applied: list[PlanStep] = []
    skipped: list[PlanStep] = []
    for step in steps:
        if on_step is not None:
            on_step(step)
        try:
            response = yield from call(step.request)
        except DynamodelError as error:
            if error.code != UNSUPPORTED:
                raise
            warnings.warn(
                f"table {table.physical_name!r}: the endpoint does not support "
                f"{step.request.op} ({error}); skipped",
                UnsupportedOperationWarning,
                stacklevel=2,
            )
            skipped.append(step)
            continue
        replica = replica_change(step.request)
        if replica is not None:
            settled = yield from settle_replica_flow(table, *replica, response, timeout, poll)
            if settled is None:
                warn_ignored(table, [replica[1]])
                skipped.append(step)
                continue
            applied.append(step)
            continue
        applied.append(step)
        if step.wait:
            yield from table._wait_active_flow(timeout, poll)
    return applied, skipped


def reconcile_flow(
    table: Table,
    *,
    destructive: bool = False,
    dry_run: bool = False,
    timeout: float = 3600.0,
    poll: float = 2.0,
    on_step: Callable[[PlanStep], None] | None = None,
) -> Flow[ApplyResult]:
    """Describe, compare and apply (see `apply`)."""
    table = yield from current_period(table)
    live = yield from describe_flow(table)
    changes = compare(declared_shape(table), live.shape)
    result = ApplyResult(changes=changes, dry_run=dry_run)
    result.refused = [
        c
        for c in changes
        if c.safety == "impossible" or (c.safety == "destructive" and not destructive)
    ]
    steps = plan(changes, destructive=destructive)
    if dry_run:
        result.applied = steps
        return result
    result.applied, result.skipped = yield from apply_flow(
        table, steps, timeout=timeout, poll=poll, on_step=on_step
    )
    return result


def apply(
    table: Table,
    *,
    destructive: bool = False,
    dry_run: bool = False,
    timeout: float = 3600.0,
    poll: float = 2.0,
    on_step: Callable[[PlanStep], None] | None = None,
    connection: Connection | None = None,
) -> ApplyResult:
    """Make the live table match the declaration, one safe step at a time.

    Adds GSIs one per UpdateTable call, waiting until each is ACTIVE (DynamoDB backfills it),
    and applies billing, stream, table class, deletion protection, TTL and point-in-time
    recovery changes, then adds global table replicas, one per UpdateTable call, each waited
    for. Destructive changes (deleting or recreating a GSI, removing a replica, turning TTL, a
    stream, PITR or deletion protection off) are applied only with ``destructive=True``;
    impossible ones (key schema, LSIs) never. ``dry_run`` computes the steps without sending.
    ``on_step`` is called before each step is sent. ``connection``: where to send the
    requests (default: the scoped connection, else the table's).
    """
    from dynamodel.io.executors import run

    flow = reconcile_flow(
        table, destructive=destructive, dry_run=dry_run, timeout=timeout, poll=poll, on_step=on_step
    )
    return run(flow, resolve_connection(table, connection))


async def aapply(
    table: Table,
    *,
    destructive: bool = False,
    dry_run: bool = False,
    timeout: float = 3600.0,
    poll: float = 2.0,
    on_step: Callable[[PlanStep], None] | None = None,
    connection: Connection | None = None,
) -> ApplyResult:
    """Async `apply`."""
    from dynamodel.io.executors import arun

    flow = reconcile_flow(
        table, destructive=destructive, dry_run=dry_run, timeout=timeout, poll=poll, on_step=on_step
    )
    return await arun(flow, resolve_connection(table, connection))
