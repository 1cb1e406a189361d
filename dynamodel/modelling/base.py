"""`ModelBase`: a pydantic model stored as an item: its spec, per-instance state,
serialisation (`to_item`/`from_item`), keys, dirty tracking and write hooks. No I/O: the
`dynamodel.Model` facade adds the operations."""

from __future__ import annotations

import datetime as _dt
import typing
from collections.abc import Callable, Mapping
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
from dynamodel.core.errors import ValidationError
from dynamodel.core.keys import naive_key_error
from dynamodel.modelling.item_keys import (
    SHARD,
    _stored_shard,
    coerce_fields,
    key_attributes,
    missing_shards,
    shard_for,
)
from dynamodel.modelling.spec import (
    UNCOMPILED,
    ModelSpec,
    WriteOperation,
    check_entity,
    declare,
)
from dynamodel.modelling.tenancy import _SCOPE as _TENANT

if TYPE_CHECKING:
    import random

    from dynamodel.core.expressions import TypedAttr

T = TypeVar("T")


class ModelBase(BaseModel):
    """Base class of every stored entity. Configure it with an inner ``class Meta``."""

    model_config = ConfigDict(
        validate_by_name=True,
        validate_by_alias=True,
        extra="ignore",
        arbitrary_types_allowed=False,
    )

    __dynamodel__: ClassVar[ModelSpec]

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

    def _dm_draw_shards(self, rng: random.Random | None = None) -> None:
        """Draw the random shards this new item still lacks (see
        `dynamodel.modelling.sharding`) from ``rng``: operations pass the random source of
        their connection. Without ``rng`` (a direct `to_item`, `item_key` or `shard_number`
        call, no operation) the connection the table resolves to now is used
        (`dynamodel.io.scope.resolve_connection`: the scoped, bound or default one). A
        partial item draws none: its unknown shard is refused where its key is rendered."""
        spec = type(self).__dict__.get("__dynamodel__") or self._spec()
        if not spec.sharded or self._dm_partial:
            return
        chosen = self._dm_shards
        missing = missing_shards(spec, chosen)
        if not missing:
            return
        if rng is None:
            from dynamodel.io.scope import resolve_connection

            rng = resolve_connection(spec.table).inputs.random
        for slot, shards in missing:
            chosen[slot] = shards.choose(rng)

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
        spec = declare(cls, meta)
        cls.__dynamodel__ = spec
        spec.table.register(cls)

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
        self._dm_draw_shards()
        return shard_for(spec.shards, self.__dict__, self._dm_shards, None, "", choose=True)

    def shard_number(self, index: str | None = None) -> int | None:
        """The shard of this item's partition key (``index``: of that index's key).

        None when that key is not sharded. A randomly sharded item gets its shard at its
        first write, drawn from the random source of the connection writing it (or when this
        is first called: from the connection the table resolves to now); an item read from the
        table has the shard it is stored under.
        """
        spec = self._spec()
        if index is None:
            return None if spec.shards is None else self._table_shard(spec)
        templates = spec.indexes.get(index)
        if templates is None or templates.shards is None:
            return None
        self._dm_draw_shards()
        return shard_for(templates.shards, self.__dict__, self._dm_shards, index, "", choose=True)

    def to_item(self) -> Item:
        """The full DynamoDB item: attributes, key attributes, index keys and entity type.

        An instance read from the table also carries the stored attributes its model does
        not declare (``Meta.unknown_attributes = "keep"``, the default), so a whole-item write
        puts them back.

        A new randomly sharded item draws its shards here if no write drew them yet: from the
        random source of the connection the table resolves to now (the scoped, bound or
        default one: `dynamodel.io.scope.resolve_connection`)."""
        spec = type(self).__dict__.get("__dynamodel__") or self._spec()
        datetime_keys = spec.datetime_keys
        if datetime_keys is None:
            datetime_keys = spec.datetime_keys = _datetime_keys(type(self), spec)
        if datetime_keys:
            _refuse_naive_keys(self.__dict__, datetime_keys, type(self).__name__)
        encoder = spec.encoder
        if encoder is UNCOMPILED:
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
            if (tenant := _TENANT.get()) is not None:
                tenant.check_key(spec, values, type(self).__name__)
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
        chosen: dict[str | None, int] | None = None
        if spec.sharded:
            self._dm_draw_shards()  # none missing after a write drew them: no lookup
            chosen = self._dm_shards
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
        if decoder is UNCOMPILED:
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
        """This instance's primary key (AttributeValue map). A new randomly sharded item
        draws its shards first (see `to_item`)."""
        spec = self._spec()
        if spec.sharded:
            self._dm_draw_shards()
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
        if encoder is UNCOMPILED:
            self.to_item()  # compiles it
            encoder = spec.encoder
        if encoder is None or self._dm_partial:
            return self._dumped_item(spec)
        item: Item = encoder(self.__dict__)[0]
        return item


_STATE = "_dynamodel_state"


def _admits_datetime(annotation: Any) -> bool:
    """Whether a field annotation may hold a ``datetime`` (``Any`` and unions included)."""
    if annotation is Any:
        return True
    if isinstance(annotation, type):
        return issubclass(annotation, _dt.datetime) or annotation is object
    return any(_admits_datetime(arg) for arg in typing.get_args(annotation))


def _datetime_keys(cls: type[ModelBase], spec: ModelSpec) -> tuple[tuple[str, str], ...]:
    """(field, template text) of each key template field whose type admits a datetime."""
    templates = [spec.pk, spec.sk]
    for index in spec.indexes.values():
        templates += [index.pk, index.sk]
    found: dict[str, str] = {}
    for template in templates:
        if template is None:
            continue
        for field in template.fields:
            info = cls.model_fields.get(field)
            if info is not None and field not in found and _admits_datetime(info.annotation):
                found[field] = template.text
    return tuple(found.items())


def _refuse_naive_keys(
    values: Mapping[str, Any], fields: tuple[tuple[str, str], ...], what: str
) -> None:
    """Refuse a naive datetime in a key template field, before anything is encoded (or sent):
    the key would render differently in another clock zone."""
    for field, template in fields:
        value = values.get(field)
        if isinstance(value, _dt.datetime) and value.utcoffset() is None:
            error = naive_key_error(value, field)
            raise ValidationError(f"{what}: {error} (key template {template!r})")


def _user_private(private: dict[str, Any] | None) -> dict[str, Any]:
    """An instance's private attributes without dynamodel's state."""
    return {k: v for k, v in private.items() if k != _STATE} if private else {}


def _instance_state(instance: ModelBase, *, create: bool) -> Any:
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


def _refuse_unknown(cls: type[ModelBase], spec: ModelSpec, item: Mapping[str, Any]) -> None:
    unknown = spec.unknown_of(item)
    if unknown:
        key = {a: next(iter(item[a].values())) for a in spec.table.key_attributes() if a in item}
        raise ValidationError(
            f"{cls.__name__}: the item at {key} has attributes the model does not declare "
            f"({', '.join(sorted(unknown))}) and {cls.__name__}.Meta.unknown_attributes is "
            "'refuse'; declare them, or choose 'keep' or 'drop'"
        )
