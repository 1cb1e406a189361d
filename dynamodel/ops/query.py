"""Lazy queries: `Query`, and `ReadBuilder`, the behaviour queries and scans share.

A `Query` (or `Scan`) is an immutable builder; each refinement returns a new one.
It runs only when iterated: ``for item in q`` (sync client) or ``async for item in q`` (async
client), or through ``pages()``/``all()``/``first()``/``count()`` and their ``a``-prefixed twins.

Limits are explicit: ``page_size(n)`` is DynamoDB's per-request ``Limit`` (items *evaluated*,
before filters); ``limit(n)`` caps the items *returned* and is never exceeded. When the limit is
reached in the middle of a page, the cursor points just after the last item returned, so
resuming neither skips nor repeats items. Scans are in `dynamodel.ops.scan`; the pagination
flow and cursors in `dynamodel.ops.pagination`; pages in `dynamodel.ops.page`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Generic, Self, TypeVar

from dynamodel.core.codec import Item, encode
from dynamodel.core.cursors import NOTHING_SENT, dumps
from dynamodel.core.errors import InvalidCursor, ValidationError
from dynamodel.core.expressions import (
    Attr,
    Condition,
    PathSegment,
    Placeholders,
    all_of,
    attrs_in,
    render_condition,
    render_projection,
)
from dynamodel.core.flows import Flow, Inputs, connection_inputs
from dynamodel.core.keys import KeyTemplate
from dynamodel.core.suggest import suggest
from dynamodel.io.executors import aiterate, arun, iterate, run
from dynamodel.io.scope import resolve_connection
from dynamodel.modelling.item_keys import SHARD, check_shard, coerce_fields
from dynamodel.modelling.paths import (
    PathResolver,
    check_index_projection,
    resolver,
    resolver_for,
)
from dynamodel.modelling.sharding import Shards
from dynamodel.modelling.tenancy import _SCOPE as _TENANT
from dynamodel.modelling.ttl import is_expired, not_expired_condition
from dynamodel.ops.items import guard_shards, hides_expired
from dynamodel.ops.page import Page, astream_items, stream_items
from dynamodel.ops.pagination import Parser, count_flow, open_cursor, paginate, peek_cursor
from dynamodel.ops.shard_reads import (
    Tables,
    count_shards_flow,
    merge_flow,
    open_shard_cursor,
    peek_shard_cursor,
)

if TYPE_CHECKING:
    from dynamodel.io.clients import Connection
    from dynamodel.modelling.base import ModelBase
    from dynamodel.modelling.multikey import MultiIndex
    from dynamodel.modelling.table import Table

M = TypeVar("M", bound="ModelBase")
R = TypeVar("R")
MAX_CHAR = "\U0010ffff"
#: period tables a read over several periods reads at once
PERIOD_CONCURRENCY = 8


# -- cursors -------------------------------------------------------------------------------


# -- pages ---------------------------------------------------------------------------------


# -- shared builder behaviour --------------------------------------------------------------


@dataclass(frozen=True)
class ReadBuilder(Generic[M]):
    """What a query and a scan share: table, index, models, filters, projection, limits,
    cursor, connection; iteration, pages, ``all``/``first``/``count`` and their async twins."""

    table: Table
    index: str | None
    models: Mapping[str, type[ModelBase]]
    single: type[ModelBase] | None
    filter_condition: Condition | None = None
    limit_count: int | None = None
    page_size_count: int | None = None
    consistent_read: bool = False
    # (segments, raw) of each projected path: hashable, like the rest of the builder
    projection_paths: tuple[tuple[tuple[PathSegment, ...], bool], ...] = ()
    start_cursor: str | None = None
    capacity: str | None = None
    #: the field values the partition key was rendered from: what a tenant scope checks
    #: (empty for a raw partition key value)
    partition: tuple[tuple[str, Any], ...] = field(default=(), compare=False)
    #: the connection given to the query (``connection=``); None: resolved when it runs
    connection: Connection | None = field(default=None, compare=False)
    #: a table with periods: the time range ``[start, end)`` whose period tables it reads
    period_range: tuple[dt.datetime, dt.datetime] | None = None

    # refinements
    def filter(self, condition: Condition) -> Self:
        """AND a filter expression (applied by DynamoDB after reading each page).

        Its paths are checked against the query's models now (see `dynamodel.modelling.paths`)."""
        self._paths().check(attrs_in(condition))
        return replace(self, filter_condition=all_of(self.filter_condition, condition))

    def during(self, start: dt.datetime, end: dt.datetime) -> Self:
        """On a table with `periods <dynamodel.Periods>`: read the tables of the periods that
        ``[start, end)`` touches, concurrently, merged in sort key order with one cursor; only
        items whose period field (``Meta.period``) is in the range are returned (a filter,
        when the read's models share one period attribute)."""
        periods = self.table.periods
        if periods is None:
            raise ValidationError(f"during(): table {self.table.name!r} has no periods")
        periods.between(start, end)  # refuses naive times and empty ranges
        stored = {
            spec.stored_names[spec.period_field]
            for spec in (m._spec() for m in self.models.values())
            if spec.period_field is not None
        }
        condition = self.filter_condition
        if len(stored) == 1:
            attr = Attr((stored.pop(),), raw=True)
            condition = all_of(condition, attr >= start, attr < end)
        return replace(self, period_range=(start, end), filter_condition=condition)

    def _period_tables(self) -> list[str]:
        """The physical tables a read on a table with periods covers (refused without a
        range)."""
        periods = self.table.periods
        assert periods is not None
        if self.period_range is None:
            raise ValidationError(
                f"table {self.table.name!r} has one table per {periods.every}: say which "
                "periods to read with .during(start, end)"
            )
        start, end = self.period_range
        return [
            periods.table_name(self.table.physical_name, i) for i in periods.between(start, end)
        ]

    def _periods_flow(self, sort_attribute: str | None, forward: bool) -> Flow[None]:
        """Read every period table of the range concurrently, merged in sort key order."""
        tables = Tables(self._period_tables())  # refusals before any request
        self._check_tenant()
        params = self._params()
        inputs: Inputs | None = None
        if self.start_cursor:  # verified before any request (merge_flow reads it again)
            inputs = yield from connection_inputs()
            open_shard_cursor(self.start_cursor, tables.count, self._cursor_context(), inputs)
        inputs, now = yield from self._inputs_now(inputs)
        yield from merge_flow(
            op_params=lambda name: {**params, "TableName": name},
            shards=tables,
            logical_pk=self._period_partition(),
            sort_attribute=sort_attribute,
            key_attributes=self._key_attributes(),
            forward=forward,
            limit=self.limit_count,
            page_size=self.page_size_count,
            cursor=self.start_cursor,
            parse=self._parser(now),
            retry=None,  # the running connection's policy
            max_concurrency=PERIOD_CONCURRENCY,
            cursor_context=self._cursor_context,
            inputs=inputs,
            operation=self._op(),
        )

    def _period_partition(self) -> str:
        """What a cursor of a read over periods records as its partition: the partition key
        (queries) and the range, so a cursor resumes only the read over the same periods."""
        start, end = self.period_range or (None, None)
        return dumps(
            [getattr(self, "pk_value", None), start and start.isoformat(), end and end.isoformat()]
        )

    def _count_periods_flow(self) -> Flow[int]:
        tables = Tables(self._period_tables())
        self._check_tenant()
        if self.start_cursor:
            raise ValidationError("count() of a read over periods cannot start from a cursor")
        params = self._counting((yield from self._now()))._params()
        return (
            yield from count_shards_flow(
                lambda name: {**params, "TableName": name},
                tables,
                "",
                None,  # the running connection's policy
                PERIOD_CONCURRENCY,
                self.limit_count,
                operation=self._op(),
            )
        )

    def limit(self, count: int) -> Self:
        """Return at most ``count`` items in total (never more, across pages)."""
        if count < 1:
            raise ValidationError(f"limit must be >= 1, got {count}")
        return replace(self, limit_count=count)

    def page_size(self, count: int) -> Self:
        """Items DynamoDB evaluates per request (its ``Limit``), before filters."""
        if count < 1:
            raise ValidationError(f"page_size must be >= 1, got {count}")
        return replace(self, page_size_count=count)

    def consistent(self, value: bool = True) -> Self:
        """Strongly consistent reads (table and LSIs only)."""
        if value and self.index is not None and self._is_gsi():
            raise ValidationError(f"index {self.index!r} is a GSI: consistent reads unsupported")
        return replace(self, consistent_read=value)

    def project(self, *paths: str | Sequence[PathSegment] | Attr) -> Self:
        """Read only these attributes (checked now against the query's models and the
        index's projection); results are partial models."""
        attrs = tuple(p if isinstance(p, Attr) else Attr(p) for p in paths)
        self._paths().check(attrs)
        if self.index is not None:
            check_index_projection(self.table, self.index, self._paths(), attrs)
        return replace(self, projection_paths=tuple((a.segments, a.raw) for a in attrs))

    def start_from(self, cursor: str | None) -> Self:
        """Resume from a page's cursor (None starts from the beginning).

        A malformed cursor, or one of another partition, is refused now (`InvalidCursor`).
        When the read runs, before its first request, the connection it runs on verifies
        the cursor: with ``cursor_key`` it must be signed by one of its keys for this read
        (same table, index, models and partition or segment), without it must be unsigned.
        """
        if cursor:
            if not isinstance(cursor, str):
                raise InvalidCursor(f"invalid cursor: a str, not {type(cursor).__name__}")
            self._check_cursor(cursor)
        return replace(self, start_cursor=cursor or None)

    def _check_cursor(self, cursor: str) -> None:
        if self.table.periods is not None:
            if self.period_range is not None:
                _, _, recorded = peek_shard_cursor(cursor, len(self._period_tables()))
                if recorded != self._period_partition():
                    raise InvalidCursor(
                        "invalid cursor: it was made by a read of another partition or period "
                        f"range. {NOTHING_SENT}"
                    )
            return  # checked when `during` gives the range, and when the read runs
        peek_cursor(cursor)

    @property
    def start_key(self) -> Item | None:
        """The ExclusiveStartKey the cursor resumes from (unsharded reads), as the cursor
        says: NOT verified (the read verifies it with its connection's keys when it runs)."""
        return peek_cursor(self.start_cursor) if self.start_cursor else None

    def _cursor_context(self) -> str:
        """The identity a signed cursor is bound to: a cursor resumes only the read that
        made it (same operation, physical table, index, entity set and `_cursor_scope`)."""
        identity = [
            self._op(),
            self.table.physical_name,
            self.index,
            sorted(self.models),
            self._cursor_scope(),
        ]
        if self.table.periods is not None and self.period_range is not None:
            identity.append([t.isoformat() for t in self.period_range])
        return dumps(identity)

    def _cursor_scope(self) -> Any:
        """What part of the table or index the read covers (its partition, segment...)."""
        raise NotImplementedError

    def _start(self, inputs: Inputs | None) -> Flow[tuple[Item | None, Inputs | None]]:
        """The verified resume key (None without a cursor) and the running connection's
        inputs (asked for when there is a cursor to verify, else ``inputs`` as given)."""
        if not self.start_cursor:
            return None, inputs
        if inputs is None:
            inputs = yield from connection_inputs()
        return open_cursor(self.start_cursor, self._cursor_context(), inputs), inputs

    def using(self, connection: Connection | None) -> Self:
        """Send this read's requests through ``connection`` (None: the scoped connection,
        else the table's, resolved when it runs; see `dynamodel.use_connection`)."""
        return replace(self, connection=connection)

    def _connection(self) -> Connection:
        return resolve_connection(self.table, self.connection)

    def return_consumed_capacity(self, mode: str = "TOTAL") -> Self:
        """Ask DynamoDB for consumed capacity (``TOTAL`` or ``INDEXES``) on each page."""
        return replace(self, capacity=mode)

    def _is_gsi(self) -> bool:
        from dynamodel.modelling.table import GSI

        return any(i.name == self.index and isinstance(i, GSI) for i in self.table.indexes)

    # request building
    def _paths(self) -> PathResolver:
        single = self.single
        if single is not None:
            paths: PathResolver | None = single._spec().paths
            return paths if paths is not None else resolver(single)
        return resolver_for(self.models.values())

    def _placeholders(self) -> Placeholders:
        return Placeholders(paths=self._paths())

    def _common(self, ph: Placeholders, extra_filter: Condition | None) -> dict[str, Any]:
        params: dict[str, Any] = {"TableName": self.table.physical_name}
        if self.index is not None:
            params["IndexName"] = self.index
        if self.consistent_read:
            params["ConsistentRead"] = True
        condition = all_of(self.filter_condition, extra_filter)
        if condition is not None:
            params["FilterExpression"] = render_condition(condition, ph, "FilterExpression")
        if self.projection_paths:
            # the type attribute routes each item to its model; key attributes make cursors
            managed = [self.table.type_attribute, *self._key_attributes()]
            if self.table.ttl and self.table.hide_expired:
                managed.append(self.table.ttl)  # to hide expired items
            attrs = [Attr(path, raw=raw) for path, raw in self.projection_paths]
            attrs += [Attr((name,), raw=True) for name in managed]
            params["ProjectionExpression"] = render_projection(attrs, ph)
        if self.capacity:
            params["ReturnConsumedCapacity"] = self.capacity
        return params

    def _key_attributes(self) -> list[str]:
        attrs = list(self.table.key_attributes())
        if self.index is not None:
            keys = self.table.index_keys(self.index)
            attrs += [a for a in keys.attributes if a not in attrs]
        return attrs

    def _now(self) -> Flow[dt.datetime | None]:
        """The running connection's clock when this read hides expired items (one step, no
        request), else None: ``now = yield from self._now()``."""
        return (yield from self._inputs_now(None))[1]

    def _inputs_now(self, inputs: Inputs | None) -> Flow[tuple[Inputs | None, dt.datetime | None]]:
        """`_now`, and the running connection's inputs (``inputs`` when the flow has them
        already; asked for when the clock is needed)."""
        if not hides_expired(self.table):
            return inputs, None
        if inputs is None:
            inputs = yield from connection_inputs()
        return inputs, inputs.now()

    def _guard(self, inputs: Inputs | None) -> Flow[None]:
        """Checks a read makes before its first request, after its cursor is verified
        (`Query`: the table's shard records); ``inputs``: the connection's, if asked."""
        return
        yield

    def _parser(self, now: dt.datetime | None) -> Parser:
        """``now``: what `_now` gave (expired items are those whose TTL is before it)."""
        type_attr = self.table.type_attribute
        models = self.models
        single = self.single
        partial = bool(self.projection_paths)
        ttl = self.table.ttl if self.table.hide_expired else None

        def parse(raw: Item) -> tuple[str, Any]:
            if ttl is not None and is_expired(raw, ttl, now):
                return "skip", None  # expired, not deleted by DynamoDB yet
            tag = raw.get(type_attr)
            entity = tag.get("S") if tag else None
            model = models.get(entity) if entity is not None else None
            if model is None:
                return ("skip", None) if single is not None else ("unknown", None)
            return "ok", model.from_partial_item(raw) if partial else model.from_item(raw)

        return parse

    def _op(self) -> str:
        raise NotImplementedError

    def _params(self) -> dict[str, Any]:
        raise NotImplementedError

    def _check_tenant(self) -> None:
        """Refuse, inside a tenant scope, a read outside the tenant's partitions
        (`dynamodel.modelling.tenancy`); called before a read's first request."""
        if (tenant := _TENANT.get()) is not None:
            partition = None if self._op() == "scan" else self.partition
            tenant.check_read(self.models.values(), partition, self.index, self._op())

    def _flow(self) -> Flow[None]:
        if self.table.periods is not None:
            return self._periods_flow(self.table.index_keys(self.index).sk, True)
        self._check_tenant()
        params = self._params()  # refusals before any request
        return self._paginate(params, self._key_attributes())

    def _paginate(self, params: dict[str, Any], key_attributes: list[str]) -> Flow[None]:
        start_key, inputs = yield from self._start(None)  # verified before any request
        yield from self._guard(inputs)
        inputs, now = yield from self._inputs_now(inputs)
        yield from paginate(
            self._op(),
            params,
            self._parser(now),
            limit=self.limit_count,
            page_size=self.page_size_count,
            start_key=start_key,
            key_attributes=key_attributes,
            retry=None,  # the running connection's policy
            cursor_context=self._cursor_context,
            inputs=inputs,
        )

    # running: sync
    def pages(self) -> Iterator[Page[M]]:
        """Iterate pages lazily (one request per page) with the sync client."""
        return iterate(self._flow(), self._connection())

    def __iter__(self) -> Iterator[M]:
        return stream_items(self.pages())

    def all(self) -> list[M]:
        """Every item (bounded by ``limit`` when set) as a list."""
        return list(self)

    def first(self) -> M | None:
        """The first item, or None."""
        for item in self.limit(1):
            return item
        return None

    def count(self) -> int:
        """How many items iteration would return (``Select=COUNT``; filters and limit applied)."""
        return run(self._count_flow(), self._connection())

    def _counting(self, now: dt.datetime | None) -> Any:
        """This read as ``Select=COUNT`` sends it: no projection, expired items (TTL before
        ``now``, from `_now`) filtered."""
        condition = self.filter_condition
        if self.table.ttl and self.table.hide_expired:
            condition = all_of(condition, not_expired_condition(self.table.ttl, now))
        return replace(self, projection_paths=(), filter_condition=condition)

    def _count_flow(self) -> Flow[int]:
        if self.table.periods is not None:
            return (yield from self._count_periods_flow())
        self._check_tenant()
        start_key, inputs = yield from self._start(None)  # verified before any request
        yield from self._guard(inputs)
        _, now = yield from self._inputs_now(inputs)
        return (
            yield from count_flow(
                self._op(),
                self._counting(now)._params(),
                start_key,
                None,  # the running connection's policy
                self.limit_count,
            )
        )

    # running: async
    def apages(self) -> AsyncIterator[Page[M]]:
        """Iterate pages lazily with the async client."""
        return aiterate(self._flow(), self._connection())

    def __aiter__(self) -> AsyncIterator[M]:
        return astream_items(self.apages())

    async def aall(self) -> list[M]:
        """Async `all`."""
        return [item async for item in self]

    async def afirst(self) -> M | None:
        """Async `first`."""
        async for item in self.limit(1):
            return item
        return None

    async def acount(self) -> int:
        """Async `count`."""
        return await arun(self._count_flow(), self._connection())


