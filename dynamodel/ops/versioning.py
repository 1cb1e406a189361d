"""Optimistic locking: what a write of a versioned model expects of the stored version and
what it writes (`VersionCheck`), and the `VersionConflict` a failed check becomes.

`retry_on_conflict` (re-read, re-apply, re-save) is in `dynamodel.ops.locking`."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from dynamodel.core.codec import Item
from dynamodel.core.errors import ConditionFailed, ValidationError, VersionConflict
from dynamodel.core.expressions import (
    Attr,
    Condition,
    UpdateAction,
)
from dynamodel.modelling.base import ModelBase
from dynamodel.modelling.spec import ModelSpec


@dataclass(frozen=True, slots=True)
class VersionCheck:
    """What one write of a versioned model expects of the stored version, and what it writes.

    ``expected`` is the version the stored item must have (None: no version attribute, a new
    item); ``checked`` is False for writes that do not check it (``create``, whose
    ``attribute_not_exists(pk)`` suffices, forced updates and updates by key). ``new`` is the
    version the write stores; None with ``checked`` False on an update means "increment
    whatever is stored" (``if_not_exists(v, 0) + 1``), and None on a delete or condition check
    means nothing is written.
    """

    stored: str
    expected: int | None
    new: int | None = None
    checked: bool = True

    def condition(self) -> Condition | None:
        """``attribute_not_exists(v)`` or ``v = :expected`` (None when not checked)."""
        if not self.checked:
            return None
        attr = Attr((self.stored,), raw=True)
        return attr.not_exists() if self.expected is None else attr == self.expected

    def conflicts_with(self, item: Mapping[str, Any] | None) -> bool:
        """Whether a stored item (None: no item) fails this check."""
        return self.checked and stored_version(item, self.stored) != self.expected

    def update_action(self) -> UpdateAction:
        """The SET that writes the new version (or increments the stored one)."""
        attr = Attr((self.stored,), raw=True)
        if self.new is not None:
            return attr.set(self.new)
        return attr.set(attr.if_not_exists(0) + 1)


def stored_version(item: Mapping[str, Any] | None, stored: str) -> int | None:
    """The version number in a raw stored item (None: no item or no version attribute)."""
    value = (item or {}).get(stored)
    if not isinstance(value, dict) or "N" not in value:
        return None
    try:
        return int(value["N"])
    except ValueError:  # not an integer: never equal to an expected version
        return -1


def _expected(what: str, name: str, known: Mapping[str, Any]) -> int | None:
    """The version held in ``known`` as a write's expectation (0 and None: never saved)."""
    if name not in known:
        raise ValidationError(
            f"{what} was read without its version field {name!r}; include it in the "
            "projection (or pass force=True to write without the version check)"
        )
    value = known[name]
    if value is None or value == 0:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValidationError(f"{what}.{name}: a version must be an int >= 0, got {value!r}")
    return value


def instance_version(instance: ModelBase) -> int | None:
    """The version an instance was read with (None: never saved; 0 counts as never saved)."""
    name = instance._spec().version_field
    assert name is not None
    return _expected(type(instance).__name__, name, instance._known())


def _version_attr(spec: ModelSpec) -> str | None:
    name = spec.version_field
    return None if name is None else spec.stored_names[name]


def put_version(
    instance: ModelBase,
    *,
    create: bool = False,
    expected: int | Literal["instance"] | None = "instance",
) -> VersionCheck | None:
    """The version check of a put: expect the instance's version, write it plus one.

    ``create`` writes version 1 and leaves the check to ``attribute_not_exists(pk)``;
    ``expected`` overrides the version the instance holds (a forced save adopts the stored one).
    """
    stored = _version_attr(instance._spec())
    if stored is None:
        return None
    if create:
        return VersionCheck(stored, None, new=1, checked=False)
    current = instance_version(instance) if expected == "instance" else expected
    return VersionCheck(stored, current, new=(current or 0) + 1)


def check_version(instance: ModelBase, *, force: bool = False) -> VersionCheck | None:
    """The version check of a delete or condition check on an instance (writes nothing)."""
    stored = _version_attr(instance._spec())
    if stored is None or force:
        return None
    return VersionCheck(stored, instance_version(instance))


def update_version(
    model: type[ModelBase], known: Mapping[str, Any], *, check: bool
) -> VersionCheck | None:
    """The version part of an update.

    ``check``: require the version in ``known`` (an instance's fields) and write it plus one.
    Otherwise (``force=True``, updates by key) increment the stored version without a check.
    """
    spec = model._spec()
    stored = _version_attr(spec)
    if stored is None:
        return None
    if not check:
        return VersionCheck(stored, None, new=None, checked=False)
    name = spec.version_field
    assert name is not None
    expected = _expected(model.__name__, name, known)
    return VersionCheck(stored, expected, new=(expected or 0) + 1)


def record_put(instance: ModelBase, item: Item, check: VersionCheck | None) -> None:
    """After a whole-item write of ``instance`` succeeded: record the version it wrote (works
    on frozen models too) and the item, the baseline of `Model.changed_fields`."""
    if check is not None and check.new is not None:
        name = instance._spec().version_field
        assert name is not None
        instance.__dict__[name] = check.new
        instance.__pydantic_fields_set__.add(name)
    instance._dm_stored(item)


def condition_error(
    error: ConditionFailed,
    model: type[ModelBase],
    key: Mapping[str, Any],
    version: VersionCheck | None,
) -> ConditionFailed:
    """A failed condition as `VersionConflict` when the version check failed, else with
    ``current`` parsed (the stored item decides which: its version is compared). ``key``
    describes the item in the message (key fields, or the rendered key)."""
    error = _with_current(error, model)
    if version is None or not version.conflicts_with(error.item):
        return error
    actual = stored_version(error.item, version.stored)
    found = (
        "no stored item"
        if error.item is None
        else ("no stored version" if actual is None else f"stored version {actual}")
    )
    wanted = "no stored version" if version.expected is None else f"version {version.expected}"
    conflict = VersionConflict(
        f"{model.__name__} {dict(key)}: version conflict: expected {wanted}, "
        f"found {found} ({error})",
        item=error.item,
        current=error.current,
        expected=version.expected,
        actual=actual,
    )
    conflict.retry_attempts = error.retry_attempts
    conflict.status = error.status
    return conflict


def _with_current(error: ConditionFailed, model: type[ModelBase]) -> ConditionFailed:
    if error.item:
        try:
            error.current = model.from_item(error.item)
        except Exception:  # the stored item may not parse; the raw item is still there
            error.current = None
    return error
