"""Unique constraints: ``Meta.unique = ("email",)`` keeps a field's values unique per entity.

The single-table recipe: each value in use is claimed by a **guard item** in the same table,
written in one TransactWriteItems with the item itself, so item and guards change together or
not at all (docs/unique.md).

* The guard's partition key is ``_dynamodel#unique#`` followed by the JSON array
  ``[entity, stored field name, value text]``: JSON is unambiguous, and no model key can start
  with ``_dynamodel`` (`dynamodel.core.keys.RESERVED_PREFIX`), so no user value can forge or collide
  with a guard (nor a guard with an item). Its sort key, on a table with one, is the constant
  ``_dynamodel#unique``. Its type attribute is ``_dynamodel:unique``: no model parses it.
* The guard records its owner (the owning item's rendered key, as JSON), so a guard is only
  ever released (deleted) by its owner, and re-claiming a guard one already owns succeeds.
* ``None`` has no guard (like SQL's NULL): any number of items may leave the field empty.

Everything here is pure: flows yield `dynamodel.core.flows.Request` steps (no boto3).
Loaded only by models that declare ``Meta.unique`` (and by writes of them).
"""

from __future__ import annotations

import enum
import json
import uuid
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from dynamodel.core.errors import (
    ConditionFailed,
    ItemNotFound,
    TransactionCanceled,
    UniqueConstraintViolation,
    ValidationError,
)
from dynamodel.core.keys import RESERVED_PREFIX, render_part
from dynamodel.modelling.constraints import MAX_ACTIONS, UNIQUE_TYPES
from dynamodel.ops import versioning

if TYPE_CHECKING:
    from dynamodel.core.codec import Item
    from dynamodel.core.expressions import Condition, UpdateAction
    from dynamodel.core.flows import Flow
    from dynamodel.modelling.base import ModelBase
    from dynamodel.ops.versioning import VersionCheck

M = TypeVar("M", bound="ModelBase")

#: guard partition keys start with it (then the JSON array [entity, field, value])
GUARD_PREFIX = RESERVED_PREFIX + "#unique#"
#: a guard's sort key, on a table that has one
GUARD_SK = RESERVED_PREFIX + "#unique"
#: a guard's type attribute: no model's entity can start with ``_dynamodel``
GUARD_TYPE = RESERVED_PREFIX + ":unique"
#: a guard's other attributes (diagnostics; ``OWNER`` also conditions claims and releases)
ENTITY, FIELD, VALUE, OWNER = "unique_entity", "unique_field", "unique_value", "unique_owner"
#: a write re-reads the stored item and tries again when a concurrent write changed its
#: unique values between the read and the transaction; after this many attempts it gives up
MAX_ATTEMPTS = 5
MAX_PK_BYTES = 2048


# -- declaration ------------------------------------------------------------------------------


# -- guard items ------------------------------------------------------------------------------


def value_text(model: type[ModelBase], field: str, value: Any) -> str | None:
    """The text a unique value is compared as (None: no value, no guard)."""
    if value is None:
        return None
    if isinstance(value, enum.Enum):
        value = value.value
    if isinstance(value, bool) or not isinstance(value, UNIQUE_TYPES):
        raise ValidationError(
            f"{model.__name__}.{field}: unique value {value!r} is not a str, int, UUID, date, "
            "datetime or Enum"
        )
    return render_part(value, "", sort=False, field=field)


def guard_key(model: type[ModelBase], field: str, text: str) -> Item:
    """The key of the guard of one value of one unique field."""
    spec = model._spec()
    table = spec.table
    body = json.dumps(
        [spec.entity, spec.stored_names[field], text], ensure_ascii=False, separators=(",", ":")
    )
    pk = GUARD_PREFIX + body
    size = len(pk.encode("utf-8"))
    if size > MAX_PK_BYTES:
        raise ValidationError(
            f"{model.__name__}.{field}: the unique value is {len(text.encode('utf-8'))} bytes; "
            f"its guard key would be {size} bytes, over DynamoDB's {MAX_PK_BYTES}-byte "
            "partition key limit. Nothing was sent"
        )
    key: Item = {table.pk: {"S": pk}}
    if table.sk:
        key[table.sk] = {"S": GUARD_SK}
    return key


def owner_text(key: Mapping[str, Any]) -> str:
    """An item's rendered key as the JSON text guards record as their owner."""
    plain = {name: next(iter(value.values())) for name, value in sorted(key.items())}
    return json.dumps(plain, ensure_ascii=False, separators=(",", ":"), sort_keys=True)