# -- queries -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Query(ReadBuilder[M]):
    """A query on one partition of the table or an index. Build with ``Model.query(...)``."""

    pk_value: str = ""
    sk_condition: Condition | None = None
    sk_template: KeyTemplate | None = None
    scope_prefix: str = ""
    forward: bool = True
    shards: Shards | None = None
    max_concurrency: int = 16
    #: a multi-attribute GSI (dynamodel.modelling.multikey): its partition key attributes' values
    #: (stored name, value) and the sort key fields (Python name, value) held equal, in order
    multi: MultiIndex | None = None
    multi_pk: tuple[tuple[str, Any], ...] = ()
    multi_sk: tuple[tuple[str, Any], ...] = ()

    @classmethod
    def for_model(cls, model: type[M], index: str | None, fields: Mapping[str, Any]) -> Query[M]:
        """A query for one model's items in the partition named by ``fields``."""
        spec = model._spec()
        if index is not None and index in spec.multi_indexes:
            return cls.for_multi(
                spec.table, spec.multi_indexes[index], {spec.entity: model}, model, fields
            )
        if index is None:
            pk_template, sk_template = spec.pk, spec.sk
        else:
            templates = spec.indexes.get(index)
            if templates is None:
                raise ValidationError(
                    f"{model.__name__} has no key templates for index {index!r}"
                    f"{suggest(str(index), [*spec.indexes, *spec.multi_indexes])} (it declares "
                    f"{sorted([*spec.indexes, *spec.multi_indexes])}). Nothing was sent"
                )
            pk_template = templates.pk or spec.pk
            sk_template = templates.sk
        shards = spec.shards if index is None else spec.indexes[index].shards
        plain = {k: v for k, v in fields.items() if k != SHARD} if shards is not None else fields
        values = coerce_fields(model, plain, pk_template.fields, "query partition key")
        pk_value = pk_template.render(values, f"{model.__name__} query")
        if shards is not None and SHARD in fields:
            # one physical shard only, no fan-out
            pk_value = shards.physical(pk_value, check_shard(fields[SHARD], shards, "query"))
            shards = None
        prefix = sk_template.prefix({})[0] if sk_template is not None else ""
        return cls(
            table=spec.table,
            index=index,
            models={spec.entity: model},
            single=model,
            pk_value=pk_value,
            sk_template=sk_template,
            scope_prefix=prefix,
            partition=tuple(values.items()),
            shards=shards,
        )

    @classmethod
    def for_multi(
        cls,
        table: Table,
        multi: MultiIndex,
        models: Mapping[str, type[ModelBase]],
        single: type[ModelBase] | None,
        fields: Mapping[str, Any],
    ) -> Query[Any]:
        """A query on one partition of a multi-attribute GSI: every partition key field is
        required; sort key fields given are held equal (a prefix of the sort key)."""
        from dynamodel.modelling.multikey import check_not_empty, split_fields

        model = single or next(iter(models.values()))
        what = "query" if single is not None else "collection query"
        pk, sk = split_fields(model.__name__, multi, fields, what)
        pk = coerce_fields(model, pk, multi.pk_fields, what)
        sk = coerce_fields(model, sk, multi.sk_fields, what)
        check_not_empty(model.__name__, multi, {**pk, **sk}, what)
        multi_pk = tuple((multi.attribute(f), v) for f, v in pk.items())
        return cls(
            table=table,
            index=multi.name,
            models=models,
            single=single,
            pk_value=_describe_partition(multi_pk),
            multi=multi,
            multi_pk=multi_pk,
            multi_sk=tuple(sk.items()),
            partition=tuple(pk.items()),
        )

    def concurrency(self, limit: int) -> Query[M]:
        """At most ``limit`` shard queries in flight at once (sharded keys only)."""
        if limit < 1:
            raise ValidationError(f"concurrency must be >= 1, got {limit}")
        return replace(self, max_concurrency=limit)

    def _check_cursor(self, cursor: str) -> None:
        """Refuse a cursor made by a query of another partition (another tenant's, say): it
        would resume somewhere this query never reads, which backends handle differently."""
        if self.table.periods is not None:
            super()._check_cursor(cursor)
            return
        if self.multi is not None:
            start = peek_cursor(cursor)
            found = tuple((a, _plain(start.get(a))) for a, _ in self.multi_pk)
            if any(start.get(a) != encode(v) for a, v in self.multi_pk):
                _refuse_foreign_cursor(_describe_partition(found), self.pk_value)
            return
        if self.shards is None:
            self._check_cursor_partition(peek_cursor(cursor), self.pk_value)
            return
        positions, _, recorded = peek_shard_cursor(cursor, self.shards.count)
        if recorded is not None:
            _refuse_foreign_cursor(recorded, self.pk_value)
        for shard, key in positions.items():
            if key is not None:
                self._check_cursor_partition(key, self.shards.physical(self.pk_value, shard))

    def _check_cursor_partition(self, key: Item, expected: str) -> None:
        attribute = self.table.index_keys(self.index).pk
        _refuse_foreign_cursor(key.get(attribute, {}).get("S"), expected)

    def _cursor_scope(self) -> Any:
        if self.shards is not None:
            return [self.pk_value, self.shards.count]
        return self.pk_value

    def _shard_params(self, physical_pk: str) -> dict[str, Any]:
        return replace(self, pk_value=physical_pk, shards=None)._params()

    def _guard(self, inputs: Inputs | None) -> Flow[None]:
        return guard_shards(self.models.values(), write=False, index=self.index, inputs=inputs)

    def _flow(self) -> Flow[None]:
        if self.table.periods is not None:
            return self._periods_flow(self.table.index_keys(self.index).sk, self.forward)
        if self.shards is None:
            return super()._flow()
        self._check_tenant()  # before the shard guard's read
        return self._merge_flow()

    def _merge_flow(self) -> Flow[None]:
        assert self.shards is not None
        inputs: Inputs | None = None
        if self.start_cursor:  # verified before any request (merge_flow reads it again)
            inputs = yield from connection_inputs()
            open_shard_cursor(self.start_cursor, self.shards.count, self._cursor_context(), inputs)
        yield from self._guard(inputs)
        inputs, now = yield from self._inputs_now(inputs)
        keys = self.table.index_keys(self.index)
        yield from merge_flow(
            op_params=self._shard_params,
            shards=self.shards,
            logical_pk=self.pk_value,
            sort_attribute=keys.sk,
            key_attributes=self._key_attributes(),
            forward=self.forward,
            limit=self.limit_count,
            page_size=self.page_size_count,
            cursor=self.start_cursor,
            parse=self._parser(now),
            retry=None,  # the running connection's policy
            max_concurrency=self.max_concurrency,
            cursor_context=self._cursor_context,
            inputs=inputs,
        )

    def _count_flow(self) -> Flow[int]:
        if self.shards is None:
            return super()._count_flow()  # checks the tenant itself, before its guard
        self._check_tenant()  # before the shard guard's read
        if self.start_cursor:
            raise ValidationError("count() of a sharded query cannot start from a cursor")
        return self._count_shards_flow(self.shards)

    def _count_shards_flow(self, shards: Shards) -> Flow[int]:
        yield from self._guard(None)
        counting = self._counting((yield from self._now()))
        return (
            yield from count_shards_flow(
                counting._shard_params,
                shards,
                self.pk_value,
                None,  # the running connection's policy
                self.max_concurrency,
                self.limit_count,
            )
        )

    # sort key conditions
    def _bound(self, raw: str | None, fields: Mapping[str, Any], high: bool) -> tuple[str, bool]:
        if raw is not None:
            if fields:
                raise ValidationError("give either a raw sort key string or fields, not both")
            return raw, True
        if self.sk_template is None:
            raise ValidationError("this query has no sort key template: pass a raw string")
        if self.single is not None:
            fields = coerce_fields(
                self.single, fields, self.sk_template.fields, "sort key condition"
            )
        what = "sort key condition"
        if self.single is not None:  # the model's name, so an error names it
            what = f"{self.single.__name__} {what}"
        text, complete = self.sk_template.prefix(fields, what)
        if not complete:
            used = self.sk_template.fields[: _first_missing(self.sk_template, fields)]
            ignored = sorted(set(fields) - set(used))
            if ignored:
                raise ValidationError(
                    f"sort key template {self.sk_template.text!r}: fields {ignored} come after "
                    "a missing field and cannot narrow the range; give the fields in order"
                )
        return text, complete

    def _sk(self) -> Attr:
        keys = self.table.index_keys(self.index)
        if keys.sk is None:
            raise ValidationError("this table/index has no sort key")
        return Attr((keys.sk,), raw=True)

    def _with_sk(self, condition: Condition) -> Query[M]:
        if self.sk_condition is not None:
            raise ValidationError("a query takes one sort key condition")
        return replace(self, sk_condition=condition)

    # sort key conditions on a multi-attribute GSI: equality on the leading fields given, the
    # operator on the last one
    def _multi_fields(self, method: str, raw: Any, fields: Mapping[str, Any]) -> dict[str, Any]:
        from dynamodel.modelling.multikey import check_not_empty, check_sort_prefix

        multi = self.multi
        assert multi is not None
        if raw is not None:
            raise ValidationError(
                f"{method}: index {multi.name!r} has a multi-attribute sort key; give sort key "
                f"fields {list(multi.sk_fields)} as keywords, not a raw string"
            )
        if self.sk_condition is not None:
            raise ValidationError("a query takes one sort key condition")
        if not fields:
            raise ValidationError(f"{method}: give at least one sort key field")
        if any(v is None for v in fields.values()):
            raise ValidationError(f"{method}: sort key field values cannot be None")
        check_sort_prefix(multi, [f for f, _ in self.multi_sk], list(fields), method)
        model = self.single or next(iter(self.models.values()))
        values = coerce_fields(model, fields, multi.sk_fields, "sort key condition")
        check_not_empty(model.__name__, multi, values, method)
        return {f: values[f] for f in multi.sk_fields if f in values}

    def _multi_with(
        self, method: str, values: Mapping[str, Any], last: Callable[[Attr, Any], Condition]
    ) -> Query[M]:
        assert self.multi is not None
        *equal, (name, value) = values.items()
        attribute = self.multi.attribute(name)
        if method == "sk_begins_with" and self.multi.types[attribute] == "N":
            raise ValidationError(
                f"sk_begins_with: sort key field {name!r} of index {self.multi.name!r} is a "
                "number; begins_with needs a string or binary attribute"
            )
        return replace(
            self,
            multi_sk=self.multi_sk + tuple(equal),
            sk_condition=last(Attr((attribute,), raw=True), value),
        )

    def sk_eq(self, raw: str | None = None, /, **fields: Any) -> Query[M]:
        """Sort key equals the rendered template (all its fields needed).

        On a multi-attribute GSI: each sort key field given equals its value (the fields
        must continue the sort key from the left; later ones may be left out).
        """
        if self.multi is not None:
            values = self._multi_fields("sk_eq", raw, fields)
            return replace(self, multi_sk=self.multi_sk + tuple(values.items()))
        text, complete = self._bound(raw, fields, False)
        if not complete:
            raise ValidationError("sk_eq needs every sort key field; use sk_begins_with")
        return self._with_sk(self._sk() == text)

    def sk_begins_with(self, raw: str | None = None, /, **fields: Any) -> Query[M]:
        """Sort key starts with the template rendered up to the first missing field.

        Fields match whole segments only: the prefix ends with the separator after the last
        given field (``user_id="u1"`` never matches ``u10``), and with every field given it
        is an equality.
        """
        if self.multi is not None:
            values = self._multi_fields("sk_begins_with", raw, fields)
            return self._multi_with("sk_begins_with", values, lambda a, v: a.begins_with(v))
        text, complete = self._bound(raw, fields, False)
        if complete and raw is None:
            return self._with_sk(self._sk() == text)
        return self._with_sk(self._sk().begins_with(text))

    def sk_between(self, low: Mapping[str, Any] | str, high: Mapping[str, Any] | str) -> Query[M]:
        """Sort key between two bounds, inclusive (partial bounds cover whole prefixes).

        On a multi-attribute GSI both bounds name the same sort key fields; all but the last
        must be equal in both (they are held equal), the last one is the range.
        """
        if self.multi is not None:
            return self._multi_between(low, high)
        low_text, _ = self._bound(*_split(low), False)
        high_text, complete = self._bound(*_split(high), True)
        if not complete:
            high_text += MAX_CHAR
        return self._with_sk(self._sk().between(low_text, high_text))

    def sk_lt(self, raw: str | None = None, /, **fields: Any) -> Query[M]:
        """Sort key strictly before the bound (a partial bound excludes its whole prefix)."""
        if self.multi is not None:
            values = self._multi_fields("sk_lt", raw, fields)
            return self._multi_with("sk_lt", values, lambda a, v: a < v)
        text, _ = self._bound(raw, fields, False)
        return self._with_sk(self._sk() < text)

    def sk_le(self, raw: str | None = None, /, **fields: Any) -> Query[M]:
        """Sort key at or before the bound (a partial bound includes its whole prefix)."""
        if self.multi is not None:
            values = self._multi_fields("sk_le", raw, fields)
            return self._multi_with("sk_le", values, lambda a, v: a <= v)
        text, complete = self._bound(raw, fields, True)
        return self._with_sk(self._sk() <= (text if complete else text + MAX_CHAR))

    def sk_gt(self, raw: str | None = None, /, **fields: Any) -> Query[M]:
        """Sort key strictly after the bound (a partial bound excludes its whole prefix)."""
        if self.multi is not None:
            values = self._multi_fields("sk_gt", raw, fields)
            return self._multi_with("sk_gt", values, lambda a, v: a > v)
        text, complete = self._bound(raw, fields, False)
        return self._with_sk(self._sk() > (text if complete else text + MAX_CHAR))

    def sk_ge(self, raw: str | None = None, /, **fields: Any) -> Query[M]:
        """Sort key at or after the bound."""
        if self.multi is not None:
            values = self._multi_fields("sk_ge", raw, fields)
            return self._multi_with("sk_ge", values, lambda a, v: a >= v)
        text, _ = self._bound(raw, fields, False)
        return self._with_sk(self._sk() >= text)

    def _multi_between(
        self, low: Mapping[str, Any] | str, high: Mapping[str, Any] | str
    ) -> Query[M]:
        if isinstance(low, str) or isinstance(high, str):
            raise ValidationError(
                "sk_between: a multi-attribute sort key takes bounds as mappings of fields"
            )
        low_values = self._multi_fields("sk_between", None, low)
        high_values = self._multi_fields("sk_between", None, high)
        if list(low_values) != list(high_values):
            raise ValidationError(
                f"sk_between: both bounds must name the same sort key fields, got "
                f"{list(low_values)} and {list(high_values)}"
            )
        *equal, _ = low_values
        differ = [f for f in equal if low_values[f] != high_values[f]]
        if differ:
            raise ValidationError(
                f"sk_between: {differ} differ between the bounds, but only the last field "
                f"({list(low_values)[-1]!r}) can be a range; the earlier ones are held equal"
            )
        last = list(high_values.values())[-1]
        return self._multi_with("sk_between", low_values, lambda a, v: a.between(v, last))

    def reverse(self, value: bool = True) -> Query[M]:
        """Descending sort key order."""
        return replace(self, forward=not value)

    def _op(self) -> str:
        return "query"

    def _params(self) -> dict[str, Any]:
        shape = self._plain_shape()
        if shape is None:
            return self._build_params()
        cached = _PLAIN_PARAMS.get(shape)
        if cached is None:
            cached = _PLAIN_PARAMS[shape] = _PlainParams(
                replace(self, pk_value=_PK_SENTINEL)._build_params()
            )
            while len(_PLAIN_PARAMS) > MAX_PLAIN_PARAMS:  # the oldest shape goes first
                _PLAIN_PARAMS.pop(next(iter(_PLAIN_PARAMS), shape), None)
        return cached.with_partition(self.pk_value)

    def _plain_shape(self) -> tuple[Any, ...] | None:
        """What fixes a plain model query's request apart from its partition key value, or
        None when it has a sort-key condition, filter or projection (built each time)."""
        single = self.single
        if (
            single is None
            or self.multi is not None
            or self.sk_condition is not None
            or self.filter_condition is not None
            or self.projection_paths
            or self.shards is not None
            or self.table is not single._spec().table
        ):
            return None
        return (
            single,
            self.index,
            self.table.physical_name,
            self.scope_prefix,
            self.consistent_read,
            self.forward,
            self.capacity,
        )

    def _build_params(self) -> dict[str, Any]:
        ph = self._placeholders()
        keys = self.table.index_keys(self.index)
        parts: list[Condition]
        if self.multi is not None:
            parts = [Attr((a,), raw=True) == v for a, v in self.multi_pk]
            parts += [Attr((self.multi.attribute(f),), raw=True) == v for f, v in self.multi_sk]
        else:
            parts = [Attr((keys.pk,), raw=True) == self.pk_value]
        if self.sk_condition is not None:
            parts.append(self.sk_condition)
        elif self.single is not None and self.scope_prefix and keys.sk:
            parts.append(Attr((keys.sk,), raw=True).begins_with(self.scope_prefix))
        extra_filter: Condition | None = None
        if self.single is not None:
            # the key condition may match other entity types (another model's sort key can
            # share the prefix): keep only ours, server-side, so that iteration, limits and
            # count() agree
            extra_filter = Attr((self.table.type_attribute,), raw=True) == (
                self.single._spec().entity
            )
        params = self._common(ph, extra_filter)
        params["KeyConditionExpression"] = " AND ".join(
            render_condition(part, ph, "KeyConditionExpression") for part in parts
        )
        if not self.forward:
            params["ScanIndexForward"] = False
        return ph.apply(params)


