"""The `Model` base class: pydantic v2 models stored as items of a single table.

```python
class User(Model):
    class Meta:
        table = app_table
        entity = "User"                    # stored in the table's type attribute
        pk = "USER#{user_id}"
        sk = "PROFILE"
        indexes = {"gsi1": ("EMAIL#{email}", "USER")}

    user_id: str
    email: str
    display_name: str = Field(alias="dn")   # stored as "dn"
```

Operations are classmethods (``get``, ``query``, ``scan``, ``update_item``, ``delete_item``)
and instance methods (``save``, ``create``, ``update``, ``delete``), each with an ``a``-prefixed
async twin. They build requests with `dynamodel.ops.items` and run them with the executors.
"""

from __future__ import annotations

import functools
import types
import typing
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar, Self, TypeVar, cast

from pydantic import BaseModel, ConfigDict

from dynamodel.core.codec import (
    MAX_ITEM_BYTES,
    OMIT,
    AttributeValue,
    Item,
    check_item_size,
    decode_item,
    encode,
    item_size,
)
from dynamodel.core.errors import EntityMismatch, ValidationError
from dynamodel.core.keys import RESERVED_PREFIX, KeyTemplate
from dynamodel.io.scope import resolve_connection
from dynamodel.modelling.sharding import Shards, split_physical
from dynamodel.modelling.table import GSI, Table

if TYPE_CHECKING:
    from pydantic import TypeAdapter

    from dynamodel.core.expressions import Attr, Condition, TypedAttr, UpdateAction
    from dynamodel.core.flows import Flow
    from dynamodel.io.clients import Connection
    from dynamodel.modelling.multikey import MultiIndex
    from dynamodel.ops.query import Query, Scan

T = TypeVar("T")
MAX_PK_BYTES = 2048
_UNCOMPILED: Any = object()  # ModelSpec.encoder before the first to_item
MAX_SK_BYTES = 1024


class IndexTemplates:
    """The key templates a model uses for one index."""

    __slots__ = ("name", "pk", "pk_attr", "shards", "sk", "sk_attr")

    def __init__(
        self,
        *,
        name: str,
        pk_attr: str,
        sk_attr: str | None,
        pk: KeyTemplate,
        sk: KeyTemplate | None,
        shards: Shards | None = None,  # write sharding of this index's partition key
    ) -> None:
        self.name = name
        self.pk_attr = pk_attr
        self.sk_attr = sk_attr
        self.pk = pk
        self.sk = sk
        self.shards = shards

    def __repr__(self) -> str:
        return f"IndexTemplates(name={self.name!r}, pk={self.pk!r}, sk={self.sk!r})"


class ModelSpec:
    """Everything dynamodel derived from a model's ``Meta`` and fields.

    A plain class (not a dataclass) because it loads with ``import dynamodel``: creating a
    dataclass costs about 0.3 ms, which a Lambda cold start pays.
    """

    def __init__(
        self,
        *,
        table: Table,
        entity: str,
        pk: KeyTemplate,
        sk: KeyTemplate | None,
        indexes: dict[str, IndexTemplates],
        stored_names: dict[str, str],  # python field name -> stored attribute name
        float_fields: frozenset[str],  # stored names whose type allows float
        set_fields: frozenset[str],  # stored names of set fields: an empty one is not stored
        version_field: str | None = None,  # Python name of the optimistic-locking version field
        shards: Shards | None = None,  # write sharding of the table partition key
        encoder: Any = None,  # compiled field encoder (modelling.compiled); None: none
        unknown: str = "keep",  # Meta.unknown_attributes: "keep", "drop" or "refuse"
        timestamps: tuple[str | None, str | None] = (None, None),  # (created, updated) fields
    ) -> None:
        self.table = table
        self.entity = entity
        self.pk = pk
        self.sk = sk
        self.indexes = indexes
        self.stored_names = stored_names
        self.float_fields = float_fields
        self.set_fields = set_fields
        self.version_field = version_field
        self.shards = shards
        self.unknown = unknown
        self.created_field, self.updated_field = timestamps
        self.unique: tuple[str, ...] = ()  # Meta.unique: fields kept unique by guard items
        # multi-attribute GSIs the model is in (modelling.multikey), set after construction
        self.multi_indexes: dict[str, MultiIndex] = {}
        self.adapters: dict[str, TypeAdapter[Any]] = {}
        self.plain_str_fields: frozenset[str] | None = None  # set by the first `coerce`
        self.encoder = encoder
        # compiled key attributes + entity type (modelling.compiled.compile_keys); None: none
        self.key_encoder: Any = None
        # the compiled item decoder (modelling.compiled_decoder), made by the first from_item
        self.decoder: Any = _UNCOMPILED
        self._guard_slots: list[tuple[str | None, Shards | None]] | None = None
        # (checks generation, physical table name) once every key's layout was checked
        self.layout_checked: tuple[int, str] | None = None
        self.paths: Any = None  # the attribute path checker (modelling.paths), made on first use

    def __repr__(self) -> str:
        return f"ModelSpec(entity={self.entity!r}, table={self.table.name!r}, pk={self.pk!r})"

    @property
    def key_fields(self) -> tuple[str, ...]:
        """Python field names that make up the primary key."""
        return self.pk.fields + (self.sk.fields if self.sk else ())

    @functools.cached_property
    def managed_attributes(self) -> frozenset[str]:
        """The attributes dynamodel writes for this model from its templates: the table key
        and type attributes and the key attributes of the indexes it declares."""
        table = self.table
        names = {table.pk, table.type_attribute}
        if table.sk:
            names.add(table.sk)
        for index in self.indexes.values():
            names.add(index.pk_attr)
            if index.sk_attr:
                names.add(index.sk_attr)
        return frozenset(names)

    @functools.cached_property
    def own_attributes(self) -> frozenset[str]:
        """Every attribute this model writes: its fields' stored names and its managed
        attributes. Any other attribute of a stored item is unknown to the model (see
        ``Meta.unknown_attributes``)."""
        return self.managed_attributes | frozenset(self.stored_names.values())

    def unknown_of(self, item: Mapping[str, Any]) -> dict[str, Any]:
        """The attributes of a stored item that this model does not write."""
        own = self.own_attributes
        if len(item) <= len(own) and own.issuperset(item):
            return {}
        return {name: value for name, value in item.items() if name not in own}

    @functools.cached_property
    def sharded(self) -> bool:
        """Whether the table partition key or any index partition key is sharded."""
        return self.shards is not None or any(i.shards for i in self.indexes.values())

    def guard_slots(self) -> list[tuple[str | None, Shards | None]]:
        """Every partition key the shard registry checks: the table's (None) and each global
        index's, with its sharding (None: not sharded)."""
        slots = self._guard_slots
        if slots is None:
            slots = [(None, self.shards)]
            slots.extend((i.name, i.shards) for i in self.indexes.values() if i.pk is not None)
            self._guard_slots = slots
        return slots

    def shard_slots(self) -> list[tuple[str | None, Shards]]:
        """Every sharded partition key: (None for the table's or the index name, Shards)."""
        slots: list[tuple[str | None, Shards]] = []
        if self.shards is not None:
            slots.append((None, self.shards))
        slots.extend((i.name, i.shards) for i in self.indexes.values() if i.shards is not None)
        return slots

    def coerce(self, model: type[BaseModel], name: str, value: Any) -> Any:
        """``value`` validated through field ``name``'s type (a str for a plain str field
        passes as it is: its validator would return it unchanged)."""
        plain = self.plain_str_fields
        if plain is None:
            plain = self.plain_str_fields = frozenset(
                n
                for n, info in model.model_fields.items()
                if info.annotation is str and not info.metadata
            )
        if type(value) is str and name in plain:
            return value
        return self.adapter(model, name).validate_python(value)

    def adapter(self, model: type[BaseModel], name: str) -> TypeAdapter[Any]:
        """A cached validator for one field's type."""
        adapter = self.adapters.get(name)
        if adapter is None:
            info = model.model_fields[name]
            annotation: Any = info.annotation
            if info.metadata:
                annotation = typing.Annotated[annotation, *info.metadata]
            from pydantic import TypeAdapter  # first use only: keeps `import dynamodel` cheap

            adapter = TypeAdapter(annotation)
            self.adapters[name] = adapter
        return adapter


