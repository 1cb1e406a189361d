"""The declared table against the live one: describe, diff, plan and apply the safe changes.

```python
live = describe(table)                 # DescribeTable + TTL + PITR, normalised
changes = compare(declared_shape(table), live.shape)
result = apply(table)                  # safe changes only; destructive=True for the rest
```

Shapes, comparisons and plans are pure data (`TableShape`, `Change`, `Step` with the exact
request parameters), so a dry run prints exactly what `apply` would send. The flows run under
the sync or the async executor. The declaration also exports as an entity chart
(`entity_chart`), a CloudFormation template (`cloudformation`) and a NoSQL Workbench data model
(`workbench_model`).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from dynamodel.core.errors import DynamodelError
from dynamodel.core.flows import Flow, Request, call
from dynamodel.io.scope import resolve_connection
from dynamodel.modelling.table import GSI, Provisioned, Table, UnsupportedOperationWarning

if TYPE_CHECKING:
    from dynamodel.io.clients import Connection

__all__ = [
    "Change",
    "IndexShape",
    "LiveTable",
    "Step",
    "SyncResult",
    "TableShape",
    "aapply",
    "adescribe",
    "adiff",
    "apply",
    "cloudformation",
    "compare",
    "declared_shape",
    "describe",
    "diff",
    "entity_chart",
    "live_shape",
    "plan",
    "workbench_model",
]

Safety = Literal["safe", "destructive", "impossible"]
UNSUPPORTED = "UnknownOperationException"


# -- shapes ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class IndexShape:
    """One index, declared or live, in comparable form.

    Attributes:
        name: index name. kind: ``GSI`` or ``LSI``. pk/sk: key attribute names (the first
            ones of a multi-attribute GSI). pk_attrs/sk_attrs: every partition and sort key
            attribute in key order (several for a multi-attribute GSI; empty: pk/sk only).
        key_types: key attribute name -> ``S``/``N``/``B`` (live: as DynamoDB reports them).
        projection: ``ALL``, ``KEYS_ONLY`` or ``INCLUDE``; ``attributes``: the INCLUDE list.
        capacity: (read, write) units when provisioned, else None.
        status: the live ``IndexStatus`` (None for a declaration).
    """

    name: str
    kind: Literal["GSI", "LSI"]
    pk: str
    sk: str | None
    key_types: tuple[tuple[str, str], ...] = ()
    projection: str = "ALL"
    attributes: tuple[str, ...] = ()
    capacity: tuple[int, int] | None = None
    status: str | None = None
    pk_attrs: tuple[str, ...] = ()
    sk_attrs: tuple[str, ...] = ()

    @property
    def key_schema(self) -> tuple[tuple[str, ...], tuple[str, ...]]:
        """(partition key attributes, sort key attributes), in key order."""
        if self.pk_attrs:
            return self.pk_attrs, self.sk_attrs
        return (self.pk,), ((self.sk,) if self.sk else ())

    def same_definition(self, other: IndexShape) -> bool:
        """Same keys, key types and projection (what cannot change without recreating it)."""
        mine, theirs = dict(self.key_types), dict(other.key_types)
        types_agree = all(theirs.get(name, kind) == kind for name, kind in mine.items())
        return (self.key_schema, self.projection, self.attributes) == (
            other.key_schema,
            other.projection,
            other.attributes,
        ) and types_agree

    def text(self) -> str:
        """One line: keys, projection, capacity (and a live status other than ACTIVE)."""
        pks, sks = self.key_schema
        if len(pks) > 1 or len(sks) > 1:  # multi-attribute: (partition attrs) + (sort attrs)
            keys = f"({', '.join(pks)})" + (f", ({', '.join(sks)})" if sks else "")
        else:
            keys = ", ".join(pks + sks)
        projection = self.projection
        if self.attributes:
            projection += f" {list(self.attributes)}"
        out = f"{keys}; {projection}"
        if self.capacity is not None:
            out += f"; {self.capacity[0]}/{self.capacity[1]} RCU/WCU"
        if self.status not in (None, "ACTIVE"):
            out += f" ({self.status})"
        return out


@dataclass(frozen=True)
class TableShape:
    """A table's configuration in comparable form (from a declaration or a live description).

    ``pitr`` is None when unknown (the endpoint has no backups API). The live-only attributes
    (``status``, ``item_count``, ``size_bytes``, ``arn``) are None for a declaration.
    """

    name: str
    pk: str
    sk: str | None
    key_types: tuple[tuple[str, str], ...]
    billing: str
    capacity: tuple[int, int] | None
    gsis: dict[str, IndexShape]
    lsis: dict[str, IndexShape]
    ttl: str | None
    stream: str | None
    pitr: bool | None
    table_class: str
    deletion_protection: bool
    status: str | None = None
    item_count: int | None = None
    size_bytes: int | None = None
    arn: str | None = None

    def summary(self) -> dict[str, str]:
        """Property -> display text, in a stable order (used by describe)."""
        keys = ", ".join(f"{name} ({kind})" for name, kind in self.key_types)
        out = {"keys": keys or ", ".join(k for k in (self.pk, self.sk) if k)}
        billing = self.billing
        if self.capacity is not None:
            billing += f" {self.capacity[0]}/{self.capacity[1]} RCU/WCU"
        out["billing"] = billing
        for name, index in sorted(self.gsis.items()):
            out[f"GSI {name}"] = index.text()
        for name, index in sorted(self.lsis.items()):
            out[f"LSI {name}"] = index.text()
        out["TTL"] = self.ttl or "off"
        out["stream"] = self.stream or "off"
        out["point-in-time recovery"] = _on_off(self.pitr)
        out["table class"] = self.table_class
        out["deletion protection"] = _on_off(self.deletion_protection)
        return out


def _on_off(value: bool | None) -> str:
    if value is None:
        return "unknown (not supported by this endpoint)"
    return "on" if value else "off"


def _capacity(value: Provisioned | None) -> tuple[int, int] | None:
    return (value.read, value.write) if value is not None else None


def declared_shape(table: Table) -> TableShape:
    """The shape the declaration asks for (from `Table.create_table_request`)."""
    request = table.create_table_request()
    types = {d["AttributeName"]: d["AttributeType"] for d in request["AttributeDefinitions"]}
    provisioned = table.billing if isinstance(table.billing, Provisioned) else None
    gsis: dict[str, IndexShape] = {}
    lsis: dict[str, IndexShape] = {}
    for spec in request.get("GlobalSecondaryIndexes", []):
        index = next(i for i in table.indexes if i.name == spec["IndexName"])
        assert isinstance(index, GSI)
        gsis[index.name] = _index_from_spec(spec, "GSI", types)
    for spec in request.get("LocalSecondaryIndexes", []):
        lsis[spec["IndexName"]] = _index_from_spec(spec, "LSI", types)
    return TableShape(
        name=table.physical_name,
        pk=table.pk,
        sk=table.sk,
        key_types=tuple((k, types[k]) for k in table.key_attributes()),
        billing="PROVISIONED" if provisioned else "PAY_PER_REQUEST",
        capacity=_capacity(provisioned),
        gsis=gsis,
        lsis=lsis,
        ttl=table.ttl,
        stream=table.stream,
        pitr=table.point_in_time_recovery,
        table_class=table.table_class,
        deletion_protection=table.deletion_protection,
    )


def _index_from_spec(
    spec: Mapping[str, Any], kind: Literal["GSI", "LSI"], types: Mapping[str, str]
) -> IndexShape:
    pks = tuple(k["AttributeName"] for k in spec["KeySchema"] if k["KeyType"] == "HASH")
    sks = tuple(k["AttributeName"] for k in spec["KeySchema"] if k["KeyType"] == "RANGE")
    projection = spec.get("Projection") or {}
    throughput = spec.get("ProvisionedThroughput") or {}
    read, write = throughput.get("ReadCapacityUnits"), throughput.get("WriteCapacityUnits")
    capacity = (int(read), int(write)) if read and write else None
    multi = len(pks) > 1 or len(sks) > 1
    return IndexShape(
        name=spec["IndexName"],
        kind=kind,
        pk=pks[0],
        sk=sks[0] if sks else None,
        pk_attrs=pks if multi else (),
        sk_attrs=sks if multi else (),
        key_types=tuple((k, types[k]) for k in pks + sks if k in types),
        projection=projection.get("ProjectionType", "ALL"),
        attributes=tuple(sorted(projection.get("NonKeyAttributes") or ())),
        capacity=capacity,
        status=spec.get("IndexStatus"),
    )


def live_shape(
    table: Mapping[str, Any],
    ttl: Mapping[str, Any] | None = None,
    backups: Mapping[str, Any] | None = None,
) -> TableShape:
    """Normalise a ``DescribeTable`` ``Table``, ``DescribeTimeToLive`` ``TimeToLiveDescription``
    and ``DescribeContinuousBackups`` ``ContinuousBackupsDescription`` (None: unknown)."""
    types = {d["AttributeName"]: d["AttributeType"] for d in table.get("AttributeDefinitions", [])}
    keys = {k["KeyType"]: k["AttributeName"] for k in table["KeySchema"]}
    throughput = table.get("ProvisionedThroughput") or {}
    mode = (table.get("BillingModeSummary") or {}).get("BillingMode")
    if mode is None:  # tables from before on-demand existed report no summary
        mode = "PROVISIONED" if throughput.get("ReadCapacityUnits") else "PAY_PER_REQUEST"
    capacity = None
    if mode == "PROVISIONED":
        capacity = (
            int(throughput.get("ReadCapacityUnits", 0)),
            int(throughput.get("WriteCapacityUnits", 0)),
        )
    gsis = {
        spec["IndexName"]: _index_from_spec(spec, "GSI", types)
        for spec in table.get("GlobalSecondaryIndexes") or []
    }
    if mode != "PROVISIONED":  # on-demand GSIs report 0/0: not a capacity
        gsis = {name: _without_capacity(index) for name, index in gsis.items()}
    lsis = {
        spec["IndexName"]: _index_from_spec(spec, "LSI", types)
        for spec in table.get("LocalSecondaryIndexes") or []
    }
    stream_spec = table.get("StreamSpecification") or {}
    stream = stream_spec.get("StreamViewType") if stream_spec.get("StreamEnabled") else None
    ttl_attr = None
    if ttl is not None and ttl.get("TimeToLiveStatus") in ("ENABLED", "ENABLING"):
        ttl_attr = ttl.get("AttributeName")
    pitr = None
    if backups is not None:
        status = (backups.get("PointInTimeRecoveryDescription") or {}).get(
            "PointInTimeRecoveryStatus"
        )
        pitr = status in ("ENABLED", "ENABLING")
    key_names = [k for k in (keys["HASH"], keys.get("RANGE")) if k]
    return TableShape(
        name=table["TableName"],
        pk=keys["HASH"],
        sk=keys.get("RANGE"),
        key_types=tuple((k, types.get(k, "S")) for k in key_names),
        billing=mode,
        capacity=capacity,
        gsis=gsis,
        lsis=lsis,
        ttl=ttl_attr,
        stream=stream,
        pitr=pitr,
        table_class=(table.get("TableClassSummary") or {}).get("TableClass", "STANDARD"),
        deletion_protection=bool(table.get("DeletionProtectionEnabled", False)),
        status=table.get("TableStatus"),
        item_count=table.get("ItemCount"),
        size_bytes=table.get("TableSizeBytes"),
        arn=table.get("TableArn"),
    )


def _without_capacity(index: IndexShape) -> IndexShape:
    from dataclasses import replace

    return replace(index, capacity=None)


# -- changes and plans ----------------------------------------------------------------------------

#: the order in which steps of different changes are applied
PHASES = {
    "drop_index": 0,  # deletions first: frees the index slot and the attribute definitions
    "billing": 1,
    "create_index": 2,
    "index_capacity": 3,
    "stream": 4,
    "table_class": 5,
    "deletion_protection": 6,
    "ttl": 7,
    "pitr": 8,
}


@dataclass(frozen=True)
class Step:
    """One request of a plan. ``wait``: wait until the table and its GSIs are ACTIVE after it."""

    request: Request
    phase: int
    wait: bool = True
    describe: str = ""

    def as_dict(self) -> dict[str, Any]:
        """``{"operation": ..., "parameters": ...}`` as printed by dry runs."""
        return {"operation": _operation_name(self.request.op), "parameters": self.request.params}


def _operation_name(op: str) -> str:
    return "".join(part.capitalize() for part in op.split("_"))


@dataclass(frozen=True)
class Change:
    """One difference between the declaration and the live table.

    Attributes:
        subject: what differs (``GSI gsi2``, ``TTL``, ``billing``...).
        declared / live: display text of each side.
        safety: ``safe`` (applied by `apply`), ``destructive`` (removes or recreates something;
            applied only when confirmed) or ``impossible`` (needs a new table).
        steps: the requests that make the live table match, in order.
        note: why it is destructive or impossible, or a caveat.
    """

    subject: str
    declared: str
    live: str
    safety: Safety
    steps: tuple[Step, ...] = ()
    note: str = ""


def compare(declared: TableShape, live: TableShape) -> list[Change]:
    """Every difference between a declared and a live shape, with the steps to fix each."""
    name = live.name
    changes: list[Change] = []
    changes += _key_changes(declared, live)
    changes += _lsi_changes(declared, live)
    changes += _billing_changes(declared, live)
    changes += _gsi_changes(declared, live)
    changes += _stream_changes(declared, live)
    if declared.table_class != live.table_class:
        changes.append(
            Change(
                "table class",
                declared.table_class,
                live.table_class,
                "safe",
                (
                    _update(
                        name,
                        "table_class",
                        f"table class {declared.table_class}",
                        TableClass=declared.table_class,
                    ),
                ),
            )
        )
    if declared.deletion_protection != live.deletion_protection:
        enable = declared.deletion_protection
        changes.append(
            Change(
                "deletion protection",
                _on_off(enable),
                _on_off(live.deletion_protection),
                "safe" if enable else "destructive",
                (
                    _update(
                        name,
                        "deletion_protection",
                        f"deletion protection {_on_off(enable)}",
                        DeletionProtectionEnabled=enable,
                    ),
                ),
                "" if enable else "turning it off allows the table to be deleted",
            )
        )
    changes += _ttl_changes(declared, live)
    changes += _pitr_changes(declared, live)
    return changes


def _update(name: str, phase: str, describe: str, **params: Any) -> Step:
    return Step(
        Request("update_table", {"TableName": name, **params}, control=True),
        PHASES[phase],
        describe=describe,
    )


def _key_changes(declared: TableShape, live: TableShape) -> list[Change]:
    if (declared.pk, declared.sk) == (live.pk, live.sk) and dict(live.key_types) == dict(
        declared.key_types
    ):
        return []
    return [
        Change(
            "primary key",
            ", ".join(f"{n} ({t})" for n, t in declared.key_types),
            ", ".join(f"{n} ({t})" for n, t in live.key_types),
            "impossible",
            note="a table's key schema cannot change: create a new table and copy the data",
        )
    ]


def _lsi_changes(declared: TableShape, live: TableShape) -> list[Change]:
    out = []
    for index_name in sorted(set(declared.lsis) | set(live.lsis)):
        want, have = declared.lsis.get(index_name), live.lsis.get(index_name)
        if want is not None and have is not None and want.same_definition(have):
            continue
        out.append(
            Change(
                f"LSI {index_name}",
                want.text() if want else "absent",
                have.text() if have else "absent",
                "impossible",
                note="local secondary indexes are fixed when the table is created",
            )
        )
    return out


def _billing_changes(declared: TableShape, live: TableShape) -> list[Change]:
    if (declared.billing, declared.capacity) == (live.billing, live.capacity):
        return []
    params: dict[str, Any] = {"BillingMode": declared.billing}
    if declared.capacity is not None:
        params["ProvisionedThroughput"] = _throughput(declared.capacity)
        # every GSI that stays needs its capacity in the same call
        updates = [
            {"Update": {"IndexName": n, "ProvisionedThroughput": _throughput(want.capacity)}}
            for n, want in sorted(declared.gsis.items())
            if n in live.gsis and want.capacity is not None and want.same_definition(live.gsis[n])
        ]
        if updates and live.billing != "PROVISIONED":
            params["GlobalSecondaryIndexUpdates"] = updates
    if live.billing == declared.billing:
        params.pop("BillingMode")
    text = TableShape.summary
    return [
        Change(
            "billing",
            text(declared)["billing"],
            text(live)["billing"],
            "safe",
            (_update(live.name, "billing", f"billing {text(declared)['billing']}", **params),),
            "DynamoDB allows switching to on-demand once per 24 hours"
            if declared.billing != live.billing
            else "",
        )
    ]


def _throughput(capacity: tuple[int, int] | None) -> dict[str, int]:
    assert capacity is not None
    return {"ReadCapacityUnits": capacity[0], "WriteCapacityUnits": capacity[1]}


def _gsi_create(live: TableShape, want: IndexShape) -> Step:
    spec: dict[str, Any] = {
        "IndexName": want.name,
        "KeySchema": [{"AttributeName": a, "KeyType": "HASH"} for a in want.key_schema[0]]
        + [{"AttributeName": a, "KeyType": "RANGE"} for a in want.key_schema[1]],
        "Projection": {"ProjectionType": want.projection}
        | ({"NonKeyAttributes": list(want.attributes)} if want.attributes else {}),
    }
    if want.capacity is not None:
        spec["ProvisionedThroughput"] = _throughput(want.capacity)
    definitions = [{"AttributeName": n, "AttributeType": t} for n, t in want.key_types]
    return _update(
        live.name,
        "create_index",
        f"create GSI {want.name}",
        AttributeDefinitions=definitions,
        GlobalSecondaryIndexUpdates=[{"Create": spec}],
    )


def _gsi_drop(live: TableShape, name: str) -> Step:
    return _update(
        live.name,
        "drop_index",
        f"delete GSI {name}",
        GlobalSecondaryIndexUpdates=[{"Delete": {"IndexName": name}}],
    )


def _gsi_changes(declared: TableShape, live: TableShape) -> list[Change]:
    out: list[Change] = []
    for name in sorted(set(declared.gsis) | set(live.gsis)):
        want, have = declared.gsis.get(name), live.gsis.get(name)
        subject = f"GSI {name}"
        if want is not None and have is None:
            out.append(Change(subject, want.text(), "absent", "safe", (_gsi_create(live, want),)))
        elif want is None and have is not None:
            out.append(
                Change(
                    subject,
                    "absent",
                    have.text(),
                    "destructive",
                    (_gsi_drop(live, name),),
                    "queries on this index stop working",
                )
            )
        elif want is not None and have is not None:
            if not want.same_definition(have):
                out.append(
                    Change(
                        subject,
                        want.text(),
                        have.text(),
                        "destructive",
                        (_gsi_drop(live, name), _gsi_create(live, want)),
                        "keys or projection differ: the index is deleted and created again "
                        "(unavailable until it is backfilled)",
                    )
                )
            elif (
                want.capacity is not None
                and have.capacity is not None
                and want.capacity != have.capacity
                and live.billing == "PROVISIONED"
            ):
                step = _update(
                    live.name,
                    "index_capacity",
                    f"GSI {name} capacity",
                    GlobalSecondaryIndexUpdates=[
                        {
                            "Update": {
                                "IndexName": name,
                                "ProvisionedThroughput": _throughput(want.capacity),
                            }
                        }
                    ],
                )
                out.append(Change(subject, want.text(), have.text(), "safe", (step,)))
    return out


def _stream_changes(declared: TableShape, live: TableShape) -> list[Change]:
    if declared.stream == live.stream:
        return []

    def stream_step(view: str | None) -> Step:
        spec: dict[str, Any] = {"StreamEnabled": view is not None}
        if view is not None:
            spec["StreamViewType"] = view
        return _update(live.name, "stream", f"stream {view or 'off'}", StreamSpecification=spec)

    declared_text, live_text = declared.stream or "off", live.stream or "off"
    if live.stream is None:
        return [Change("stream", declared_text, live_text, "safe", (stream_step(declared.stream),))]
    if declared.stream is None:
        return [
            Change(
                "stream",
                declared_text,
                live_text,
                "destructive",
                (stream_step(None),),
                "consumers of the stream stop receiving records",
            )
        ]
    return [
        Change(
            "stream",
            declared_text,
            live_text,
            "destructive",
            (stream_step(None), stream_step(declared.stream)),
            "the view type changes by disabling the stream and enabling a new one",
        )
    ]


def _ttl_step(name: str, attribute: str, enabled: bool) -> Step:
    return Step(
        Request(
            "update_time_to_live",
            {
                "TableName": name,
                "TimeToLiveSpecification": {"Enabled": enabled, "AttributeName": attribute},
            },
            control=True,
        ),
        PHASES["ttl"],
        wait=False,
        describe=f"TTL {'on ' + attribute if enabled else 'off'}",
    )


def _ttl_changes(declared: TableShape, live: TableShape) -> list[Change]:
    if declared.ttl == live.ttl:
        return []
    declared_text, live_text = declared.ttl or "off", live.ttl or "off"
    if live.ttl is None:
        assert declared.ttl is not None
        step = _ttl_step(live.name, declared.ttl, True)
        return [Change("TTL", declared_text, live_text, "safe", (step,))]
    if declared.ttl is None:
        return [
            Change(
                "TTL",
                declared_text,
                live_text,
                "destructive",
                (_ttl_step(live.name, live.ttl, False),),
                "expired items stop being deleted",
            )
        ]
    return [
        Change(
            "TTL",
            declared_text,
            live_text,
            "destructive",
            (_ttl_step(live.name, live.ttl, False), _ttl_step(live.name, declared.ttl, True)),
            "TTL is disabled and enabled on the new attribute (DynamoDB may refuse re-enabling "
            "for up to an hour)",
        )
    ]


def _pitr_changes(declared: TableShape, live: TableShape) -> list[Change]:
    if live.pitr is None or declared.pitr == live.pitr:
        return []
    enable = bool(declared.pitr)
    step = Step(
        Request(
            "update_continuous_backups",
            {
                "TableName": live.name,
                "PointInTimeRecoverySpecification": {"PointInTimeRecoveryEnabled": enable},
            },
            control=True,
        ),
        PHASES["pitr"],
        wait=False,
        describe=f"point-in-time recovery {_on_off(enable)}",
    )
    return [
        Change(
            "point-in-time recovery",
            _on_off(enable),
            _on_off(live.pitr),
            "safe" if enable else "destructive",
            (step,),
            "" if enable else "the recovery window is lost",
        )
    ]


def plan(changes: Iterable[Change], *, destructive: bool = False) -> list[Step]:
    """The steps of the changes to apply, in a valid order (one GSI per UpdateTable).

    Safe changes are always included, destructive ones only with ``destructive=True``,
    impossible ones never.
    """
    chosen = [
        c for c in changes if c.safety == "safe" or (destructive and c.safety == "destructive")
    ]
    steps = [step for change in chosen for step in change.steps]
    return sorted(steps, key=lambda s: s.phase)  # stable: a change's own steps keep their order


# -- live descriptions ----------------------------------------------------------------------------


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

    Raises `dynamodel.core.errors.TableNotFound` when the table does not exist.
    """
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


