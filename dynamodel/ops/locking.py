"""Optimistic locking helpers: the read-modify-write retry loop and forced saves.

A model opts in with ``Meta.version = "<int field>"``; the version checks themselves are
built in `dynamodel.ops.items` (`VersionCheck`). This module holds the multi-step work, as
flows shared by the sync and async APIs:

* `retry_on_conflict` / `aretry_on_conflict`: read an item, apply a function, save it with
  the version check; on `VersionConflict` reapply the function: first at once to the item
  DynamoDB returned with the conflict, then after jittered backoffs to a fresh read, up to
  ``attempts`` times.
* `force_put_flow`: ``save(force=True)``: overwrite whatever is stored while keeping the
  version sequence monotonic (adopt the stored version on conflict and write again).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, TypeVar

from dynamodel.core.errors import ValidationError, VersionConflict
from dynamodel.core.expressions import Condition
from dynamodel.core.flows import Flow, Sleep, connection_policy
from dynamodel.core.retry import RetryPolicy
from dynamodel.modelling.base import ModelBase
from dynamodel.modelling.item_keys import coerce_fields
from dynamodel.ops.items import get_flow, put_flow
from dynamodel.ops.versioning import instance_version, put_version

if TYPE_CHECKING:
    from dynamodel.io.clients import Connection
    from dynamodel.model import Model

M = TypeVar("M", bound="Model")

#: default number of read-modify-write cycles (and forced-save attempts) before giving up
DEFAULT_ATTEMPTS = 10


def _check_attempts(attempts: int) -> None:
    if isinstance(attempts, bool) or not isinstance(attempts, int) or attempts < 1:
        raise ValidationError(f"attempts must be an int >= 1, got {attempts!r}")


def retry_flow(
    model: type[M],
    target: Mapping[str, Any] | M,
    fn: Callable[[M], M | None],
    attempts: int = DEFAULT_ATTEMPTS,
    policy: RetryPolicy | None = None,
) -> Flow[M]:
    """The read-modify-write loop behind `retry_on_conflict` (a flow: no I/O here)."""
    spec = model._spec()
    version_field = spec.version_field
    if version_field is None:
        raise ValidationError(
            f"{model.__name__} has no version field: retry_on_conflict needs Meta.version "
            "(without it a save cannot detect a concurrent write)"
        )
    _check_attempts(attempts)
    if not callable(fn):
        raise ValidationError(f"retry_on_conflict: fn must be callable, got {fn!r}")
    current: M | None
    if isinstance(target, ModelBase):
        if type(target) is not model:
            raise ValidationError(
                f"retry_on_conflict: got a {type(target).__name__} instance for {model.__name__}"
            )
        instance_version(target)  # refuses a partial instance without its version
        current = target.model_copy(deep=True)  # the caller's object is not modified
        key_fields = {name: target.__dict__[name] for name in spec.key_fields}
    else:
        key_fields = coerce_fields(model, target, spec.key_fields, "key")
        model.build_key(**key_fields)  # a missing or unrenderable key fails before any request
        current = None
    for attempt in range(1, attempts + 1):
        if current is None:
            current = yield from get_flow(model, key_fields, True, None, True)
            assert current is not None
        read_key = current.item_key()
        read_version = instance_version(current)
        result = fn(current)
        updated = current if result is None else result
        if type(updated) is not model:
            raise ValidationError(
                f"retry_on_conflict: fn must return a {model.__name__} (or None after changing "
                f"the instance in place), got {type(updated).__name__}"
            )
        if updated.item_key() != read_key:
            raise ValidationError(
                f"retry_on_conflict: fn changed the key of {model.__name__} "
                f"{read_key} -> {updated.item_key()}; the key cannot change"
            )
        if instance_version(updated) != read_version:
            raise ValidationError(
                f"retry_on_conflict: fn changed {model.__name__}.{version_field}; "
                "dynamodel manages the version"
            )
        try:
            yield from updated._save_flow(None, False)  # (a unique model's keeps its guards)
        except VersionConflict as conflict:
            if attempt == attempts:
                conflict.add_note(f"retry_on_conflict gave up after {attempts} attempts")
                raise
            if attempt == 1:
                # the winner's item came back with the conflict: as fresh as a read, so the
                # first retry reapplies fn to it at once (or reads, if it did not come back)
                current = conflict.current if type(conflict.current) is model else None
            else:
                # contended: back off, then read again (an item held across a sleep is stale)
                current = None
                policy = yield from connection_policy(policy)  # the running connection's
                yield Sleep(policy.backoff(attempt - 1))
            continue
        return updated
    raise AssertionError("unreachable")  # pragma: no cover


def retry_on_conflict(
    model: type[M],
    target: Mapping[str, Any] | M,
    fn: Callable[[M], M | None],
    *,
    attempts: int = DEFAULT_ATTEMPTS,
    policy: RetryPolicy | None = None,
    connection: Connection | None = None,
) -> M:
    """Read-modify-write a versioned item until no concurrent writer interferes.

    Reads the item (strongly consistent) by ``target``'s key fields, calls ``fn`` with it and
    saves the result with the version check. ``fn`` changes the instance in place and returns
    None, or returns a new instance of the same model and key (``model_copy(update=...)``); it
    may run several times, so it must not have side effects. After the first `VersionConflict`
    it is called again at once with the item DynamoDB returned with the conflict; after later
    ones, after a full-jitter backoff from ``policy`` (default: the running connection's),
    with the item read again. At most ``attempts`` saves are tried; then the last conflict is
    raised. ``target`` may also be an instance already read: the first attempt uses a copy of
    it instead of reading.

    Returns the saved instance (with its new version). Raises `ItemNotFound` when the item
    does not exist, and whatever ``fn`` raises (nothing is written then). ``connection``:
    where to send the requests (default: the scoped connection, else the table's; see
    `dynamodel.use_connection`).
    """
    from dynamodel.io.executors import run

    return run(retry_flow(model, target, fn, attempts, policy), model._conn(connection))


async def aretry_on_conflict(
    model: type[M],
    target: Mapping[str, Any] | M,
    fn: Callable[[M], M | None],
    *,
    attempts: int = DEFAULT_ATTEMPTS,
    policy: RetryPolicy | None = None,
    connection: Connection | None = None,
) -> M:
    """Async `retry_on_conflict` (``fn`` is a plain function, called between requests)."""
    from dynamodel.io.executors import arun

    return await arun(retry_flow(model, target, fn, attempts, policy), model._conn(connection))


def force_put_flow(
    instance: ModelBase,
    condition: Condition | None,
    attempts: int = DEFAULT_ATTEMPTS,
    policy: RetryPolicy | None = None,
) -> Flow[None]:
    """``save(force=True)`` on a versioned model: write whatever version is stored, plus one.

    The first put expects the instance's version; on `VersionConflict` the stored version
    (returned with the conflict) is adopted and the put sent again, so the stored versions
    only ever grow and every other holder of a stale copy still gets a conflict. A failing
    user ``condition`` raises `ConditionFailed` as usual.
    """
    _check_attempts(attempts)
    version = put_version(instance)
    for attempt in range(1, attempts + 1):
        try:
            yield from put_flow(instance, condition, version)
            return
        except VersionConflict as conflict:
            if attempt == attempts:
                conflict.add_note(f"save(force=True) gave up after {attempts} attempts")
                raise
            version = put_version(instance, expected=conflict.actual)
            if attempt > 1:  # the first retry uses a version just read: no need to wait
                policy = yield from connection_policy(policy)  # the running connection's
                yield Sleep(policy.backoff(attempt - 1))
