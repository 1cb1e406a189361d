"""Table shapes: the declared table (from `Table`) and the live one (from DescribeTable and
friends) reduced to the same comparable form."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from dynamodel.modelling.replicas import Replica, described_replicas, table_region
from dynamodel.modelling.table import GSI, Provisioned, Table

if TYPE_CHECKING:
    pass


@dataclass(frozen=True)
class IndexShape:
    """One index, declared or live, in comparable form.

    Attributes:
        name: index name.
        kind: ``GSI`` or ``LSI``.
        pk: the partition key attribute name (the first one of a multi-attribute GSI).
        sk: the sort key attribute name (the first one of a multi-attribute GSI), or None.
        pk_attrs: every partition key attribute in key order (several for a
            multi-attribute GSI; empty: ``pk`` only).
        sk_attrs: every sort key attribute in key order (empty: ``sk`` only).
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
class ReplicaShape:
    """One replica of a global table, declared or live, in comparable form.

    Attributes:
        region: the replica's region.
        read_capacity: its read capacity override (None: the table's, or not reported).
        index_read_capacity: (GSI name, read capacity override) pairs, sorted.
        table_class: its table class override (declared), or its table class (live).
        kms_key: the KMS key declared, or the one DynamoDB reports (not compared).
        status: the live ``ReplicaStatus`` (None for a declaration).
    """

    region: str
    read_capacity: int | None = None
    index_read_capacity: tuple[tuple[str, int], ...] = ()
    table_class: str | None = None
    kms_key: str | None = None
    status: str | None = None

    def text(self) -> str:
        """One line: the region, its overrides (and a live status other than ACTIVE)."""
        parts = [self.region]
        if self.read_capacity is not None:
            parts.append(f"{self.read_capacity} RCU")
        parts += [f"{name} {units} RCU" for name, units in self.index_read_capacity]
        if self.table_class is not None:
            parts.append(self.table_class)
        out = "; ".join(parts)
        if self.status not in (None, "ACTIVE"):
            out += f" ({self.status})"
        return out


def replica_shape(replica: Replica) -> ReplicaShape:
    """The shape of a declared replica."""
    return ReplicaShape(
        region=replica.region,
        read_capacity=replica.read_capacity,
        index_read_capacity=replica.index_read_capacity,
        table_class=replica.table_class,
        kms_key=replica.kms_key,
    )


def _live_replica(description: Mapping[str, Any]) -> ReplicaShape:
    override = (description.get("ProvisionedThroughputOverride") or {}).get("ReadCapacityUnits")
    indexes = sorted(
        (i["IndexName"], int(i["ProvisionedThroughputOverride"]["ReadCapacityUnits"]))
        for i in description.get("GlobalSecondaryIndexes") or ()
        if (i.get("ProvisionedThroughputOverride") or {}).get("ReadCapacityUnits")
    )
    return ReplicaShape(
        region=description["RegionName"],
        read_capacity=int(override) if override else None,
        index_read_capacity=tuple(indexes),
        table_class=(description.get("ReplicaTableClassSummary") or {}).get("TableClass"),
        kms_key=description.get("KMSMasterKeyId"),
        status=description.get("ReplicaStatus"),
    )


@dataclass(frozen=True)
class TableShape:
    """A table's configuration in comparable form (from a declaration or a live description).

    ``pitr`` is None when unknown (the endpoint has no backups API). The live-only attributes
    (``status``, ``item_count``, ``size_bytes``, ``arn``, ``region``, ``consistency``) are None
    for a declaration. ``replicas``: region -> `ReplicaShape` of a global table's replicas,
    without the table's own region (live: the region it was described in, ``region``).
    ``consistency``: the live ``MultiRegionConsistency`` (``EVENTUAL``/``STRONG``), when reported.
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
    replicas: dict[str, ReplicaShape] = field(default_factory=dict)
    region: str | None = None
    consistency: str | None = None

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
        out["point-in-time recovery"] = on_off(self.pitr)
        out["table class"] = self.table_class
        out["deletion protection"] = on_off(self.deletion_protection)
        out["replicas"] = ", ".join(r.text() for _, r in sorted(self.replicas.items())) or "none"
        if self.consistency == "STRONG":
            out["replicas"] += " (multi-Region strong consistency)"
        return out


def on_off(value: bool | None) -> str:
    """ "on", "off" or "unknown" for a setting the endpoint may not report."""
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
        replicas={r.region: replica_shape(r) for r in table.replicas},
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
        replicas={region: _live_replica(r) for region, r in described_replicas(table).items()},
        region=table_region(table),
        consistency=table.get("MultiRegionConsistency"),
    )


def _without_capacity(index: IndexShape) -> IndexShape:
    from dataclasses import replace

    return replace(index, capacity=None)
