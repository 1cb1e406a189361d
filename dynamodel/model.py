"""The `Model` base class: pydantic v2 models stored as items of a single table.

```python
class User(Model):
    class Meta:
        table = app_table
        entity = "User"                    # stored in the table's type attribute
        pk = "USER#{user_id}"
        sk = "PROFILE"
        indexes = {"gsi1": ("EMAIL#{email}", "USER")}

    user_id: str
    email: str
    display_name: str = Field(alias="dn")   # stored as "dn"
```

Operations are classmethods (``get``, ``query``, ``scan``, ``update_item``, ``delete_item``)
and instance methods (``save``, ``create``, ``update``, ``delete``), each with an ``a``-prefixed
async twin. They build requests with `dynamodel.ops.items` and run them with the executors.
"""

from __future__ import annotations

import typing
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal, Self, TypeVar

from dynamodel.core.errors import ValidationError
from dynamodel.io.scope import resolve_connection
from dynamodel.modelling.base import ModelBase
from dynamodel.modelling.item_keys import coerce_fields

if TYPE_CHECKING:
    from dynamodel.core.codec import Item
    from dynamodel.core.expressions import Attr, Condition, UpdateAction
    from dynamodel.core.flows import Flow
    from dynamodel.io.clients import Connection
    from dynamodel.ops.query import Query
    from dynamodel.ops.scan import Scan
    from dynamodel.ops.versioning import VersionCheck

M = TypeVar("M", bound=ModelBase)


