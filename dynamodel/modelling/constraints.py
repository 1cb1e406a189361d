"""Unique-field declarations (``Meta.unique``): checked when a model class is defined, and the
writes that cannot keep guard items (batches, transactions) refused before any request.

The guard-item flows themselves are in `dynamodel.ops.unique`."""

from __future__ import annotations

import datetime as _dt
import enum
import types
import typing
import uuid
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from dynamodel.core.errors import (
    ValidationError,
)

if TYPE_CHECKING:
    from dynamodel.modelling.base import ModelBase
    from dynamodel.modelling.spec import ModelSpec


MAX_ACTIONS = 100


#: the value types a unique field may have (their key text is exact; no float, no bool)
UNIQUE_TYPES = (str, int, uuid.UUID, _dt.date, enum.Enum)


def _type_problem(annotation: Any) -> str | None:
    """Why a field type cannot be unique (None: it can)."""
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _type_problem(typing.get_args(annotation)[0])
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        if len(args) != 1:
            return "a union of several types (their values could render the same text)"
        return _type_problem(args[0])
    if origin is typing.Literal:
        values = typing.get_args(annotation)
        if all(isinstance(v, str) for v in values) or all(
            isinstance(v, int) and not isinstance(v, bool) for v in values
        ):
            return None
        return "a Literal mixing types"
    if isinstance(annotation, type):
        if issubclass(annotation, bool) or issubclass(annotation, float):
            return f"{annotation.__name__} (not a key-like value)"
        if issubclass(annotation, UNIQUE_TYPES):
            return None
        if annotation.__name__ == "EmailStr" and annotation.__module__.startswith("pydantic"):
            return None  # pydantic's EmailStr validates to a str
    return f"{annotation!r}"


def declared_unique(cls: type[ModelBase], meta: Any, spec: ModelSpec) -> tuple[str, ...]:
    """Check ``Meta.unique`` (field names) at class definition; the names in order."""
    owner = cls.__name__
    raw = getattr(meta, "unique", None)
    if raw is None:
        return ()
    if isinstance(raw, str):
        raw = (raw,)
    if not isinstance(raw, list | tuple | set | frozenset):
        raise ValidationError(f"{owner}.Meta.unique must be a tuple of field names, got {raw!r}")
    names = tuple(raw)
    fields = cls.model_fields
    for name in names:
        if not isinstance(name, str) or name not in fields:
            raise ValidationError(
                f"{owner}.Meta.unique names {name!r}, which is not a field "
                f"(fields: {sorted(fields)})"
            )
        if name in spec.key_fields:
            raise ValidationError(
                f"{owner}.Meta.unique: {name!r} is a primary key field, unique already "
                "(the key identifies one item); list only non-key fields"
            )
        if name == spec.version_field:
            raise ValidationError(f"{owner}.Meta.unique: {name!r} is the version field")
        info = fields[name]
        annotation: Any = info.annotation
        problem = _type_problem(annotation)
        if problem is not None:
            raise ValidationError(
                f"{owner}.Meta.unique: field {name!r} has type {problem}; a unique field must "
                "be a str, int, UUID, date, datetime or Enum (optionally | None) so its value "
                "renders as exact key text"
            )
    if len(set(names)) != len(names):
        raise ValidationError(f"{owner}.Meta.unique names a field twice: {list(names)}")
    if 1 + 2 * len(names) > MAX_ACTIONS:
        raise ValidationError(
            f"{owner}.Meta.unique: {len(names)} fields; changing them all takes "
            f"{1 + 2 * len(names)} transaction actions (the item, a claim and a release each), "
            f"over DynamoDB's {MAX_ACTIONS}"
        )
    return names


def touched(model: type[ModelBase], actions: Sequence[Any]) -> dict[str, Any]:
    """The unique fields update ``actions`` set (to the validated value) or remove (None);
    a unique field changed by an expression is refused (its new value would be unknown)."""
    from dynamodel.core.expressions import UpdateAction, Value

    spec = model._spec()
    by_stored = {stored: name for name, stored in spec.stored_names.items()}
    out: dict[str, Any] = {}
    for action in actions:
        if not isinstance(action, UpdateAction):
            continue  # prepare_update refuses it
        top = action.attr.top
        field = top if (not action.attr.raw and top in spec.stored_names) else by_stored.get(top)
        if field is None or field not in spec.unique:
            continue
        if len(action.attr.segments) == 1 and action.kind == "REMOVE":
            out[field] = None
        elif (
            len(action.attr.segments) == 1
            and action.kind == "SET"
            and isinstance(action.operand, Value)
        ):
            try:
                out[field] = spec.adapter(model, field).validate_python(action.operand.value)
            except Exception as exc:
                raise ValidationError(f"{model.__name__}.{field}: {exc}") from exc
        else:
            raise ValidationError(
                f"{model.__name__}: unique field {field!r} can only be set to a plain value or "
                "removed by an update (its guard is claimed for the new value); "
                f"got {action!r}"
            )
    return out


def refuse(model: type[ModelBase], what: str, actions: Sequence[Any] | None = None) -> None:
    """Refuse a batch or transaction write of a model with unique fields (``actions``: an
    update, refused only when it changes one)."""
    spec = model._spec()
    if not spec.unique:
        return
    if actions is not None:
        changed = touched(model, actions)
        if not changed:
            return
        fields = list(changed)
    else:
        fields = list(spec.unique)
    raise ValidationError(
        f"{what}: {model.__name__} has unique fields {fields} (Meta.unique), whose guard items "
        f"this write cannot keep; use {model.__name__}'s own methods (save, create, update, "
        "delete), which write item and guards in one transaction. Nothing was sent"
    )