def describe(table: Table, *, connection: Connection | None = None) -> LiveTable:
    """The live table (sync client). ``connection``: where to ask (default: the scoped
    connection, else the table's; see `dynamodel.use_connection`)."""
    from dynamodel.io.executors import run

    return run(describe_flow(table), resolve_connection(table, connection))


async def adescribe(table: Table, *, connection: Connection | None = None) -> LiveTable:
    """Async `describe`."""
    from dynamodel.io.executors import arun

    return await arun(describe_flow(table), resolve_connection(table, connection))


def diff(table: Table, *, connection: Connection | None = None) -> list[Change]:
    """Differences between the declaration and the live table (sync client)."""
    return compare(declared_shape(table), describe(table, connection=connection).shape)


async def adiff(table: Table, *, connection: Connection | None = None) -> list[Change]:
    """Async `diff`."""
    live = await adescribe(table, connection=connection)
    return compare(declared_shape(table), live.shape)


# -- applying a plan ------------------------------------------------------------------------------


@dataclass
class SyncResult:
    """What `apply` did.

    Attributes:
        changes: every difference found before applying anything.
        applied: the steps sent, in order (all of them: a failing step raises).
        refused: destructive changes left alone (not confirmed) and impossible ones.
        skipped: steps the endpoint does not support (local emulators), with a warning.
        dry_run: nothing was sent; ``applied`` lists what would have been.
    """

    changes: list[Change]
    applied: list[Step] = field(default_factory=list)
    refused: list[Change] = field(default_factory=list)
    skipped: list[Step] = field(default_factory=list)
    dry_run: bool = False

    @property
    def in_sync(self) -> bool:
        """Whether the live table matches the declaration after this run (nothing refused)."""
        return not self.refused


