"""Table and index declarations, their CreateTable requests, and run-time binding.

A `Table` is declared once, next to the models that live in it. What differs per
environment (physical name, client, endpoint) is bound at run time with `Table.bind`,
without redefining any model.
"""

from __future__ import annotations

import string
import warnings
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal

from dynamodel.core.errors import (
    DynamodelError,
    TableNotFound,
    UnsupportedOperationWarning as UnsupportedOperationWarning,  # lives in core; still here
    ValidationError,
)
from dynamodel.core.flows import Flow, Request, Sleep, call, connection_inputs
from dynamodel.core.frozen import Frozen
from dynamodel.io.clients import Connection, default_connection
from dynamodel.io.scope import resolve_connection

if TYPE_CHECKING:
    import datetime as dt

    from dynamodel.modelling.base import ModelBase
    from dynamodel.modelling.periods import Periods
    from dynamodel.modelling.replicas import Replica

ProjectionType = Literal["ALL", "KEYS_ONLY"]
StreamView = Literal["NEW_IMAGE", "OLD_IMAGE", "NEW_AND_OLD_IMAGES", "KEYS_ONLY"]
TableClass = Literal["STANDARD", "STANDARD_INFREQUENT_ACCESS"]

_NAME_CHARS = frozenset(string.ascii_letters + string.digits + "_.-")
MAX_LSIS = 5
MAX_GSIS = 20


class Provisioned(Frozen):
    """Provisioned capacity (read and write capacity units)."""

    _fields = ("read", "write")
    __slots__ = _fields
    read: int
    write: int

    def __init__(self, read: int, write: int) -> None:
        self._set(read=read, write=write)

    def spec(self) -> dict[str, int]:
        """The ``ProvisionedThroughput`` request member."""
        return {"ReadCapacityUnits": self.read, "WriteCapacityUnits": self.write}


def _projection(projection: ProjectionType | Sequence[str]) -> dict[str, Any]:
    if isinstance(projection, str):
        if projection not in ("ALL", "KEYS_ONLY"):
            raise ValidationError(
                f"projection must be ALL, KEYS_ONLY or a list, got {projection!r}"
            )
        return {"ProjectionType": projection}
    return {"ProjectionType": "INCLUDE", "NonKeyAttributes": list(projection)}


MAX_MULTI_KEY_ATTRIBUTES = 4
KeyAttributeType = Literal["S", "N", "B"]


class GSI(Frozen):
    """A global secondary index.

    Over generic key attributes (``pk="gsi1pk", sk="gsi1sk"``) that models fill from key
    templates; or, when ``pk`` and/or ``sk`` is a tuple of attribute names (1-4 each), a
    *multi-attribute* index over the items' own attributes (``pk=("tenant_id", "region")``):
    models opt in with ``Meta.indexes = {name: MultiKey}`` and nothing synthetic is written.
    ``types`` (attribute -> ``S``/``N``/``B``) gives a multi-attribute index's key types when no
    model declares them (models' field types must agree with it).
    """

    _fields = ("name", "pk", "sk", "projection", "capacity", "types")
    __slots__ = _fields
    name: str
    pk: str | tuple[str, ...]
    sk: str | tuple[str, ...] | None
    projection: ProjectionType | Sequence[str]
    capacity: Provisioned | None
    types: Mapping[str, KeyAttributeType] | None

    def __init__(
        self,
        name: str,
        pk: str | Sequence[str],
        sk: str | Sequence[str] | None = None,
        projection: ProjectionType | Sequence[str] = "ALL",
        capacity: Provisioned | None = None,
        types: Mapping[str, KeyAttributeType] | None = None,
    ) -> None:
        multi = not isinstance(pk, str) or not (sk is None or isinstance(sk, str))
        if multi:
            pk_attrs = _key_names(name, "partition", pk)
            sk_attrs = _key_names(name, "sort", sk) if sk is not None else ()
            repeated = sorted(
                {a for a in pk_attrs + sk_attrs if (pk_attrs + sk_attrs).count(a) > 1}
            )
            if repeated:
                raise ValidationError(
                    f"GSI {name!r}: key attributes {repeated} are named more than once"
                )
            self._set(name=name, pk=pk_attrs, sk=sk_attrs or None)
            if types is not None:
                types = dict(types)
                unknown = sorted(set(types) - set(pk_attrs + sk_attrs))
                bad = sorted(a for a, t in types.items() if t not in ("S", "N", "B"))
                if unknown or bad:
                    raise ValidationError(
                        f"GSI {name!r}: types must map its key attributes to S, N or B "
                        f"(unknown attributes {unknown}, bad types {bad})"
                    )
        else:
            if types is not None:
                raise ValidationError(
                    f"GSI {name!r}: types is for multi-attribute indexes (generic key "
                    "attributes are always strings)"
                )
            self._set(name=name, pk=pk, sk=sk)
        self._set(projection=projection, capacity=capacity, types=types)

    @property
    def multi(self) -> bool:
        """Whether this is a multi-attribute index over the items' own attributes."""
        return isinstance(self.pk, tuple)

    @property
    def pk_attributes(self) -> tuple[str, ...]:
        """The partition key attribute names, in key order."""
        return self.pk if isinstance(self.pk, tuple) else (self.pk,)

    @property
    def sk_attributes(self) -> tuple[str, ...]:
        """The sort key attribute names, in key order (empty: no sort key)."""
        if not self.sk:
            return ()
        return self.sk if isinstance(self.sk, tuple) else (self.sk,)

    def spec(self, billing: Provisioned | None) -> dict[str, Any]:
        """The ``GlobalSecondaryIndexes`` entry."""
        schema = [{"AttributeName": a, "KeyType": "HASH"} for a in self.pk_attributes]
        schema += [{"AttributeName": a, "KeyType": "RANGE"} for a in self.sk_attributes]
        out: dict[str, Any] = {
            "IndexName": self.name,
            "KeySchema": schema,
            "Projection": _projection(self.projection),
        }
        capacity = self.capacity or billing
        if billing is not None and capacity is not None:
            out["ProvisionedThroughput"] = capacity.spec()
        return out


