"""Pure request builders and single-item flows: get, put, update, delete.

Nothing here performs I/O: each ``*_flow`` yields `dynamodel.core.flows.Request` steps and
parses the responses it is sent back.

Optimistic locking (``Meta.version``) is applied here: a `VersionCheck` describes what one
write expects of the stored version and what it writes, and `condition_error` turns a failed
check into `VersionConflict`.
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Literal, TypeVar

from dynamodel.core.codec import Item
from dynamodel.core.errors import ConditionFailed, ItemNotFound, ValidationError
from dynamodel.core.expressions import (
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
from dynamodel.core.flows import Flow, Inputs, Request, call, connection_inputs
from dynamodel.modelling.base import ModelBase
from dynamodel.modelling.item_keys import (
    index_attributes,
    key_attributes,
    missing_shards,
    random_sharded,
)
from dynamodel.modelling.paths import resolver
from dynamodel.modelling.spec import ModelSpec, check_entity
from dynamodel.modelling.stamps import stamp_instance, update_stamps
from dynamodel.modelling.table import Table
from dynamodel.modelling.ttl import expired_condition, is_expired
from dynamodel.ops.shard_guard import ShardChecks, checks_generation, guard_flow, trusted
from dynamodel.ops.versioning import (
    VersionCheck,
    condition_error,
    put_version,
    record_put,
    update_version,
)

M = TypeVar("M", bound=ModelBase)


def placeholders(owner: type[ModelBase] | ModelSpec) -> Placeholders:
    """Placeholders that check a model's paths and map them to stored names (modelling.paths)."""
    if isinstance(owner, ModelSpec):
        spec = owner
        paths = spec.paths or resolver(spec.table.entities[spec.entity])
    else:
        spec = owner._spec()
        paths = spec.paths or resolver(owner)
    return Placeholders(spec.stored_names, paths=paths)


def _describe_key(key: Item) -> dict[str, Any]:
    return {name: next(iter(value.values())) for name, value in key.items()}


def key_fields(spec: ModelSpec, values: Mapping[str, Any]) -> dict[str, Any]:
    """The key fields (Python names) among ``values``, for messages."""
    return {name: values[name] for name in dict.fromkeys(spec.key_fields) if name in values}


_ALL_SLOTS: Any = object()


def guard_shards(
    models: Iterable[type[ModelBase]],
    *,
    write: bool,
    index: str | None = _ALL_SLOTS,
    inputs: Inputs | None = None,
) -> Flow[None]:
    """Check the table's shard records for these models' partition keys (once per connection:
    see `dynamodel.ops.shard_guard.guard_flow`); ``index``: only that partition key (None: the
    table's), default every one. The connection running the flow lends its memory of the
    checks made (one step, no request, once a model is checked); ``inputs``: its answer, when
    the flow already asked for it (so it is asked once)."""
    for model in dict.fromkeys(models):
        spec = model._spec()
        if spec.period_field is not None:
            continue  # never sharded (refused when declared): its tables hold no shard records
        table_name = spec.table.physical_name
        if trusted(spec):
            continue  # declared good for every connection (stub clients in tests)
        if inputs is None:
            inputs = yield from connection_inputs()
        checks = inputs.memo("shard_checks", ShardChecks)
        if checks.model_checked(spec, table_name):
            continue  # every key of the model was checked on this connection: the hot path
        slot = index
        if index is not _ALL_SLOTS and index is not None:
            templates = spec.indexes.get(index)
            if templates is not None and templates.pk is None:
                slot = None  # a local index: the table's partition key
        slots = [s for s in spec.guard_slots() if slot is _ALL_SLOTS or s[0] == slot]
        if slots:
            generation = checks_generation()
            complete = yield from guard_flow(
                spec.table,
                spec.entity,
                model.__name__,
                slots,
                write=write,
                retry=None,  # the running connection's policy
                checks=checks,
                clock=inputs.clock,
            )
            if complete and len(slots) == len(spec.guard_slots()):
                checks.mark_model(spec, table_name, generation)


def hides_expired(table: Table) -> bool:
    """Whether reads of ``table`` hide expired items (and ``create`` overwrites them)."""
    return bool(table.ttl and table.hide_expired)