def _mentions(annotation: Any, target: type, seen: set[int] | None = None) -> bool:
    """Whether a type annotation mentions ``target`` anywhere (nested models included)."""
    seen = seen if seen is not None else set()
    if annotation is target:
        return True
    if id(annotation) in seen:
        return False
    seen.add(id(annotation))
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return any(_mentions(f.annotation, target, seen) for f in annotation.model_fields.values())
    return any(_mentions(arg, target, seen) for arg in typing.get_args(annotation))


def _is_set_type(annotation: Any) -> bool:
    origin = typing.get_origin(annotation)
    if origin in (set, frozenset) or annotation in (set, frozenset):
        return True
    if origin in (typing.Union, types.UnionType):
        return any(_is_set_type(a) for a in typing.get_args(annotation) if a is not type(None))
    if origin is typing.Annotated:
        return _is_set_type(typing.get_args(annotation)[0])
    return False


def check_entity(cls: type[Model], spec: ModelSpec, item: Mapping[str, Any]) -> None:
    """Raise `EntityMismatch` when ``item``'s type attribute names another entity than
    ``cls``'s (an item without one is accepted)."""
    stored = item.get(spec.table.type_attribute)
    if stored is None or stored.get("S") == spec.entity:
        return
    table = spec.table
    key = {a: item[a] for a in (table.pk, table.sk) if a and a in item}
    shown = {a: next(iter(v.values())) for a, v in key.items()}
    entity = stored.get("S", stored)
    raise EntityMismatch(
        f"{cls.__name__}: the item at {shown} is a {entity!r} entity, not {spec.entity!r}; "
        "it was not parsed (two entities whose keys render the same text, or a key written "
        "by hand?)",
        expected=spec.entity,
        stored=str(entity),
        key=key,
    )


def _template(owner: str, where: str, text: str, sort: bool, escape: bool) -> KeyTemplate:
    try:
        return KeyTemplate(text, sort=sort, escape=escape)
    except ValidationError as exc:
        raise ValidationError(f"{owner}.Meta.{where}: {exc}") from None


def _entity_name(meta: Any, model: str) -> str:
    entity = getattr(meta, "entity", model)
    if not isinstance(entity, str) or not entity:
        raise ValidationError(f"{model}.Meta.entity must be a non-empty string, got {entity!r}")
    if entity.startswith(RESERVED_PREFIX):
        raise ValidationError(
            f"{model}.Meta.entity {entity!r} starts with {RESERVED_PREFIX!r}, reserved for "
            "dynamodel's own records"
        )
    return entity


def _escape_keys(meta: Any, owner: str) -> bool:
    value = getattr(meta, "escape_keys", False)
    if not isinstance(value, bool):
        raise ValidationError(f"{owner}.Meta.escape_keys must be True or False, got {value!r}")
    return value


def _index_templates(table: Table, meta: Any, owner: str) -> dict[str, IndexTemplates]:
    declared = getattr(meta, "indexes", None) or {}
    if not isinstance(declared, Mapping):
        raise ValidationError(f"{owner}.Meta.indexes must map index name -> (pk, sk) templates")
    out: dict[str, IndexTemplates] = {}
    escape = _escape_keys(meta, owner)
    for name, templates in declared.items():
        keys = table.index_keys(name)
        if _multi_index_entry(keys.multi, templates, owner, name):
            continue  # a multi-attribute GSI: see _multi_indexes
        pk_text: str | None
        sk_text: str | None
        index_shards: Shards | None = None
        if isinstance(templates, str):
            pk_text, sk_text = templates, None
        else:
            parts = tuple(templates)
            if parts and isinstance(parts[-1], Shards):
                index_shards, parts = parts[-1], parts[:-1]
            pk_text, sk_text = (*parts, None)[:2]
        if keys.pk == table.pk:  # LSI: partition key is the table's
            if index_shards is not None:
                raise ValidationError(
                    f"{owner}: index {name!r} is a local index (it shares the table's "
                    "partition key); shard the model's partition key with Meta.shards instead"
                )
            if sk_text is None:
                pk_text, sk_text = None, pk_text
            pk_template = None
        else:
            if pk_text is None:
                raise ValidationError(f"{owner}: index {name!r} needs a partition key template")
            pk_template = KeyTemplate(pk_text, escape=escape)
        if keys.sk is None and sk_text is not None:
            raise ValidationError(
                f"{owner}: index {name!r} has no sort key, got template {sk_text!r}"
            )
        if keys.sk is not None and sk_text is None:
            raise ValidationError(f"{owner}: index {name!r} needs a sort key template")
        out[name] = IndexTemplates(
            name=name,
            pk_attr=keys.pk,
            sk_attr=keys.sk,
            pk=pk_template,  # type: ignore[arg-type]  # None for LSIs: the table pk is used
            sk=KeyTemplate(sk_text, sort=True, escape=escape) if sk_text is not None else None,
            shards=index_shards,
        )
    return out


UNKNOWN_POLICIES = ("keep", "drop", "refuse")


def _unknown_policy(meta: Any, owner: str) -> str:
    """``Meta.unknown_attributes``: what happens to stored attributes the model does not declare."""
    value = getattr(meta, "unknown_attributes", "keep")
    if value not in UNKNOWN_POLICIES:
        raise ValidationError(
            f"{owner}.Meta.unknown_attributes must be one of {list(UNKNOWN_POLICIES)}, "
            f"got {value!r}"
        )
    return str(value)


def _timestamp_fields(cls: type[BaseModel], meta: Any) -> tuple[str | None, str | None]:
    """``Meta.timestamps = ("created_at", "updated_at")``: the datetime fields dynamodel sets
    on writes (either may be None)."""
    declared = getattr(meta, "timestamps", None)
    if declared is None:
        return None, None
    owner = cls.__name__
    if (
        not isinstance(declared, tuple | list)
        or len(declared) != 2
        or not all(n is None or isinstance(n, str) for n in declared)
        or (declared[0] is None and declared[1] is None)
    ):
        raise ValidationError(
            f"{owner}.Meta.timestamps must be a (created, updated) pair of field names (either "
            f"may be None), got {declared!r}"
        )
    created, updated = declared
    if created is not None and created == updated:
        raise ValidationError(f"{owner}.Meta.timestamps names {created!r} twice")
    import datetime as dt

    allowed = (dt.datetime, dt.datetime | None, typing.Optional[dt.datetime])  # noqa: UP045
    for name in (created, updated):
        if name is None:
            continue
        info = cls.model_fields.get(name)
        if info is None:
            raise ValidationError(
                f"{owner}.Meta.timestamps names {name!r}, which is not a field "
                f"(fields: {sorted(cls.model_fields)})"
            )
        if info.annotation not in allowed:
            raise ValidationError(
                f"{owner}.Meta.timestamps field {name!r} must be a datetime (or "
                f"datetime | None), not {info.annotation!r}"
            )
    return created, updated