class _Guard:
    """One guard action of a write: claim (Put) or release (Delete) one value."""

    __slots__ = ("action", "field", "kind", "text")

    def __init__(
        self, model: type[ModelBase], kind: str, field: str, text: str, owner: str
    ) -> None:
        spec = model._spec()
        table = spec.table
        self.kind = kind
        self.field = field
        self.text = text
        key = guard_key(model, field, text)
        params: dict[str, Any] = {
            "TableName": table.physical_name,
            # claim a free value, or one this item owns already; release only one's own
            "ConditionExpression": "attribute_not_exists(#pk) OR #owner = :owner",
            "ExpressionAttributeNames": {"#pk": table.pk, "#owner": OWNER},
            "ExpressionAttributeValues": {":owner": {"S": owner}},
            "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
        }
        if kind == "claim":
            params["Item"] = {
                **key,
                table.type_attribute: {"S": GUARD_TYPE},
                ENTITY: {"S": spec.entity},
                FIELD: {"S": spec.stored_names[field]},
                VALUE: {"S": text},
                OWNER: {"S": owner},
            }
            self.action = {"Put": params}
        else:
            params["Key"] = key
            self.action = {"Delete": params}


def _guards(
    model: type[ModelBase],
    old: Mapping[str, str | None],
    new: Mapping[str, str | None],
    owner: str,
    foreign: set[tuple[str, str]],
) -> list[_Guard]:
    """Claims of the values that are new, releases of the ones that are gone (unchanged values
    need no action: the item's condition proves they are still the ones read). ``foreign``:
    (field, value) guards owned by another item, never released by this one."""
    out: list[_Guard] = []
    for field in new:
        before, after = old.get(field), new[field]
        if before == after:
            continue
        if after is not None:
            out.append(_Guard(model, "claim", field, after, owner))
        if before is not None and (field, before) not in foreign:
            out.append(_Guard(model, "release", field, before, owner))
    return out


# -- the stored item ----------------------------------------------------------------------------


def _read_flow(model: type[ModelBase], key: Item, whole: bool) -> Flow[Item | None]:
    """The stored item (consistent read; ``whole`` False: only what the checks need)."""
    from dynamodel.core.flows import Request, call
    from dynamodel.modelling.spec import check_entity

    spec = model._spec()
    table = spec.table
    params: dict[str, Any] = {"TableName": table.physical_name, "Key": key, "ConsistentRead": True}
    if not whole:
        names = [table.pk, table.type_attribute, *(spec.stored_names[f] for f in spec.unique)]
        if spec.version_field is not None:
            names.append(spec.stored_names[spec.version_field])
        names = list(dict.fromkeys(names))
        params["ProjectionExpression"] = ", ".join(f"#u{i}" for i in range(len(names)))
        params["ExpressionAttributeNames"] = {f"#u{i}": n for i, n in enumerate(names)}
    response = yield from call(Request("get_item", params))
    item: Item | None = response.get("Item")
    if item is not None:
        check_entity(model, spec, item)  # another entity's item: never overwritten silently
    return item


def _decoded(item: Mapping[str, Any], stored: str) -> Any:
    from dynamodel.core.codec import decode_item

    raw = item.get(stored)
    if raw is None or "NULL" in raw:
        return None
    return decode_item({stored: raw})[stored]


def stored_texts(
    model: type[ModelBase], item: Mapping[str, Any] | None, fields: Sequence[str]
) -> dict[str, str | None]:
    """The unique values of a raw stored item, as compared (None: absent)."""
    spec = model._spec()
    out: dict[str, str | None] = {}
    for field in fields:
        value = None if item is None else _decoded(item, spec.stored_names[field])
        if value is not None:
            try:
                value = spec.coerce(model, field, value)
            except Exception as exc:
                raise ValidationError(
                    f"{model.__name__}.{field}: the stored value {value!r} does not validate: {exc}"
                ) from exc
        out[field] = value_text(model, field, value)
    return out


def _stored_condition(
    model: type[ModelBase], item: Mapping[str, Any] | None, fields: Sequence[str]
) -> Condition:
    """The stored item is still as read: absent, or present with these unique attributes."""
    from dynamodel.core.expressions import Attr, all_of

    spec = model._spec()
    pk = Attr((spec.table.pk,), raw=True)
    if item is None:
        return pk.not_exists()
    parts: list[Condition | None] = [pk.exists()]
    for field in fields:
        stored = spec.stored_names[field]
        attr = Attr((stored,), raw=True)
        value = _decoded(item, stored)
        if value is None:  # absent, or stored as NULL
            parts.append(attr.not_exists() | attr.attribute_type("NULL"))
        else:
            parts.append(attr == value)
    result = all_of(*parts)
    assert result is not None
    return result