def expired(table: Table, item: Item, now: dt.datetime) -> bool:
    """Whether reads of ``table`` should hide this raw item as expired at ``now`` (see
    `Table.ttl`)."""
    return bool(table.ttl and table.hide_expired and is_expired(item, table.ttl, now))


def write_inputs(spec: ModelSpec, *, create: bool = False) -> bool:
    """Whether a write of this model needs the `Inputs` of its connection before building
    its request: a clock for ``Meta.timestamps`` (or, for ``create``, for the "an expired
    item counts as absent" condition of a table hiding expired items), a random source for
    randomly sharded keys. A plain model needs none (no extra step)."""
    return (
        spec.created_field is not None
        or spec.updated_field is not None
        or (create and hides_expired(spec.table))
        or (spec.sharded and random_sharded(spec))
    )


def write_inputs_flow(spec: ModelSpec, *, create: bool = False) -> Flow[Inputs | None]:
    """The connection's `Inputs` when `write_inputs` says the write needs them (one step),
    else None (no step): ``inputs = yield from write_inputs_flow(spec)``."""
    if not write_inputs(spec, create=create):
        return None
    return (yield from connection_inputs())


def inputs_now(inputs: Inputs | None) -> dt.datetime | None:
    """The time by the connection's clock (aware, UTC); None without inputs."""
    return None if inputs is None else inputs.now()


def inputs_random(inputs: Inputs | None) -> random.Random | None:
    """The connection's random source; None without inputs."""
    return None if inputs is None else inputs.random


def expired_now(table: Table, item: Item) -> Flow[bool]:
    """`expired` by the clock of the connection running the flow (asked only when ``table``
    hides expired items): ``if (yield from expired_now(table, item)): ...``."""
    if not hides_expired(table):
        return False
    inputs = yield from connection_inputs()
    return expired(table, item, inputs.now())


def get_request(
    model: type[ModelBase],
    key: Item,
    consistent: bool = False,
    projection: Sequence[str | Attr] | None = None,
    values: Mapping[str, Any] | None = None,
) -> Request:
    """GetItem parameters for a key (``values``: its key fields, which route a model with
    per-period tables to its period's table)."""
    spec = model._spec()
    params: dict[str, Any] = {"TableName": spec.table_name(values or {}), "Key": key}
    if consistent:
        params["ConsistentRead"] = True
    if projection:
        ph = placeholders(model)
        params["ProjectionExpression"] = render_projection(projection, ph)
        ph.apply(params)
    return Request("get_item", params)


def get_flow(
    model: type[M],
    key_fields: Mapping[str, Any],
    consistent: bool,
    projection: Sequence[str | Attr] | None,
    required: bool,
) -> Flow[M | None]:
    """Read one item; None (or `ItemNotFound` when ``required``) if absent."""
    key = model.build_key(**key_fields)
    spec = model._spec()
    # refusals before any request
    request = get_request(model, key, consistent, projection, key_fields)
    yield from guard_shards([model], write=False, index=None)
    response = yield from call(request)
    item = response.get("Item")
    if item is not None and (yield from expired_now(spec.table, item)):
        item = None  # DynamoDB has not deleted it yet; treat it as gone
    if item is None:
        if required:
            raise ItemNotFound(
                f"{model.__name__} not found: {_describe_key(key)} in "
                f"{request.params['TableName']}",
                key=dict(key_fields),
            )
        return None
    return model.from_partial_item(item) if projection else model.from_item(item)


# -- optimistic locking -------------------------------------------------------------------


def not_exists_condition(
    instance: ModelBase, condition: Condition | None, now: dt.datetime | None = None
) -> Condition:
    """``attribute_not_exists(<pk>)`` AND the user's condition.

    On a table whose reads hide expired items (``ttl`` with ``hide_expired``), an expired item
    that DynamoDB has not deleted yet counts as absent here too:
    ``(attribute_not_exists(<pk>) OR (attribute_type(<ttl>, N) AND <ttl> < :now))``, with
    ``now`` the time by the clock of the connection writing it (needed only on such a table).
    """
    table = instance._spec().table
    absent = Attr((table.pk,), raw=True).not_exists()
    if table.ttl and table.hide_expired:
        if now is None:
            raise TypeError(f"{table.name} hides expired items: the create condition needs now=")
        absent = absent | expired_condition(table.ttl, now)
    result = all_of(absent, condition)
    assert result is not None
    return result