def _multi_index_entry(multi: bool, value: Any, owner: str, name: str) -> bool:
    """Whether a ``Meta.indexes`` entry opts into a multi-attribute GSI (checked both ways)."""
    from dynamodel.modelling.multikey import is_multi_key

    if multi and not is_multi_key(value):
        raise ValidationError(
            f"{owner}: index {name!r} is a multi-attribute GSI over the items' own attributes; "
            f"declare it as {name!r}: MultiKey, not {value!r}"
        )
    if not multi and is_multi_key(value):
        raise ValidationError(
            f"{owner}: index {name!r} is not a multi-attribute GSI (its keys are generic "
            "attributes filled from templates); give its key templates instead of MultiKey"
        )
    return multi


def _multi_indexes(cls: type[Model], table: Table, meta: Any) -> dict[str, MultiIndex]:
    declared = getattr(meta, "indexes", None) or {}
    out: dict[str, MultiIndex] = {}
    for index in table.indexes:
        if index.name in declared and isinstance(index, GSI) and index.multi:
            from dynamodel.modelling.multikey import model_multi_index

            out[index.name] = model_multi_index(cls, table, index)
    return out


def _meta_shards(meta: Any, owner: str) -> Shards | None:
    shards = getattr(meta, "shards", None)
    if shards is not None and not isinstance(shards, Shards):
        raise ValidationError(f"{owner}.Meta.shards must be a dynamodel Shards, not {shards!r}")
    return shards


