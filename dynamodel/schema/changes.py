"""Changes and plans: what differs between two table shapes, how safe each change is, and the
ordered requests (`PlanStep`) that make the live table match the declaration."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from dynamodel.core.flows import Request
from dynamodel.schema.shapes import IndexShape, TableShape, on_off

if TYPE_CHECKING:
    pass


Safety = Literal["safe", "destructive", "impossible"]


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
    return changes


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


def plan(changes: Iterable[Change], *, destructive: bool = False) -> list[PlanStep]:
    """The steps of the changes to apply, in a valid order (one GSI per UpdateTable).

    Safe changes are always included, destructive ones only with ``destructive=True``,
    impossible ones never.
    """
    chosen = [
        c for c in changes if c.safety == "safe" or (destructive and c.safety == "destructive")
    ]
    steps = [step for change in chosen for step in change.steps]
    return sorted(steps, key=lambda s: s.phase)  # stable: a change's own steps keep their order
