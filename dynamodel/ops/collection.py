"""Collections: one query on a partition returning several entity types, each parsed into its
own model class by the table's entity-type attribute.

```python
customer_view = Collection(Customer, Order, Address)        # same pk template
result = customer_view.fetch(customer_id="c1")
result.of(Order)      # -> list[Order]
result.unknown        # raw items of types no member knows (reported, not fatal)
```

"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, TypeVar

from dynamodel.core.codec import Item
from dynamodel.core.errors import ValidationError
from dynamodel.core.keys import RESERVED_PREFIX
from dynamodel.modelling.base import ModelBase
from dynamodel.modelling.item_keys import SHARD, check_shard, coerce_fields
from dynamodel.modelling.sharding import Shards
from dynamodel.ops.page import Page
from dynamodel.ops.query import Query

if TYPE_CHECKING:
    from dynamodel.io.clients import Connection
    from dynamodel.modelling.multikey import MultiIndex

M = TypeVar("M", bound=ModelBase)


@dataclass
class CollectionResult:
    """Everything a collection query returned, in sort key order."""

    items: list[ModelBase] = field(default_factory=list)
    unknown: list[Item] = field(default_factory=list)
    cursor: str | None = None
    requests: int = 0

    def of(self, model: type[M]) -> list[M]:
        """The items of one model class."""
        return [item for item in self.items if type(item) is model]

    def add(self, page: Page[ModelBase]) -> None:
        """Accumulate one page."""
        self.items.extend(page.items)
        self.unknown.extend(page.unknown)
        self.cursor = page.cursor
        self.requests = page.request_number


class Collection:
    """Several models sharing one partition key template on the table or an index."""

    def __init__(self, *models: type[ModelBase], index: str | None = None) -> None:
        if not models:
            raise ValidationError("a Collection needs at least one model")
        specs = [m._spec() for m in models]
        table = specs[0].table
        self.models: Sequence[type[ModelBase]] = models
        self.table = table
        self.index: str | None = index
        self.multi: MultiIndex | None = None
        self.shards: Shards | None = None
        if index is not None and any(index in spec.multi_indexes for spec in specs):
            # a multi-attribute GSI: every member is in it (the same key attributes, types
            # checked when the models were declared)
            missing = [
                m.__name__
                for m, s in zip(models, specs, strict=True)
                if index not in s.multi_indexes or s.table is not table
            ]
            if missing:
                raise ValidationError(
                    f"collection on multi-attribute GSI {index!r}: {missing} do not declare it "
                    f"(Meta.indexes = {{{index!r}: MultiKey}}) on table {table.name!r}"
                )
            self.multi = specs[0].multi_indexes[index]
            return
        templates = []
        shard_specs: list[Shards | None] = []
        for model, spec in zip(models, specs, strict=True):
            if spec.table is not table:
                raise ValidationError(
                    f"collection members must share a table: {model.__name__} uses "
                    f"{spec.table.name!r}, not {table.name!r}"
                )
            if index is None:
                template = spec.pk
            else:
                if index not in spec.indexes:
                    from dynamodel.core.suggest import suggest

                    raise ValidationError(
                        f"{model.__name__} has no templates for index {index!r}"
                        f"{suggest(index, spec.indexes)} (it declares {sorted(spec.indexes)})"
                    )
                template = spec.indexes[index].pk or spec.pk
            templates.append(template)
            shard_specs.append(spec.shards if index is None else spec.indexes[index].shards)
        texts = {t.text for t in templates}
        if len(texts) != 1:
            raise ValidationError(
                f"collection members must share one partition key template; got {sorted(texts)}"
            )
        if len({t.escape for t in templates}) != 1:
            raise ValidationError(
                "collection members must agree on Meta.escape_keys (their shared partition key "
                "would render differently)"
            )
        if len(set(shard_specs)) != 1:
            described = {m.__name__: s for m, s in zip(models, shard_specs, strict=True)}
            raise ValidationError(
                "collection members must shard their shared partition key the same way "
                f"(same count and strategy); got {described}"
            )
        table.index_keys(index)
        self.template = templates[0]
        self.shards = shard_specs[0]

    def query(self, *, connection: Connection | None = None, **fields: Any) -> Query[ModelBase]:
        """A lazy query over the partition; items are parsed by entity type.

        A sharded partition is read from every shard concurrently and merged in sort key
        order (``shard=`` reads one shard only). ``connection``: send its requests there
        (default: the scoped connection, else the table's; see `dynamodel.use_connection`).
        """
        if self.multi is not None:  # fields named as the first model names them
            return Query.for_multi(
                self.table,
                self.multi,
                {m._spec().entity: m for m in self.models},
                None,
                fields,
            ).using(connection)
        shard = fields.pop(SHARD, None) if self.shards is not None else None
        values = coerce_fields(self.models[0], fields, self.template.fields, "collection key")
        logical = self.template.render(values, "collection query")
        partition = tuple(values.items())
        if shard is not None:
            assert self.shards is not None
            physical = self.shards.physical(logical, check_shard(shard, self.shards, "collection"))
            return replace(self.query_key(physical, connection=connection), partition=partition)
        query = self.query_key(logical, connection=connection)
        return replace(query, shards=self.shards, partition=partition)

    def query_key(self, pk_value: str, *, connection: Connection | None = None) -> Query[ModelBase]:
        """A lazy query over the partition with this exact (physical) partition key value.

        dynamodel's own records (partition keys starting with ``_dynamodel``) are refused.
        """
        if self.multi is not None:
            raise ValidationError(
                f"collection on multi-attribute GSI {self.index!r}: its partition key is "
                f"several attributes; use query(**fields) with {list(self.multi.pk_fields)}"
            )
        if not isinstance(pk_value, str) or pk_value.startswith(RESERVED_PREFIX):
            raise ValidationError(
                f"collection query: partition key {pk_value!r} is not a model partition "
                f"({RESERVED_PREFIX!r} is reserved for dynamodel's own records)"
            )
        return Query(
            table=self.table,
            index=self.index,
            models={m._spec().entity: m for m in self.models},
            single=None,
            pk_value=pk_value,
            connection=connection,
        )

    def fetch(self, *, connection: Connection | None = None, **fields: Any) -> CollectionResult:
        """Read the whole partition (every page) into a `CollectionResult`."""
        result = CollectionResult()
        for page in self.query(connection=connection, **fields).pages():
            result.add(page)
        return result

    async def afetch(
        self, *, connection: Connection | None = None, **fields: Any
    ) -> CollectionResult:
        """Async `fetch`."""
        result = CollectionResult()
        async for page in self.query(connection=connection, **fields).apages():
            result.add(page)
        return result
