"""The pure half of batch operations: keys, write requests, de-duplication, chunking, and the
flow that sends one chunk until every entry is processed or the retry policy gives up.

Nothing here performs I/O. `dynamodel.ops.batch` builds the flows and runs them with
`dynamodel.io.executors.run_many` / `arun_many`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any, Generic, Literal, TypeVar

from dynamodel.core.codec import MAX_ITEM_BYTES, Item, item_size
from dynamodel.core.errors import DynamodelError, ValidationError
from dynamodel.core.flows import Flow, Request, Sleep
from dynamodel.modelling.base import ModelBase
from dynamodel.modelling.item_keys import coerce_fields, key_attributes, missing_shards
from dynamodel.modelling.stamps import stamp_instance

if TYPE_CHECKING:
    from dynamodel.core.retry import RetryPolicy
    from dynamodel.io.clients import Connection

M = TypeVar("M", bound=ModelBase)
M_co = TypeVar("M_co", bound=ModelBase, covariant=True)
E = TypeVar("E")

#: BatchWriteItem: at most 25 put/delete requests per call
MAX_WRITE_REQUESTS = 25
#: BatchGetItem: at most 100 keys per call
MAX_GET_KEYS = 100
#: both calls: at most 16 MB (counted as DynamoDB item bytes)
MAX_BATCH_BYTES = 16 * 1024 * 1024

#: identifies one stored item: (physical table name, sorted key attributes)
ItemId = tuple[str, tuple[tuple[str, str, Any], ...]]


def key_parts(key: Mapping[str, Any]) -> tuple[tuple[str, str, Any], ...]:
    """A primary key (AttributeValue map) as a hashable tuple, in attribute-name order."""
    parts = []
    for name in sorted(key):
        ((tag, value),) = key[name].items()
        parts.append((name, tag, bytes(value) if tag == "B" else value))
    return tuple(parts)


def item_id(table_name: str, key: Mapping[str, Any]) -> ItemId:
    """A hashable identity for the item with this primary key (AttributeValue map)."""
    return (table_name, key_parts(key))


def _model_class(model: Any, what: str) -> type[ModelBase]:
    if not (isinstance(model, type) and issubclass(model, ModelBase)):
        raise ValidationError(f"{what}: expected a dynamodel Model class, got {model!r}")
    model._spec()  # raises when the model is not bound to a table
    return model


class Key(Generic[M_co]):
    """The primary key of one item of a model: ``Key(Order, customer_id="c1", order_id=7, ...)``.

    Key field values are validated through their field types (``"7"`` becomes ``7`` for an int
    field), so equal keys compare and hash equal whatever form they were given in. Two keys are
    equal when they name the same model and render the same primary key.

    Attributes:
        model: the model class.
        fields: the key field values (Python field names, validated).
        item_key: the primary key as DynamoDB AttributeValues.
    """

    __slots__ = ("_hash", "_parts", "fields", "item_key", "model")

    model: type[M_co]
    fields: dict[str, Any]
    item_key: Item

    def __init__(self, model: type[M_co], /, **fields: Any) -> None:
        model = _model_class(model, "Key")  # type: ignore[assignment]
        spec = model._spec()
        values = coerce_fields(model, fields, spec.key_fields, "key")
        self._set(model, values, key_attributes(spec, values, model.__name__, with_indexes=False))

    def _set(self, model: type[M_co], fields: dict[str, Any], item_key: Item) -> None:
        self.model = model
        self.fields = fields
        self.item_key = item_key
        self._parts = key_parts(item_key)
        self._hash = hash((model, self._parts))

    @staticmethod
    def of(instance: M, item: Item | None = None) -> Key[M]:
        """The key of a model instance (taken from ``item``, its `to_item`, when given)."""
        if not isinstance(instance, ModelBase):
            raise ValidationError(f"Key.of: expected a dynamodel Model instance, got {instance!r}")
        model = type(instance)
        spec = model._spec()
        fields = {name: instance.__dict__.get(name) for name in dict.fromkeys(spec.key_fields)}
        if item is None:
            item_key = instance.item_key()
        else:  # the item holds the key attributes, rendered (and sharded) once
            table = spec.table
            item_key = {table.pk: item[table.pk]}
            if table.sk:
                item_key[table.sk] = item[table.sk]
        key: Key[M] = Key.__new__(Key)
        key._set(model, fields, item_key)
        return key

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Key):
            return NotImplemented
        return self.model is other.model and self.item_key == other.item_key

    def __hash__(self) -> int:
        return self._hash

    def __repr__(self) -> str:
        args = ", ".join(f"{name}={value!r}" for name, value in self.fields.items())
        return f"Key({self.model.__name__}, {args})"


def as_key(target: Any, what: str) -> Key[Any]:
    """A `Key` given a Key or a model instance."""
    if isinstance(target, Key):
        return target
    if isinstance(target, ModelBase):
        return Key.of(target)
    raise ValidationError(f"{what}: expected a Key or a Model instance, got {target!r}")


@dataclass(frozen=True, eq=False)
class WriteRequest:
    """One put or delete of a batch write, built (and validated) when it is added.

    Attributes:
        action: ``"put"`` or ``"delete"``.
        key: the item's `Key` (model and key fields).
        item: the model instance written by a put (or deleted, when a delete was given an
            instance); None for a delete given a `Key`.
        table_name: the physical table name, resolved when the request was added.
        request: the BatchWriteItem request entry (``{"PutRequest": ...}`` or
            ``{"DeleteRequest": ...}``), serialised when the request was added.
    """

    action: Literal["put", "delete"]
    key: Key[Any]
    item: ModelBase | None
    table_name: str
    request: dict[str, Any] = field(repr=False)

    @cached_property
    def size(self) -> int:
        """The entry's size in DynamoDB item bytes (computed on first use)."""
        entry = self.request.get("PutRequest") or self.request["DeleteRequest"]
        return item_size(entry.get("Item") or entry["Key"])

    @property
    def model(self) -> type[ModelBase]:
        """The model class of the item."""
        return self.key.model

    @cached_property
    def id(self) -> ItemId:
        """The identity of the item written (table and primary key)."""
        return (self.table_name, self.key._parts)