class Model(BaseModel):
    """Base class of every stored entity. Configure it with an inner ``class Meta``."""

    model_config = ConfigDict(
        validate_by_name=True,
        validate_by_alias=True,
        extra="ignore",
        arbitrary_types_allowed=False,
    )

    __dynamodel__: ClassVar[ModelSpec]
    # dynamodel's per-instance state (partial read, shards) lives in __pydantic_private__ under
    # one key, created only when needed: declared private attributes would cost every
    # instance ~1 us of validation.

    @property
    def _dm_partial(self) -> bool:
        """Whether the instance was read with a projection (not every field is known)."""
        state = _instance_state(self, create=False)
        return bool(state is not None and state["partial"])

    @property
    def _dm_loaded(self) -> Mapping[str, AttributeValue] | None:
        """The item as last read from or written to the table by this instance (None: never)."""
        state = _instance_state(self, create=False)
        return None if state is None else state["loaded"]

    def _dm_stored(self, item: Mapping[str, AttributeValue]) -> None:
        """Record the whole item as stored now (after a put, or an update's ALL_NEW): the
        baseline of `changed_fields`; the instance is no longer partial."""
        state = _instance_state(self, create=True)
        state["loaded"] = item
        state["partial"] = False

    @property
    def _dm_shards(self) -> dict[str | None, int]:
        """Shard of each sharded partition key (None: the table's; else the index name),
        chosen at the first write of a random item or recovered from a stored key."""
        shards: dict[str | None, int] = _instance_state(self, create=True)["shards"]
        return shards

    def __eq__(self, other: object) -> bool:
        """Pydantic's equality (same model, fields, extra and private attributes), not
        counting dynamodel's per-instance state: an instance read from the table equals one
        built with the same values."""
        if not isinstance(other, BaseModel):
            return NotImplemented
        mine, theirs = self.__pydantic_private__, other.__pydantic_private__
        if not (mine and _STATE in mine) and not (theirs and _STATE in theirs):
            return super().__eq__(other)
        self_type = self.__pydantic_generic_metadata__["origin"] or type(self)
        other_type = other.__pydantic_generic_metadata__["origin"] or type(other)
        if self_type is not other_type or _user_private(mine) != _user_private(theirs):
            return False
        if (self.__pydantic_extra__ or {}) != (other.__pydantic_extra__ or {}):
            return False
        if self.__dict__ == other.__dict__:
            return True
        missing = object()
        return all(
            self.__dict__.get(name, missing) == other.__dict__.get(name, missing)
            for name in type(self).model_fields
        )

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        super().__pydantic_init_subclass__(**kwargs)
        meta = cls.__dict__.get("Meta")
        if meta is None:
            return  # abstract: a base class with shared fields, not stored itself
        table = getattr(meta, "table", None)
        if not isinstance(table, Table):
            raise ValidationError(f"{cls.__name__}.Meta.table must be a dynamodel Table")
        pk_text = getattr(meta, "pk", None)
        if not isinstance(pk_text, str):
            raise ValidationError(f"{cls.__name__}.Meta.pk must be a key template string")
        sk_text = getattr(meta, "sk", None)
        if table.sk and sk_text is None:
            raise ValidationError(
                f"{cls.__name__}: table {table.name!r} has a sort key; set Meta.sk"
            )
        if not table.sk and sk_text is not None:
            raise ValidationError(f"{cls.__name__}: table {table.name!r} has no sort key")
        stored = {name: info.alias or name for name, info in cls.model_fields.items()}
        escape = _escape_keys(meta, cls.__name__)
        spec = ModelSpec(
            table=table,
            entity=_entity_name(meta, cls.__name__),
            pk=_template(cls.__name__, "pk", pk_text, False, escape),
            sk=_template(cls.__name__, "sk", sk_text, True, escape)
            if sk_text is not None
            else None,
            indexes=_index_templates(table, meta, cls.__name__),
            stored_names=stored,
            float_fields=frozenset(
                stored[n]
                for n, info in cls.model_fields.items()
                if _mentions(info.annotation, float)
            ),
            set_fields=frozenset(
                stored[n] for n, info in cls.model_fields.items() if _is_set_type(info.annotation)
            ),
            version_field=_version_field(cls, meta),
            shards=_meta_shards(meta, cls.__name__),
            encoder=_UNCOMPILED,
            unknown=_unknown_policy(meta, cls.__name__),
            timestamps=_timestamp_fields(cls, meta),
        )
        spec.multi_indexes = _multi_indexes(cls, table, meta)
        _check_spec(cls, spec)
        if getattr(meta, "unique", None) is not None:
            from dynamodel.ops.unique import declared_unique

            spec.unique = declared_unique(cls, meta, spec)
        cls.__dynamodel__ = spec
        table.register(cls)

    # -- serialisation ----------------------------------------------------------------------

    @classmethod
    def _spec(cls) -> ModelSpec:
        spec = cls.__dict__.get("__dynamodel__")
        if spec is None:
            raise ValidationError(
                f"{cls.__name__} is not bound to a table: give it a Meta with table and pk"
            )
        return spec  # type: ignore[no-any-return]

    def _known(self) -> dict[str, Any]:
        """Field values known to be stored (all, or the projected ones), plus the item's
        shard (``"shard"``) when its partition key is sharded randomly."""
        if self._dm_partial:
            known = {name: self.__dict__[name] for name in self.model_fields_set}
        else:
            known = self.__dict__
        spec = self._spec()
        if spec.shards is not None and not spec.shards.by:
            known = {**known, SHARD: self._table_shard(spec)}
        return known

    def _table_shard(self, spec: ModelSpec) -> int:
        assert spec.shards is not None
        if self._dm_partial and not spec.shards.by and None not in self._dm_shards:
            raise ValidationError(
                f"{type(self).__name__} was read with a projection without its partition key, "
                "so its random shard is unknown; include the key in the projection"
            )
        return shard_for(spec.shards, self.__dict__, self._dm_shards, None, "", choose=True)

    def shard_number(self, index: str | None = None) -> int | None:
        """The shard of this item's partition key (``index``: of that index's key).

        None when that key is not sharded. A randomly sharded item gets its shard at its
        first write (or when this is first called); an item read from the table has the shard
        it is stored under.
        """
        spec = self._spec()
        if index is None:
            return None if spec.shards is None else self._table_shard(spec)
        templates = spec.indexes.get(index)
        if templates is None or templates.shards is None:
            return None
        return shard_for(templates.shards, self.__dict__, self._dm_shards, index, "", choose=True)

    def to_item(self) -> Item:
        """The full DynamoDB item: attributes, key attributes, index keys and entity type.

        An instance read from the table also carries the stored attributes its model does
        not declare (``Meta.unknown_attributes = "keep"``, the default), so a whole-item write
        puts them back."""
        spec = type(self).__dict__.get("__dynamodel__") or self._spec()
        encoder = spec.encoder
        if encoder is _UNCOMPILED:
            from dynamodel.modelling.compiled import compile_encoder, compile_keys

            encoder = spec.encoder = compile_encoder(type(self), spec)
            spec.key_encoder = compile_keys(type(self), spec) if encoder is not None else None
        item: Item
        private = self.__pydantic_private__
        state = private.get(_STATE) if private else None
        extras: Item | None = None
        if state is not None:
            if state["partial"]:
                encoder = None  # only the projected fields: the general path
            elif state["loaded"] is not None and spec.unknown == "keep":
                extras = spec.unknown_of(state["loaded"]) or None
        general = encoder is None
        if not general:
            values = self.__dict__
            item, size = encoder(values)
            if extras is not None:
                item.update(extras)
                size += item_size(extras)
            key_encoder = spec.key_encoder
            if key_encoder is not None and (rendered := key_encoder(values)) is not None:
                item.update(rendered[0])  # (None: a key needs the general path, or is invalid)
                if size + rendered[1] > MAX_ITEM_BYTES:
                    check_item_size(item, type(self).__name__)  # raises, with the exact size
                return item
        what = type(self).__name__
        if general:
            item = self._dumped_item(spec)
            if extras is not None:
                item.update(extras)
        chosen = self._dm_shards if spec.sharded else None
        keys = key_attributes(spec, self.__dict__, what, with_indexes=True, chosen=chosen)
        item.update(keys)
        type_attribute = spec.table.type_attribute
        item[type_attribute] = {"S": spec.entity}
        if general:
            check_item_size(item, what)
        else:
            size += item_size(keys) + len(type_attribute.encode()) + len(spec.entity.encode())
            if size > MAX_ITEM_BYTES:
                check_item_size(item, what)  # raises ItemTooLarge with the exact size
        return item

    def _dumped_item(self, spec: ModelSpec) -> Item:
        """The attributes through ``model_dump()`` (models without a compiled encoder)."""
        what = type(self).__name__
        item: Item = {}
        floats = spec.float_fields
        for name, value in self.model_dump(by_alias=True).items():
            encoded = encode(value, f"{what}.{name}", name in floats)
            if encoded is not OMIT:
                item[name] = encoded
        return item

    def _recover_shards(self, item: Mapping[str, AttributeValue]) -> None:
        """Remember the shards a stored item's partition keys carry."""
        spec = self._spec()
        if spec.shards is not None:
            self._dm_shards[None] = _stored_shard(item, spec.table.pk, spec.shards, self)
        for index in spec.indexes.values():
            if index.shards is not None and index.pk_attr in item:
                self._dm_shards[index.name] = _stored_shard(item, index.pk_attr, index.shards, self)

    @classmethod
    def from_item(cls, item: Mapping[str, AttributeValue]) -> Self:
        """Parse a DynamoDB item into this model (extra attributes such as keys are ignored)."""
        spec = cls._spec()
        stored = item.get(spec.table.type_attribute)
        if stored is not None and stored.get("S") != spec.entity:  # inline: the hot path
            check_entity(cls, spec, item)  # raises EntityMismatch
        decoder = spec.decoder
        if decoder is _UNCOMPILED:
            from dynamodel.modelling.compiled_decoder import compile_decoder

            decoder = spec.decoder = compile_decoder(cls, spec)
        # the validator itself: what model_validate calls, without its Python frame
        instance: Self = cls.__pydantic_validator__.validate_python(decoder(item))
        if spec.unknown == "refuse":
            _refuse_unknown(cls, spec, item)
        # the item as read: what changed_fields() compares with, and where the attributes
        # the model does not declare are kept (written back by whole-item writes)
        state = _new_state(item)
        private = instance.__pydantic_private__
        if private is None:
            object.__setattr__(instance, "__pydantic_private__", {_STATE: state})
        else:  # the model's own private attributes, with their defaults
            private[_STATE] = state
        if spec.sharded:
            instance._recover_shards(item)
        return instance

    @classmethod
    def from_partial_item(cls, item: Mapping[str, AttributeValue]) -> Self:
        """Parse a projected item: only present fields are validated; the instance is partial.

        Partial instances cannot be saved (they would overwrite unprojected attributes).
        """
        spec = cls._spec()
        check_entity(cls, spec, item)
        data = decode_item(item)
        by_stored = {stored: name for name, stored in spec.stored_names.items()}
        values: dict[str, Any] = {}
        for stored, raw in data.items():
            name = by_stored.get(stored)
            if name is not None:
                values[name] = spec.adapter(cls, name).validate_python(raw)
        instance = cast(Self, cls.model_construct(_fields_set=set(values), **values))
        state = _instance_state(instance, create=True)
        state["partial"] = True
        state["loaded"] = item
        if spec.sharded:
            instance._recover_shards(item)
        return instance

    @classmethod
    def build_key(cls, **fields: Any) -> Item:
        """The primary key (AttributeValue map) for the given key field values.

        A randomly sharded model also needs ``shard=`` (a calculated one computes it).
        """
        spec = cls._spec()
        values = coerce_fields(cls, fields, spec.key_fields, "key")
        return key_attributes(spec, values, cls.__name__, with_indexes=False)

    def item_key(self) -> Item:
        """This instance's primary key (AttributeValue map)."""
        spec = self._spec()
        return key_attributes(
            spec,
            self.__dict__,
            type(self).__name__,
            with_indexes=False,
            chosen=self._dm_shards if spec.sharded else None,
        )

    @classmethod
    def attr(cls, pick: Callable[[Self], T]) -> TypedAttr[T]:
        """A checked, typed reference to a field, for conditions, filters, updates and
        projections: ``Order.attr(lambda o: o.address.city).set("Oslo")``. A type checker
        checks the names in the lambda and the value types; the path is checked against the
        model now (see `dynamodel.modelling.paths`)."""
        from dynamodel.modelling.paths import attr_of

        return attr_of(cls, pick)

    @classmethod
    def entity_type(cls) -> str:
        """The value stored in the table's type attribute for this model."""
        return cls._spec().entity

    # -- changes and hooks ------------------------------------------------------------------

    def changed_fields(self) -> list[str]:
        """The fields (Python names) whose value differs from the stored item this instance
        was read as (or last wrote): `save_changes` writes exactly these.

        Changes made in place (``user.tags.add("x")``) count. The version field never does.
        An instance that was neither read from the table nor written returns every field.
        """
        return self._changed_fields(self._field_attributes())

    def _changed_fields(self, attributes: Item) -> list[str]:
        """`changed_fields`, given the fields encoded as stored (`_field_attributes`)."""
        from dynamodel.modelling.changes import changed_fields

        spec = self._spec()
        stored = self._dm_loaded
        names = [n for n in type(self).model_fields if n != spec.version_field]
        if stored is None:
            return names
        if self._dm_partial:  # read with a projection: the fields read, or assigned since
            names = [n for n in names if n in self.model_fields_set]
        return changed_fields(names, spec.stored_names, attributes, stored)

    def unknown_attributes(self) -> dict[str, AttributeValue]:
        """The stored attributes this instance's model does not declare (as AttributeValues),
        kept from the item it was read as; whole-item writes put them back
        (``Meta.unknown_attributes = "keep"``, the default)."""
        stored = self._dm_loaded
        return {} if stored is None else self._spec().unknown_of(stored)

    def before_write(self, operation: WriteOperation) -> None:
        """Hook: called before this instance is written (override it; the default does nothing).

        ``operation`` is ``"save"``, ``"create"``, ``"update"``, ``"save_changes"``,
        ``"delete"``, ``"batch_put"``, ``"batch_delete"``, ``"transaction_put"``,
        ``"transaction_create"``, ``"transaction_update"`` or ``"transaction_delete"``. It may
        change fields (before timestamps and versions are set) or raise to stop the write,
        before any request is sent.
        """

    def after_write(self, operation: WriteOperation) -> None:
        """Hook: called after a write of this instance succeeded (override it; the default does
        nothing). A batch calls it for every item once the whole batch was written; a
        transaction once it is committed. An exception raised here reaches the caller, but the
        write has happened."""

    def _field_attributes(self) -> Item:
        """The fields encoded as they are stored (no key, index or type attributes)."""
        spec = self._spec()
        encoder = spec.encoder
        if encoder is _UNCOMPILED:
            self.to_item()  # compiles it
            encoder = spec.encoder
        if encoder is None or self._dm_partial:
            return self._dumped_item(spec)
        item: Item = encoder(self.__dict__)[0]
        return item

    def save_changes(
        self,
        *,
        condition: Condition | None = None,
        force: bool = False,
        connection: Connection | None = None,
    ) -> list[str]:
        """Write only the fields that changed since the item was read (an UpdateItem).

        Index keys built from changed fields are rewritten, a versioned model's version is
        checked and incremented (``force=True``: incremented only), ``Meta.timestamps``'s
        updated field is set. The item must still exist (`ItemNotFound` otherwise). Two
        processes changing different fields of one unversioned item both keep their change.
        Afterwards the instance holds the item as stored (other writers' changes included)
        and has no changes. Returns the fields written; with none, nothing is sent.
        """
        from dynamodel.io.executors import run

        return run(self._save_changes_flow(condition, force), self._conn(connection))

    async def asave_changes(
        self,
        *,
        condition: Condition | None = None,
        force: bool = False,
        connection: Connection | None = None,
    ) -> list[str]:
        """Async `save_changes`."""
        from dynamodel.io.executors import arun

        return await arun(self._save_changes_flow(condition, force), self._conn(connection))

    # -- operations: sync -------------------------------------------------------------------

    @classmethod
    def get(
        cls,
        *,
        consistent: bool = False,
        projection: Sequence[str | Attr] | None = None,
        connection: Connection | None = None,
        **key: Any,
    ) -> Self:
        """Read one item by its key fields; raise `ItemNotFound` if absent."""
        from dynamodel.io.executors import run
        from dynamodel.ops import items as requests

        found = run(
            requests.get_flow(cls, key, consistent, projection, True), cls._conn(connection)
        )
        assert found is not None
        return found

    @classmethod
    def get_or_none(
        cls,
        *,
        consistent: bool = False,
        projection: Sequence[str | Attr] | None = None,
        connection: Connection | None = None,
        **key: Any,
    ) -> Self | None:
        """Like `get` but returns None when there is no such item."""
        from dynamodel.io.executors import run
        from dynamodel.ops import items as requests

        return run(
            requests.get_flow(cls, key, consistent, projection, False), cls._conn(connection)
        )

    def save(
        self,
        *,
        condition: Condition | None = None,
        force: bool = False,
        connection: Connection | None = None,
    ) -> None:
        """Write the whole item (PutItem), optionally only if ``condition`` holds.

        On a versioned model (``Meta.version``) the write requires the stored version to be
        this instance's (none for a new item), stores the next one and records it on the
        instance; a lost race raises `VersionConflict`. ``force=True`` overwrites whatever
        version is stored (the stored version still increases).
        """
        from dynamodel.io.executors import run

        run(self._save_flow(condition, force), self._conn(connection))

    def create(
        self, *, condition: Condition | None = None, connection: Connection | None = None
    ) -> None:
        """Write the item only if no item with its key exists (else `ConditionFailed`).

        A versioned model is written with version 1 (recorded on the instance).
        """
        from dynamodel.io.executors import run

        run(self._create_flow(condition), self._conn(connection))

    def delete(
        self,
        *,
        condition: Condition | None = None,
        force: bool = False,
        connection: Connection | None = None,
    ) -> None:
        """Delete this item (optionally only if ``condition`` holds).

        On a versioned model the stored version must be this instance's (`VersionConflict`
        otherwise, also when the item is already gone); ``force=True`` skips that check.
        """
        from dynamodel.io.executors import run

        run(self._delete_flow(condition, force), self._conn(connection))

    def update(
        self,
        *actions: UpdateAction,
        condition: Condition | None = None,
        force: bool = False,
        connection: Connection | None = None,
    ) -> Self:
        """Apply update actions to this item and return the updated model (ALL_NEW).

        Index keys built from changed fields are rewritten; the item must exist. On a
        versioned model the stored version must be this instance's and the next one is
        written (`VersionConflict` otherwise); ``force=True`` increments the stored version
        without checking it. The instance itself is not modified.
        """
        from dynamodel.io.executors import run

        return run(self._update_flow(actions, condition, force), self._conn(connection))

    @classmethod
    def update_item(
        cls,
        key: Mapping[str, Any],
        actions: Sequence[UpdateAction],
        *,
        condition: Condition | None = None,
        upsert: bool = False,
        connection: Connection | None = None,
    ) -> Self:
        """Update an item by its key fields without reading it first; returns ALL_NEW.

        ``upsert=False`` (default) requires the item to exist.
        """
        from dynamodel.io.executors import run
        from dynamodel.ops import items as requests

        values = coerce_fields(cls, key, cls._spec().key_fields, "key")
        return run(
            requests.update_flow(cls, values, actions, condition, upsert), cls._conn(connection)
        )

    @classmethod
    def delete_item(
        cls,
        key: Mapping[str, Any],
        *,
        condition: Condition | None = None,
        connection: Connection | None = None,
    ) -> Self | None:
        """Delete by key fields; returns the deleted model (None if there was none)."""
        from dynamodel.io.executors import run
        from dynamodel.ops import items as requests

        return run(
            requests.delete_flow(cls, cls.build_key(**key), condition), cls._conn(connection)
        )

    @classmethod
    def query(
        cls, *, index: str | None = None, connection: Connection | None = None, **key: Any
    ) -> Query[Self]:
        """A lazy query on the partition given by the (table or index) partition key fields.

        Without a sort-key condition it is narrowed to this model's sort key prefix. Iterate
        it (``for`` or ``async for``), or call ``.all()``/``.first()``/``.pages()``.
        """
        from dynamodel.ops.query import Query

        query = Query.for_model(cls, index, key)
        return query if connection is None else query.using(connection)

    @classmethod
    def aquery(
        cls, *, index: str | None = None, connection: Connection | None = None, **key: Any
    ) -> Query[Self]:
        """The same lazy `Query` as `query`; iterate it with ``async for``."""
        return cls.query(index=index, connection=connection, **key)

    @classmethod
    def scan(cls, *, index: str | None = None, connection: Connection | None = None) -> Scan[Self]:
        """A lazy scan returning only this model's items (filtered on the entity type)."""
        from dynamodel.ops.query import Scan

        scan = Scan.for_model(cls, index)
        return scan if connection is None else scan.using(connection)

    @classmethod
    def ascan(cls, *, index: str | None = None, connection: Connection | None = None) -> Scan[Self]:
        """The same lazy `Scan` as `scan`; iterate it with ``async for``."""
        return cls.scan(index=index, connection=connection)

    # -- operations: async ------------------------------------------------------------------

    @classmethod
    async def aget(
        cls,
        *,
        consistent: bool = False,
        projection: Sequence[str | Attr] | None = None,
        connection: Connection | None = None,
        **key: Any,
    ) -> Self:
        """Async `get`."""
        from dynamodel.io.executors import arun
        from dynamodel.ops import items as requests

        flow = requests.get_flow(cls, key, consistent, projection, True)
        found = await arun(flow, cls._conn(connection))
        assert found is not None
        return found

    @classmethod
    async def aget_or_none(
        cls,
        *,
        consistent: bool = False,
        projection: Sequence[str | Attr] | None = None,
        connection: Connection | None = None,
        **key: Any,
    ) -> Self | None:
        """Async `get_or_none`."""
        from dynamodel.io.executors import arun
        from dynamodel.ops import items as requests

        return await arun(
            requests.get_flow(cls, key, consistent, projection, False), cls._conn(connection)
        )

    async def asave(
        self,
        *,
        condition: Condition | None = None,
        force: bool = False,
        connection: Connection | None = None,
    ) -> None:
        """Async `save`."""
        from dynamodel.io.executors import arun

        await arun(self._save_flow(condition, force), self._conn(connection))

    async def acreate(
        self, *, condition: Condition | None = None, connection: Connection | None = None
    ) -> None:
        """Async `create`."""
        from dynamodel.io.executors import arun

        await arun(self._create_flow(condition), self._conn(connection))

    async def adelete(
        self,
        *,
        condition: Condition | None = None,
        force: bool = False,
        connection: Connection | None = None,
    ) -> None:
        """Async `delete`."""
        from dynamodel.io.executors import arun

        await arun(self._delete_flow(condition, force), self._conn(connection))

    async def aupdate(
        self,
        *actions: UpdateAction,
        condition: Condition | None = None,
        force: bool = False,
        connection: Connection | None = None,
    ) -> Self:
        """Async `update`."""
        from dynamodel.io.executors import arun

        return await arun(self._update_flow(actions, condition, force), self._conn(connection))

    @classmethod
    async def aupdate_item(
        cls,
        key: Mapping[str, Any],
        actions: Sequence[UpdateAction],
        *,
        condition: Condition | None = None,
        upsert: bool = False,
        connection: Connection | None = None,
    ) -> Self:
        """Async `update_item`."""
        from dynamodel.io.executors import arun
        from dynamodel.ops import items as requests

        values = coerce_fields(cls, key, cls._spec().key_fields, "key")
        return await arun(
            requests.update_flow(cls, values, actions, condition, upsert), cls._conn(connection)
        )

    @classmethod
    async def adelete_item(
        cls,
        key: Mapping[str, Any],
        *,
        condition: Condition | None = None,
        connection: Connection | None = None,
    ) -> Self | None:
        """Async `delete_item`."""
        from dynamodel.io.executors import arun
        from dynamodel.ops import items as requests

        return await arun(
            requests.delete_flow(cls, cls.build_key(**key), condition), cls._conn(connection)
        )

    @classmethod
    def _conn(cls, connection: Connection | None = None) -> Connection:
        """The connection an operation on this model uses (`dynamodel.io.scope`)."""
        return resolve_connection(cls._spec().table, connection)

    # -- the flows shared by the sync and async methods ---------------------------------------

    def _save_flow(self, condition: Condition | None, force: bool) -> Flow[None]:
        from dynamodel.ops import items as requests

        self.before_write("save")
        if self._spec().unique:  # guard items move with the values (dynamodel.ops.unique)
            from dynamodel.ops.unique import save_flow

            return _then(save_flow(self, condition, force), self.after_write, "save")
        if force and self._spec().version_field is not None:
            from dynamodel.ops.locking import force_put_flow

            return _then(force_put_flow(self, condition), self.after_write, "save")
        return _then(requests.put_flow(self, condition), self.after_write, "save")

    def _create_flow(self, condition: Condition | None) -> Flow[None]:
        from dynamodel.ops import items as requests

        self.before_write("create")
        if self._spec().unique:
            from dynamodel.ops.unique import create_flow

            return _then(create_flow(self, condition), self.after_write, "create")
        condition = requests.not_exists_condition(self, condition)
        flow = requests.put_flow(self, condition, requests.put_version(self, create=True))
        return _then(flow, self.after_write, "create")

    def _delete_flow(self, condition: Condition | None, force: bool) -> Flow[None]:
        from dynamodel.ops import items as requests

        self.before_write("delete")
        if self._spec().unique:
            from dynamodel.ops.unique import instance_delete_flow

            return _then(instance_delete_flow(self, condition, force), self.after_write, "delete")
        version = requests.check_version(self, force=force)
        key, described = self.item_key(), requests.key_fields(self._spec(), self.__dict__)

        def flow() -> Flow[None]:
            yield from requests.delete_flow(type(self), key, condition, version, described)
            self.after_write("delete")

        return flow()

    def _update_flow(
        self, actions: Sequence[UpdateAction], condition: Condition | None, force: bool
    ) -> Flow[Self]:
        from dynamodel.ops import items as requests

        self.before_write("update")
        known = self._known()
        version = requests.update_version(type(self), known, check=not force)
        flow = requests.update_flow(type(self), known, actions, condition, False, version)
        return _then(flow, self.after_write, "update")

    def _save_changes_flow(self, condition: Condition | None, force: bool) -> Flow[list[str]]:
        from dynamodel.core.expressions import Attr
        from dynamodel.ops import items as requests

        self.before_write("save_changes")
        if self._dm_loaded is None:
            raise ValidationError(
                f"{type(self).__name__} was not read from the table (nor written by this "
                "instance), so what changed is unknown; use save() or create()"
            )
        spec = self._spec()
        known = self._known()
        attributes = self._field_attributes()
        changed = self._changed_fields(attributes)
        actions = [
            Attr(name).set(known[name])
            if spec.stored_names[name] in attributes
            else Attr(name).remove()  # None or an empty set: not stored
            for name in changed
        ]
        version = requests.update_version(type(self), known, check=not force)
        update = (
            requests.update_flow(type(self), known, actions, condition, False, version)
            if changed
            else None
        )

        def flow() -> Flow[list[str]]:
            if update is not None:
                stored = yield from update
                self._dm_adopt(stored)
            self.after_write("save_changes")
            return changed

        return flow()

    def _dm_adopt(self, stored: Model) -> None:
        """Take the field values and stored item of ``stored`` (this item as read now)."""
        self.__dict__.update(stored.__dict__)
        self.__pydantic_fields_set__.update(stored.__pydantic_fields_set__)
        if stored._dm_loaded is not None:
            self._dm_stored(stored._dm_loaded)


