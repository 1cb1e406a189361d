"""Pure request builders and single-item flows: get, put, update, delete.

Nothing here performs I/O: each ``*_flow`` yields `dynamodel.flows.Request` steps and
parses the responses it is sent back.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from .codec import Item
from .errors import ConditionFailed, ItemNotFound, ValidationError
from .expressions import (
    Attr,
    Condition,
    Placeholders,
    UpdateAction,
    Value,
    all_of,
    render_condition,
    render_projection,
    render_update,
)
from .flows import Flow, Request, call
from .model import Model, ModelSpec, index_attributes, key_attributes

if TYPE_CHECKING:
    pass

M = TypeVar("M", bound=Model)


def placeholders(spec: ModelSpec) -> Placeholders:
    """Placeholders that map a model's Python field names to stored names."""
    return Placeholders(spec.stored_names)


def _describe_key(key: Item) -> dict[str, Any]:
    return {name: next(iter(value.values())) for name, value in key.items()}


def get_request(
    model: type[Model],
    key: Item,
    consistent: bool = False,
    projection: Sequence[str] | None = None,
) -> Request:
    """GetItem parameters for a key."""
    spec = model._spec()
    params: dict[str, Any] = {"TableName": spec.table.physical_name, "Key": key}
    if consistent:
        params["ConsistentRead"] = True
    if projection:
        ph = placeholders(spec)
        params["ProjectionExpression"] = render_projection(projection, ph)
        ph.apply(params)
    return Request("get_item", params)


def get_flow(
    model: type[M],
    key_fields: Mapping[str, Any],
    consistent: bool,
    projection: Sequence[str] | None,
    required: bool,
) -> Flow[M | None]:
    """Read one item; None (or `ItemNotFound` when ``required``) if absent."""
    key = model.build_key(**key_fields)
    spec = model._spec()
    response = yield from call(
        get_request(model, key, consistent, projection), spec.table.connection.retry
    )
    item = response.get("Item")
    if item is None:
        if required:
            raise ItemNotFound(
                f"{model.__name__} not found: {_describe_key(key)} in {spec.table.physical_name}",
                key=dict(key_fields),
            )
        return None
    return model.from_partial_item(item) if projection else model.from_item(item)


def not_exists_condition(instance: Model, condition: Condition | None) -> Condition:
    """``attribute_not_exists(<pk>)`` AND the user's condition."""
    table = instance._spec().table
    result = all_of(Attr((table.pk,), raw=True).not_exists(), condition)
    assert result is not None
    return result


def _add_condition(
    params: dict[str, Any], ph: Placeholders, condition: Condition | None
) -> dict[str, Any]:
    if condition is not None:
        params["ConditionExpression"] = render_condition(condition, ph, "ConditionExpression")
        params["ReturnValuesOnConditionCheckFailure"] = "ALL_OLD"
    return ph.apply(params)


def put_request(instance: Model, condition: Condition | None = None) -> Request:
    """PutItem parameters for a model instance."""
    if instance._dm_partial:
        raise ValidationError(
            f"{type(instance).__name__} was read with a projection; saving it would drop the "
            "attributes that were not read. Read it whole, or use update()."
        )
    spec = instance._spec()
    params: dict[str, Any] = {"TableName": spec.table.physical_name, "Item": instance.to_item()}
    return Request("put_item", _add_condition(params, placeholders(spec), condition))


def _with_current(error: ConditionFailed, model: type[Model]) -> ConditionFailed:
    if error.item:
        try:
            error.current = model.from_item(error.item)
        except Exception:  # the stored item may not parse; the raw item is still there
            error.current = None
    return error


def put_flow(instance: Model, condition: Condition | None) -> Flow[None]:
    """Write a whole item."""
    request = put_request(instance, condition)
    try:
        yield from call(request, instance._spec().table.connection.retry)
    except ConditionFailed as error:
        raise _with_current(error, type(instance)) from error.__cause__


def delete_request(model: type[Model], key: Item, condition: Condition | None) -> Request:
    """DeleteItem parameters (returns the old item)."""
    spec = model._spec()
    params: dict[str, Any] = {
        "TableName": spec.table.physical_name,
        "Key": key,
        "ReturnValues": "ALL_OLD",
    }
    return Request("delete_item", _add_condition(params, placeholders(spec), condition))


def delete_flow(model: type[M], key: Item, condition: Condition | None) -> Flow[M | None]:
    """Delete by key; return the deleted item parsed, or None if there was none."""
    request = delete_request(model, key, condition)
    try:
        response = yield from call(request, model._spec().table.connection.retry)
    except ConditionFailed as error:
        raise _with_current(error, model) from error.__cause__
    old = response.get("Attributes")
    return model.from_item(old) if old else None


_COMPUTED = object()


def _managed_attributes(spec: ModelSpec) -> set[str]:
    table = spec.table
    names = {table.pk, table.type_attribute}
    if table.sk:
        names.add(table.sk)
    for index in spec.indexes.values():
        names.add(index.pk_attr)
        if index.sk_attr:
            names.add(index.sk_attr)
    return names