def _stale(
    model: type[ModelBase],
    error: ConditionFailed,
    read: Mapping[str, Any] | None,
    fields: Sequence[str],
    version: bool,
) -> bool:
    """Whether a failed item condition failed because the item changed since it was read (its
    presence or unique values; ``version``: its version too), so the write should be re-planned."""
    from dynamodel.ops.versioning import stored_version

    now = error.item or None
    if (now is None) != (read is None):
        return True
    if now is None or read is None:
        return False
    if version:
        attr = model._spec().stored_names[model._spec().version_field or ""]
        if stored_version(now, attr) != stored_version(read, attr):
            return True
    return stored_texts(model, now, fields) != stored_texts(model, read, fields)


# -- sending ------------------------------------------------------------------------------------

_SINGLE = {"Put": "put_item", "Update": "update_item", "Delete": "delete_item"}


def _send(
    model: type[ModelBase], kind: str, params: dict[str, Any], guards: list[_Guard]
) -> Flow[tuple[str, Any]]:
    """Write the item alone (no guard changes) or in a transaction with its guards.

    Returns ``("ok", response)``, ``("item", ConditionFailed)`` when the item's condition
    failed, or ``("claim"|"release", (guard, stored guard item))`` when a guard's did.
    """
    from dynamodel.core.flows import Request, call
    from dynamodel.ops.transactions import send_flow

    policy = None  # the running connection's
    if not guards:
        try:
            response = yield from call(Request(_SINGLE[kind], params), policy)
        except ConditionFailed as error:
            return "item", error
        return "ok", response
    body = {k: v for k, v in params.items() if k != "ReturnValues"}
    items = [{kind: body}, *(g.action for g in guards)]
    if len(items) > MAX_ACTIONS:
        raise ValidationError(
            f"{model.__name__}: this write needs {len(items)} transaction actions (the item and "
            f"{len(guards)} unique guards); DynamoDB allows {MAX_ACTIONS}"
        )
    # a fresh token per plan; send_flow resends the same request (and token) on retries
    request = Request(
        "transact_write_items", {"TransactItems": items, "ClientRequestToken": str(uuid.uuid4())}
    )
    try:
        yield from send_flow(request, policy)
    except TransactionCanceled as error:
        reasons = error.reasons
        first = reasons[0] if reasons else None
        if first is not None and first.code == "ConditionalCheckFailed":
            failed = ConditionFailed(
                f"transact_write_items: the condition on the {model.__name__} item failed "
                f"({error})",
                item=first.item,
            )
            failed.retry_attempts, failed.status = error.retry_attempts, error.status
            return "item", failed
        for guard, reason in zip(guards, reasons[1:], strict=False):
            if reason.code == "ConditionalCheckFailed":
                return guard.kind, (guard, reason.item)
        raise
    return "ok", None


def _violation(
    model: type[ModelBase], guard: _Guard, stored: Mapping[str, Any] | None
) -> Exception:
    owner: dict[str, Any] | None = None
    raw = (stored or {}).get(OWNER, {}).get("S")
    if raw:
        try:
            owner = json.loads(raw)
        except ValueError:
            owner = {"raw": raw}
    held = f" by the item {owner}" if owner else ""
    return UniqueConstraintViolation(
        f"{model.__name__}.{guard.field} = {guard.text!r} is already taken{held} "
        f"(Meta.unique: {model.__name__}.{guard.field} must be unique). Nothing was written",
        model=model.__name__,
        field=guard.field,
        value=guard.text,
        owner=owner,
    )


def _replan_or_raise(
    model: type[ModelBase],
    outcome: str,
    data: Any,
    stored: Mapping[str, Any] | None,
    fields: Sequence[str],
    forced: bool,
    foreign: set[tuple[str, str]],
    described: Mapping[str, Any],
    check: VersionCheck | None,
) -> None:
    """After a failed attempt: return when the write should be re-planned (the item changed
    since it was read, or an old value's guard belongs to another item: not ours to free, and
    recorded in ``foreign``); otherwise raise the error the failure means."""
    from dynamodel.modelling.spec import check_entity

    if outcome == "item":
        if _stale(model, data, stored, fields, forced):
            return
        if data.item:  # another entity's item: say so, naming both types
            check_entity(model, model._spec(), data.item)
        raise versioning.condition_error(data, model, described, check) from data.__cause__
    guard, held = data
    if outcome == "release":
        foreign.add((guard.field, guard.text))
        return
    raise _violation(model, guard, held)