_STATE = "_dynamodel_state"

#: What `Model.before_write` / `Model.after_write` are told is happening.
WriteOperation = typing.Literal[
    "save",
    "create",
    "update",
    "save_changes",
    "delete",
    "batch_put",
    "batch_delete",
    "transaction_put",
    "transaction_create",
    "transaction_update",
    "transaction_delete",
]

_R = typing.TypeVar("_R")


def _then(flow: Flow[_R], callback: Any, argument: Any) -> Flow[_R]:
    """``flow``, then ``callback(argument)`` once it succeeded; its result is kept."""
    result = yield from flow
    callback(argument)
    return result


def _user_private(private: dict[str, Any] | None) -> dict[str, Any]:
    """An instance's private attributes without dynamodel's state."""
    return {k: v for k, v in private.items() if k != _STATE} if private else {}


def _instance_state(instance: Model, *, create: bool) -> Any:
    """dynamodel's state of one instance (see `_new_state`), kept in
    ``__pydantic_private__``; None when it has none and ``create`` is False."""
    private = instance.__pydantic_private__
    if private is None:
        if not create:
            return None
        private = {}
        object.__setattr__(instance, "__pydantic_private__", private)
    state = private.get(_STATE)
    if state is None and create:
        state = private[_STATE] = _new_state(None)
    return state


