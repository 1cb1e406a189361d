"""Changes and plans: what differs between two table shapes, how safe each change is, and the
ordered requests (`PlanStep`) that make the live table match the declaration."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Literal

from dynamodel.core.flows import Request
from dynamodel.modelling.replicas import (
    REQUIRED_STREAM,
    Replica,
    replica_action,
    replica_request,
)
from dynamodel.schema.shapes import IndexShape, ReplicaShape, TableShape, on_off

if TYPE_CHECKING:
    pass


Safety = Literal["safe", "destructive", "impossible"]


#: the order in which steps of different changes are applied
PHASES = {
    "drop_replica": 0,  # before the stream the replicas replicate through can be turned off
    "drop_index": 1,  # deletions first: frees the index slot and the attribute definitions
    "billing": 2,
    "create_index": 3,
    "index_capacity": 4,
    "stream": 5,
    "table_class": 6,
    "deletion_protection": 7,
    "ttl": 8,
    "pitr": 9,
    "replica_settings": 10,
    "create_replica": 11,  # last: after the stream they need, from the table's final settings
}


@dataclass(frozen=True)
class PlanStep:
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
    steps: tuple[PlanStep, ...] = ()
    note: str = ""


def compare(declared: TableShape, live: TableShape) -> list[Change]:
    """Every difference between a declared and a live shape, with the steps to fix each."""
    name = live.name
    replica_changes = _replica_changes(declared, live)
    declared = _seen_from(declared, live.region)
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
                on_off(enable),
                on_off(live.deletion_protection),
                "safe" if enable else "destructive",
                (
                    _update(
                        name,
                        "deletion_protection",
                        f"deletion protection {on_off(enable)}",
                        DeletionProtectionEnabled=enable,
                    ),
                ),
                "" if enable else "turning it off allows the table to be deleted",
            )
        )
    changes += _ttl_changes(declared, live)
    changes += _pitr_changes(declared, live)
    return changes + replica_changes


def _update(name: str, phase: str, describe: str, **params: Any) -> PlanStep:
    return PlanStep(
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


def _gsi_create(live: TableShape, want: IndexShape) -> PlanStep:
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


def _gsi_drop(live: TableShape, name: str) -> PlanStep:
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

    def stream_step(view: str | None) -> PlanStep:
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


def _ttl_step(name: str, attribute: str, enabled: bool) -> PlanStep:
    return PlanStep(
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
    step = PlanStep(
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
        describe=f"point-in-time recovery {on_off(enable)}",
    )
    return [
        Change(
            "point-in-time recovery",
            on_off(enable),
            on_off(live.pitr),
            "safe" if enable else "destructive",
            (step,),
            "" if enable else "the recovery window is lost",
        )
    ]


def _seen_from(declared: TableShape, region: str | None) -> TableShape:
    """The declaration as the replica in ``region`` should look (its own read capacity and
    table class), when the live table is that replica; else the declaration itself."""
    replica = declared.replicas.get(region) if region is not None else None
    if replica is None:
        return declared
    capacity = declared.capacity
    if capacity is not None and replica.read_capacity is not None:
        capacity = (replica.read_capacity, capacity[1])
    gsis = dict(declared.gsis)
    for index_name, units in replica.index_read_capacity:
        index = gsis.get(index_name)
        if index is not None and index.capacity is not None:
            gsis[index_name] = replace(index, capacity=(units, index.capacity[1]))
    return replace(
        declared,
        capacity=capacity,
        gsis=gsis,
        table_class=replica.table_class or declared.table_class,
    )


def _replica_step(name: str, phase: str, describe: str, update: dict[str, Any]) -> PlanStep:
    return PlanStep(replica_request(name, update), PHASES[phase], describe=describe)


def _declared_replica(shape: ReplicaShape) -> Replica:
    return Replica(
        shape.region,
        shape.kms_key,
        shape.read_capacity,
        shape.index_read_capacity,
        shape.table_class,
    )


def _replica_differs(want: ReplicaShape, have: ReplicaShape) -> bool:
    """Whether a live replica lacks one of the declared overrides (KMS keys are not compared:
    DynamoDB reports a key's ARN whatever form was declared)."""
    if want.read_capacity is not None and want.read_capacity != have.read_capacity:
        return True
    live_indexes = dict(have.index_read_capacity)
    if any(live_indexes.get(n) != units for n, units in want.index_read_capacity):
        return True
    return (
        want.table_class is not None
        and have.table_class is not None
        and want.table_class != have.table_class
    )


def _group_text(replicas: Iterable[str], own: str | None, own_label: str) -> str:
    names = sorted(replicas)
    if own is not None:
        names.append(f"{own} ({own_label})")
    return ", ".join(names) or "none"


def _replica_changes(declared: TableShape, live: TableShape) -> list[Change]:
    want, have, name = declared.replicas, live.replicas, live.name
    if live.region is not None and live.region in want:
        # described from one of its replica regions: the home region is one of the live
        # replicas, the one the declaration does not list
        group = set(have) | {live.region}
        extras, missing = group - set(want), set(want) - group
        if len(extras) == 1 and not missing:
            return []
        return [
            Change(
                "replicas",
                _group_text(want, None, "") + " and the home region",
                _group_text(have, live.region, "this replica"),
                "impossible",
                note=f"this is the table's replica in {live.region}: add and remove replicas "
                "from the table's home region (the region it was created in)",
            )
        ]
    if live.consistency == "STRONG":
        if set(want) == set(have):
            return []
        return [
            Change(
                "replicas",
                _group_text(want, None, ""),
                _group_text(have, None, "") + " (multi-Region strong consistency)",
                "impossible",
                note="the replicas of a multi-Region strong consistency table are set when it "
                "is made global; dynamodel does not change them",
            )
        ]
    out: list[Change] = []
    swap = live.stream not in (None, REQUIRED_STREAM)
    for region, wanted in want.items():  # declaration order: the order they are created in
        existing = have.get(region)
        if existing is None:
            step = _replica_step(
                name,
                "create_replica",
                f"add replica {region}",
                replica_action(_declared_replica(wanted)),
            )
            note = f"creates the table in {region} and copies every item to it"
            if swap:
                note += (
                    f"; needs the stream changed to {REQUIRED_STREAM} first (destructive), "
                    "so it is applied with it"
                )
            out.append(
                Change(
                    f"replica {region}",
                    wanted.text(),
                    "absent",
                    "destructive" if swap else "safe",
                    (step,),
                    note,
                )
            )
        elif _replica_differs(wanted, existing):
            step = _replica_step(
                name,
                "replica_settings",
                f"replica {region} settings",
                replica_action(_declared_replica(wanted), "Update"),
            )
            out.append(Change(f"replica {region}", wanted.text(), existing.text(), "safe", (step,)))
    for region in sorted(set(have) - set(want)):
        step = _replica_step(
            name, "drop_replica", f"remove replica {region}", {"Delete": {"RegionName": region}}
        )
        out.append(
            Change(
                f"replica {region}",
                "absent",
                have[region].text(),
                "destructive",
                (step,),
                f"deletes the table in {region} and its copy of the items; clients using "
                f"{region} lose the table",
            )
        )
    return out


def plan(changes: Iterable[Change], *, destructive: bool = False) -> list[PlanStep]:
    """The steps of the changes to apply, in a valid order (one GSI, one replica per
    UpdateTable).

    Safe changes are always included, destructive ones only with ``destructive=True``,
    impossible ones never.
    """
    chosen = [
        c for c in changes if c.safety == "safe" or (destructive and c.safety == "destructive")
    ]
    steps = [step for change in chosen for step in change.steps]
    return sorted(steps, key=lambda s: s.phase)  # stable: a change's own steps keep their order
