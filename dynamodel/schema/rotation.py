"""Rotation of per-period tables: create the next periods, cool old ones, drop expired ones.

```python
plan = rotate(events, dry_run=True)     # what would change (RotationPlan)
rotate(events, drop=True)               # create ahead, cool, and drop expired tables
```

Which tables exist is read with ``ListTables`` (the names the table's `Periods` pattern
produces), and each one's class with ``DescribeTable``; see `Periods.plan` for the rules.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

from dynamodel.core.errors import ValidationError
from dynamodel.core.flows import Flow, Request, call, connection_inputs
from dynamodel.io.scope import resolve_connection
from dynamodel.modelling.periods import Periods, RotationPlan
from dynamodel.modelling.table import GSI, Provisioned
from dynamodel.modelling.tenancy import refuse_in_tenant_scope

if TYPE_CHECKING:
    from dynamodel.io.clients import Connection
    from dynamodel.modelling.table import Table


def _periods(table: Table) -> Periods:
    if table.periods is None:
        raise ValidationError(f"table {table.name!r} has no periods: there is nothing to rotate")
    return table.periods


def existing_flow(table: Table) -> Flow[dict[str, str]]:
    """The period tables that exist now: physical name -> table class."""
    periods = _periods(table)
    names: list[str] = []
    params: dict[str, Any] = {}
    while True:
        response = yield from call(Request("list_tables", params, control=True))
        names += [
            n
            for n in response.get("TableNames", [])
            if periods.period_of(table.physical_name, n) is not None
        ]
        last = response.get("LastEvaluatedTableName")
        if not last:
            break
        params = {"ExclusiveStartTableName": last}
    classes = {}
    for name in names:
        described = yield from call(Request("describe_table", {"TableName": name}, control=True))
        summary = described["Table"].get("TableClassSummary") or {}
        classes[name] = summary.get("TableClass", "STANDARD")
    return classes


def _cool_requests(table: Table, name: str) -> list[Request]:
    """The UpdateTable calls that make ``name`` cold (class first, then billing)."""
    periods = _periods(table)
    out = [
        Request(
            "update_table",
            {"TableName": name, "TableClass": periods.cold_class},
            control=True,
        )
    ]
    billing = periods.cold_billing
    if isinstance(billing, Provisioned):
        params: dict[str, Any] = {
            "TableName": name,
            "BillingMode": "PROVISIONED",
            "ProvisionedThroughput": billing.spec(),
        }
        gsis = [i for i in table.indexes if isinstance(i, GSI)]
        if gsis:  # a switch to provisioned must give every GSI its capacity too
            params["GlobalSecondaryIndexUpdates"] = [
                {"Update": {"IndexName": i.name, "ProvisionedThroughput": billing.spec()}}
                for i in gsis
            ]
        out.append(Request("update_table", params, control=True))
    return out


def rotate_flow(
    table: Table,
    *,
    now: dt.datetime | None = None,
    dry_run: bool = False,
    drop: bool = False,
    timeout: float = 600.0,
    poll: float = 2.0,
) -> Flow[RotationPlan]:
    """Compute the rotation plan at ``now`` (default: the connection's clock) and, unless
    ``dry_run``, apply it: create the current and ``ahead`` periods' tables, make cold ones
    cold, and, only with ``drop``, delete expired ones (refused otherwise, naming them)."""
    periods = _periods(table)
    refuse_in_tenant_scope(f"rotating table {table.physical_name!r}")
    if now is None:
        now = (yield from connection_inputs()).now()
    existing = yield from existing_flow(table)
    plan = periods.plan(table.physical_name, existing, now)
    if dry_run:
        return plan
    if plan.drop and not drop:
        raise ValidationError(
            f"table {table.name!r}: rotation would delete the expired tables "
            f"{', '.join(plan.drop)} (retention {periods.retention} periods); pass drop=True "
            "(`--yes` on the command line) to delete them, or raise the retention"
        )
    for name in plan.create:
        index = periods.period_of(table.physical_name, name)
        assert index is not None  # the plan names the tables the pattern makes
        yield from table.period_table(index)._create_flow(True, timeout, poll)
    for name in plan.cold:
        cold = table.replace(periods=None).bind(name=name)
        for request in _cool_requests(table, name):
            yield from call(request)
            yield from cold._wait_active_flow(timeout, poll)
    for name in plan.drop:
        yield from call(Request("delete_table", {"TableName": name}, control=True))
    return plan


def rotate(
    table: Table,
    *,
    now: dt.datetime | None = None,
    dry_run: bool = False,
    drop: bool = False,
    timeout: float = 600.0,
    poll: float = 2.0,
    connection: Connection | None = None,
) -> RotationPlan:
    """Rotate a table with periods (sync client); see `rotate_flow`."""
    from dynamodel.io.executors import run

    flow = rotate_flow(table, now=now, dry_run=dry_run, drop=drop, timeout=timeout, poll=poll)
    return run(flow, resolve_connection(table, connection))


async def arotate(
    table: Table,
    *,
    now: dt.datetime | None = None,
    dry_run: bool = False,
    drop: bool = False,
    timeout: float = 600.0,
    poll: float = 2.0,
    connection: Connection | None = None,
) -> RotationPlan:
    """Async `rotate`."""
    from dynamodel.io.executors import arun

    flow = rotate_flow(table, now=now, dry_run=dry_run, drop=drop, timeout=timeout, poll=poll)
    return await arun(flow, resolve_connection(table, connection))