def apply_flow(
    table: Table,
    steps: Iterable[Step],
    *,
    timeout: float = 3600.0,
    poll: float = 2.0,
    on_step: Callable[[Step], None] | None = None,
) -> Flow[tuple[list[Step], list[Step]]]:
    """Send each step; after an UpdateTable, wait until the table and its GSIs are ACTIVE.

    Returns ``(applied, skipped)``; a step the endpoint does not know is skipped with an
    `UnsupportedOperationWarning`.
    """
    applied: list[Step] = []
    skipped: list[Step] = []
    for step in steps:
        if on_step is not None:
            on_step(step)
        try:
            yield from call(step.request)
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
        applied.append(step)
        if step.wait:
            yield from table._wait_active_flow(timeout, poll)
    return applied, skipped


def sync_flow(
    table: Table,
    *,
    destructive: bool = False,
    dry_run: bool = False,
    timeout: float = 3600.0,
    poll: float = 2.0,
    on_step: Callable[[Step], None] | None = None,
) -> Flow[SyncResult]:
    """Describe, compare and apply (see `apply`)."""
    live = yield from describe_flow(table)
    changes = compare(declared_shape(table), live.shape)
    result = SyncResult(changes=changes, dry_run=dry_run)
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
    on_step: Callable[[Step], None] | None = None,
    connection: Connection | None = None,
) -> SyncResult:
    """Make the live table match the declaration, one safe step at a time.

    Adds GSIs one per UpdateTable call, waiting until each is ACTIVE (DynamoDB backfills it),
    and applies billing, stream, table class, deletion protection, TTL and point-in-time
    recovery changes. Destructive changes (deleting or recreating a GSI, turning TTL, a
    stream, PITR or deletion protection off) are applied only with ``destructive=True``;
    impossible ones (key schema, LSIs) never. ``dry_run`` computes the steps without sending.
    ``on_step`` is called before each step is sent. ``connection``: where to send the
    requests (default: the scoped connection, else the table's).
    """
    from dynamodel.io.executors import run

    flow = sync_flow(
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
    on_step: Callable[[Step], None] | None = None,
    connection: Connection | None = None,
) -> SyncResult:
    """Async `apply`."""
    from dynamodel.io.executors import arun

    flow = sync_flow(
        table, destructive=destructive, dry_run=dry_run, timeout=timeout, poll=poll, on_step=on_step
    )
    return await arun(flow, resolve_connection(table, connection))


