"""`ModelSpec`: what a model class declares (table, key templates, indexes, version,
shards, unknown-attribute policy, timestamps), built and checked once when the class is
defined from its ``Meta``."""

from __future__ import annotations

import datetime as dt
import functools
import types
import typing
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

from dynamodel.core.errors import EntityMismatch, ValidationError
from dynamodel.core.keys import RESERVED_PREFIX, KeyTemplate
from dynamodel.modelling.item_keys import SHARD
from dynamodel.modelling.sharding import Shards
from dynamodel.modelling.table import GSI, Table

if TYPE_CHECKING:
    from pydantic import TypeAdapter

    from dynamodel.modelling.base import ModelBase
    from dynamodel.modelling.multikey import MultiIndex


UNCOMPILED: Any = object()  # ModelSpec.encoder before the first to_item


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
        #: (field, template text) of each key template field that may hold a datetime, made by
        #: the first to_item (modelling.base): naive values are refused before encoding
        self.datetime_keys: tuple[tuple[str, str], ...] | None = None
        # the compiled item decoder (modelling.compiled_decoder), made by the first from_item
        self.decoder: Any = UNCOMPILED
        self._guard_slots: list[tuple[str | None, Shards | None]] | None = None
        self.paths: Any = None  # the attribute path checker (modelling.paths), made on first use
        #: Meta.period: the datetime key field routing items to per-period tables (None: none)
        self.period_field: str | None = None

    def __repr__(self) -> str:
        return f"ModelSpec(entity={self.entity!r}, table={self.table.name!r}, pk={self.pk!r})"

    def table_name(self, values: Mapping[str, Any]) -> str:
        """The physical table of the item with these field values: the table's, or for a table
        with periods the table of the period its ``Meta.period`` field falls in."""
        field = self.period_field
        if field is None:
            return self.table.physical_name
        when = values.get(field)
        if not isinstance(when, dt.datetime):
            from pydantic import TypeAdapter, ValidationError as PydanticError

            try:
                when = TypeAdapter(dt.datetime).validate_python(when)
            except PydanticError:
                raise ValidationError(
                    f"table {self.table.name!r} has one table per period: the {field!r} field "
                    f"(a datetime) decides which one; got {when!r}"
                ) from None
        return self.table.period_name(when)

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


def check_entity(cls: type[ModelBase], spec: ModelSpec, item: Mapping[str, Any]) -> None:
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


def _multi_indexes(cls: type[ModelBase], table: Table, meta: Any) -> dict[str, MultiIndex]:
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


def _version_field(cls: type[ModelBase], meta: Any) -> str | None:
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


def _check_spec(cls: type[ModelBase], spec: ModelSpec) -> None:
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
    cls: type[ModelBase], spec: ModelSpec, templates: list[tuple[str, KeyTemplate | None]]
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


def _check_shards(cls: type[ModelBase], spec: ModelSpec, fields: set[str]) -> None:
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


def declare(cls: type[ModelBase], meta: Any) -> ModelSpec:
    """Check a model class's ``Meta`` and build its `ModelSpec` (once, when the class is
    defined); every mistake is a `ValidationError` naming the class and the setting."""
    table = getattr(meta, "table", None)
    if not isinstance(table, Table):
        raise ValidationError(f"{cls.__name__}.Meta.table must be a dynamodel Table")
    pk_text = getattr(meta, "pk", None)
    if not isinstance(pk_text, str):
        raise ValidationError(f"{cls.__name__}.Meta.pk must be a key template string")
    sk_text = getattr(meta, "sk", None)
    if table.sk and sk_text is None:
        raise ValidationError(f"{cls.__name__}: table {table.name!r} has a sort key; set Meta.sk")
    if not table.sk and sk_text is not None:
        raise ValidationError(f"{cls.__name__}: table {table.name!r} has no sort key")
    stored = {name: info.alias or name for name, info in cls.model_fields.items()}
    escape = _escape_keys(meta, cls.__name__)
    spec = ModelSpec(
        table=table,
        entity=_entity_name(meta, cls.__name__),
        pk=_template(cls.__name__, "pk", pk_text, False, escape),
        sk=_template(cls.__name__, "sk", sk_text, True, escape) if sk_text is not None else None,
        indexes=_index_templates(table, meta, cls.__name__),
        stored_names=stored,
        float_fields=frozenset(
            stored[n] for n, info in cls.model_fields.items() if _mentions(info.annotation, float)
        ),
        set_fields=frozenset(
            stored[n] for n, info in cls.model_fields.items() if _is_set_type(info.annotation)
        ),
        version_field=_version_field(cls, meta),
        shards=_meta_shards(meta, cls.__name__),
        encoder=UNCOMPILED,
        unknown=_unknown_policy(meta, cls.__name__),
        timestamps=_timestamp_fields(cls, meta),
    )
    spec.multi_indexes = _multi_indexes(cls, table, meta)
    _check_spec(cls, spec)
    if getattr(meta, "unique", None) is not None:
        from dynamodel.modelling.constraints import declared_unique

        spec.unique = declared_unique(cls, meta, spec)
    spec.period_field = _period_field(cls, meta, spec)
    return spec


def _period_field(cls: type[ModelBase], meta: Any, spec: ModelSpec) -> str | None:
    """``Meta.period``: the datetime key field that routes an item to its period's table."""
    name: Any = getattr(meta, "period", None)
    periods = spec.table.periods
    where = f"{cls.__name__}.Meta.period"
    if periods is None:
        if name is not None:
            raise ValidationError(f"{where} is set, but table {spec.table.name!r} has no periods")
        return None
    if name is None:
        raise ValidationError(
            f"{cls.__name__}: table {spec.table.name!r} is one table per {periods.every}; set "
            "Meta.period to the datetime field that routes each item to its period's table"
        )
    info = cls.model_fields.get(name) if isinstance(name, str) else None
    if info is None or not isinstance(name, str):
        raise ValidationError(f"{where} names {name!r}, which is not a field")
    if info.annotation is not dt.datetime:
        raise ValidationError(
            f"{where} field {name!r} must be a datetime (not {info.annotation!r}): it decides "
            "which period's table holds the item"
        )
    if name not in spec.key_fields:
        raise ValidationError(
            f"{where} field {name!r} must be in the pk or sk template, so that a get, update or "
            "delete by key knows its period's table"
        )
    if spec.sharded or spec.unique:
        raise ValidationError(
            f"{cls.__name__}: per-period tables do not support "
            + ("write sharding" if spec.sharded else "Meta.unique")
            + " yet (their guard items would live in one period's table)"
        )
    return name