def prepare_update(
    model: type[Model],
    known: Mapping[str, Any],
    actions: Sequence[UpdateAction],
    upsert: bool = False,
) -> list[UpdateAction]:
    """Check and complete update actions.

    Literal SET values on top-level fields are validated through the field's type; key fields
    and attributes dynamodel manages are refused; index keys built from changed fields are
    rewritten (or removed, keeping sparse indexes right). An upsert may create the item, so it
    also writes every index key that the known fields can render.
    """
    spec = model._spec()
    by_stored = {stored: name for name, stored in spec.stored_names.items()}
    managed = _managed_attributes(spec)
    out: list[UpdateAction] = []
    touched: dict[str, Any] = {}
    for action in actions:
        if not isinstance(action, UpdateAction):
            raise ValidationError(f"{action!r} is not an update action (use Attr(...).set(...))")
        top = action.attr.top
        field = top if (not action.attr.raw and top in spec.stored_names) else by_stored.get(top)
        if field is None and top in managed:
            raise ValidationError(
                f"{model.__name__}: attribute {top!r} is a key or type attribute managed by "
                "dynamodel; update the fields its template uses instead"
            )
        if field in spec.key_fields:
            raise ValidationError(
                f"{model.__name__}: field {field!r} is part of the primary key and cannot be "
                "updated; save a new item and delete the old one"
            )
        if field is not None and len(action.attr.segments) == 1:
            if action.kind == "SET" and isinstance(action.operand, Value):
                try:
                    value = spec.adapter(model, field).validate_python(action.operand.value)
                except Exception as exc:
                    raise ValidationError(f"{model.__name__}.{field}: {exc}") from exc
                if isinstance(value, set | frozenset) and not value:
                    # an empty set is not stored (DynamoDB has none): setting one removes it
                    action = UpdateAction("REMOVE", action.attr, None)
                else:
                    action = UpdateAction("SET", action.attr, Value(value))
                touched[field] = value
            elif action.kind == "REMOVE":
                touched[field] = None
            else:
                touched[field] = _COMPUTED
        out.append(action)
    out.extend(_index_actions(model, spec, known, touched, upsert))
    return out


def _index_actions(
    model: type[Model],
    spec: ModelSpec,
    known: Mapping[str, Any],
    touched: dict[str, Any],
    upsert: bool,
) -> list[UpdateAction]:
    actions: list[UpdateAction] = []
    merged = {**known, **touched}
    for index in spec.indexes.values():
        used = (index.pk.fields if index.pk else ()) + (index.sk.fields if index.sk else ())
        changed = [f for f in used if f in touched]
        if not changed:
            if upsert and all(merged.get(f) is not None for f in used):
                rendered = index_attributes(spec, merged, model.__name__, [index])
                actions.extend(
                    UpdateAction("SET", Attr((attr,), raw=True), Value(value["S"]))
                    for attr, value in rendered.items()
                )
            continue
        computed = [f for f in changed if touched[f] is _COMPUTED]
        if computed:
            raise ValidationError(
                f"{model.__name__}: index {index.name!r} keys use {computed}, which this update "
                "changes with an expression; set a plain value so the index key can be rewritten"
            )
        missing = [f for f in used if f not in merged]
        if missing:
            raise ValidationError(
                f"{model.__name__}: changing {changed} rewrites index {index.name!r} keys, which "
                f"also need {missing}; include them in the update (or update the instance)"
            )
        rendered = index_attributes(spec, merged, model.__name__, [index])
        attrs = [index.pk_attr] if index.pk is not None else []
        if index.sk is not None and index.sk_attr:
            attrs.append(index.sk_attr)
        for attr in attrs:
            target = Attr((attr,), raw=True)
            if attr in rendered:
                actions.append(UpdateAction("SET", target, Value(rendered[attr]["S"])))
            else:
                actions.append(UpdateAction("REMOVE", target, None))
    return actions


def update_request(
    model: type[Model],
    known: Mapping[str, Any],
    actions: Sequence[UpdateAction],
    condition: Condition | None,
    upsert: bool,
) -> Request:
    """UpdateItem parameters returning ALL_NEW."""
    spec = model._spec()
    table = spec.table
    key = key_attributes(spec, known, model.__name__, with_indexes=False)
    full = prepare_update(model, known, actions, upsert)
    full.append(UpdateAction("SET", Attr((table.type_attribute,), raw=True), Value(spec.entity)))
    if upsert:
        # a new item needs its key fields as attributes too (they never change, so SET is safe)
        for name in dict.fromkeys(spec.key_fields):
            stored = spec.stored_names[name]
            full.append(UpdateAction("SET", Attr((stored,), raw=True), Value(known[name])))
    ph = placeholders(spec)
    params: dict[str, Any] = {
        "TableName": table.physical_name,
        "Key": key,
        "UpdateExpression": render_update(full, ph),
        "ReturnValues": "ALL_NEW",
    }
    if not upsert:
        condition = all_of(Attr((table.pk,), raw=True).exists(), condition)
    return Request("update_item", _add_condition(params, ph, condition))


def update_flow(
    model: type[M],
    known: Mapping[str, Any],
    actions: Sequence[UpdateAction],
    condition: Condition | None,
    upsert: bool,
) -> Flow[M]:
    """Update an item and return it as stored afterwards."""
    request = update_request(model, known, actions, condition, upsert)
    try:
        response = yield from call(request, model._spec().table.connection.retry)
    except ConditionFailed as error:
        if not upsert and not error.item:
            key = _describe_key(request.params["Key"])
            raise ItemNotFound(f"{model.__name__} not found for update: {key}", key=key) from error
        raise _with_current(error, model) from error.__cause__
    return model.from_item(response["Attributes"])
