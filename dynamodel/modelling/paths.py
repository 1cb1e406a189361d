"""Checked attribute paths: every path an expression names is resolved against the model's
declared fields before any request is built.

A `PathResolver` belongs to one model (or, for a collection query, to several). It turns a
path as the user wrote it (Python field names or stored names, at every level) into the stored
path, or raises `ValidationError` naming the model, the path, the segment that is not declared
and the closest declared names. Results are cached per path, so the hot path is one dict
lookup.

What a path may walk through, from a field's type:

* a nested pydantic model: one of its fields, by Python name or stored name (alias);
* ``list[X]``, ``tuple[X, ...]``, ``Sequence[X]``: an ``[index]``, continuing with ``X``
  (``tuple[A, B]``: the type at that position);
* ``dict[str, X]``, ``Mapping[str, X]``: any key, continuing with ``X``;
* ``X | Y``, ``Optional[X]``: whatever any member accepts;
* ``Any``, ``object`` and types dynamodel does not look into: anything (the rest is unchecked);
* scalars (str, numbers, bytes, bool, dates, enums, ``Literal``) and sets: nothing further.

At the top level, the table's managed attributes (partition and sort key, entity type
attribute, index key attributes, TTL attribute) are accepted too; updates refuse them
separately (`dynamodel.ops.items.prepare_update`). ``Attr(..., raw=True)`` bypasses the check.

`attr_of` records a typed field reference (``Order.attr(lambda o: o.address.city)``).
"""

from __future__ import annotations

import collections
import collections.abc as abc
import datetime as dt
import decimal
import enum
import types
import typing
import uuid
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from pydantic import BaseModel, RootModel

from dynamodel.core.errors import UnknownPath, ValidationError
from dynamodel.core.expressions import Attr, PathSegment, TypedAttr
from dynamodel.core.suggest import close_names

if TYPE_CHECKING:
    from dynamodel.modelling.base import ModelBase

T = TypeVar("T")
MT = TypeVar("MT", bound="ModelBase")

#: a type dynamodel does not look into: any further segment is accepted
_ANY: Any = object()

_LEAF_TYPES: tuple[type, ...] = (
    str,
    bytes,
    bytearray,
    int,
    float,
    decimal.Decimal,
    dt.date,
    dt.time,
    dt.timedelta,
    uuid.UUID,
    enum.Enum,
)
_LIST_ORIGINS = frozenset({list, tuple, abc.Sequence, abc.MutableSequence, collections.deque})
_MAP_ORIGINS = frozenset(
    {
        dict,
        abc.Mapping,
        abc.MutableMapping,
        collections.OrderedDict,
        collections.defaultdict,
        collections.Counter,
    }
)
_SET_ORIGINS = frozenset({set, frozenset, abc.Set, abc.MutableSet})
_UNIONS: tuple[Any, ...] = (typing.Union, types.UnionType)
_TYPE_ALIAS: Any = getattr(typing, "TypeAliasType", None)  # Python 3.12+
MAX_CACHED = 4096  # paths remembered per resolver (a dict key path can be anything)


def _alternatives(annotation: Any) -> list[Any]:
    """The types a value of ``annotation`` may have: unions split (None dropped), Annotated,
    NewType and ``type`` aliases unwrapped."""
    if annotation is None or annotation is type(None):
        return []
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _alternatives(typing.get_args(annotation)[0])
    if origin in _UNIONS:
        out: list[Any] = []
        for member in typing.get_args(annotation):
            out.extend(_alternatives(member))
        return out
    if _TYPE_ALIAS is not None and isinstance(annotation, _TYPE_ALIAS):
        return _alternatives(annotation.__value__)
    supertype = getattr(annotation, "__supertype__", None)  # typing.NewType
    if supertype is not None:
        return _alternatives(supertype)
    if isinstance(annotation, type) and issubclass(annotation, RootModel):
        return _alternatives(annotation.model_fields["root"].annotation)  # stored as its root
    return [annotation]


def _describe(annotation: Any) -> str:
    if isinstance(annotation, type):
        return annotation.__name__
    return repr(annotation).replace("typing.", "")


def _model_fields(model: type[BaseModel]) -> dict[str, tuple[str, Any]]:
    """Every name a nested model's field answers to (Python name, stored name) -> (stored
    name, type). Nested models are stored as they serialise: by serialization alias."""
    names: dict[str, tuple[str, Any]] = {}
    for name, info in model.model_fields.items():
        names[name] = (info.serialization_alias or info.alias or name, info.annotation)
    for stored, annotation in list(names.values()):
        names.setdefault(stored, (stored, annotation))
    return names