# -- exports of the declaration -------------------------------------------------------------------


@dataclass(frozen=True)
class ChartRow:
    """One entity of the single-table "entity chart".

    Attributes:
        entity: the stored entity type. model: the model's qualified name.
        keys: ``"table"`` and each index name -> (partition key template, sort key template);
            an index the model does not use maps to ``(None, None)``.
    """

    entity: str
    model: str
    keys: dict[str, tuple[str | None, str | None]]


def entity_chart(table: Table) -> list[ChartRow]:
    """Every model of the table with its key templates for the table and each index."""
    rows = []
    for entity, model in table.entities.items():
        spec = model._spec()
        keys: dict[str, tuple[str | None, str | None]] = {
            "table": (spec.pk.text, spec.sk.text if spec.sk else None)
        }
        for index in table.indexes:
            multi = spec.multi_indexes.get(index.name)
            if multi is not None:  # the model's own fields, in key order
                keys[index.name] = (
                    f"({', '.join(multi.pk_fields)})",
                    f"({', '.join(multi.sk_fields)})" if multi.sk_fields else None,
                )
                continue
            templates = spec.indexes.get(index.name)
            if templates is None:
                keys[index.name] = (None, None)
                continue
            pk = templates.pk.text if templates.pk is not None else spec.pk.text  # LSI: table pk
            keys[index.name] = (pk, templates.sk.text if templates.sk else None)
        rows.append(ChartRow(entity, f"{model.__module__}.{model.__qualname__}", keys))
    return rows