def _new_state(loaded: Mapping[str, AttributeValue] | None) -> dict[str, Any]:
    """dynamodel's state of one instance: read with a projection, the shard of each sharded
    key, the item as last read or written."""
    return {"partial": False, "shards": {}, "loaded": loaded}


def _refuse_unknown(cls: type[Model], spec: ModelSpec, item: Mapping[str, Any]) -> None:
    unknown = spec.unknown_of(item)
    if unknown:
        key = {a: next(iter(item[a].values())) for a in spec.table.key_attributes() if a in item}
        raise ValidationError(
            f"{cls.__name__}: the item at {key} has attributes the model does not declare "
            f"({', '.join(sorted(unknown))}) and {cls.__name__}.Meta.unknown_attributes is "
            "'refuse'; declare them, or choose 'keep' or 'drop'"
        )


def _version_field(cls: type[Model], meta: Any) -> str | None:
    """``Meta.version``: the name of an ``int`` field used for optimistic locking."""
    name: Any = getattr(meta, "version", None)
    if name is None:
        return None
    info = cls.model_fields.get(name) if isinstance(name, str) else None
    if info is None or not isinstance(name, str):
        raise ValidationError(f"{cls.__name__}.Meta.version names {name!r}, which is not a field")
    allowed = (int, int | None, typing.Optional[int])  # noqa: UP045 - both spellings
    if info.annotation not in allowed:
        raise ValidationError(
            f"{cls.__name__}.Meta.version field {name!r} must be an int (or int | None), "
            f"not {info.annotation!r}"
        )
    return name