# Pure memo keyed by model class (no I/O result): shared by every connection, and bounded by
# the classes the program defines.
_NESTED: dict[type[BaseModel], dict[str, tuple[str, Any]]] = {}


def _nested_fields(model: type[BaseModel]) -> dict[str, tuple[str, Any]]:
    names = _NESTED.get(model)
    if names is None:
        names = _NESTED[model] = _model_fields(model)
    return names


class _Miss(Exception):
    """One alternative does not accept a segment: why, and the names it would accept."""

    def __init__(self, reason: str, names: Iterable[str] = ()) -> None:
        super().__init__(reason)
        self.reason = reason
        self.names = list(names)


def _step(annotation: Any, segment: PathSegment, shown: str) -> tuple[PathSegment, Any]:
    """(stored segment, the type it leads to) for one segment into a value of ``annotation``;
    raises `_Miss`. ``shown`` is the path so far, for messages."""
    if annotation is _ANY or annotation is Any or annotation is object:
        return segment, _ANY
    if isinstance(annotation, TypeVar):
        return segment, _ANY
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        if isinstance(segment, int):
            raise _Miss(f"{shown!r} is a map ({annotation.__name__}), not a list")
        names = _nested_fields(annotation)
        found = names.get(segment)
        if found is None:
            raise _Miss(f"{annotation.__name__} has no field {segment!r}", names)
        return found
    origin = typing.get_origin(annotation) or annotation
    args = typing.get_args(annotation)
    if origin in _LIST_ORIGINS:
        if not isinstance(segment, int):
            raise _Miss(f"{shown!r} is a list; index it ({shown}[0].{segment}), it has no fields")
        if origin is tuple and args and not (len(args) == 2 and args[1] is Ellipsis):
            if segment >= len(args):
                raise _Miss(f"{shown!r} holds {len(args)} elements; [{segment}] is out of range")
            return segment, args[segment]
        return segment, (args[0] if args else _ANY)
    if origin in _MAP_ORIGINS:
        if isinstance(segment, int):
            raise _Miss(f"{shown!r} is a map, not a list: name a key ({shown}.key)")
        return segment, (args[1] if len(args) == 2 else _ANY)
    if origin in _SET_ORIGINS:
        raise _Miss(f"{shown!r} is a set; it has no {_what(segment)}")
    if origin is typing.Literal:
        raise _Miss(f"{shown!r} is {_describe(annotation)}; it has no {_what(segment)}")
    if isinstance(origin, type) and issubclass(origin, _LEAF_TYPES):
        raise _Miss(f"{shown!r} is {_a(_describe(origin))}; it has no {_what(segment)}")
    return segment, _ANY  # a type dynamodel does not look into (dataclass, TypedDict...)


def _a(noun: str) -> str:
    return ("an " if noun[:1].lower() in "aeiou" else "a ") + noun


def _what(segment: PathSegment) -> str:
    return f"element [{segment}]" if isinstance(segment, int) else f"field {segment!r}"


def _show(segments: Sequence[PathSegment]) -> str:
    out = ""
    for segment in segments:
        if isinstance(segment, int):
            out += f"[{segment}]"
        else:
            out += ("." if out else "") + segment
    return out


def _hint(word: PathSegment, names: Iterable[str]) -> str:
    names = sorted(set(names))
    if not names:
        return ""
    found = close_names(word, names)
    if found:
        return f" (did you mean {' or '.join(repr(n) for n in found)}?)"
    shown = ", ".join(repr(n) for n in names[:12]) + (", ..." if len(names) > 12 else "")
    return f" (declared: {shown})"


_RAW_HINT = (
    ". Nothing was sent (Attr(..., raw=True) names a stored attribute the model does not "
    "declare, unchecked)"
)