def _add_condition(
    params: dict[str, Any], ph: Placeholders, condition: Condition | None
) -> dict[str, Any]:
    if condition is not None:
        params["ConditionExpression"] = render_condition(condition, ph, "ConditionExpression")
        params["ReturnValuesOnConditionCheckFailure"] = "ALL_OLD"
    return ph.apply(params)


def build_put(
    instance: ModelBase,
    condition: Condition | None = None,
    version: VersionCheck | Literal["auto"] | None = "auto",
    *,
    now: dt.datetime | None = None,
    rng: random.Random | None = None,
) -> tuple[Request, VersionCheck | None]:
    """PutItem parameters for a model instance, with its version check (``"auto"``: the
    instance's version is expected and the next one written). ``now``: the time
    ``Meta.timestamps`` writes (required by a model with timestamps); ``rng``: where a new
    item's random shards are drawn from (operations pass their connection's)."""
    if instance.__pydantic_private__ and instance._dm_partial:  # no private state: not partial
        raise ValidationError(
            f"{type(instance).__name__} was read with a projection; saving it would drop the "
            "attributes that were not read. Read it whole, or use update()."
        )
    spec = type(instance).__dict__.get("__dynamodel__") or instance._spec()  # the hot path
    if version == "auto":
        version = put_version(instance) if spec.version_field is not None else None
    if spec.created_field is not None or spec.updated_field is not None:
        if now is None:
            raise TypeError(f"{type(instance).__name__} has Meta.timestamps: pass now=")
        stamp_instance(instance, now)
    if rng is not None and spec.sharded:
        instance._dm_draw_shards(rng)
    item = instance.to_item()
    if version is not None:
        assert version.new is not None
        item[version.stored] = {"N": str(version.new)}
        condition = all_of(version.condition(), condition)
    params: dict[str, Any] = {"TableName": spec.table_name(instance.__dict__), "Item": item}
    if condition is None:
        return Request("put_item", params), version
    ph = placeholders(type(instance))
    return Request("put_item", _add_condition(params, ph, condition)), version


def put_request(
    instance: ModelBase,
    condition: Condition | None = None,
    version: VersionCheck | Literal["auto"] | None = "auto",
    *,
    now: dt.datetime | None = None,
    rng: random.Random | None = None,
) -> Request:
    """PutItem parameters for a model instance (see `build_put`)."""
    return build_put(instance, condition, version, now=now, rng=rng)[0]


def put_flow(
    instance: ModelBase,
    condition: Condition | None,
    version: VersionCheck | Literal["auto"] | None = "auto",
    *,
    create: bool = False,
) -> Flow[None]:
    """Write a whole item; a versioned instance gets the version it was written with.
    ``create``: only if no item has its key (`not_exists_condition`, added here).

    The connection's `Inputs` are asked once, and only when the write needs them (see
    `write_inputs`): its clock stamps ``Meta.timestamps`` and dates the create condition, its
    random source draws a new item's random shards."""
    spec = instance._spec()
    inputs = yield from write_inputs_flow(spec, create=create)
    now = inputs_now(inputs)
    if create:
        condition = not_exists_condition(instance, condition, now)
    request, check = build_put(instance, condition, version, now=now, rng=inputs_random(inputs))
    yield from guard_shards([type(instance)], write=True, inputs=inputs)
    try:
        yield from call(request)
    except ConditionFailed as error:
        key = key_fields(instance._spec(), instance.__dict__)
        raise condition_error(error, type(instance), key, check) from error.__cause__
    record_put(instance, request.params["Item"], check)


def draw_shards(instance: ModelBase, inputs: Inputs | None = None) -> Flow[Inputs | None]:
    """Draw the random shards a new item still lacks (see `dynamodel.modelling.sharding`) from
    the random source of the connection running the flow (``inputs``, else asked only when a
    shard is missing); a seeded ``Connection(random=...)`` makes the choice deterministic.
    Returns the inputs it had or asked for (None: none)."""
    spec = instance._spec()
    if not spec.sharded or instance._dm_partial:
        return inputs  # a partial item's shard is refused as unknown where its key is rendered
    if missing_shards(spec, instance._dm_shards):
        if inputs is None:
            inputs = yield from connection_inputs()
        instance._dm_draw_shards(inputs.random)
    return inputs