def _logical_id(name: str) -> str:
    parts = [p for p in "".join(c if c.isalnum() else " " for c in name).split() if p]
    return "".join(p[:1].upper() + p[1:] for p in parts) + "Table"


def cloudformation(table: Table, *, logical_id: str | None = None) -> dict[str, Any]:
    """An ``AWS::DynamoDB::Table`` CloudFormation template for the declaration.

    The resource keeps its data when the stack is deleted or the resource replaced
    (``DeletionPolicy: Retain``). TTL and point-in-time recovery are properties of the resource.
    """
    request = table.create_table_request()
    props: dict[str, Any] = {
        key: request[key]
        for key in (
            "TableName",
            "AttributeDefinitions",
            "KeySchema",
            "BillingMode",
            "ProvisionedThroughput",
            "GlobalSecondaryIndexes",
            "LocalSecondaryIndexes",
            "TableClass",
            "DeletionProtectionEnabled",
            "Tags",
        )
        if key in request
    }
    if table.stream:
        props["StreamSpecification"] = {"StreamViewType": table.stream}
    if table.ttl:
        props["TimeToLiveSpecification"] = {"AttributeName": table.ttl, "Enabled": True}
    if table.point_in_time_recovery:
        props["PointInTimeRecoverySpecification"] = {"PointInTimeRecoveryEnabled": True}
    return {
        "AWSTemplateFormatVersion": "2010-09-09",
        "Description": f"DynamoDB table {table.physical_name} (generated by dynamodel)",
        "Resources": {
            logical_id or _logical_id(table.physical_name): {
                "Type": "AWS::DynamoDB::Table",
                "DeletionPolicy": "Retain",
                "UpdateReplacePolicy": "Retain",
                "Properties": props,
            }
        },
    }


