"""Automatic ``created``/``updated`` timestamps (``Meta.timestamps``).

A model opts in with ``Meta.timestamps = ("created_at", "updated_at")`` (either may be None),
naming ``datetime | None`` fields. Every write path sets them: whole-item writes (``save``,
``create``, batch puts, transaction puts) set ``updated`` and, when it is still None,
``created``; updates (``update``, ``update_item``, ``save_changes``, transaction updates) set
``updated`` and, when they may create the item (``upsert=True``), ``created`` if the stored
item has none. Values are timezone-aware UTC datetimes, stored as fixed-width ISO-8601 text
ending in ``Z`` (see `dynamodel.core.codec.format_datetime`), so they sort as strings.

The time written is always given (``now``): an operation takes it from the clock of the
connection it runs on (``Connection(clock=...)``), so a fake clock decides the timestamps.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from dynamodel.core.expressions import UpdateAction
    from dynamodel.modelling.base import ModelBase
    from dynamodel.modelling.spec import ModelSpec


def utc_now() -> dt.datetime:
    """The real time, timezone-aware, in UTC. Operations never use it: they stamp the time
    of their connection's clock (`dynamodel.core.flows.Inputs.now`); it is for code with no
    connection."""
    return dt.datetime.now(dt.UTC)


def stamp_instance(instance: ModelBase, now: dt.datetime) -> None:
    """Set a whole-item write's timestamps on the instance to ``now`` (``created`` only when
    None)."""
    spec = instance._spec()
    created, updated = spec.created_field, spec.updated_field
    if created is None and updated is None:
        return
    values = instance.__dict__
    for name in (created, updated):
        if name is not None and (name == updated or values.get(name) is None):
            values[name] = now  # __dict__: works on frozen models too, as versions do
            instance.__pydantic_fields_set__.add(name)


def update_stamps(
    spec: ModelSpec,
    actions: Sequence[UpdateAction],
    upsert: bool,
    now: dt.datetime | None,
) -> tuple[list[UpdateAction], list[UpdateAction]]:
    """The timestamp actions of an update, writing ``now`` (``updated`` SET, checked with the
    user's actions; ``created`` ``if_not_exists`` for an upsert, added after them). A field the
    user's actions already change is left to them. ``now`` may be None only for a model
    without timestamps."""
    created, updated = spec.created_field, spec.updated_field
    if created is None and updated is None:
        return [], []
    from dynamodel.core.expressions import Attr, IfNotExists, UpdateAction, Value

    if now is None:
        raise TypeError(f"{spec.entity} has Meta.timestamps: the update needs now=")
    touched = {a.attr.top for a in actions} if actions else set()
    stored = spec.stored_names
    first: list[UpdateAction] = []
    last: list[UpdateAction] = []
    if updated is not None and not touched & {updated, stored[updated]}:
        first.append(Attr(updated).set(now))
    if upsert and created is not None and not touched & {created, stored[created]}:
        attr = Attr((stored[created],), raw=True)
        last.append(UpdateAction("SET", attr, IfNotExists(attr, Value(now))))
    return first, last
