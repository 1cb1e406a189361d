"""Global table replicas (global tables version 2019.11.21): declaration, requests and waits.

A `Table` declared with ``replicas=[...]`` is a global table. It is created in the region of
the connection that creates it (its *home* region), then each replica is added with its own
``UpdateTable`` call carrying one ``ReplicaUpdates`` action, waiting until the table and the
new replica are ``ACTIVE`` before the next one (DynamoDB takes one replica change at a time).
DynamoDB replicates through the table's stream, so a table with replicas must declare
``stream="NEW_AND_OLD_IMAGES"``: the declaration is refused otherwise (nothing is switched on
behind the declaration's back).

The replicas use multi-Region *eventual* consistency (last writer wins). Multi-Region strong
consistency (``MultiRegionConsistency="STRONG"``) is not declared here; a live table that has
it is recognised by ``dynamodel.schema`` (see docs/global-tables.md).
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from dynamodel.core.errors import (
    DynamodelError,
    TableNotFound,
    UnsupportedOperationWarning,
    ValidationError,
)
from dynamodel.core.flows import Flow, Request, Sleep, call, connection_inputs
from dynamodel.core.frozen import Frozen

if TYPE_CHECKING:
    from dynamodel.io.clients import Connection
    from dynamodel.modelling.table import Table

__all__ = [
    "REQUIRED_STREAM",
    "Replica",
    "add_replicas_flow",
    "check_replicas",
    "described_replicas",
    "normalize_replicas",
    "replica_action",
    "replica_change",
    "replica_request",
    "replica_requests",
    "settle_replica_flow",
    "table_region",
]

#: the stream view type global tables (multi-Region eventual consistency) replicate through
REQUIRED_STREAM = "NEW_AND_OLD_IMAGES"
#: an AWS region name: us-east-1, ap-southeast-2, us-gov-west-1, eusc-de-east-1...
REGION_PATTERN = re.compile(r"[a-z]{2,4}(-[a-z]+)+-[0-9]{1,2}")
TABLE_CLASSES = ("STANDARD", "STANDARD_INFREQUENT_ACCESS")


def check_region(what: str, region: object) -> str:
    """``region`` if it is a region name, else a `ValidationError` naming ``what``."""
    if not isinstance(region, str) or not REGION_PATTERN.fullmatch(region):
        raise ValidationError(
            f"{what}: {region!r} is not an AWS region name (like 'eu-west-1' or 'us-east-2')"
        )
    return region


def _units(what: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValidationError(
            f"{what} must be a whole number of capacity units >= 1, got {value!r}"
        )
    return value


class Replica(Frozen):
    """One replica of a global table, with its own settings.

    A plain region name in ``Table(replicas=[...])`` is a replica with no overrides.

    Args:
        region: the region the replica lives in (``"eu-west-1"``).
        kms_key: the KMS key (id, ARN or alias) that encrypts the replica, when the table is
            encrypted with a customer managed key (keys are regional). Sent when the replica
            is created; not compared by diff (DynamoDB reports the key's ARN whatever form
            was given).
        read_capacity: read capacity units of the replica (``ProvisionedThroughputOverride``);
            provisioned tables only. Default: the table's.
        index_read_capacity: GSI name -> read capacity units of that index in this replica;
            provisioned tables only. Default: each index's.
        table_class: the replica's table class (``TableClassOverride``). Default: the table's.
    """

    _fields = ("region", "kms_key", "read_capacity", "index_read_capacity", "table_class")
    __slots__ = _fields
    region: str
    kms_key: str | None
    read_capacity: int | None
    index_read_capacity: tuple[tuple[str, int], ...]
    table_class: str | None

    def __init__(
        self,
        region: str,
        kms_key: str | None = None,
        read_capacity: int | None = None,
        index_read_capacity: Mapping[str, int] | Iterable[tuple[str, int]] = (),
        table_class: str | None = None,
    ) -> None:
        check_region("replica region", region)
        what = f"replica {region!r}"
        if kms_key is not None and (not isinstance(kms_key, str) or not kms_key):
            raise ValidationError(f"{what}: kms_key must be a non-empty string, got {kms_key!r}")
        if read_capacity is not None:
            _units(f"{what}: read_capacity", read_capacity)
        indexes: dict[str, int] = {}
        for name, units in dict(index_read_capacity).items():
            if not isinstance(name, str) or not name:
                raise ValidationError(
                    f"{what}: index names must be non-empty strings, got {name!r}"
                )
            indexes[name] = _units(f"{what}: index_read_capacity[{name!r}]", units)
        if table_class is not None and table_class not in TABLE_CLASSES:
            raise ValidationError(
                f"{what}: table_class must be one of {list(TABLE_CLASSES)}, got {table_class!r}"
            )
        self._set(
            region=region,
            kms_key=kms_key,
            read_capacity=read_capacity,
            index_read_capacity=tuple(sorted(indexes.items())),
            table_class=table_class,
        )

    def __repr__(self) -> str:  # the settings given, not every default
        shown = [repr(self.region)]
        shown += [f"{f}={getattr(self, f)!r}" for f in self._fields[1:] if getattr(self, f)]
        return f"Replica({', '.join(shown)})"

    @property
    def overrides(self) -> bool:
        """Whether the replica has settings of its own."""
        return any((self.kms_key, self.read_capacity, self.index_read_capacity, self.table_class))


def normalize_replicas(replicas: Sequence[str | Replica]) -> tuple[Replica, ...]:
    """The declared replicas as `Replica` objects, in order; a duplicate region is refused."""
    if isinstance(replicas, str | Replica):
        raise ValidationError(
            f"replicas must be a list of regions or Replica objects, e.g. replicas=[{replicas!r}]"
        )
    out: list[Replica] = []
    for entry in replicas:
        if isinstance(entry, Replica):
            out.append(entry)
        elif isinstance(entry, str):
            out.append(Replica(entry))
        else:
            raise ValidationError(
                f"replicas: each entry is a region name or a Replica, got {entry!r}"
            )
    regions = [r.region for r in out]
    duplicates = sorted({r for r in regions if regions.count(r) > 1})
    if duplicates:
        raise ValidationError(f"replicas: region(s) {duplicates} listed more than once")
    return tuple(out)


def check_replicas(table: Table) -> None:
    """The table-level rules of a declaration with replicas (called by `Table`, after its
    own checks: ``billing`` is ``"PAY_PER_REQUEST"`` or a `Provisioned`)."""
    name = table.name
    if table.stream != REQUIRED_STREAM:
        raise ValidationError(
            f"table {name!r}: a table with replicas needs stream={REQUIRED_STREAM!r} "
            f"(global tables replicate through the table's stream); got stream={table.stream!r}"
        )
    gsis = {i.name for i in table.indexes if hasattr(i, "pk")}  # an LSI has no partition key
    provisioned = table.billing != "PAY_PER_REQUEST"
    for replica in table.replicas:
        if (replica.read_capacity or replica.index_read_capacity) and not provisioned:
            raise ValidationError(
                f"table {name!r}: replica {replica.region!r} overrides read capacity, which "
                "only a provisioned table has (billing=Provisioned(read, write))"
            )
        unknown = sorted({n for n, _ in replica.index_read_capacity} - gsis)
        if unknown:
            raise ValidationError(
                f"table {name!r}: replica {replica.region!r} index_read_capacity names "
                f"{unknown}, which are not GSIs of the table (GSIs: {sorted(gsis)})"
            )


#: what `check_home` says the refused region is, by where it was found
HOME_CONTEXTS = {
    "connection": "the region of this connection, where the table itself would be created",
    "created": "the region the table was just created in (no replica was added; delete it)",
    "template": "the region given for the stack",
}


def check_home(table: Table, region: str | None, context: str = "connection") -> None:
    """Refuse a home region (where the table is, or is created) that is also a replica."""
    if region is not None and region in {r.region for r in table.replicas}:
        raise ValidationError(
            f"table {table.physical_name!r} lists {region!r} as a replica, but that is "
            f"{HOME_CONTEXTS[context]}: create the table from its home region (the replicas "
            f"are added from there), or remove {region!r} from replicas"
        )


# -- requests -----------------------------------------------------------------------------------


def replica_action(replica: Replica, action: str = "Create") -> dict[str, Any]:
    """The ``ReplicaUpdates`` entry of one replica (``Create``, ``Update`` or ``Delete``)."""
    spec: dict[str, Any] = {"RegionName": replica.region}
    if action == "Delete":
        return {"Delete": spec}
    if replica.kms_key and action == "Create":
        spec["KMSMasterKeyId"] = replica.kms_key
    if replica.read_capacity is not None:
        spec["ProvisionedThroughputOverride"] = {"ReadCapacityUnits": replica.read_capacity}
    if replica.index_read_capacity:
        spec["GlobalSecondaryIndexes"] = [
            {"IndexName": n, "ProvisionedThroughputOverride": {"ReadCapacityUnits": units}}
            for n, units in replica.index_read_capacity
        ]
    if replica.table_class is not None:
        spec["TableClassOverride"] = replica.table_class
    return {action: spec}


def replica_request(table_name: str, update: dict[str, Any]) -> Request:
    """An ``UpdateTable`` with one ``ReplicaUpdates`` action (one replica change per call)."""
    return Request(
        "update_table", {"TableName": table_name, "ReplicaUpdates": [update]}, control=True
    )


def replica_requests(table: Table) -> list[Request]:
    """The ``UpdateTable`` calls that add the declared replicas, in order (after CreateTable)."""
    return [replica_request(table.physical_name, replica_action(r)) for r in table.replicas]


def replica_change(request: Request) -> tuple[str, str] | None:
    """``(action, region)`` of a request that changes a replica, else None."""
    updates = request.params.get("ReplicaUpdates") if request.op == "update_table" else None
    if not updates:
        return None
    ((action, spec),) = updates[0].items()
    return action, spec["RegionName"]


# -- descriptions ---------------------------------------------------------------------------------


def table_region(description: Mapping[str, Any]) -> str | None:
    """The region of a described table, from its ARN (``arn:aws:dynamodb:REGION:...``)."""
    parts = str(description.get("TableArn") or "").split(":")
    return parts[3] or None if len(parts) > 5 else None


def described_replicas(description: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """Region -> ``ReplicaDescription`` of a described table's replicas, without the region the
    table was described in (DynamoDB may list it among them)."""
    own = table_region(description)
    return {
        r["RegionName"]: dict(r)
        for r in description.get("Replicas") or ()
        if r.get("RegionName") and r["RegionName"] != own
    }


def connection_region(connection: Connection) -> str | None:
    """The region a connection's requests go to (its own, else its sync client's)."""
    if connection.region:
        return connection.region
    meta = getattr(connection.client(control=True), "meta", None)
    region = getattr(meta, "region_name", None)
    return region if isinstance(region, str) else None


async def aconnection_region(connection: Connection) -> str | None:
    """`connection_region` through the async client."""
    if connection.region:
        return connection.region
    meta = getattr(await connection.aclient(control=True), "meta", None)
    region = getattr(meta, "region_name", None)
    return region if isinstance(region, str) else None


# -- flows ----------------------------------------------------------------------------------------


def home_flow(table: Table, region: str | None, exist_ok: bool) -> Flow[dict[str, Any] | None]:
    """Before CreateTable: refuse to create the table in one of its replica regions. With
    ``exist_ok``, an existing table there (the replica) is returned instead."""
    if region is None or region not in {r.region for r in table.replicas}:
        return None
    if exist_ok:
        try:
            response = yield Request(
                "describe_table", {"TableName": table.physical_name}, control=True
            )
        except TableNotFound:
            pass
        else:
            found: dict[str, Any] = response["Table"]
            return found
    check_home(table, region)
    return None  # pragma: no cover - check_home raised


def _settled(description: Mapping[str, Any], action: str, region: str) -> bool:
    if description.get("TableStatus") != "ACTIVE":
        return False
    indexes = description.get("GlobalSecondaryIndexes") or ()
    if any(i.get("IndexStatus", "ACTIVE") != "ACTIVE" for i in indexes):
        return False
    replica = described_replicas(description).get(region)
    if action == "Delete":
        return replica is None
    if replica is not None and replica.get("ReplicaStatus") == "CREATION_FAILED":
        detail = replica.get("ReplicaStatusDescription") or "no reason given"
        raise DynamodelError(
            f"table {description.get('TableName')!r}: creating the replica in {region!r} "
            f"failed ({detail})"
        )
    return replica is not None and replica.get("ReplicaStatus", "ACTIVE") == "ACTIVE"


def settle_replica_flow(
    table: Table,
    action: str,
    region: str,
    response: Mapping[str, Any],
    timeout: float,
    poll: float,
) -> Flow[dict[str, Any] | None]:
    """After an ``UpdateTable`` that changed the replica in ``region``: wait until the table,
    its GSIs and that replica are ACTIVE (or, for ``Delete``, the replica is gone).

    Returns the final description, or None when the endpoint ignored a ``Create`` (it answered
    ACTIVE without the replica, twice: a local emulator without global tables, such as moto).
    """
    answered = response.get("TableDescription") or {}
    clock = (yield from connection_inputs()).clock
    deadline = clock() + timeout
    first = True
    while True:
        got = yield Request("describe_table", {"TableName": table.physical_name}, control=True)
        description: dict[str, Any] = got["Table"]
        if (
            first
            and action == "Create"
            and all(
                d.get("TableStatus") == "ACTIVE" and region not in described_replicas(d)
                for d in (answered, description)
            )
        ):
            return None
        first = False
        if _settled(description, action, region):
            return description
        if clock() >= deadline:
            status = described_replicas(description).get(region, {}).get("ReplicaStatus")
            raise DynamodelError(
                f"table {table.physical_name!r}: replica {action.lower()} in {region!r} not "
                f"done after {timeout:.0f}s (table {description.get('TableStatus')}, "
                f"replica {status or 'absent'})"
            )
        yield Sleep(poll)


def warn_ignored(table: Table, regions: Sequence[str], stacklevel: int = 3) -> None:
    """Warn that the endpoint accepted replica creations without creating them."""
    warnings.warn(
        f"table {table.physical_name!r}: the endpoint does not create global table replicas "
        f"(UpdateTable ReplicaUpdates was answered without a replica); skipped {list(regions)}",
        UnsupportedOperationWarning,
        stacklevel=stacklevel,
    )


def add_replicas_flow(
    table: Table, description: dict[str, Any], timeout: float, poll: float
) -> Flow[dict[str, Any]]:
    """After the table is created and ACTIVE: add each declared replica, one ``UpdateTable``
    per replica, waiting until it is ACTIVE before the next. Returns the last description."""
    check_home(table, table_region(description), "created")
    existing = described_replicas(description)
    missing = [r for r in table.replicas if r.region not in existing]
    for index, replica in enumerate(missing):
        request = replica_request(table.physical_name, replica_action(replica))
        response = yield from call(request)
        settled = yield from settle_replica_flow(
            table, "Create", replica.region, response, timeout, poll
        )
        if settled is None:
            warn_ignored(table, [r.region for r in missing[index:]], stacklevel=4)
            break
        description = settled
    return description