def _attribute_type(annotation: Any) -> str:
    """The DynamoDB type a field of this annotation is stored as (for data-model exports)."""
    import datetime as dt
    import enum
    import typing
    import uuid
    from decimal import Decimal

    from pydantic import BaseModel

    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _attribute_type(typing.get_args(annotation)[0])
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    if origin is not None and type(None) in typing.get_args(annotation) and len(args) == 1:
        return _attribute_type(args[0])  # Optional[X]
    if origin in (set, frozenset):
        inner = _attribute_type(args[0]) if args else "S"
        return {"N": "NS", "B": "BS"}.get(inner, "SS")
    if origin in (list, tuple):
        return "L"
    if origin is dict:
        return "M"
    if not isinstance(annotation, type):
        return "S"
    if issubclass(annotation, bool):
        return "BOOL"
    if issubclass(annotation, enum.Enum):
        return "N" if issubclass(annotation, int) else "S"
    if issubclass(annotation, int | float | Decimal):
        return "N"
    if issubclass(annotation, bytes | bytearray):
        return "B"
    if issubclass(annotation, BaseModel | dict):
        return "M"
    if issubclass(annotation, list | tuple):
        return "L"
    if issubclass(annotation, set | frozenset):
        return "SS"
    if issubclass(annotation, str | dt.date | dt.time | uuid.UUID):
        return "S"
    return "S"