def _check_versioned(model: type[ModelBase], action: str, skip_version_check: bool) -> None:
    version = model._spec().version_field
    if version is not None and not skip_version_check:
        raise ValidationError(
            f"{model.__name__} is versioned (Meta.version = {version!r}) and DynamoDB batch "
            f"writes cannot check versions, so a batch {action} could overwrite a concurrent "
            "change. Use a transaction, or pass skip_version_check=True to write it without "
            "the check (the version attribute is written as it is, not incremented)."
        )


def _check_unique(model: type[ModelBase], action: str) -> None:
    if model._spec().unique:  # a batch has no conditions: guard items could not be kept
        from dynamodel.modelling.constraints import refuse

        refuse(model, f"batch {action}")


def put_write_request(
    instance: ModelBase,
    *,
    skip_version_check: bool = False,
    connection: Connection | None = None,
) -> WriteRequest:
    """A batch put of a whole model instance (serialised and size-checked now).

    ``Meta.timestamps`` take the time of the clock, and a new item's random shards are drawn
    from the random source, of ``connection`` (default: the connection the table resolves to
    now, `dynamodel.io.scope.resolve_connection`); a model needing neither asks for none."""
    if not isinstance(instance, ModelBase):
        raise ValidationError(f"batch put: expected a dynamodel Model instance, got {instance!r}")
    model = type(instance)
    spec = model._spec()
    if instance._dm_partial:
        raise ValidationError(
            f"batch put: {model.__name__} was read with a projection; writing it would drop the "
            "attributes that were not read. Read it whole first."
        )
    _check_versioned(model, "put", skip_version_check)
    _check_unique(model, "put")
    stamped = spec.created_field is not None or spec.updated_field is not None
    if stamped or (spec.sharded and missing_shards(spec, instance._dm_shards)):
        from dynamodel.io.scope import resolve_connection

        inputs = resolve_connection(spec.table, connection).inputs
        if stamped:
            stamp_instance(instance, inputs.now())
        instance._dm_draw_shards(inputs.random)
    item = instance.to_item()  # validates values and the 400 KB item limit
    version = spec.version_field
    if version is not None and getattr(instance, version) is None:
        # no version yet: store none (as a never-saved item), not a NULL a locked save rejects
        item.pop(spec.stored_names[version], None)
    return WriteRequest(
        action="put",
        key=Key.of(instance, item),
        item=instance,
        table_name=spec.table_name(instance.__dict__),
        request={"PutRequest": {"Item": item}},
    )