def _key_names(index: str, what: str, names: str | Sequence[str]) -> tuple[str, ...]:
    """A multi-attribute index's partition or sort key attribute names, checked."""
    out = (names,) if isinstance(names, str) else tuple(names)
    if not 1 <= len(out) <= MAX_MULTI_KEY_ATTRIBUTES:
        raise ValidationError(
            f"GSI {index!r}: {len(out)} {what} key attributes; a multi-attribute key has 1 to "
            f"{MAX_MULTI_KEY_ATTRIBUTES}"
        )
    for attribute in out:
        if not isinstance(attribute, str) or not attribute:
            raise ValidationError(
                f"GSI {index!r}: {what} key attribute names must be non-empty strings, "
                f"got {attribute!r}"
            )
    return out


class LSI(Frozen):
    """A local secondary index: the table's partition key with another sort key attribute."""

    _fields = ("name", "sk", "projection")
    __slots__ = _fields
    name: str
    sk: str
    projection: ProjectionType | Sequence[str]

    def __init__(
        self, name: str, sk: str, projection: ProjectionType | Sequence[str] = "ALL"
    ) -> None:
        self._set(name=name, sk=sk, projection=projection)

    def spec(self, table_pk: str) -> dict[str, Any]:
        """The ``LocalSecondaryIndexes`` entry."""
        return {
            "IndexName": self.name,
            "KeySchema": [
                {"AttributeName": table_pk, "KeyType": "HASH"},
                {"AttributeName": self.sk, "KeyType": "RANGE"},
            ],
            "Projection": _projection(self.projection),
        }


class IndexKeys:
    """The key attribute names of the table or one index.

    ``pk``/``sk`` name the (first) partition and sort key attributes; ``pk_attrs``/``sk_attrs``
    list all of them in key order (several for a multi-attribute GSI, ``multi``).
    """

    __slots__ = ("multi", "name", "pk", "pk_attrs", "sk", "sk_attrs")

    def __init__(
        self,
        name: str | None,
        pk: str,
        sk: str | None,
        pk_attrs: tuple[str, ...] | None = None,
        sk_attrs: tuple[str, ...] | None = None,
    ) -> None:
        self.name = name
        self.pk = pk
        self.sk = sk
        self.pk_attrs = pk_attrs if pk_attrs is not None else (pk,)
        self.sk_attrs = sk_attrs if sk_attrs is not None else ((sk,) if sk else ())
        self.multi = pk_attrs is not None

    @property
    def attributes(self) -> tuple[str, ...]:
        """Every key attribute, partition key attributes first."""
        return self.pk_attrs + self.sk_attrs

    def __repr__(self) -> str:
        return f"IndexKeys(name={self.name!r}, pk={self.pk_attrs!r}, sk={self.sk_attrs!r})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, IndexKeys):
            return NotImplemented
        return (self.name, self.pk_attrs, self.sk_attrs) == (
            other.name,
            other.pk_attrs,
            other.sk_attrs,
        )

    def __hash__(self) -> int:
        return hash((self.name, self.pk_attrs, self.sk_attrs))


