"""Transactions: builders for TransactWriteItems and TransactGetItems, sync and async.

```python
with TransactWrite() as tx:                       # sent when the block ends without error
    tx.update(alice, Attr("balance").add(-10), condition=Attr("balance") >= 10)
    tx.update(bob, Attr("balance").add(10))
    tx.create(Sentinel(...))

reads = TransactGet()
a = reads.get(Account, account_id="a")
reads.execute()                                   # or: await reads.aexecute()
a.item                                            # Account | None
```

Actions are built when added, with the same builders (and the same optimistic-locking
checks) as the single-item operations, and checked before anything is sent: at most 100
actions, one action per item, 4 MB in total. The write request carries a
``ClientRequestToken`` (given or generated) that stays the same for every retry. A
cancellation that only transient reasons caused (``TransactionConflict``, throttling) is
retried by the connection's `RetryPolicy`, like ``TransactionInProgressException``;
anything else raises `TransactionCanceled` whose ``reasons`` name the action the caller added.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import TYPE_CHECKING, Any, Generic, Self, TypeVar

from dynamodel.core.codec import Item, item_size
from dynamodel.core.errors import (
    CancellationReason,
    DynamodelError,
    ItemNotFound,
    ServiceError,
    TransactionCanceled,
    ValidationError,
)
from dynamodel.core.expressions import Attr, Condition, UpdateAction, all_of, render_condition
from dynamodel.core.flows import Flow, Inputs, Request, call
from dynamodel.core.retry import RetryPolicy
from dynamodel.modelling.base import ModelBase
from dynamodel.modelling.item_keys import coerce_fields
from dynamodel.modelling.spec import WriteOperation
from dynamodel.modelling.tenancy import check_keys
from dynamodel.ops.items import (
    build_put,
    build_update,
    delete_request,
    expired_now,
    get_request,
    guard_shards,
    inputs_now,
    inputs_random,
    key_fields,
    not_exists_condition,
    placeholders,
    write_inputs,
)
from dynamodel.ops.versioning import (
    VersionCheck,
    check_version,
    put_version,
    record_put,
    update_version,
)

if TYPE_CHECKING:
    from dynamodel.io.clients import Connection
    from dynamodel.modelling.table import Table

M = TypeVar("M", bound=ModelBase)

#: DynamoDB's limits for one transaction
MAX_ACTIONS = 100
MAX_TRANSACTION_BYTES = 4 * 1024 * 1024
MAX_TOKEN_LENGTH = 36

#: cancellation reason codes that say "try again later", and the error codes a policy lists
TRANSIENT_REASONS = {
    "TransactionConflict": "TransactionConflictException",
    "ThrottlingError": "ThrottlingException",
    "ProvisionedThroughputExceeded": "ProvisionedThroughputExceededException",
}


_HOOK_OPERATIONS: dict[str, WriteOperation] = {
    "put": "transaction_put",
    "create": "transaction_create",
    "update": "transaction_update",
    "delete": "transaction_delete",
}


@dataclass(slots=True)
class _Action:
    """One action as added: what the caller asked for and the request item built for it."""

    kind: str
    model: type[ModelBase]
    key: dict[str, Any]  # the key fields (Python names), for messages
    table: Table
    identity: tuple[Any, ...]  # table and rendered key: one action per item
    body: dict[str, Any]  # {"Put": {...}} etc.
    size: int
    version: VersionCheck | None = None
    # put/create: gets its new version after the commit; every instance: its after_write hook
    instance: ModelBase | None = None
    projection: bool = False  # gets: parse a partial model

    def describe(self) -> str:
        return f"{self.kind} {self.model.__name__} {self.key}"


_OPS = {
    "put": "Put",
    "create": "Put",
    "update": "Update",
    "delete": "Delete",
    "condition_check": "ConditionCheck",
    "get": "Get",
}


def _identity(table_name: str, key: Item) -> tuple[Any, ...]:
    rendered = tuple(sorted((name, repr(sorted(value.items()))) for name, value in key.items()))
    return (table_name, rendered)


def _size(params: Mapping[str, Any]) -> int:
    """Bytes an action adds to the transaction: its item (or key), values, names and
    expressions (a slight over-estimate of what DynamoDB counts)."""
    size = item_size(params.get("Item") or params.get("Key") or {})
    size += item_size(params.get("ExpressionAttributeValues") or {})
    names = params.get("ExpressionAttributeNames") or {}
    size += sum(len(k.encode()) + len(v.encode()) for k, v in names.items())
    for expression in ("ConditionExpression", "UpdateExpression", "ProjectionExpression"):
        size += len(str(params.get(expression, "")).encode())
    return size


def _without(params: Mapping[str, Any], *names: str) -> dict[str, Any]:
    return {k: v for k, v in params.items() if k not in names}


def _retry_view(error: DynamodelError, policy: RetryPolicy) -> DynamodelError:
    """A cancellation caused only by transient reasons, seen as the transient error it is."""
    if not isinstance(error, TransactionCanceled):
        return error
    failed = error.failed
    codes = [TRANSIENT_REASONS.get(reason.code or "") for reason in failed]
    if not codes or None in codes or not all(c in policy.retry_codes for c in codes):
        return error
    view = ServiceError(str(error), code=codes[0])
    view.retry_attempts, view.status = error.retry_attempts, error.status
    return view


def send_flow(request: Request, policy: RetryPolicy | None = None) -> Flow[dict[str, Any]]:
    """Send a transaction request, retrying per ``policy`` (default: the running connection's)
    with backoff sleeps.

    Through `dynamodel.core.flows.call`: a `TransactionCanceled` whose failed actions all have
    transient reasons (``TransactionConflict``, throttling) counts as that transient error. The
    request, and so its ``ClientRequestToken``, is the same object on every send.
    """
    response: dict[str, Any] = yield from call(request, policy, classify=_retry_view)
    return response


def _explain(
    error: TransactionCanceled, actions: Sequence[_Action], op: str
) -> TransactionCanceled:
    """The cancellation with each reason aligned with (and naming) the action added."""
    reasons: list[CancellationReason] = []
    for index, action in enumerate(actions):
        raw = error.reasons[index] if index < len(error.reasons) else None
        code = raw.code if raw else None
        item = raw.item if raw else None
        current = None
        if item:
            try:
                current = action.model.from_item(item)
            except Exception:  # a stored item that does not parse: the raw item is kept
                current = None
        conflict = (
            code == "ConditionalCheckFailed"
            and action.version is not None
            and action.version.conflicts_with(item)
            and not (action.kind == "update" and item is None)  # missing item, not a race
        )
        reasons.append(
            CancellationReason(
                index=index,
                code=code,
                message=raw.message if raw else None,
                item=item,
                action=action.kind,
                model=action.model,
                key=action.key,
                current=current,
                version_conflict=conflict,
            )
        )
    failed = [reason.describe() for reason in reasons if reason.failed]
    detail = "; ".join(failed) if failed else f"no reason given ({error})"
    explained = TransactionCanceled(
        f"{op}: TransactionCanceledException: transaction of {len(actions)} actions "
        f"cancelled by {detail}",
        reasons=reasons,
    )
    explained.retry_attempts, explained.status = error.retry_attempts, error.status
    return explained


class _Builder:
    """What both builders share: the action list, its limits, and the connection."""

    _op = ""

    def __init__(self, connection: Connection | None) -> None:
        self._actions: list[_Action] = []
        self._identities: dict[tuple[Any, ...], int] = {}
        self._bytes = 0
        self._connection = connection
        self._sent = False

    def __len__(self) -> int:
        return len(self._actions)

    def _inputs(self, model: type[ModelBase], create: bool = False) -> Inputs | None:
        """The clock and random source an action on ``model`` is built with, when it needs
        them (see `dynamodel.ops.items.write_inputs`): those of the connection in effect for
        its table as the action is added (this builder's ``connection``, else the scoped one,
        else the table's: `dynamodel.io.scope.resolve_connection`)."""
        spec = model._spec()
        if not write_inputs(spec, create=create):
            return None
        from dynamodel.io.scope import resolve_connection

        inputs: Inputs = resolve_connection(spec.table, self._connection).inputs
        return inputs

    def _draw_shards(self, instance: ModelBase) -> Inputs | None:
        """A new random item's shards, drawn from the action's connection (see `_inputs`)
        before its key is rendered; returns those inputs (None: not needed)."""
        inputs = self._inputs(type(instance))
        if inputs is not None:
            instance._dm_draw_shards(inputs.random)
        return inputs

    def _append(self, action: _Action) -> None:
        if self._sent:
            raise ValidationError(
                f"{type(self).__name__} was already sent; start a new one for more actions"
            )
        if len(self._actions) >= MAX_ACTIONS:
            raise ValidationError(
                f"{self._op}: at most {MAX_ACTIONS} actions per transaction; "
                f"action {len(self._actions)} ({action.describe()}) is one too many"
            )
        first = self._identities.get(action.identity)
        if first is not None:
            raise ValidationError(
                f"{self._op}: action {len(self._actions)} ({action.describe()}) targets the same "
                f"item as action {first} ({self._actions[first].describe()}); a transaction "
                "may act on each item only once"
            )
        if self._bytes + action.size > MAX_TRANSACTION_BYTES:
            raise ValidationError(
                f"{self._op}: action {len(self._actions)} ({action.describe()}) brings the "
                f"transaction to {self._bytes + action.size:,} bytes; the limit is "
                f"{MAX_TRANSACTION_BYTES:,}"
            )
        self._identities[action.identity] = len(self._actions)
        self._actions.append(action)
        self._bytes += action.size

    def _new(
        self,
        kind: str,
        model: type[ModelBase],
        values: Mapping[str, Any],
        item_key: Item,
        params: dict[str, Any],
        version: VersionCheck | None = None,
    ) -> _Action:
        """Record an action on the item with key fields ``values`` (rendered: ``item_key``)."""
        table = model._spec().table
        return _Action(
            kind=kind,
            model=model,
            key=key_fields(model._spec(), values),
            table=table,
            identity=_identity(params["TableName"], item_key),
            body={_OPS[kind]: params},
            size=_size(params),
            version=version,
        )

    def connection(self) -> Connection:
        """Where the transaction goes: the given connection, else the scoped one
        (`dynamodel.use_connection`), else its tables' (one for all), else the default one."""
        from dynamodel.io.scope import resolve_connection, scoped_connection

        if self._connection is not None or scoped_connection() is not None or not self._actions:
            return resolve_connection(None, self._connection)
        connection = resolve_connection(self._actions[0].table)
        for index, action in enumerate(self._actions):
            if resolve_connection(action.table) is not connection:
                raise ValidationError(
                    f"{self._op}: action {index} ({action.describe()}) uses table "
                    f"{action.table.name!r} bound to another connection than action 0; "
                    "a transaction goes to one connection: pass connection= to choose it"
                )
        return connection


def _refuse_unique(
    model: type[ModelBase], kind: str, actions: Sequence[UpdateAction] | None = None
) -> None:
    """Models with ``Meta.unique`` keep guard items a user-built transaction cannot: refused
    (an update that changes no unique field is fine)."""
    if model._spec().unique:
        from dynamodel.modelling.constraints import refuse

        refuse(model, f"TransactWrite.{kind}", actions)


def _check_params(
    model: type[ModelBase], key: Item, condition: Condition, values: Mapping[str, Any]
) -> dict[str, Any]:
    spec = model._spec()
    ph = placeholders(model)
    params: dict[str, Any] = {
        "TableName": spec.table_name(values),
        "Key": key,
        "ConditionExpression": render_condition(condition, ph, "ConditionExpression"),
        "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
    }
    return ph.apply(params)


class TransactWrite(_Builder):
    """A TransactWriteItems request: up to 100 put, update, delete and condition-check actions
    on any models, applied all together or not at all.

    Use it as a context manager (``with`` commits with the sync client when the block ends
    without an exception, ``async with`` with the async client; nothing is sent if the block
    raises) or call `commit` / `acommit` yourself. Each action is built and checked when added;
    a `ValidationError` names the action that breaks a rule. Versioned models get their
    version checks and increments exactly as in the single-item operations.

    Because an action is built when it is added, it takes the clock (``Meta.timestamps``,
    the "an expired item counts as absent" condition of `create`) and the random source (a new
    item's random shards) of the connection in effect for its table at that moment: the
    ``connection`` given here, else the scoped one, else the table's.

    Args:
        token: the ``ClientRequestToken`` (1 to 36 characters); a UUID4 is generated if not
            given. It is sent unchanged on every retry, and again by a second `commit` after
            an error whose outcome is unknown, so DynamoDB applies the transaction at most once
            (within its 10-minute idempotency window).
        connection: where to send it; by default the scoped connection
            (`dynamodel.use_connection`), else the connection of the actions' tables, which
            must all share one.
    """

    _op = "transact_write_items"

    def __init__(self, *, token: str | None = None, connection: Connection | None = None) -> None:
        super().__init__(connection)
        if token is None:
            token = str(uuid.uuid4())
        if not isinstance(token, str) or not 1 <= len(token) <= MAX_TOKEN_LENGTH:
            raise ValidationError(
                f"transaction token must be a string of 1 to {MAX_TOKEN_LENGTH} characters, "
                f"got {token!r}"
            )
        self.token = token
        self.committed = False

    # -- actions ----------------------------------------------------------------------------

    def put(self, instance: ModelBase, *, condition: Condition | None = None) -> None:
        """Write the whole item, like ``instance.save(condition=...)`` (version checked; the
        instance gets its new version once the transaction is committed)."""
        _refuse_unique(type(instance), "put")
        instance.before_write("transaction_put")
        inputs = self._inputs(type(instance))
        request, version = build_put(
            instance, condition, now=inputs_now(inputs), rng=inputs_random(inputs)
        )
        self._add_put("put", instance, request.params, version)

    def create(self, instance: ModelBase, *, condition: Condition | None = None) -> None:
        """Write the item only if its key is free, like ``instance.create(condition=...)``."""
        _refuse_unique(type(instance), "create")
        instance.before_write("transaction_create")
        inputs = self._inputs(type(instance), create=True)
        now = inputs_now(inputs)
        condition = not_exists_condition(instance, condition, now)
        version = put_version(instance, create=True)
        request, version = build_put(
            instance, condition, version, now=now, rng=inputs_random(inputs)
        )
        self._add_put("create", instance, request.params, version)

    def update(
        self,
        instance: ModelBase,
        *actions: UpdateAction,
        condition: Condition | None = None,
        force: bool = False,
    ) -> None:
        """Update the stored item, like ``instance.update(...)``: it must exist, a versioned
        instance's version is checked and incremented (``force=True``: incremented only).
        The instance is not modified."""
        model = type(instance)
        _refuse_unique(model, "update", actions)
        instance.before_write("transaction_update")
        inputs = self._draw_shards(instance)
        known = instance._known()
        version = update_version(model, known, check=not force)
        request, version = build_update(
            model,
            known,
            actions,
            condition,
            False,
            version,
            now=inputs_now(inputs),
            rng=inputs_random(inputs),
        )
        params = _without(request.params, "ReturnValues")
        action = self._new("update", model, known, params["Key"], params, version)
        action.instance = instance  # for its after_write hook only
        self._append(action)

    def update_item(
        self,
        model: type[ModelBase],
        key: Mapping[str, Any],
        actions: Sequence[UpdateAction],
        *,
        condition: Condition | None = None,
        upsert: bool = False,
    ) -> None:
        """Update by key fields, like ``Model.update_item(...)`` (a version is incremented
        without a check; put it in ``condition`` to check one)."""
        _refuse_unique(model, "update_item", actions)
        values = coerce_fields(model, key, model._spec().key_fields, "key")
        inputs = self._inputs(model)
        request, version = build_update(
            model,
            values,
            actions,
            condition,
            upsert,
            now=inputs_now(inputs),
            rng=inputs_random(inputs),
        )
        params = _without(request.params, "ReturnValues")
        self._append(self._new("update", model, values, params["Key"], params, version))

    def delete(
        self, instance: ModelBase, *, condition: Condition | None = None, force: bool = False
    ) -> None:
        """Delete the item, like ``instance.delete(...)`` (version checked unless ``force``)."""
        model = type(instance)
        _refuse_unique(model, "delete")
        instance.before_write("transaction_delete")
        version = check_version(instance, force=force)
        self._draw_shards(instance)
        request = delete_request(model, instance.item_key(), condition, version, instance.__dict__)
        params = _without(request.params, "ReturnValues")
        action = self._new("delete", model, instance.__dict__, params["Key"], params, version)
        action.instance = instance  # for its after_write hook only
        self._append(action)

    def delete_item(
        self, model: type[ModelBase], key: Mapping[str, Any], *, condition: Condition | None = None
    ) -> None:
        """Delete by key fields, like ``Model.delete_item(...)`` (no version check)."""
        _refuse_unique(model, "delete_item")
        values = coerce_fields(model, key, model._spec().key_fields, "key")
        request = delete_request(model, model.build_key(**values), condition, None, values)
        params = _without(request.params, "ReturnValues")
        self._append(self._new("delete", model, values, params["Key"], params))

    def condition_check(self, instance: ModelBase, condition: Condition | None = None) -> None:
        """Require ``condition`` on the stored item without writing it. On a versioned
        instance the stored version must also be the instance's, so a transaction can depend
        on an item it read but does not change."""
        model = type(instance)
        version = check_version(instance)
        combined = all_of(version.condition() if version else None, condition)
        if combined is None:
            raise ValidationError(
                f"condition_check on {model.__name__}: give a condition (the model has no "
                "version to check)"
            )
        self._draw_shards(instance)
        params = _check_params(model, instance.item_key(), combined, instance.__dict__)
        self._append(
            self._new("condition_check", model, instance.__dict__, params["Key"], params, version)
        )

    def condition_check_item(
        self, model: type[ModelBase], key: Mapping[str, Any], condition: Condition
    ) -> None:
        """Require ``condition`` on the item with these key fields, without writing it."""
        if not isinstance(condition, Condition):
            raise ValidationError(
                f"condition_check_item on {model.__name__}: a condition is required, "
                f"got {condition!r}"
            )
        values = coerce_fields(model, key, model._spec().key_fields, "key")
        params = _check_params(model, model.build_key(**values), condition, values)
        self._append(self._new("condition_check", model, values, params["Key"], params))

    def _add_put(
        self, kind: str, instance: ModelBase, params: dict[str, Any], version: VersionCheck | None
    ) -> None:
        action = self._new(kind, type(instance), instance.__dict__, instance.item_key(), params)
        action.version = version
        action.instance = instance
        self._append(action)

    # -- sending ----------------------------------------------------------------------------

    def request(self) -> Request:
        """The TransactWriteItems request as it will be sent (pure: nothing is sent)."""
        return Request(
            "transact_write_items",
            {
                "TransactItems": [action.body for action in self._actions],
                "ClientRequestToken": self.token,
            },
        )

    def _commit_flow(self, connection: Connection) -> Flow[None]:
        if self.committed:
            raise ValidationError(
                "this transaction was already committed; start a new TransactWrite"
            )
        if not self._actions:
            self.committed = True
            return
        check_keys(((a.model, a.key) for a in self._actions), "transaction")
        self._sent = True  # its payload must not change: the token identifies it
        request = self.request()
        yield from guard_shards((action.model for action in self._actions), write=True)
        try:
            yield from send_flow(request, connection.retry)
        except TransactionCanceled as error:
            raise _explain(error, self._actions, self._op) from error.__cause__
        self.committed = True
        for action in self._actions:
            instance = action.instance
            if instance is None:
                continue
            if action.kind in ("put", "create"):  # an updated instance is not modified
                record_put(instance, action.body["Put"]["Item"], action.version)
        for action in self._actions:
            if action.instance is not None:
                action.instance.after_write(_HOOK_OPERATIONS[action.kind])

    def commit(self) -> None:
        """Send the transaction (sync client). An empty transaction sends nothing.

        Raises `TransactionCanceled` (with per-action ``reasons``) when DynamoDB cancels it
        for a reason other than a transient conflict. After any other error the outcome may
        be unknown: calling `commit` again resends the same request with the same token.
        """
        from dynamodel.io.executors import run

        connection = self.connection()
        run(self._commit_flow(connection), connection)

    async def acommit(self) -> None:
        """Async `commit`."""
        from dynamodel.io.executors import arun

        connection = self.connection()
        await arun(self._commit_flow(connection), connection)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None:
            self.commit()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None:
            await self.acommit()


class ItemRef(Generic[M]):
    """The result slot of one `TransactGet.get`: ``item`` once the reads were executed."""

    __slots__ = ("_done", "_item", "key", "model")

    def __init__(self, model: type[M], key: dict[str, Any]) -> None:
        self.model = model
        self.key = key
        self._item: M | None = None
        self._done = False

    def __repr__(self) -> str:
        state = repr(self._item) if self._done else "not read yet"
        return f"ItemRef({self.model.__name__} {self.key}: {state})"

    @property
    def item(self) -> M | None:
        """The item read, or None if there is none (`ValidationError` before execution)."""
        if not self._done:
            raise ValidationError(
                f"{self.model.__name__} {self.key} was not read yet: execute the TransactGet"
            )
        return self._item

    def require(self) -> M:
        """The item read; `ItemNotFound` if there is none."""
        item = self.item
        if item is None:
            raise ItemNotFound(f"{self.model.__name__} not found: {self.key}", key=self.key)
        return item

    def _set(self, item: Any) -> None:
        self._item = item
        self._done = True


class TransactGet(_Builder):
    """A TransactGetItems request: up to 100 reads of any models as one serializable snapshot.

    ``get`` returns an `ItemRef` typed with the model; `execute` / `aexecute` read them all
    and also return the items in the order they were added (None for a missing item).
    Reads are always strongly consistent. The same rules as `TransactWrite` are checked
    before sending: at most 100 reads, each item once.

    Args:
        connection: where to send it; by default the scoped connection
            (`dynamodel.use_connection`), else the connection of the models' tables.
    """

    _op = "transact_get_items"

    def __init__(self, *, connection: Connection | None = None) -> None:
        super().__init__(connection)
        self._refs: list[ItemRef[Any]] = []

    def get(
        self, model: type[M], *, projection: Sequence[str | Attr] | None = None, **key: Any
    ) -> ItemRef[M]:
        """Add a read of the item with these key fields (``projection``: a partial model)."""
        values = coerce_fields(model, key, model._spec().key_fields, "key")
        item_key = model.build_key(**values)
        params = dict(get_request(model, item_key, False, projection, values).params)
        action = self._new("get", model, values, item_key, params)
        action.projection = bool(projection)
        self._append(action)
        ref: ItemRef[M] = ItemRef(model, action.key)
        self._refs.append(ref)
        return ref

    def request(self) -> Request:
        """The TransactGetItems request as it will be sent (pure: nothing is sent)."""
        return Request(
            "transact_get_items", {"TransactItems": [action.body for action in self._actions]}
        )

    def _execute_flow(self, connection: Connection) -> Flow[list[ModelBase | None]]:
        if not self._actions:
            return []
        check_keys(((a.model, a.key) for a in self._actions), "transaction")
        yield from guard_shards((a.model for a in self._actions), write=False, index=None)
        try:
            response = yield from send_flow(self.request(), connection.retry)
        except TransactionCanceled as error:
            raise _explain(error, self._actions, self._op) from error.__cause__
        responses = response.get("Responses") or []
        items: list[ModelBase | None] = []
        for index, action in enumerate(self._actions):
            raw = responses[index].get("Item") if index < len(responses) else None
            item: ModelBase | None = None
            if raw and not (yield from expired_now(action.model._spec().table, raw)):
                parse = (
                    action.model.from_partial_item if action.projection else action.model.from_item
                )
                item = parse(raw)
            self._refs[index]._set(item)
            items.append(item)
        return items

    def execute(self) -> list[ModelBase | None]:
        """Read every item (sync client); fills the refs and returns the items in order."""
        from dynamodel.io.executors import run

        connection = self.connection()
        return run(self._execute_flow(connection), connection)

    async def aexecute(self) -> list[ModelBase | None]:
        """Async `execute`."""
        from dynamodel.io.executors import arun

        connection = self.connection()
        return await arun(self._execute_flow(connection), connection)