def delete_write_request(
    target: ModelBase | Key[Any], *, skip_version_check: bool = False
) -> WriteRequest:
    """A batch delete of a model instance's item, or of the item with a `Key`."""
    key = as_key(target, "batch delete")
    _check_versioned(key.model, "delete", skip_version_check)
    _check_unique(key.model, "delete")
    return WriteRequest(
        action="delete",
        key=key,
        item=target if isinstance(target, ModelBase) else None,
        table_name=key.model._spec().table_name(key.fields),
        request={"DeleteRequest": {"Key": key.item_key}},
    )


def deduplicate(
    requests: Iterable[WriteRequest],
) -> tuple[list[WriteRequest], list[WriteRequest]]:
    """Last write wins: ``(kept, superseded)``.

    A request on the same item (table and primary key) as an earlier one replaces it and takes
    its place at the end, as if the earlier one had never been made.
    """
    latest: dict[ItemId, WriteRequest] = {}
    superseded: list[WriteRequest] = []
    for request in requests:
        earlier = latest.pop(request.id, None)
        if earlier is not None:
            superseded.append(earlier)
        latest[request.id] = request
    return list(latest.values()), superseded


def chunked(
    entries: Sequence[E],
    *,
    max_count: int,
    max_bytes: int,
    size: Callable[[E], int],
    what: str = "batch",
) -> list[list[E]]:
    """Split entries, in order, into chunks of at most ``max_count`` and ``max_bytes``."""
    chunks: list[list[E]] = []
    current: list[E] = []
    current_bytes = 0
    for entry in entries:
        entry_bytes = size(entry)
        if entry_bytes > max_bytes:
            raise ValidationError(
                f"{what}: an entry of {entry_bytes:,} bytes exceeds the {max_bytes:,} byte limit "
                f"of one call: {entry!r}"
            )
        if current and (len(current) == max_count or current_bytes + entry_bytes > max_bytes):
            chunks.append(current)
            current, current_bytes = [], 0
        current.append(entry)
        current_bytes += entry_bytes
    if current:
        chunks.append(current)
    return chunks


def chunk_writes(requests: Sequence[WriteRequest], what: str) -> list[list[WriteRequest]]:
    """Split write requests, in order, into BatchWriteItem calls (25 requests, 16 MB).

    A put's item was checked to be at most 400 KB when the request was made: it counts as that
    bound (25 of them are 10 MB, under the 16 MB cap) instead of being sized again; a delete
    counts as its key's size.
    """
    return chunked(
        requests,
        max_count=MAX_WRITE_REQUESTS,
        max_bytes=MAX_BATCH_BYTES,
        size=lambda w: MAX_ITEM_BYTES if w.action == "put" else w.size,
        what=what,
    )


def group_by_connection(
    entries: Iterable[E], connection_of: Callable[[E], Connection]
) -> list[tuple[Connection, list[E]]]:
    """Entries grouped by the connection they go through (first-seen order)."""
    groups: dict[int, tuple[Connection, list[E]]] = {}
    for entry in entries:
        connection = connection_of(entry)
        groups.setdefault(id(connection), (connection, []))[1].append(entry)
    return list(groups.values())


@dataclass(eq=False)
class GetEntry:
    """One distinct item of a batch get: the keys that asked for it share it."""

    id: ItemId
    table_name: str
    key_names: tuple[str, ...]
    item_key: Item
    keys: list[Key[Any]]