def _check_spec(cls: type[Model], spec: ModelSpec) -> None:
    fields = set(cls.model_fields)
    templates: list[tuple[str, KeyTemplate | None]] = [("pk", spec.pk), ("sk", spec.sk)]
    for index in spec.indexes.values():
        templates += [(f"index {index.name} pk", index.pk), (f"index {index.name} sk", index.sk)]
    for where, template in templates:
        if template is None:
            continue
        for name in template.fields:
            if name not in fields:
                raise ValidationError(
                    f"{cls.__name__}: {where} template {template.text!r} names {name!r}, "
                    f"which is not a field (fields: {sorted(fields)})"
                )
    _check_shards(cls, spec, fields)
    _check_option_names(cls, spec, templates)
    if spec.version_field is not None:
        for where, template in templates:
            if template is not None and spec.version_field in template.fields:
                raise ValidationError(
                    f"{cls.__name__}: the version field {spec.version_field!r} cannot be used "
                    f"in the {where} template (it changes on every write)"
                )
    updated = spec.updated_field
    for where, template in templates[:2]:
        if updated is not None and template is not None and updated in template.fields:
            raise ValidationError(
                f"{cls.__name__}: the updated timestamp {updated!r} cannot be used in the "
                f"{where} template (it changes on every write, and a key cannot)"
            )
    table = spec.table
    reserved = {table.pk, table.type_attribute} | ({table.sk} if table.sk else set())
    for declared in table.indexes:
        keys = table.index_keys(declared.name)
        if not keys.multi:  # a multi-attribute GSI is made of the models' own attributes
            reserved.update(keys.attributes)
    clash = reserved & set(spec.stored_names.values())
    if clash:
        raise ValidationError(
            f"{cls.__name__}: fields stored as {sorted(clash)} clash with the table's key or type "
            "attributes; rename them or give them an alias"
        )


#: Keyword options of the methods that take key fields as keywords (``get(consistent=...,
#: projection=..., **key)``, ``query(index=..., **key)``): no key field may be named like one.
KEY_OPTIONS = frozenset({"connection", "consistent", "projection", "index"})


def _check_option_names(
    cls: type[Model], spec: ModelSpec, templates: list[tuple[str, KeyTemplate | None]]
) -> None:
    """Refuse key fields named like a keyword option: ``get(consistent=True)`` could never
    pass such a field's value."""
    keys = [(f"the {w} template {t.text!r}", t.fields) for w, t in templates if t is not None]
    keys += [
        (f"multi-attribute index {i.name!r}", i.pk_fields + i.sk_fields)
        for i in spec.multi_indexes.values()
    ]
    for where, fields in keys:
        clash = sorted(KEY_OPTIONS.intersection(fields))
        if clash:
            raise ValidationError(
                f"{cls.__name__}: {where} uses field {clash[0]!r}, named like an option of "
                f"get()/query() ({', '.join(sorted(KEY_OPTIONS))}); rename the field (an alias "
                "keeps the stored attribute name)"
            )