class Model(ModelBase):
    """A pydantic v2 model stored as items of a single table (see the module docstring).

    `ModelBase` holds the declaration, state and serialisation; the operations below build
    flows (`dynamodel.ops`) and run them with an executor on the resolved connection."""

    def save_changes(
        self,
        *,
        condition: Condition | None = None,
        force: bool = False,
        connection: Connection | None = None,
    ) -> list[str]:
        """Write only the fields that changed since the item was read (an UpdateItem).

        Index keys built from changed fields are rewritten, a versioned model's version is
        checked and incremented (``force=True``: incremented only), ``Meta.timestamps``'s
        updated field is set. The item must still exist (`ItemNotFound` otherwise). Two
        processes changing different fields of one unversioned item both keep their change.
        Afterwards the instance holds the item as stored (other writers' changes included)
        and has no changes. Returns the fields written; with none, nothing is sent.
        """
        from dynamodel.io.executors import run

        return run(self._save_changes_flow(condition, force), self._conn(connection))

    async def asave_changes(
        self,
        *,
        condition: Condition | None = None,
        force: bool = False,
        connection: Connection | None = None,
    ) -> list[str]:
        """Async `save_changes`."""
        from dynamodel.io.executors import arun

        return await arun(self._save_changes_flow(condition, force), self._conn(connection))

    @classmethod
    def get(
        cls,
        *,
        consistent: bool = False,
        projection: Sequence[str | Attr] | None = None,
        connection: Connection | None = None,
        **key: Any,
    ) -> Self:
        """Read one item by its key fields; raise `ItemNotFound` if absent."""
        from dynamodel.io.executors import run
        from dynamodel.ops import items as requests

        found = run(
            requests.get_flow(cls, key, consistent, projection, True), cls._conn(connection)
        )
        assert found is not None
        return found

    @classmethod
    def get_or_none(
        cls,
        *,
        consistent: bool = False,
        projection: Sequence[str | Attr] | None = None,
        connection: Connection | None = None,
        **key: Any,
    ) -> Self | None:
        """Like `get` but returns None when there is no such item."""
        from dynamodel.io.executors import run
        from dynamodel.ops import items as requests

        return run(
            requests.get_flow(cls, key, consistent, projection, False), cls._conn(connection)
        )

    def save(
        self,
        *,
        condition: Condition | None = None,
        force: bool = False,
        connection: Connection | None = None,
    ) -> None:
        """Write the whole item (PutItem), optionally only if ``condition`` holds.

        On a versioned model (``Meta.version``) the write requires the stored version to be
        this instance's (none for a new item), stores the next one and records it on the
        instance; a lost race raises `VersionConflict`. ``force=True`` overwrites whatever
        version is stored (the stored version still increases).
        """
        from dynamodel.io.executors import run

        run(self._save_flow(condition, force), self._conn(connection))

    def create(
        self, *, condition: Condition | None = None, connection: Connection | None = None
    ) -> None:
        """Write the item only if no item with its key exists (else `ConditionFailed`).

        A versioned model is written with version 1 (recorded on the instance).
        """
        from dynamodel.io.executors import run

        run(self._create_flow(condition), self._conn(connection))

    def delete(
        self,
        *,
        condition: Condition | None = None,
        force: bool = False,
        connection: Connection | None = None,
    ) -> None:
        """Delete this item (optionally only if ``condition`` holds).

        On a versioned model the stored version must be this instance's (`VersionConflict`
        otherwise, also when the item is already gone); ``force=True`` skips that check.
        """
        from dynamodel.io.executors import run

        run(self._delete_flow(condition, force), self._conn(connection))

    def update(
        self,
        *actions: UpdateAction,
        condition: Condition | None = None,
        force: bool = False,
        connection: Connection | None = None,
    ) -> Self:
        """Apply update actions to this item and return the updated model (ALL_NEW).

        Index keys built from changed fields are rewritten; the item must exist. On a
        versioned model the stored version must be this instance's and the next one is
        written (`VersionConflict` otherwise); ``force=True`` increments the stored version
        without checking it. The instance itself is not modified.
        """
        from dynamodel.io.executors import run

        return run(self._update_flow(actions, condition, force), self._conn(connection))

    @classmethod
    def update_item(
        cls,
        key: Mapping[str, Any],
        actions: Sequence[UpdateAction],
        *,
        condition: Condition | None = None,
        upsert: bool = False,
        connection: Connection | None = None,
    ) -> Self:
        """Update an item by its key fields without reading it first; returns ALL_NEW.

        ``upsert=False`` (default) requires the item to exist.
        """
        from dynamodel.io.executors import run

        values = coerce_fields(cls, key, cls._spec().key_fields, "key")
        return run(
            _update_by_key_flow(cls, values, actions, condition, upsert), cls._conn(connection)
        )

    @classmethod
    def delete_item(
        cls,
        key: Mapping[str, Any],
        *,
        condition: Condition | None = None,
        connection: Connection | None = None,
    ) -> Self | None:
        """Delete by key fields; returns the deleted model (None if there was none)."""
        from dynamodel.io.executors import run

        return run(
            _delete_by_key_flow(cls, cls.build_key(**key), condition, None, key),
            cls._conn(connection),
        )

    @classmethod
    def query(
        cls, *, index: str | None = None, connection: Connection | None = None, **key: Any
    ) -> Query[Self]:
        """A lazy query on the partition given by the (table or index) partition key fields.

        Without a sort-key condition it is narrowed to this model's sort key prefix. Iterate
        it (``for`` or ``async for``), or call ``.all()``/``.first()``/``.pages()``.
        """
        from dynamodel.ops.query import Query

        query = Query.for_model(cls, index, key)
        return query if connection is None else query.using(connection)

    @classmethod
    def aquery(
        cls, *, index: str | None = None, connection: Connection | None = None, **key: Any
    ) -> Query[Self]:
        """The same lazy `Query` as `query`; iterate it with ``async for``."""
        return cls.query(index=index, connection=connection, **key)

    @classmethod
    def scan(cls, *, index: str | None = None, connection: Connection | None = None) -> Scan[Self]:
        """A lazy scan returning only this model's items (filtered on the entity type)."""
        from dynamodel.ops.scan import Scan

        scan = Scan.for_model(cls, index)
        return scan if connection is None else scan.using(connection)

    @classmethod
    def ascan(cls, *, index: str | None = None, connection: Connection | None = None) -> Scan[Self]:
        """The same lazy `Scan` as `scan`; iterate it with ``async for``."""
        return cls.scan(index=index, connection=connection)

    @classmethod
    async def aget(
        cls,
        *,
        consistent: bool = False,
        projection: Sequence[str | Attr] | None = None,
        connection: Connection | None = None,
        **key: Any,
    ) -> Self:
        """Async `get`."""
        from dynamodel.io.executors import arun
        from dynamodel.ops import items as requests

        flow = requests.get_flow(cls, key, consistent, projection, True)
        found = await arun(flow, cls._conn(connection))
        assert found is not None
        return found

    @classmethod
    async def aget_or_none(
        cls,
        *,
        consistent: bool = False,
        projection: Sequence[str | Attr] | None = None,
        connection: Connection | None = None,
        **key: Any,
    ) -> Self | None:
        """Async `get_or_none`."""
        from dynamodel.io.executors import arun
        from dynamodel.ops import items as requests

        return await arun(
            requests.get_flow(cls, key, consistent, projection, False), cls._conn(connection)
        )

    async def asave(
        self,
        *,
        condition: Condition | None = None,
        force: bool = False,
        connection: Connection | None = None,
    ) -> None:
        """Async `save`."""
        from dynamodel.io.executors import arun

        await arun(self._save_flow(condition, force), self._conn(connection))

    async def acreate(
        self, *, condition: Condition | None = None, connection: Connection | None = None
    ) -> None:
        """Async `create`."""
        from dynamodel.io.executors import arun

        await arun(self._create_flow(condition), self._conn(connection))

    async def adelete(
        self,
        *,
        condition: Condition | None = None,
        force: bool = False,
        connection: Connection | None = None,
    ) -> None:
        """Async `delete`."""
        from dynamodel.io.executors import arun

        await arun(self._delete_flow(condition, force), self._conn(connection))

    async def aupdate(
        self,
        *actions: UpdateAction,
        condition: Condition | None = None,
        force: bool = False,
        connection: Connection | None = None,
    ) -> Self:
        """Async `update`."""
        from dynamodel.io.executors import arun

        return await arun(self._update_flow(actions, condition, force), self._conn(connection))

    @classmethod
    async def aupdate_item(
        cls,
        key: Mapping[str, Any],
        actions: Sequence[UpdateAction],
        *,
        condition: Condition | None = None,
        upsert: bool = False,
        connection: Connection | None = None,
    ) -> Self:
        """Async `update_item`."""
        from dynamodel.io.executors import arun

        values = coerce_fields(cls, key, cls._spec().key_fields, "key")
        return await arun(
            _update_by_key_flow(cls, values, actions, condition, upsert), cls._conn(connection)
        )

    @classmethod
    async def adelete_item(
        cls,
        key: Mapping[str, Any],
        *,
        condition: Condition | None = None,
        connection: Connection | None = None,
    ) -> Self | None:
        """Async `delete_item`."""
        from dynamodel.io.executors import arun

        return await arun(
            _delete_by_key_flow(cls, cls.build_key(**key), condition, None, key),
            cls._conn(connection),
        )

    @classmethod
    def _conn(cls, connection: Connection | None = None) -> Connection:
        """The connection an operation on this model uses (`dynamodel.io.scope`)."""
        return resolve_connection(cls._spec().table, connection)

    def _save_flow(self, condition: Condition | None, force: bool) -> Flow[None]:
        from dynamodel.ops import items as requests

        self.before_write("save")
        if self._spec().unique:  # guard items move with the values (dynamodel.ops.unique)
            from dynamodel.ops.unique import save_flow

            return _then(save_flow(self, condition, force), self.after_write, "save")
        if force and self._spec().version_field is not None:
            from dynamodel.ops.locking import force_put_flow

            return _then(force_put_flow(self, condition), self.after_write, "save")
        return _then(requests.put_flow(self, condition), self.after_write, "save")

    def _create_flow(self, condition: Condition | None) -> Flow[None]:
        from dynamodel.ops import items as requests, versioning

        self.before_write("create")
        if self._spec().unique:
            from dynamodel.ops.unique import create_flow

            return _then(create_flow(self, condition), self.after_write, "create")
        version = versioning.put_version(self, create=True)
        flow = requests.put_flow(self, condition, version, create=True)
        return _then(flow, self.after_write, "create")

    def _delete_flow(self, condition: Condition | None, force: bool) -> Flow[None]:
        from dynamodel.ops import items as requests, versioning

        self.before_write("delete")
        if self._spec().unique:
            from dynamodel.ops.unique import instance_delete_flow

            return _then(instance_delete_flow(self, condition, force), self.after_write, "delete")
        version = versioning.check_version(self, force=force)
        described = requests.key_fields(self._spec(), self.__dict__)

        def flow() -> Flow[None]:
            yield from requests.draw_shards(self)  # a new random item's, by this connection
            key = self.item_key()
            yield from _delete_by_key_flow(type(self), key, condition, version, described)
            self.after_write("delete")

        return flow()

    def _update_flow(
        self, actions: Sequence[UpdateAction], condition: Condition | None, force: bool
    ) -> Flow[Self]:
        from dynamodel.ops import items, versioning

        self.before_write("update")

        def flow() -> Flow[Self]:
            # a new random item's shard is drawn from the connection running the update
            yield from items.draw_shards(self)
            known = self._known()
            version = versioning.update_version(type(self), known, check=not force)
            update = _update_by_key_flow(type(self), known, actions, condition, False, version)
            return (yield from update)

        return _then(flow(), self.after_write, "update")

    def _save_changes_flow(self, condition: Condition | None, force: bool) -> Flow[list[str]]:
        from dynamodel.core.expressions import Attr
        from dynamodel.ops import versioning

        self.before_write("save_changes")
        if self._dm_loaded is None:
            raise ValidationError(
                f"{type(self).__name__} was not read from the table (nor written by this "
                "instance), so what changed is unknown; use save() or create()"
            )
        spec = self._spec()
        known = self._known()
        attributes = self._field_attributes()
        changed = self._changed_fields(attributes)
        actions = [
            Attr(name).set(known[name])
            if spec.stored_names[name] in attributes
            else Attr(name).remove()  # None or an empty set: not stored
            for name in changed
        ]
        version = versioning.update_version(type(self), known, check=not force)
        update = (
            _update_by_key_flow(type(self), known, actions, condition, False, version)
            if changed
            else None
        )

        def flow() -> Flow[list[str]]:
            if update is not None:
                stored = yield from update
                self._dm_adopt(stored)
            self.after_write("save_changes")
            return changed

        return flow()

    def _dm_adopt(self, stored: Model) -> None:
        """Take the field values and stored item of ``stored`` (this item as read now)."""
        self.__dict__.update(stored.__dict__)
        self.__pydantic_fields_set__.update(stored.__pydantic_fields_set__)
        if stored._dm_loaded is not None:
            self._dm_stored(stored._dm_loaded)