def workbench_model(
    table: Table, *, name: str | None = None, author: str = "", description: str = ""
) -> dict[str, Any]:
    """A NoSQL Workbench data model (format 3.0): the table, its GSIs and one facet per entity.

    Facets show each entity's key templates as key aliases. NoSQL Workbench models have no
    local secondary indexes; LSIs are left out. Format 3.0 has one partition and one sort key
    attribute per index, so multi-attribute GSIs are left out too (their key attributes are
    listed with the other attributes).
    """
    import datetime as dt

    request = table.create_table_request()
    types = {d["AttributeName"]: d["AttributeType"] for d in request["AttributeDefinitions"]}
    key_attrs = set(table.key_attributes())

    def key_attributes(pk: str, sk: str | None) -> dict[str, Any]:
        out = {"PartitionKey": {"AttributeName": pk, "AttributeType": types[pk]}}
        if sk:
            out["SortKey"] = {"AttributeName": sk, "AttributeType": types[sk]}
        return out

    non_key: dict[str, str] = {}
    for attribute, kind in types.items():
        if attribute not in key_attrs:
            non_key[attribute] = kind
    non_key[table.type_attribute] = "S"
    facets = []
    for entity, model in table.entities.items():
        spec = model._spec()
        fields = {
            spec.stored_names[n]: _attribute_type(info.annotation)
            for n, info in model.model_fields.items()
        }
        for attribute, kind in fields.items():
            non_key.setdefault(attribute, kind)
        index_attrs = [
            a
            for t in spec.indexes.values()
            for a in (t.pk_attr if t.pk is not None else None, t.sk_attr)
            if a and a not in key_attrs
        ]
        alias = {"PartitionKeyAlias": spec.pk.text}
        if spec.sk is not None:
            alias["SortKeyAlias"] = spec.sk.text
        facets.append(
            {
                "FacetName": entity,
                "KeyAttributeAlias": alias,
                "TableData": [],
                "NonKeyAttributes": [table.type_attribute, *index_attrs, *fields],
                "DataAccess": {"MySql": {}},
            }
        )
    gsis = []
    for spec in request.get("GlobalSecondaryIndexes", []):
        keys = {k["KeyType"]: k["AttributeName"] for k in spec["KeySchema"]}
        if len(spec["KeySchema"]) > len(keys):
            continue  # a multi-attribute GSI: format 3.0 cannot express it
        gsis.append(
            {
                "IndexName": spec["IndexName"],
                "KeyAttributes": key_attributes(keys["HASH"], keys.get("RANGE")),
                "Projection": spec["Projection"],
            }
        )
    model_table: dict[str, Any] = {
        "TableName": table.physical_name,
        "KeyAttributes": key_attributes(table.pk, table.sk),
        "NonKeyAttributes": [{"AttributeName": a, "AttributeType": t} for a, t in non_key.items()],
        "TableFacets": facets,
        "GlobalSecondaryIndexes": gsis,
        "TableData": [],
        "DataAccess": {"MySql": {}},
        "BillingMode": request["BillingMode"],
    }
    if "ProvisionedThroughput" in request:
        model_table["ProvisionedCapacitySettings"] = {
            "ProvisionedThroughput": request["ProvisionedThroughput"]
        }
    now = dt.datetime.now(dt.UTC).strftime("%b %d, %Y, %I:%M %p")
    return {
        "ModelName": name or table.physical_name,
        "ModelMetadata": {
            "Author": author,
            "DateCreated": now,
            "DateLastModified": now,
            "Description": description or f"Generated by dynamodel from {table.name!r}",
            "AWSService": "Amazon DynamoDB",
            "Version": "3.0",
        },
        "DataModel": [model_table],
    }