def _check_shards(cls: type[Model], spec: ModelSpec, fields: set[str]) -> None:
    """Calculated shards hash declared fields; the table's must be key fields (so ``get``
    can compute the shard), and a sharded model cannot have a key field named ``shard``."""
    if spec.shards is not None:
        if SHARD in spec.key_fields:
            raise ValidationError(
                f"{cls.__name__}: a key field named {SHARD!r} clashes with the shard= argument "
                "of a sharded model; rename the field"
            )
        outside = [f for f in spec.shards.fields if f not in spec.key_fields]
        if outside:
            raise ValidationError(
                f"{cls.__name__}: Meta.shards is calculated from {outside}, which are not key "
                f"fields {list(dict.fromkeys(spec.key_fields))}; a get could not compute the shard"
            )
    for index in spec.indexes.values():
        if index.shards is not None:
            unknown = [f for f in index.shards.fields if f not in fields]
            if unknown:
                raise ValidationError(
                    f"{cls.__name__}: index {index.name!r} shards are calculated from {unknown}, "
                    "which are not fields"
                )


def coerce_fields(
    model: type[Model], values: Mapping[str, Any], allowed: Sequence[str], what: str
) -> dict[str, Any]:
    """Validate key field values through their field types (so ``"7"`` becomes ``7`` for an int).

    On a model with a sharded partition key, ``shard`` is accepted too (an int shard number).
    """
    spec = model._spec()
    sharded = spec.shards is not None and SHARD in values and SHARD not in allowed
    unknown = set(values) - set(allowed) - ({SHARD} if sharded else set())
    if unknown:
        raise ValidationError(
            f"{model.__name__} {what}: unexpected fields {sorted(unknown)}; "
            f"expected {list(allowed)}"
        )
    out: dict[str, Any] = {}
    for name, value in values.items():
        if sharded and name == SHARD:
            assert spec.shards is not None
            out[SHARD] = check_shard(value, spec.shards, f"{model.__name__} {what}")
            continue
        try:
            out[name] = spec.coerce(model, name, value)
        except Exception as exc:
            raise ValidationError(f"{model.__name__} {what} field {name!r}: {exc}") from exc
    return out


#: The key-field name under which a shard number travels with key values (``get(shard=3)``).
SHARD = "shard"


def check_shard(value: Any, shards: Shards, what: str) -> int:
    """A valid shard number of ``shards`` (ValidationError naming the range otherwise)."""
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < shards.count:
        raise ValidationError(
            f"{what}: shard must be an int from 0 to {shards.count - 1}, got {value!r}"
        )
    return value


def shard_for(
    shards: Shards,
    values: Mapping[str, Any],
    chosen: dict[str | None, int] | None,
    slot: str | None,
    what: str,
    *,
    choose: bool,
) -> int:
    """The shard of one sharded partition key.

    Calculated: hashed from ``values`` (a given shard must agree). Random: ``values["shard"]``
    (table key only), else the one recorded in ``chosen``, else a new random one when
    ``choose`` (recorded in ``chosen``), else a ValidationError asking for ``shard=``.
    """
    given = values.get(SHARD) if slot is None else None
    if given is None and chosen is not None:
        given = chosen.get(slot)
    if shards.by:
        try:
            computed = shards.calculate(values)
        except ValidationError as exc:
            raise ValidationError(f"{what}: {exc}") from None
        if given is not None and given != computed:
            raise ValidationError(
                f"{what}: shard={given} was given but the shard calculated from "
                f"{list(shards.fields)} is {computed}"
            )
        return computed
    if given is not None:
        return int(given)
    if not choose:
        raise ValidationError(
            f"{what}: the partition key is sharded randomly over {shards.count} shards, so the "
            "item's shard cannot be computed; pass shard= (an item read from the table knows "
            "its own: item.shard_number()), or query the partition to fan out"
        )
    shard = shards.choose()
    if chosen is not None:
        chosen[slot] = shard
    return shard


def _stored_shard(
    item: Mapping[str, AttributeValue], attribute: str, shards: Shards, owner: Model
) -> int:
    value = item.get(attribute)
    if value is None or "S" not in value:
        raise ValidationError(
            f"{type(owner).__name__}: the stored item has no {attribute!r} string to read "
            "its shard from"
        )
    try:
        return split_physical(value["S"], shards)[1]
    except ValidationError as exc:
        raise ValidationError(
            f"{type(owner).__name__}: {exc}; was it written before the model was sharded "
            "(or with another shard count)? Changing the shard count is a migration."
        ) from None


def _key_text(attribute: str, text: str, limit: int, what: str) -> AttributeValue:
    size = len(text) if text.isascii() else len(text.encode("utf-8"))
    if size == 0:
        raise ValidationError(f"{what}: key attribute {attribute!r} renders empty")
    if size > limit:
        raise ValidationError(
            f"{what}: key attribute {attribute!r} is {size} bytes; the limit is {limit}"
        )
    return {"S": text}


def key_attributes(
    spec: ModelSpec,
    values: Mapping[str, Any],
    what: str,
    *,
    with_indexes: bool,
    chosen: dict[str | None, int] | None = None,
) -> Item:
    """Render the primary key (and, optionally, every index key that can be rendered).

    Sharded partition keys get their shard suffix (see `shard_for`); ``chosen`` holds an
    instance's shards, and receives random ones chosen now.
    """
    table = spec.table
    pk = spec.pk.render(values, what)
    if spec.shards is not None:
        pk = spec.shards.physical(
            pk, shard_for(spec.shards, values, chosen, None, what, choose=chosen is not None)
        )
    out: Item = {table.pk: _key_text(table.pk, pk, MAX_PK_BYTES, what)}
    if spec.sk is not None and table.sk:
        out[table.sk] = _key_text(table.sk, spec.sk.render(values, what), MAX_SK_BYTES, what)
    if with_indexes:
        out.update(index_attributes(spec, values, what, spec.indexes.values(), chosen))
    return out


def index_attributes(
    spec: ModelSpec,
    values: Mapping[str, Any],
    what: str,
    indexes: Any,
    chosen: dict[str | None, int] | None = None,
) -> Item:
    """Index key attributes that can be rendered from ``values`` (sparse: others are skipped).

    A sharded index partition key gets its suffix; a random one reuses the shard in
    ``chosen`` or draws (and records) a new one.
    """
    out: Item = {}
    for index in indexes:
        pk = index.pk.try_render(values, what) if index.pk is not None else ""
        sk = index.sk.try_render(values, what) if index.sk is not None else ""
        if pk is None or sk is None:
            continue  # sparse: the item is not in this index
        if index.pk is not None and index.shards is not None:
            shard = shard_for(index.shards, values, chosen, index.name, what, choose=True)
            pk = index.shards.physical(pk, shard)
        if index.pk is not None:
            out[index.pk_attr] = _key_text(index.pk_attr, pk, MAX_PK_BYTES, what)
        if index.sk is not None and index.sk_attr:
            out[index.sk_attr] = _key_text(index.sk_attr, sk, MAX_SK_BYTES, what)
    return out