class _ModelPaths:
    """Path resolution for one model, uncached (see `PathResolver`)."""

    __slots__ = ("fields", "managed", "name", "top")

    def __init__(self, model: type[ModelBase]) -> None:
        spec = model._spec()
        table = spec.table
        self.name = model.__name__
        self.top: dict[str, str] = {}  # python or stored name -> stored name
        self.fields: dict[str, Any] = {}  # stored name -> annotation
        for name, info in model.model_fields.items():
            stored = spec.stored_names[name]
            self.top[name] = stored
            self.fields[stored] = info.annotation
        for stored in spec.stored_names.values():
            self.top.setdefault(stored, stored)
        managed = [table.pk, table.sk, table.type_attribute, table.ttl]
        for declared in table.indexes:
            keys = table.index_keys(declared.name)
            if not keys.multi:  # a multi-attribute GSI's keys are models' own fields
                managed += [keys.pk, keys.sk]
        self.managed = {m for m in managed if m and m not in self.fields}

    def resolve(self, segments: tuple[PathSegment, ...]) -> tuple[PathSegment, ...]:
        first = segments[0]
        assert isinstance(first, str)
        stored = self.top.get(first)
        if stored is None:
            if first in self.managed:
                if len(segments) > 1:
                    raise self._unknown(
                        segments,
                        segments[1],
                        f"{first!r} is a key or type attribute; it has no {_what(segments[1])}",
                        (),
                    )
                return segments
            raise self._unknown(segments, first, f"{self.name} has no field {first!r}", self.top)
        out: list[PathSegment] = [stored]
        states: list[Any] = _alternatives(self.fields[stored])
        for position in range(1, len(segments)):
            segment = segments[position]
            shown = _show(segments[:position])
            accepted: list[tuple[PathSegment, Any]] = []
            misses: list[_Miss] = []
            if not states:
                misses.append(_Miss(f"{shown!r} is always None"))
            for state in states:
                try:
                    accepted.append(_step(state, segment, shown))
                except _Miss as miss:
                    misses.append(miss)
            if not accepted:
                reasons = "; ".join(dict.fromkeys(m.reason for m in misses))
                names = [n for m in misses for n in m.names]
                raise self._unknown(segments, segment, reasons, names)
            renamed = {stored for stored, _ in accepted}
            if len(renamed) > 1:
                raise ValidationError(
                    f"{self.name}: attribute path {_show(segments)!r}: {segment!r} is stored as "
                    f"{sorted(map(str, renamed))} depending on the type of {shown!r}; name the "
                    "stored attribute with Attr(..., raw=True)"
                )
            out.append(renamed.pop())
            states = []
            for _, kind in accepted:
                for alternative in [_ANY] if kind is _ANY else _alternatives(kind):
                    if alternative not in states:
                        states.append(alternative)
            if _ANY in states:
                out.extend(segments[position + 1 :])  # the rest is not checked
                break
        return tuple(out)

    def _unknown(
        self,
        segments: tuple[PathSegment, ...],
        segment: PathSegment,
        reason: str,
        names: Iterable[str],
    ) -> UnknownPath:
        names = list(names)
        return UnknownPath(
            f"{self.name}: unknown attribute path {_show(segments)!r}: {reason}"
            f"{_hint(segment, names) if names else ''}{_RAW_HINT}",
            model=self.name,
            path=_show(segments),
            segment=segment,
            closest=close_names(segment, names) if names else [],
        )


class PathResolver:
    """Resolves paths (Python or stored names) to stored paths for one or more models.

    With several models (a collection query) a path is accepted when any of them declares it;
    if they store it under different names it is refused as ambiguous (name the stored
    attribute with ``raw=True``).
    """

    __slots__ = ("_cache", "_models")

    def __init__(self, models: Sequence[type[ModelBase]]) -> None:
        self._models = [_ModelPaths(m) for m in models]
        self._cache: dict[tuple[PathSegment, ...], tuple[PathSegment, ...]] = {}

    def resolve(self, segments: tuple[PathSegment, ...]) -> tuple[PathSegment, ...]:
        """The stored path for ``segments``; `ValidationError` when no model declares it."""
        found = self._cache.get(segments)
        if found is None:
            found = self._resolve(segments)
            if len(self._cache) >= MAX_CACHED:
                self._cache.clear()
            self._cache[segments] = found
        return found

    def check(self, attrs: Iterable[Attr]) -> None:
        """Resolve every non-raw path (raises on the first undeclared one)."""
        for attr in attrs:
            if not attr.raw:
                self.resolve(attr.segments)

    def _resolve(self, segments: tuple[PathSegment, ...]) -> tuple[PathSegment, ...]:
        if len(self._models) == 1:
            return self._models[0].resolve(segments)
        results: dict[tuple[PathSegment, ...], list[str]] = {}
        errors: list[UnknownPath] = []
        for paths in self._models:
            try:
                results.setdefault(paths.resolve(segments), []).append(paths.name)
            except UnknownPath as error:
                errors.append(error)
        if len(results) == 1:
            return next(iter(results))
        names = ", ".join(p.name for p in self._models)
        if not results:
            raise UnknownPath(
                f"no model of this query ({names}) declares attribute path "
                f"{_show(segments)!r}: " + " | ".join(map(str, errors)),
                model=names,
                path=_show(segments),
                segment=errors[0].segment,
                closest=list(dict.fromkeys(n for e in errors for n in e.closest)),
            )
        shown = "; ".join(f"{_show(path)!r} by {', '.join(m)}" for path, m in results.items())
        raise ValidationError(
            f"attribute path {_show(segments)!r} is stored differently by the models of this "
            f"query ({shown}); name the stored attribute with Attr(..., raw=True)"
        )