def same_entity_condition(spec: ModelSpec) -> Condition:
    """The stored item, if any, is this entity (or has no type attribute): updates and deletes
    by key never change or remove another entity's item that renders the same key."""
    stored = Attr((spec.table.type_attribute,), raw=True)
    return stored.not_exists() | (stored == spec.entity)


def delete_request(
    model: type[ModelBase],
    key: Item,
    condition: Condition | None,
    version: VersionCheck | None = None,
    values: Mapping[str, Any] | None = None,
) -> Request:
    """DeleteItem parameters (returns the old item); ``version`` adds the version check;
    ``values``: the key fields (they route per-period tables)."""
    spec = model._spec()
    params: dict[str, Any] = {
        "TableName": spec.table_name(values or {}),
        "Key": key,
        "ReturnValues": "ALL_OLD",
    }
    condition = all_of(
        same_entity_condition(spec), version.condition() if version else None, condition
    )
    return Request("delete_item", _add_condition(params, placeholders(model), condition))


def delete_flow(
    model: type[M],
    key: Item,
    condition: Condition | None,
    version: VersionCheck | None = None,
    described: Mapping[str, Any] | None = None,
) -> Flow[M | None]:
    """Delete by key; return the deleted item parsed, or None if there was none.

    ``described`` names the item in error messages (default: the rendered key). A model with
    unique fields goes through `dynamodel.ops.unique.delete_flow` instead (see `Model`)."""
    request = delete_request(model, key, condition, version, described)
    yield from guard_shards([model], write=True)
    try:
        response = yield from call(request)
    except ConditionFailed as error:
        if error.item:  # another entity's item: say so, naming both types
            check_entity(model, model._spec(), error.item)
        described = described if described is not None else _describe_key(key)
        raise condition_error(error, model, described, version) from error.__cause__
    old = response.get("Attributes")
    return model.from_item(old) if old else None


_COMPUTED = object()


def prepare_update(
    model: type[ModelBase],
    known: Mapping[str, Any],
    actions: Sequence[UpdateAction],
    upsert: bool = False,
    rng: random.Random | None = None,
) -> list[UpdateAction]:
    """Check and complete update actions.

    Literal SET values on top-level fields are validated through the field's type; key fields
    and attributes dynamodel manages are refused; index keys built from changed fields are
    rewritten (or removed, keeping sparse indexes right). An upsert may create the item, so it
    also writes every index key that the known fields can render.
    """
    spec = model._spec()
    by_stored = {stored: name for name, stored in spec.stored_names.items()}
    managed = spec.managed_attributes
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
        if field is not None and field == spec.version_field:
            raise ValidationError(
                f"{model.__name__}: field {field!r} is the optimistic-locking version; "
                "dynamodel sets it on every write"
            )
        if field is not None and len(action.attr.segments) == 1:
            if action.kind == "SET" and isinstance(action.operand, Value):
                try:
                    adapter = spec.adapter(model, field)
                    value = adapter.validate_python(action.operand.value)
                except Exception as exc:
                    raise ValidationError(f"{model.__name__}.{field}: {exc}") from exc
                if isinstance(value, set | frozenset) and not value:
                    # an empty set is not stored (DynamoDB has none): setting one removes it
                    action = UpdateAction("REMOVE", action.attr, None)
                else:
                    # stored as the field serialises (a TTL field: epoch seconds)
                    stored = adapter.dump_python(value, by_alias=True)
                    action = UpdateAction("SET", action.attr, Value(stored))
                touched[field] = value
            elif action.kind == "REMOVE":
                touched[field] = None
            else:
                touched[field] = _COMPUTED
        out.append(action)
    out.extend(_index_actions(model, spec, known, touched, upsert, rng))
    return out