def _gave_up(model: type[ModelBase], described: Mapping[str, Any]) -> ConditionFailed:
    return ConditionFailed(
        f"{model.__name__} {dict(described)}: gave up after {MAX_ATTEMPTS} attempts: concurrent "
        "writes kept changing the item's unique fields between the read and the write"
    )


# -- flows --------------------------------------------------------------------------------------


def create_flow(instance: ModelBase, condition: Condition | None) -> Flow[None]:
    """``create()``: the item Put (not-exists + version) and a claim per non-None value."""
    from dynamodel.ops import items as requests, versioning

    model = type(instance)
    spec = model._spec()
    inputs = yield from requests.write_inputs_flow(spec, create=True)
    now = requests.inputs_now(inputs)
    condition = requests.not_exists_condition(instance, condition, now)
    version = versioning.put_version(instance, create=True)
    rng = requests.inputs_random(inputs)
    request, check = requests.build_put(instance, condition, version, now=now, rng=rng)
    item = request.params["Item"]
    key = {a: item[a] for a in (spec.table.pk, spec.table.sk) if a}
    owner = owner_text(key)
    new = {f: value_text(model, f, instance.__dict__.get(f)) for f in spec.unique}
    guards = _guards(model, {}, new, owner, set())
    described = requests.key_fields(spec, instance.__dict__)
    yield from requests.guard_shards([model], write=True, inputs=inputs)
    outcome, data = yield from _send(model, "Put", request.params, guards)
    if outcome == "item":
        raise versioning.condition_error(data, model, described, check) from data.__cause__
    if outcome != "ok":
        raise _violation(model, *data)
    versioning.record_put(instance, request.params["Item"], check)


def save_flow(instance: ModelBase, condition: Condition | None, force: bool) -> Flow[None]:
    """``save()``: read the stored unique values, then Put the item conditioned on them (and
    the usual version check), claiming new values and releasing replaced ones."""
    from dynamodel.core.expressions import all_of
    from dynamodel.ops import items as requests, versioning

    model = type(instance)
    spec = model._spec()
    if instance.__pydantic_private__ and instance._dm_partial:
        requests.build_put(instance)  # raises: a partial instance cannot be saved
    inputs = yield from requests.write_inputs_flow(spec)
    now, rng = requests.inputs_now(inputs), requests.inputs_random(inputs)
    if rng is not None:
        instance._dm_draw_shards(rng)  # a new item's random shards, before its key is read
    key = instance.item_key()
    owner = owner_text(key)
    new = {f: value_text(model, f, instance.__dict__.get(f)) for f in spec.unique}
    described = requests.key_fields(spec, instance.__dict__)
    forced = force and spec.version_field is not None
    foreign: set[tuple[str, str]] = set()
    yield from requests.guard_shards([model], write=True, inputs=inputs)
    # an instance read from the table (or written by itself) knows what was stored: the first
    # attempt trusts it, saving the read; a stale one fails the item condition and is re-read
    known = None if instance._dm_partial else instance._dm_loaded
    for _ in range(MAX_ATTEMPTS):
        stored: Item | None
        if known is not None:
            stored, known = dict(known), None
        else:
            stored = yield from _read_flow(model, key, whole=False)
        old = stored_texts(model, stored, spec.unique)
        version: VersionCheck | str | None = "auto"
        if forced:
            attr = spec.stored_names[spec.version_field or ""]
            version = versioning.put_version(
                instance, expected=versioning.stored_version(stored, attr)
            )
        cond = all_of(_stored_condition(model, stored, spec.unique), condition)
        request, check = requests.build_put(
            instance,
            cond,
            version,  # type: ignore[arg-type]
            now=now,
            rng=rng,
        )
        guards = _guards(model, old, new, owner, foreign)
        outcome, data = yield from _send(model, "Put", request.params, guards)
        if outcome == "ok":
            versioning.record_put(instance, request.params["Item"], check)
            return
        _replan_or_raise(
            model, outcome, data, stored, spec.unique, forced, foreign, described, check
        )
    raise _gave_up(model, described)