def resolver(model: type[ModelBase]) -> PathResolver:
    """The model's cached resolver."""
    spec = model._spec()
    found: PathResolver | None = spec.paths
    if found is None:
        found = spec.paths = PathResolver([model])
    return found


# Pure memo keyed by the model classes of a read (no I/O result): shared by every connection,
# and bounded by the model combinations the program's code reads together.
_SHARED: dict[tuple[type[ModelBase], ...], PathResolver] = {}


def resolver_for(models: Iterable[type[ModelBase]]) -> PathResolver:
    """The resolver of one model, or a shared one for several (collections)."""
    key = tuple(dict.fromkeys(models))
    if len(key) == 1:
        return resolver(key[0])
    found = _SHARED.get(key)
    if found is None:
        if len(_SHARED) >= 256:
            _SHARED.clear()
        found = _SHARED[key] = PathResolver(key)
    return found


# -- typed field references ------------------------------------------------------------------


class _Recorder:
    """Stands in for a model instance in ``Model.attr(lambda o: ...)``: records the attribute
    and item accesses that make up the path."""

    __slots__ = ("_dm_path",)

    def __init__(self, path: tuple[PathSegment, ...]) -> None:
        object.__setattr__(self, "_dm_path", path)

    def __getattr__(self, name: str) -> _Recorder:
        if name.startswith("__") and name.endswith("__"):
            raise AttributeError(name)
        return _Recorder((*self._dm_path, name))

    def __getitem__(self, key: Any) -> _Recorder:
        if isinstance(key, bool) or not isinstance(key, int | str):
            raise ValidationError(f"a field reference takes an int index or a str key, not {key!r}")
        if isinstance(key, int) and key < 0:
            raise ValidationError(f"a field reference index must be >= 0, got {key}")
        return _Recorder((*self._dm_path, key))

    def __setattr__(self, name: str, value: Any) -> None:
        raise ValidationError("a field reference only reads attributes")

    def __bool__(self) -> bool:
        raise ValidationError(
            "a field reference only reads attributes: no conditions or operators in the lambda"
        )

    def __iter__(self) -> Any:
        raise ValidationError("a field reference only reads attributes; index lists with [n]")


def attr_of(model: type[MT], pick: Callable[[MT], T]) -> TypedAttr[T]:
    """A checked, typed path from a lambda over the model: ``lambda o: o.address.city``.

    The path is in Python names; it is checked now and mapped to stored names when rendered.
    """
    try:
        result: Any = pick(_Recorder(()))  # type: ignore[arg-type]
    except TypeError as error:
        raise ValidationError(
            f"{model.__name__}.attr(): the function must only read attributes and items of its "
            f"argument (lambda o: o.address.city), not compute with them ({error})"
        ) from error
    if not isinstance(result, _Recorder) or not result._dm_path:
        raise ValidationError(
            f"{model.__name__}.attr(): the function must return an attribute of its argument, "
            f"like lambda o: o.status (got {result!r})"
        )
    path = result._dm_path
    if not isinstance(path[0], str):
        raise ValidationError(f"{model.__name__}.attr(): a path starts with a field name")
    resolver(model).resolve(path)
    return TypedAttr(path)


def present(value: T | None) -> T:
    """Inside ``Model.attr(lambda o: ...)``: treat an optional value as present, so a type
    checker accepts ``lambda o: present(o.address).city`` for ``address: Address | None``.
    (At run time it returns its argument.)"""
    return value  # type: ignore[return-value]


# -- indexes ----------------------------------------------------------------------------------


def check_index_projection(
    table: Any, index: str, paths: PathResolver, attrs: Iterable[Attr]
) -> None:
    """Refuse projecting attributes that a global index does not hold (``KEYS_ONLY`` or an
    ``INCLUDE`` list): DynamoDB would return items without them. Local indexes fetch missing
    attributes from the table, so they accept any."""
    from dynamodel.modelling.table import GSI

    declared = next((i for i in table.indexes if i.name == index), None)
    if not isinstance(declared, GSI) or declared.projection == "ALL":
        return
    held = {*table.key_attributes(), *declared.pk_attributes, *declared.sk_attributes}
    if declared.projection != "KEYS_ONLY":
        held.update(declared.projection)
    for attr in attrs:
        top = attr.segments[0] if attr.raw else paths.resolve(attr.segments)[0]
        if top not in held:
            kind = (
                "KEYS_ONLY"
                if declared.projection == "KEYS_ONLY"
                else f"INCLUDE {list(declared.projection)}"
            )
            raise ValidationError(
                f"index {index!r} projects {kind}: it does not hold {top!r} (projected path "
                f"{_show(attr.segments)!r}), so the query would read items without it; query "
                "the table, or add the attribute to the index's projection"
            )