def get_entries(keys: Iterable[Key[Any]]) -> tuple[list[Key[Any]], list[GetEntry], int]:
    """``(unique keys in order, one entry per distinct item, duplicates merged)``."""
    unique: dict[Key[Any], None] = {}
    entries: dict[ItemId, GetEntry] = {}
    duplicates = 0
    for key in keys:
        if key in unique:
            duplicates += 1
            continue
        unique[key] = None
        spec = key.model._spec()
        name = spec.table_name(key.fields)
        ident = (name, key._parts)
        entry = entries.get(ident)
        if entry is None:
            entries[ident] = GetEntry(ident, name, spec.table.key_attributes(), key.item_key, [key])
        else:  # another model asked for the same stored item
            entry.keys.append(key)
    return list(unique), list(entries.values()), duplicates


# -- the chunk flow ------------------------------------------------------------------------------


class Progress:
    """State shared by the chunks of one batch: the first failure stops every chunk."""

    __slots__ = ("cause", "stopped")

    def __init__(self) -> None:
        self.stopped = False
        self.cause: BaseException | None = None

    def stop(self, cause: BaseException | None) -> None:
        """Stop every chunk; remember the first error given."""
        self.stopped = True
        if self.cause is None:
            self.cause = cause


@dataclass(eq=False)
class ChunkReport(Generic[E]):
    """What one chunk achieved; updated as its flow runs, so it is accurate at any point."""

    pending: list[E]
    done: list[E] = field(default_factory=list)
    missing: list[E] = field(default_factory=list)  # batch get: keys with no item
    found: dict[ItemId, Item] = field(default_factory=dict)  # batch get: raw items
    calls: int = 0
    unprocessed_retries: int = 0
    error_retries: int = 0
    botocore_retries: int = 0
    backoff_seconds: float = 0.0
    consumed_capacity: dict[str, float] = field(default_factory=dict)
    error: BaseException | None = None


def _add_capacity(report: ChunkReport[Any], response: Mapping[str, Any]) -> None:
    for entry in response.get("ConsumedCapacity") or ():
        name = entry.get("TableName", "?")
        units = float(entry.get("CapacityUnits") or 0.0)
        report.consumed_capacity[name] = report.consumed_capacity.get(name, 0.0) + units


def _botocore_retries(response: Mapping[str, Any]) -> int:
    attempts = response.get("ResponseMetadata", {}).get("RetryAttempts", 0)
    return attempts if isinstance(attempts, int) else 0


def chunk_flow(
    report: ChunkReport[E],
    policy: RetryPolicy,
    progress: Progress,
    build: Callable[[list[E]], Request],
    absorb: Callable[[ChunkReport[E], dict[str, Any]], list[E]],
) -> Flow[ChunkReport[E]]:
    """Send ``report.pending`` until every entry is processed, the policy gives up, or another
    chunk of the batch failed.

    ``build`` makes the request for the pending entries; ``absorb`` records a response in the
    report and returns the entries still unprocessed. Unprocessed entries and retryable errors
    are resent after the policy's full-jitter backoff; the chunk's budget is the policy's
    ``max_attempts`` sends (botocore's retries included) and ``max_elapsed`` seconds since its
    first unprocessed response or error.
    """
    retry = 0
    sends = 0
    started: float | None = None
    try:
        while report.pending:
            if progress.stopped:
                return report  # another chunk failed: send nothing more
            error: DynamodelError | None = None
            report.calls += 1
            try:
                response = yield build(report.pending)
            except DynamodelError as exc:
                error = exc
                sends += 1 + exc.retry_attempts
                report.botocore_retries += exc.retry_attempts
            else:
                sends += 1 + _botocore_retries(response)
                report.botocore_retries += _botocore_retries(response)
                _add_capacity(report, response)
                report.pending = absorb(report, response)
                if not report.pending:
                    return report
            retry += 1
            now = policy.clock()
            if started is None:
                started = now
            if error is not None:
                delay = policy.next_delay(error, retry, sends, now - started)
            else:
                delay = None if policy.exhausted(sends, now - started) else policy.backoff(retry)
            if delay is None:  # error None: DynamoDB kept leaving entries unprocessed
                report.error = error
                progress.stop(error)
                return report
            if error is not None:
                report.error_retries += 1
            else:
                report.unprocessed_retries += 1
            report.backoff_seconds += delay
            yield Sleep(delay)
        return report
    except GeneratorExit:  # the executor abandoned the flow (transport error, cancellation)
        progress.stop(report.error)
        raise