class _Binding:
    __slots__ = ("connection", "name")

    def __init__(self) -> None:
        self.name: str | None = None
        self.connection: Connection | None = None


class Table:
    """A DynamoDB table shared by many entity types (single-table design).

    Args:
        name: the table's logical name (also the physical name unless bound otherwise).
        pk: partition key attribute name.
        sk: sort key attribute name (None for a table without a sort key).
        indexes: GSIs and LSIs.
        type_attribute: attribute storing each item's entity type.
        ttl: attribute DynamoDB's TTL reads (epoch seconds), enabled by ``create()``.
        hide_expired: with ``ttl``, reads skip items whose TTL has passed but which DynamoDB
            has not deleted yet (it can take a few days); False returns them.
        billing: ``"PAY_PER_REQUEST"`` or `Provisioned`.
        stream: stream view type to enable a stream, or None.
        table_class: ``STANDARD`` or ``STANDARD_INFREQUENT_ACCESS``.
        point_in_time_recovery: enable PITR after creation.
        deletion_protection: set DeletionProtectionEnabled.
        tags: resource tags.
        periods: one physical table per period of time (`Periods`): models route each item to
            its period's table by their ``Meta.period`` field (docs/periods.md).
        replicas: regions (or `dynamodel.Replica` objects, for per-replica settings) of a
            global table's replicas, added after the table is created in its connection's
            region; needs ``stream="NEW_AND_OLD_IMAGES"`` (see docs/global-tables.md).
    """

    #: the declared settings, in order: what equality, ``repr`` and `replace` use
    _fields = (
        "name",
        "pk",
        "sk",
        "indexes",
        "type_attribute",
        "ttl",
        "hide_expired",
        "billing",
        "stream",
        "table_class",
        "point_in_time_recovery",
        "deletion_protection",
        "tags",
        "periods",
        "replicas",
    )

    def __init__(
        self,
        name: str,
        pk: str = "pk",
        sk: str | None = "sk",
        indexes: Sequence[GSI | LSI] = (),
        type_attribute: str = "_type",
        ttl: str | None = None,
        hide_expired: bool = True,
        billing: Literal["PAY_PER_REQUEST"] | Provisioned = "PAY_PER_REQUEST",
        stream: StreamView | None = None,
        table_class: TableClass = "STANDARD",
        point_in_time_recovery: bool = False,
        deletion_protection: bool = False,
        tags: dict[str, str] | None = None,
        periods: Periods | None = None,
        replicas: Sequence[str | Replica] = (),
    ) -> None:
        # A plain class, not a dataclass: it loads with `import dynamodel` (see core.frozen)
        self.name = name
        self.pk = pk
        self.sk = sk
        self.indexes: Sequence[GSI | LSI] = tuple(indexes)
        self.type_attribute = type_attribute
        self.ttl = ttl
        self.hide_expired = hide_expired
        self.billing = billing
        self.stream = stream
        self.table_class = table_class
        self.point_in_time_recovery = point_in_time_recovery
        self.deletion_protection = deletion_protection
        self.tags: dict[str, str] = {} if tags is None else tags
        self.periods = periods
        self.replicas: tuple[Replica, ...] = ()
        if replicas:  # the replicas module loads only for global tables
            from dynamodel.modelling.replicas import normalize_replicas

            self.replicas = normalize_replicas(replicas)
        self._binding = _Binding()
        self._entities: dict[str, type[ModelBase]] = {}
        self._validate()

    def _validate(self) -> None:
        _check_name("table name", self.name)
        names = [index.name for index in self.indexes]
        for index_name in names:
            _check_name("index name", index_name)
        duplicates = {n for n in names if names.count(n) > 1}
        if duplicates:
            raise ValidationError(
                f"table {self.name!r}: duplicate index names {sorted(duplicates)}"
            )
        lsis = [i for i in self.indexes if isinstance(i, LSI)]
        gsis = [i for i in self.indexes if isinstance(i, GSI)]
        if len(lsis) > MAX_LSIS:
            raise ValidationError(f"table {self.name!r}: {len(lsis)} LSIs; at most {MAX_LSIS}")
        if len(gsis) > MAX_GSIS:
            raise ValidationError(
                f"table {self.name!r}: {len(gsis)} GSIs; the default quota is {MAX_GSIS}"
            )
        if lsis and not self.sk:
            raise ValidationError(f"table {self.name!r}: LSIs need a table sort key")
        generic = {self.pk, self.type_attribute} | ({self.sk} if self.sk else set())
        for index in self.indexes:
            if isinstance(index, LSI):
                generic.add(index.sk)
            elif not index.multi:
                generic.update(index.pk_attributes + index.sk_attributes)
        for gsi in gsis:
            clash = sorted(generic.intersection(gsi.pk_attributes + gsi.sk_attributes))
            if gsi.multi and clash:
                raise ValidationError(
                    f"table {self.name!r}: multi-attribute GSI {gsi.name!r} uses {clash}, "
                    "which the table manages (its keys, type attribute or generic index keys); "
                    "a multi-attribute index is made of the models' own attributes"
                )
        if self.billing != "PAY_PER_REQUEST" and not isinstance(self.billing, Provisioned):
            raise ValidationError("billing must be 'PAY_PER_REQUEST' or Provisioned(read, write)")
        if self.periods is not None:
            from dynamodel.modelling.periods import Periods

            if not isinstance(self.periods, Periods):
                raise ValidationError(f"table {self.name!r}: periods must be a Periods(...)")
        if self.replicas:
            from dynamodel.modelling.replicas import check_replicas

            check_replicas(self)
        if self.periods is not None and self.replicas:
            raise ValidationError(
                f"table {self.name!r}: per-period tables cannot have replicas yet (declare "
                "periods or replicas)"
            )

    def _settings(self) -> tuple[Any, ...]:
        return tuple(getattr(self, f) for f in self._fields)

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        return self._settings() == other._settings()

    __hash__ = None  # type: ignore[assignment]  # mutable (bind), so not hashable

    def __repr__(self) -> str:
        shown = ", ".join(f"{f}={getattr(self, f)!r}" for f in self._fields)
        return f"Table({shown})"

    def replace(self, **changes: Any) -> Table:
        """A new, unbound table with some declared settings changed (models stay with this one).

        Useful to describe another version of the same table, e.g. in a migration.
        """
        unknown = set(changes) - set(self._fields)
        if unknown:
            raise TypeError(f"Table has no setting(s) {sorted(unknown)}")
        values = {f: getattr(self, f) for f in self._fields}
        values.update(changes)
        return Table(**values)

    # -- run-time binding -------------------------------------------------------------------

    def bind(
        self,
        *,
        name: str | None = None,
        connection: Connection | None = None,
        client: Any = None,
        aclient: Any = None,
        endpoint_url: str | None = None,
        region: str | None = None,
    ) -> Table:
        """Set the physical table name and/or where requests go, at run time.

        ``client``/``aclient``/``endpoint_url``/``region`` build a new `Connection`
        (unless ``connection`` is given). Returns the table for chaining.
        """
        if name is not None:
            _check_name("table name", name)
            self._binding.name = name
        if connection is None and any(
            x is not None for x in (client, aclient, endpoint_url, region)
        ):
            connection = Connection(
                client=client, aclient=aclient, endpoint_url=endpoint_url, region=region
            )
        if connection is not None:
            self._binding.connection = connection
        return self

    def unbind(self) -> None:
        """Forget the run-time name and connection."""
        self._binding = _Binding()

    @property
    def physical_name(self) -> str:
        """The name requests use: the bound name, else the declared one. For a table with
        `periods`, the name the period tables are named after (see `period_name`)."""
        return self._binding.name or self.name

    def period_name(self, when: dt.datetime) -> str:
        """The physical name of the period table holding ``when`` (a table with `periods`)."""
        periods = self._periods()
        return periods.table_name(self.physical_name, periods.index(when))

    def period_table(self, when: dt.datetime | int) -> Table:
        """The table of one period (a datetime in it, or its `Periods.index`): this
        declaration without periods, bound to the period's name and to this table's
        connection; create, describe or delete it like any table."""
        periods = self._periods()
        index = when if isinstance(when, int) else periods.index(when)
        table = self.replace(periods=None)
        table.bind(name=periods.table_name(self.physical_name, index))
        table._binding.connection = self._binding.connection
        return table

    def _periods(self) -> Periods:
        if self.periods is None:
            raise ValidationError(f"table {self.name!r} has no periods")
        return self.periods

    @property
    def connection(self) -> Connection:
        """The bound connection, else the default one."""
        return self._binding.connection or default_connection()

    # -- keys and indexes -------------------------------------------------------------------

    def index_keys(self, index: str | None) -> IndexKeys:
        """Key attribute names of the table (``index=None``) or a named index."""
        if index is None:
            return IndexKeys(None, self.pk, self.sk)
        for declared in self.indexes:
            if declared.name == index:
                if isinstance(declared, GSI):
                    if declared.multi:
                        pks, sks = declared.pk_attributes, declared.sk_attributes
                        return IndexKeys(index, pks[0], sks[0] if sks else None, pks, sks)
                    assert isinstance(declared.pk, str) and not isinstance(declared.sk, tuple)
                    return IndexKeys(index, declared.pk, declared.sk)
                return IndexKeys(index, self.pk, declared.sk)
        known = [i.name for i in self.indexes]
        from dynamodel.core.suggest import suggest  # the error path only

        raise ValidationError(
            f"table {self.name!r} has no index {index!r}{suggest(str(index), known)} "
            f"(indexes: {known}). Nothing was sent"
        )

    def key_attributes(self) -> tuple[str, ...]:
        """The table's primary key attribute names."""
        return (self.pk, self.sk) if self.sk else (self.pk,)

    def multi_key_types(self, index: GSI) -> dict[str, str]:
        """A multi-attribute GSI's key attribute types (``S``/``N``/``B``), in key order: from
        its ``types``, else from the field types of the models that declare it."""
        found: dict[str, tuple[str, str]] = {
            a: (t, f"GSI {index.name!r} types") for a, t in (index.types or {}).items()
        }
        for model in self._entities.values():
            multi = getattr(model.__dynamodel__, "multi_indexes", {}).get(index.name)
            if multi is None:
                continue
            for attribute, kind in multi.types.items():
                known = found.get(attribute)
                if known is not None and known[0] != kind:
                    raise ValidationError(
                        f"table {self.name!r}: GSI {index.name!r} key attribute {attribute!r} "
                        f"is {kind} in {model.__qualname__} but {known[0]} in {known[1]}"
                    )
                found.setdefault(attribute, (kind, model.__qualname__))
        out: dict[str, str] = {}
        for attribute in index.pk_attributes + index.sk_attributes:
            if attribute not in found:
                raise ValidationError(
                    f"table {self.name!r}: the type of GSI {index.name!r} key attribute "
                    f"{attribute!r} is unknown: no model declares the index "
                    f"(Meta.indexes = {{{index.name!r}: MultiKey}}) and the GSI has no types="
                )
            out[attribute] = found[attribute][0]
        return out

    def register(self, model: type[ModelBase]) -> None:
        """Record a model class under its entity type (called by Model subclasses)."""
        entity = model.__dynamodel__.entity
        existing = self._entities.get(entity)
        if existing is not None and (existing.__module__, existing.__qualname__) != (
            model.__module__,
            model.__qualname__,
        ):
            raise ValidationError(
                f"table {self.name!r}: entity type {entity!r} is used by both "
                f"{existing.__qualname__} and {model.__qualname__}"
            )
        self._entities[entity] = model

    @property
    def entities(self) -> dict[str, type[ModelBase]]:
        """Entity type -> model class, for every model bound to this table."""
        return dict(self._entities)

    # -- table management ---------------------------------------------------------------------

    def create_table_request(self) -> dict[str, Any]:
        """The exact ``CreateTable`` parameters for this declaration."""
        # key templates always render strings, so every key attribute is of type S, except a
        # multi-attribute GSI's: the types of the model fields it is made of
        types: dict[str, str] = {self.pk: "S"}
        schema = [{"AttributeName": self.pk, "KeyType": "HASH"}]
        if self.sk:
            types[self.sk] = "S"
            schema.append({"AttributeName": self.sk, "KeyType": "RANGE"})
        provisioned = self.billing if isinstance(self.billing, Provisioned) else None
        gsis: list[dict[str, Any]] = []
        lsis: list[dict[str, Any]] = []
        for index in self.indexes:
            if isinstance(index, GSI):
                if index.multi:
                    for name, kind in self.multi_key_types(index).items():
                        types.setdefault(name, kind)
                else:
                    types.update((a, "S") for a in index.pk_attributes + index.sk_attributes)
                gsis.append(index.spec(provisioned))
            else:
                types[index.sk] = "S"
                lsis.append(index.spec(self.pk))
        request: dict[str, Any] = {
            "TableName": self.physical_name,
            "AttributeDefinitions": [
                {"AttributeName": name, "AttributeType": kind} for name, kind in types.items()
            ],
            "KeySchema": schema,
        }
        if provisioned is not None:
            request["BillingMode"] = "PROVISIONED"
            request["ProvisionedThroughput"] = provisioned.spec()
        else:
            request["BillingMode"] = "PAY_PER_REQUEST"
        if gsis:
            request["GlobalSecondaryIndexes"] = gsis
        if lsis:
            request["LocalSecondaryIndexes"] = lsis
        if self.stream:
            request["StreamSpecification"] = {"StreamEnabled": True, "StreamViewType": self.stream}
        request["TableClass"] = self.table_class
        if self.deletion_protection:
            request["DeletionProtectionEnabled"] = True
        if self.tags:
            request["Tags"] = [{"Key": k, "Value": v} for k, v in self.tags.items()]
        return request

    def follow_up_requests(self) -> list[Request]:
        """UpdateTimeToLive / UpdateContinuousBackups calls that follow CreateTable."""
        out: list[Request] = []
        if self.ttl:
            out.append(
                Request(
                    "update_time_to_live",
                    {
                        "TableName": self.physical_name,
                        "TimeToLiveSpecification": {"Enabled": True, "AttributeName": self.ttl},
                    },
                    control=True,
                )
            )
        if self.point_in_time_recovery:
            out.append(
                Request(
                    "update_continuous_backups",
                    {
                        "TableName": self.physical_name,
                        "PointInTimeRecoverySpecification": {"PointInTimeRecoveryEnabled": True},
                    },
                    control=True,
                )
            )
        return out

    def _create_flow(
        self, exist_ok: bool, timeout: float, poll: float, region: str | None = None
    ) -> Flow[dict[str, Any]]:
        from dynamodel.modelling.tenancy import refuse_in_tenant_scope

        refuse_in_tenant_scope(f"creating table {self.physical_name!r}")
        if self.periods is not None:  # the current period's table and those ahead of it
            current = self.periods.index((yield from connection_inputs()).now())
            described = {}
            for index in range(current, current + self.periods.ahead + 1):
                flow = self.period_table(index)._create_flow(exist_ok, timeout, poll)
                described[index] = yield from flow
            return described[current]
        if self.replicas:  # ``region``: the connection's, so a replica region is refused
            from dynamodel.modelling.replicas import home_flow

            existing = yield from home_flow(self, region, exist_ok)
            if existing is not None:
                return existing
        try:
            yield Request("create_table", self.create_table_request(), control=True)
        except DynamodelError as error:
            if not (exist_ok and error.code == "ResourceInUseException"):
                raise
            return (yield from self._describe_flow())
        description = yield from self._wait_active_flow(timeout, poll)
        for request in self.follow_up_requests():
            try:
                yield from call(request)
            except DynamodelError as error:
                if error.code != "UnknownOperationException":
                    raise
                # local emulators (dynoxide has no backups API) do not know every call
                warnings.warn(
                    f"table {self.physical_name!r}: the endpoint does not support "
                    f"{request.op} ({error}); skipped",
                    UnsupportedOperationWarning,
                    stacklevel=2,
                )
        if self.replicas:  # one UpdateTable per replica, each waited for
            from dynamodel.modelling.replicas import add_replicas_flow

            description = yield from add_replicas_flow(self, description, timeout, poll)
        return description

    def _describe_flow(self) -> Flow[dict[str, Any]]:
        name = self.physical_name
        if self.periods is not None:  # the current period's table
            name = self.period_name((yield from connection_inputs()).now())
        response = yield Request("describe_table", {"TableName": name}, control=True)
        table: dict[str, Any] = response["Table"]
        return table

    def _wait_active_flow(self, timeout: float, poll: float) -> Flow[dict[str, Any]]:
        clock = (yield from connection_inputs()).clock  # the running connection's
        deadline = clock() + timeout
        while True:
            table = yield from self._describe_flow()
            indexes = table.get("GlobalSecondaryIndexes", [])
            if table.get("TableStatus") == "ACTIVE" and all(
                i.get("IndexStatus", "ACTIVE") == "ACTIVE" for i in indexes
            ):
                return table
            if clock() >= deadline:
                raise DynamodelError(
                    f"table {self.physical_name!r} not ACTIVE after {timeout:.0f}s "
                    f"(status {table.get('TableStatus')})"
                )
            yield Sleep(poll)

    def _delete_flow(self, missing_ok: bool) -> Flow[None]:
        from dynamodel.modelling.tenancy import refuse_in_tenant_scope

        refuse_in_tenant_scope(f"deleting table {self.physical_name!r}")
        if self.periods is not None:
            raise ValidationError(
                f"table {self.name!r} is one table per {self.periods.every}: delete one "
                "period's table with table.period_table(when).delete(), or let "
                "`dynamodel table rotate` drop expired ones"
            )
        try:
            yield Request("delete_table", {"TableName": self.physical_name}, control=True)
        except TableNotFound:
            if not missing_ok:
                raise

    def _resolve(self, connection: Connection | None) -> Connection:
        return resolve_connection(self, connection)

    def create(
        self,
        *,
        exist_ok: bool = False,
        timeout: float = 300.0,
        poll: float = 0.5,
        connection: Connection | None = None,
    ) -> dict[str, Any]:
        """Create the table, wait until it and its GSIs are ACTIVE, then apply TTL and PITR,
        then add the replicas one at a time, each waited for (``timeout`` is per wait).

        Returns the ``DescribeTable`` description. ``exist_ok`` makes an existing table a no-op.
        ``connection``: send the requests there (default: the scoped connection, else the
        bound one, else the default one; see `dynamodel.use_connection`).
        """
        from dynamodel.io.executors import run

        resolved = self._resolve(connection)
        region = None
        if self.replicas:
            from dynamodel.modelling.replicas import connection_region

            region = connection_region(resolved)
        return run(self._create_flow(exist_ok, timeout, poll, region), resolved)

    async def acreate(
        self,
        *,
        exist_ok: bool = False,
        timeout: float = 300.0,
        poll: float = 0.5,
        connection: Connection | None = None,
    ) -> dict[str, Any]:
        """Async `create`."""
        from dynamodel.io.executors import arun

        resolved = self._resolve(connection)
        region = None
        if self.replicas:
            from dynamodel.modelling.replicas import aconnection_region

            region = await aconnection_region(resolved)
        return await arun(self._create_flow(exist_ok, timeout, poll, region), resolved)

    def describe(self, *, connection: Connection | None = None) -> dict[str, Any]:
        """The live ``DescribeTable`` description."""
        from dynamodel.io.executors import run

        return run(self._describe_flow(), self._resolve(connection))

    async def adescribe(self, *, connection: Connection | None = None) -> dict[str, Any]:
        """Async `describe`."""
        from dynamodel.io.executors import arun

        return await arun(self._describe_flow(), self._resolve(connection))

    def delete(self, *, missing_ok: bool = False, connection: Connection | None = None) -> None:
        """Delete the table (all its data)."""
        from dynamodel.io.executors import run

        run(self._delete_flow(missing_ok), self._resolve(connection))

    async def adelete(
        self, *, missing_ok: bool = False, connection: Connection | None = None
    ) -> None:
        """Async `delete`."""
        from dynamodel.io.executors import arun

        await arun(self._delete_flow(missing_ok), self._resolve(connection))


def _check_name(what: str, name: str) -> None:
    if not isinstance(name, str) or not 3 <= len(name) <= 255 or not _NAME_CHARS.issuperset(name):
        raise ValidationError(f"{what} {name!r} is invalid: 3-255 characters of A-Z a-z 0-9 _ . -")