def update_flow(
    model: type[M],
    known: Mapping[str, Any],
    actions: Sequence[UpdateAction],
    condition: Condition | None,
    upsert: bool,
    version: Any,
    changes: Mapping[str, Any],
) -> Flow[M]:
    """``update()`` / ``update_item()`` that set or remove unique fields (``changes``: what
    `touched` found in ``actions``): read their stored values, then Update conditioned on
    them, claiming new values and releasing old ones; the updated item is read back (a
    transaction returns no values). The `Model` facade sends other updates to the plain flow."""
    from dynamodel.core.expressions import all_of
    from dynamodel.modelling.item_keys import key_attributes
    from dynamodel.ops import items as requests

    spec = model._spec()
    fields = list(changes)
    new = {f: value_text(model, f, v) for f, v in changes.items()}
    key = key_attributes(spec, known, model.__name__, with_indexes=False)
    owner = owner_text(key)
    described = requests.key_fields(spec, known)
    foreign: set[tuple[str, str]] = set()
    inputs = yield from requests.write_inputs_flow(spec)
    now, rng = requests.inputs_now(inputs), requests.inputs_random(inputs)
    yield from requests.guard_shards([model], write=True, inputs=inputs)
    for _ in range(MAX_ATTEMPTS):
        stored = yield from _read_flow(model, key, whole=False)
        if stored is None and not upsert:
            raise ItemNotFound(f"{model.__name__} not found for update: {described}", key=described)
        old = stored_texts(model, stored, fields)
        cond = all_of(_stored_condition(model, stored, fields), condition)
        request, check = requests.build_update(
            model, known, actions, cond, upsert, version, now=now, rng=rng
        )
        guards = _guards(model, old, new, owner, foreign)
        outcome, data = yield from _send(model, "Update", request.params, guards)
        if outcome == "ok":
            if data is not None:  # no guard changed: UpdateItem returned the item
                return model.from_item(data["Attributes"])
            after = yield from _read_flow(model, key, whole=True)
            if after is None:
                raise ItemNotFound(
                    f"{model.__name__} {described} was updated, then deleted before it could be "
                    "read back",
                    key=described,
                )
            return model.from_item(after)
        _replan_or_raise(model, outcome, data, stored, fields, False, foreign, described, check)
    raise _gave_up(model, described)


def delete_flow(
    model: type[M],
    key: Item,
    condition: Condition | None,
    version: VersionCheck | None,
    described: Mapping[str, Any] | None,
    assumed: Item | None = None,
) -> Flow[M | None]:
    """``delete()`` / ``delete_item()``: Delete the item conditioned on its unique values and
    release their guards. ``assumed``: the item as the instance holds it (tried first, the
    stored item is read if it turns out stale); without it the item is read first. Returns the
    deleted item parsed (None: there was none)."""
    from dynamodel.core.expressions import all_of
    from dynamodel.ops import items as requests

    spec = model._spec()
    owner = owner_text(key)
    described = described if described is not None else _plain(key)
    fields = spec.unique
    new: dict[str, str | None] = dict.fromkeys(fields)
    foreign: set[tuple[str, str]] = set()
    yield from requests.guard_shards([model], write=True)
    stored: Item | None
    for _ in range(MAX_ATTEMPTS):
        if assumed is not None:
            stored, assumed = assumed, None
        else:
            stored = yield from _read_flow(model, key, whole=True)
        old = stored_texts(model, stored, fields)
        cond = all_of(_stored_condition(model, stored, fields), condition)
        request = requests.delete_request(model, key, cond, version)
        guards = _guards(model, old, new, owner, foreign)
        outcome, data = yield from _send(model, "Delete", request.params, guards)
        if outcome == "ok":
            old_item = data.get("Attributes") if data is not None else stored
            return model.from_item(old_item) if old_item else None
        _replan_or_raise(model, outcome, data, stored, fields, False, foreign, described, version)
    raise _gave_up(model, described)


def instance_delete_flow(
    instance: ModelBase, condition: Condition | None, force: bool
) -> Flow[None]:
    """``delete()``: the instance's unique values are tried first (no read)."""
    from dynamodel.ops import items as requests, versioning

    model = type(instance)
    version = versioning.check_version(instance, force=force)
    yield from requests.draw_shards(instance)  # a new random item's, by this connection
    key = instance.item_key()
    described = requests.key_fields(model._spec(), instance.__dict__)
    assumed = None if instance._dm_partial else instance.to_item()
    yield from delete_flow(model, key, condition, version, described, assumed)


def _plain(key: Item) -> dict[str, Any]:
    return {name: next(iter(value.values())) for name, value in key.items()}


# -- where guards cannot be kept ----------------------------------------------------------------