_R = typing.TypeVar("_R")


def _then(flow: Flow[_R], callback: Any, argument: Any) -> Flow[_R]:
    """``flow``, then ``callback(argument)`` once it succeeded; its result is kept."""
    result = yield from flow
    callback(argument)
    return result


def _update_by_key_flow(
    model: type[M],
    known: Mapping[str, Any],
    actions: Sequence[UpdateAction],
    condition: Condition | None,
    upsert: bool,
    version: VersionCheck | Literal["auto"] | None = "auto",
) -> Flow[M]:
    """The update flow: `dynamodel.ops.items.update_flow`, or the unique-guard one when the
    update changes a unique field (its guard item moves in the same transaction)."""
    from dynamodel.ops import items

    if model._spec().unique:
        from dynamodel.modelling.constraints import touched

        changes = touched(model, actions)
        if changes:
            from dynamodel.ops import unique

            return unique.update_flow(model, known, actions, condition, upsert, version, changes)
    return items.update_flow(model, known, actions, condition, upsert, version)


def _delete_by_key_flow(
    model: type[M],
    key: Item,
    condition: Condition | None,
    version: VersionCheck | None = None,
    described: Mapping[str, Any] | None = None,
) -> Flow[M | None]:
    """The delete flow: `dynamodel.ops.items.delete_flow`, or the unique-guard one for a model
    with unique fields (the guard items of its values are released too)."""
    from dynamodel.ops import items

    if model._spec().unique:
        from dynamodel.ops import unique

        return unique.delete_flow(model, key, condition, version, described)
    return items.delete_flow(model, key, condition, version, described)