# -- BatchWriteItem ------------------------------------------------------------------------------


def write_call(pending: list[WriteRequest]) -> Request:
    """The BatchWriteItem request for a chunk's pending writes."""
    items: dict[str, list[dict[str, Any]]] = {}
    for write in pending:
        items.setdefault(write.table_name, []).append(write.request)
    return Request("batch_write_item", {"RequestItems": items, "ReturnConsumedCapacity": "TOTAL"})


def _entry_key(table_key: tuple[str, ...], attributes: Mapping[str, Any]) -> dict[str, Any]:
    return {name: attributes[name] for name in table_key if name in attributes}


def absorb_write(report: ChunkReport[WriteRequest], response: dict[str, Any]) -> list[WriteRequest]:
    """Record a BatchWriteItem response; return the writes DynamoDB left unprocessed."""
    by_id = {write.id: write for write in report.pending}
    names = {write.table_name: tuple(write.key.item_key) for write in report.pending}
    left: set[ItemId] = set()
    for table_name, entries in (response.get("UnprocessedItems") or {}).items():
        for entry in entries:
            put = entry.get("PutRequest")
            attributes = put["Item"] if put else entry.get("DeleteRequest", {}).get("Key", {})
            ident = item_id(table_name, _entry_key(names.get(table_name, ()), attributes))
            if ident in by_id:
                left.add(ident)
    report.done.extend(write for write in report.pending if write.id not in left)
    return [write for write in report.pending if write.id in left]


def write_flow(
    report: ChunkReport[WriteRequest], policy: RetryPolicy, progress: Progress
) -> Flow[ChunkReport[WriteRequest]]:
    """Write one chunk (see `chunk_flow`)."""
    return chunk_flow(report, policy, progress, write_call, absorb_write)


# -- BatchGetItem --------------------------------------------------------------------------------


def get_call(consistent: bool) -> Callable[[list[GetEntry]], Request]:
    """Builds the BatchGetItem request for a chunk's pending keys."""

    def build(pending: list[GetEntry]) -> Request:
        tables: dict[str, dict[str, Any]] = {}
        for entry in pending:
            table = tables.setdefault(entry.table_name, {"Keys": []})
            table["Keys"].append(entry.item_key)
            if consistent:
                table["ConsistentRead"] = True
        return Request(
            "batch_get_item", {"RequestItems": tables, "ReturnConsumedCapacity": "TOTAL"}
        )

    return build


def absorb_get(report: ChunkReport[GetEntry], response: dict[str, Any]) -> list[GetEntry]:
    """Record a BatchGetItem response; return the keys DynamoDB left unprocessed."""
    by_id = {entry.id: entry for entry in report.pending}
    names = {entry.table_name: entry.key_names for entry in report.pending}
    for table_name, items in (response.get("Responses") or {}).items():
        for item in items:
            ident = item_id(table_name, _entry_key(names.get(table_name, ()), item))
            if ident in by_id:
                report.found[ident] = item
    left: set[ItemId] = set()
    for table_name, request in (response.get("UnprocessedKeys") or {}).items():
        for key in request.get("Keys", ()):
            left.add(item_id(table_name, _entry_key(names.get(table_name, ()), key)))
    for entry in report.pending:
        if entry.id in left:
            continue
        report.done.append(entry)
        if entry.id not in report.found:
            report.missing.append(entry)
    return [entry for entry in report.pending if entry.id in left]


def batch_get_flow(
    report: ChunkReport[GetEntry], policy: RetryPolicy, progress: Progress, consistent: bool
) -> Flow[ChunkReport[GetEntry]]:
    """Read one chunk of keys (see `chunk_flow`)."""
    return chunk_flow(report, policy, progress, get_call(consistent), absorb_get)