_PK_SENTINEL = "\x00dynamodel partition key\x00"


class _PlainParams:
    """A plain query's request built once, with its partition key value's placeholder: the
    same request as building it again, for the cost of copying two small dicts."""

    __slots__ = ("names", "params", "pk_placeholder", "values")

    def __init__(self, params: dict[str, Any]) -> None:
        self.params = params
        self.names: dict[str, str] = params.get("ExpressionAttributeNames", {})
        self.values: dict[str, Any] = params["ExpressionAttributeValues"]
        (self.pk_placeholder,) = [k for k, v in self.values.items() if v == {"S": _PK_SENTINEL}]

    def with_partition(self, pk_value: str) -> dict[str, Any]:
        values = dict(self.values)
        values[self.pk_placeholder] = encode(pk_value, "query partition key")
        params = dict(self.params)
        if self.names:
            params["ExpressionAttributeNames"] = dict(self.names)
        params["ExpressionAttributeValues"] = values
        return params


#: the most request shapes `_PLAIN_PARAMS` keeps (scoped tables can make many physical names)
MAX_PLAIN_PARAMS = 1024
#: plain model queries' requests by shape (see `Query._plain_shape`). A pure memo of request
#: building (no response, no clock is in it), so it is shared by every connection: the same
#: shape builds the same request whichever endpoint it goes to. Bounded by MAX_PLAIN_PARAMS.
_PLAIN_PARAMS: dict[tuple[Any, ...], _PlainParams] = {}


def _refuse_foreign_cursor(partition: str | None, expected: str) -> None:
    if partition != expected:
        raise InvalidCursor(
            f"invalid cursor: it resumes a query of partition {partition!r}, not this "
            f"query's {expected!r}. Nothing was sent"
        )


def _describe_partition(values: Sequence[tuple[str, Any]]) -> str:
    """A multi-attribute partition, as error messages show it."""
    return ", ".join(f"{a}={v!r}" for a, v in values)


def _plain(value: Any) -> Any:
    """The value inside an AttributeValue (None stays None)."""
    return next(iter(value.values())) if isinstance(value, Mapping) and value else None


def _first_missing(template: KeyTemplate, fields: Mapping[str, Any]) -> int:
    for position, name in enumerate(template.fields):
        if fields.get(name) is None:
            return position
    return len(template.fields)


def _split(bound: Mapping[str, Any] | str) -> tuple[str | None, Mapping[str, Any]]:
    return (bound, {}) if isinstance(bound, str) else (None, bound)


# -- scans ---------------------------------------------------------------------------------