def _index_actions(
    model: type[ModelBase],
    spec: ModelSpec,
    known: Mapping[str, Any],
    touched: dict[str, Any],
    upsert: bool,
    rng: random.Random | None,
) -> list[UpdateAction]:
    actions: list[UpdateAction] = []
    merged = {**known, **touched}
    for index in spec.indexes.values():
        used = (index.pk.fields if index.pk else ()) + (index.sk.fields if index.sk else ())
        used += index.shards.fields if index.shards else ()
        changed = [f for f in used if f in touched]
        if not changed:
            if upsert and all(merged.get(f) is not None for f in used):
                rendered = index_attributes(spec, merged, model.__name__, [index], rng=rng)
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
        rendered = index_attributes(spec, merged, model.__name__, [index], rng=rng)
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


def build_update(
    model: type[ModelBase],
    known: Mapping[str, Any],
    actions: Sequence[UpdateAction],
    condition: Condition | None,
    upsert: bool,
    version: VersionCheck | Literal["auto"] | None = "auto",
    *,
    now: dt.datetime | None = None,
    rng: random.Random | None = None,
) -> tuple[Request, VersionCheck | None]:
    """UpdateItem parameters returning ALL_NEW, with the version part of the update.

    ``version="auto"`` checks the version when ``known`` holds it (an instance's fields) and
    otherwise increments the stored version unchecked (an update by key). ``now``: the time
    ``Meta.timestamps`` writes (required by a model with timestamps); ``rng``: where a
    rewritten random index key draws its shard (operations pass their connection's).
    """
    spec = model._spec()
    table = spec.table
    if version == "auto":
        version = update_version(model, known, check=spec.version_field in known)
    key = key_attributes(spec, known, model.__name__, with_indexes=False)
    stamps, created = update_stamps(spec, actions, upsert, now)
    full = prepare_update(model, known, [*actions, *stamps] if stamps else actions, upsert, rng)
    full.extend(created)
    full.append(UpdateAction("SET", Attr((table.type_attribute,), raw=True), Value(spec.entity)))
    if version is not None:
        full.append(version.update_action())
    if upsert:
        # a new item needs its key fields as attributes too (they never change, so SET is safe)
        for name in dict.fromkeys(spec.key_fields):
            stored = spec.stored_names[name]
            full.append(UpdateAction("SET", Attr((stored,), raw=True), Value(known[name])))
    ph = placeholders(model)
    params: dict[str, Any] = {
        "TableName": spec.table_name(known),
        "Key": key,
        "UpdateExpression": render_update(full, ph),
        "ReturnValues": "ALL_NEW",
    }
    checks = [same_entity_condition(spec), version.condition() if version else None, condition]
    if not upsert:
        checks.insert(0, Attr((table.pk,), raw=True).exists())
    return Request("update_item", _add_condition(params, ph, all_of(*checks))), version


def update_request(
    model: type[ModelBase],
    known: Mapping[str, Any],
    actions: Sequence[UpdateAction],
    condition: Condition | None,
    upsert: bool,
    version: VersionCheck | Literal["auto"] | None = "auto",
    *,
    now: dt.datetime | None = None,
    rng: random.Random | None = None,
) -> Request:
    """UpdateItem parameters returning ALL_NEW (see `build_update`)."""
    return build_update(model, known, actions, condition, upsert, version, now=now, rng=rng)[0]


def update_flow(
    model: type[M],
    known: Mapping[str, Any],
    actions: Sequence[UpdateAction],
    condition: Condition | None,
    upsert: bool,
    version: VersionCheck | Literal["auto"] | None = "auto",
) -> Flow[M]:
    """Update an item and return it as stored afterwards. An update of a model's unique field
    goes through `dynamodel.ops.unique.update_flow` instead (see `Model`). The connection's
    `Inputs` are asked once, only when needed (`write_inputs`: timestamps, random shards)."""
    inputs = yield from write_inputs_flow(model._spec())
    request, check = build_update(
        model,
        known,
        actions,
        condition,
        upsert,
        version,
        now=inputs_now(inputs),
        rng=inputs_random(inputs),
    )
    yield from guard_shards([model], write=True, inputs=inputs)
    try:
        response = yield from call(request)
    except ConditionFailed as error:
        if error.item:  # another entity's item: say so, naming both types
            check_entity(model, model._spec(), error.item)
        described = key_fields(model._spec(), known)
        if not upsert and not error.item:
            raise ItemNotFound(
                f"{model.__name__} not found for update: {described}", key=described
            ) from error
        raise condition_error(error, model, described, check) from error.__cause__
    return model.from_item(response["Attributes"])
