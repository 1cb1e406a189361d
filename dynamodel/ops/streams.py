"""DynamoDB Streams records (as a Lambda function receives them) parsed into models.

```python
def handler(event, context):
    batch = parse_stream_event(event, table=app_table)
    for change in batch:                       # ChangeRecord objects, in stream order
        if change.model is Order and change.event_name == "INSERT":
            notify(change.new)
    return batch.failures([])                  # {"batchItemFailures": []}
```

Each record is routed to its model class by the table's entity-type attribute (in the new
image, else the old one) and parsed with ``Model.from_item``. Records that cannot be routed
(an entity type no model knows, a ``KEYS_ONLY`` stream without images, a record that is not
from DynamoDB) or whose image does not fit its model are never dropped: they are in
`StreamBatch.unrouted`, with the reason. Only dynamodel's own records whose entity type
starts with ``_dynamodel`` (the guard items of unique constraints, docs/unique.md) are left
out: they are not application data.

`handle_stream_event` runs a function per record and builds the partial batch failure
response (``{"batchItemFailures": [{"itemIdentifier": <SequenceNumber>}]}``) that makes Lambda
retry from the first record that failed.

Records from Kinesis Data Streams for DynamoDB (``eventSource`` ``aws:kinesis``) parse the same
way: the change in their base64 ``data`` is routed, identified by the Kinesis ``sequenceNumber``
(dynamodel/ops/kinesis_streams.py). `StreamBatch.latest` keeps each item's newest change, as
Kinesis may deliver an item's changes out of order or twice.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import logging
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from dynamodel.core.codec import Item, decode_item
from dynamodel.core.errors import ValidationError
from dynamodel.core.keys import RESERVED_PREFIX
from dynamodel.ops.kinesis_streams import is_kinesis_record, unwrap_kinesis_record

if TYPE_CHECKING:
    from dynamodel.modelling.base import ModelBase
    from dynamodel.modelling.table import Table

__all__ = [
    "ChangeRecord",
    "StreamBatch",
    "UnroutedKind",
    "UnroutedRecord",
    "batch_item_failures",
    "handle_stream_event",
    "parse_stream_event",
]

EventName = Literal["INSERT", "MODIFY", "REMOVE"]
UnroutedKind = Literal[
    "unknown_entity", "invalid_image", "no_image", "no_entity_type", "invalid_record"
]
_EVENT_NAMES = ("INSERT", "MODIFY", "REMOVE")
#: who deletes items whose TTL expired (``userIdentity.principalId`` of those REMOVE records)
TTL_PRINCIPAL = "dynamodb.amazonaws.com"
_NEVER = dt.datetime.min.replace(tzinfo=dt.UTC)

log = logging.getLogger("dynamodel.ops.streams")


@dataclass(frozen=True)
class ChangeRecord:
    """One change of one item, parsed.

    Attributes:
        event_name: ``INSERT``, ``MODIFY`` or ``REMOVE``.
        model: the model class of the item (from the new image, else the old one).
        new: the item after the change (None for REMOVE, or when the stream view has no
            new image).
        old: the item before the change (None for INSERT, or when the stream view has no
            old image).
        keys: the item's primary key attributes, decoded (``{"pk": "ORDER#1", ...}``).
        raw_keys: the same as AttributeValue maps.
        is_ttl_delete: True for a REMOVE made by DynamoDB's TTL (the item expired).
        sequence_number: the partial failure identifier: the record's ``SequenceNumber``, or
            for a Kinesis record its ``kinesis.sequenceNumber``.
        event_id: the change's ``eventID`` (for Kinesis, the one inside ``data``).
        stream_view_type: ``NEW_IMAGE``, ``OLD_IMAGE``, ``NEW_AND_OLD_IMAGES`` or ``KEYS_ONLY``
            (None for Kinesis records, which do not say).
        approximate_creation_time: when the change was made (UTC), if the record says: to the
            second for DynamoDB Streams, to the millisecond (or microsecond) for Kinesis.
        table_name: the table, from ``eventSourceARN`` or (Kinesis) ``tableName``.
        raw: the record as received.
        payload: for a Kinesis record, its decoded ``data`` (the DynamoDB change record);
            None for a DynamoDB Streams record.
    """

    event_name: EventName
    model: type[ModelBase]
    new: ModelBase | None
    old: ModelBase | None
    keys: dict[str, Any]
    raw_keys: Item
    is_ttl_delete: bool
    sequence_number: str
    event_id: str | None = None
    stream_view_type: str | None = None
    approximate_creation_time: dt.datetime | None = None
    table_name: str | None = None
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False)
    payload: Mapping[str, Any] | None = field(default=None, repr=False)

    @property
    def item(self) -> ModelBase:
        """The item as it is now: the new image, else (REMOVE) the old one."""
        found = self.new if self.new is not None else self.old
        assert found is not None  # a routed record has at least one image
        return found


@dataclass(frozen=True)
class UnroutedRecord:
    """A record that could not be turned into a `ChangeRecord`, and why.

    Attributes:
        kind: ``unknown_entity`` (an entity type no model knows: usually fine to skip in a
            single-table design), ``invalid_image`` (an image does not fit its model),
            ``no_image`` (a ``KEYS_ONLY`` stream), ``no_entity_type`` (the image lacks the
            entity-type attribute) or ``invalid_record`` (not a DynamoDB stream record, or a
            Kinesis record whose ``data`` is not base64 JSON of a DynamoDB change record).
        reason: what went wrong, in words.
        sequence_number: the record's ``SequenceNumber`` or (Kinesis) ``kinesis.sequenceNumber``
            (None if it has none).
        entity: the entity type found in the image, if any.
        error: the exception raised while parsing an image or decoding, if that was the problem.
        raw: the record as received.
        payload: for a Kinesis record, its decoded ``data`` if it could be decoded.
    """

    kind: UnroutedKind
    reason: str
    sequence_number: str | None
    entity: str | None = None
    error: BaseException | None = None
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False)
    payload: Mapping[str, Any] | None = field(default=None, repr=False)


@dataclass
class StreamBatch:
    """A parsed Lambda event: the routed records and the ones that could not be routed.

    Iterating yields the `ChangeRecord` objects in stream order; ``in_order`` holds both
    kinds in stream order.
    """

    records: list[ChangeRecord] = field(default_factory=list)
    unrouted: list[UnroutedRecord] = field(default_factory=list)
    in_order: list[ChangeRecord | UnroutedRecord] = field(default_factory=list)

    def __iter__(self) -> Iterator[ChangeRecord]:
        return iter(self.records)

    def __len__(self) -> int:
        return len(self.in_order)

    def of(self, model: type[ModelBase]) -> list[ChangeRecord]:
        """The records of one model class."""
        return [r for r in self.records if r.model is model]

    def failures(self, sequence_numbers: Iterable[str | None]) -> dict[str, Any]:
        """The partial batch failure response for these records (see `batch_item_failures`)."""
        return batch_item_failures(sequence_numbers)

    def latest(self) -> list[ChangeRecord]:
        """The newest change of each item in the batch, in batch order; the others left out.

        An item is its table and primary key; its newest change is the one with the latest
        ``approximate_creation_time``, and between equal times the one later in the batch.
        Kinesis Data Streams may deliver one item's changes out of order, and a change more
        than once: this keeps one change per item. Only routed records count (an item whose
        newest image did not fit its model is in ``unrouted``, and an older change of it
        would be kept here).
        """
        newest: dict[tuple[Any, ...], tuple[tuple[dt.datetime, int], int]] = {}
        for position, record in enumerate(self.records):
            item = (record.table_name, tuple(sorted(record.keys.items())))
            rank = (record.approximate_creation_time or _NEVER, position)
            if item not in newest or rank > newest[item][0]:
                newest[item] = (rank, position)
        return [self.records[p] for p in sorted(p for _, p in newest.values())]


def batch_item_failures(sequence_numbers: Iterable[str | None]) -> dict[str, Any]:
    """``{"batchItemFailures": [{"itemIdentifier": seq}, ...]}`` for a Lambda response.

    With ``ReportBatchItemFailures`` enabled on the event source mapping, Lambda retries the
    batch from the lowest sequence number reported (records before it count as done); an
    empty list means the whole batch succeeded.
    """
    seen: list[str] = []
    for sequence in sequence_numbers:
        if not sequence:
            raise ValidationError(
                "batch_item_failures: a failed record without a SequenceNumber cannot be "
                "reported; fail the whole batch (raise) instead"
            )
        if sequence not in seen:
            seen.append(sequence)
    return {"batchItemFailures": [{"itemIdentifier": s} for s in seen]}


# -- parsing ---------------------------------------------------------------------------------


def _binary(value: Any) -> Any:
    if isinstance(value, str):
        try:
            return base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise ValidationError(f"binary attribute value is not base64: {value[:40]!r}") from exc
    return value


def _decode_value(value: Mapping[str, Any]) -> dict[str, Any]:
    """A stream AttributeValue with binary values as bytes (JSON events carry base64 text)."""
    out: dict[str, Any] = {}
    for tag, inner in value.items():
        if tag == "B":
            out[tag] = _binary(inner)
        elif tag == "BS":
            out[tag] = [_binary(v) for v in inner]
        elif tag == "M":
            out[tag] = stream_image(inner)
        elif tag == "L":
            out[tag] = [_decode_value(v) for v in inner]
        else:
            out[tag] = inner
    return out


def stream_image(image: Mapping[str, Any]) -> Item:
    """A ``NewImage``/``OldImage``/``Keys`` map as an item `Model.from_item` can read."""
    return {name: _decode_value(value) for name, value in image.items()}


def _creation_time(value: Any) -> dt.datetime | None:
    if isinstance(value, int | float):
        return dt.datetime.fromtimestamp(value, dt.UTC)
    return None


def _table_name(arn: Any) -> str | None:
    # arn:aws:dynamodb:<region>:<account>:table/<name>/stream/<label>
    if not isinstance(arn, str) or ":table/" not in arn:
        return None
    return arn.split(":table/", 1)[1].split("/", 1)[0]


def _registry(
    models: Sequence[type[ModelBase]] | None, table: Table | None
) -> tuple[dict[str, type[ModelBase]], str]:
    if models is None and table is None:
        raise ValidationError("parse_stream_event needs models=[...] or table=...")
    registry: dict[str, type[ModelBase]] = dict(table.entities) if table is not None else {}
    type_attributes = {table.type_attribute} if table is not None else set()
    for model in models or ():
        spec = model._spec()
        registry[spec.entity] = model
        type_attributes.add(spec.table.type_attribute)
    if len(type_attributes) != 1:
        raise ValidationError(
            f"parse_stream_event: the models store their entity type in different attributes "
            f"{sorted(type_attributes)}; parse each table's events separately"
        )
    if not registry:
        raise ValidationError("parse_stream_event: the table has no models registered")
    return registry, type_attributes.pop()


def _entity(image: Item | None, type_attribute: str) -> str | None:
    if image is None:
        return None
    tag = image.get(type_attribute)
    value = tag.get("S") if isinstance(tag, Mapping) else None
    return value if isinstance(value, str) else None


def _is_ttl_delete(record: Mapping[str, Any]) -> bool:
    identity = record.get("userIdentity")
    if not isinstance(identity, Mapping):
        return False
    return identity.get("type") == "Service" and identity.get("principalId") == TTL_PRINCIPAL


def parse_record(
    record: Mapping[str, Any], registry: Mapping[str, type[ModelBase]], type_attribute: str
) -> ChangeRecord | UnroutedRecord:
    """One ``Records[]`` entry -> `ChangeRecord`, or `UnroutedRecord` saying why not.

    A DynamoDB Streams record (``eventSource`` ``aws:dynamodb``) is routed as it is; a Kinesis
    record (``aws:kinesis``) is unwrapped first (`unwrap_kinesis_record`) and the DynamoDB
    change record in its ``data`` is routed, identified by the Kinesis sequence number.
    """
    if is_kinesis_record(record):
        found = unwrap_kinesis_record(record)
        sequence, change = found.sequence_number, found.change
        if change is None or found.problem is not None:
            reason = found.problem or "the Kinesis record holds no change record"
            return UnroutedRecord(
                "invalid_record", reason, sequence, None, found.error, record, change
            )
        where = (sequence, found.approximate_creation_time, found.table_name)
        return _route(record, change, where, registry, type_attribute)
    body = record.get("dynamodb")
    sequence = body.get("SequenceNumber") if isinstance(body, Mapping) else None
    if record.get("eventSource") != "aws:dynamodb" or not isinstance(body, Mapping):
        source = record.get("eventSource")
        reason = f"not a DynamoDB stream record (eventSource {source!r})"
        return UnroutedRecord("invalid_record", reason, sequence, raw=record)
    time = _creation_time(body.get("ApproximateCreationDateTime"))
    where = (sequence, time, _table_name(record.get("eventSourceARN")))
    return _route(record, record, where, registry, type_attribute)


def _route(
    raw: Mapping[str, Any],
    change: Mapping[str, Any],
    where: tuple[Any, dt.datetime | None, str | None],
    registry: Mapping[str, type[ModelBase]],
    type_attribute: str,
) -> ChangeRecord | UnroutedRecord:
    """Route a DynamoDB change record (``raw`` itself, or the ``data`` of a Kinesis ``raw``).

    ``where`` is what the delivery says: sequence number, creation time and table name.
    """
    sequence, time, table_name = where
    payload = None if change is raw else change
    body = change.get("dynamodb")

    def unrouted(
        kind: UnroutedKind,
        reason: str,
        entity: str | None = None,
        error: BaseException | None = None,
    ) -> UnroutedRecord:
        return UnroutedRecord(kind, reason, sequence, entity, error, raw, payload)

    if not isinstance(body, Mapping):
        return unrouted("invalid_record", "the change record has no 'dynamodb' object")
    name = change.get("eventName")
    if name not in _EVENT_NAMES:
        return unrouted("invalid_record", f"unknown eventName {name!r}")
    if not sequence:
        return unrouted("invalid_record", "the record has no SequenceNumber")
    try:
        new = stream_image(body["NewImage"]) if "NewImage" in body else None
        old = stream_image(body["OldImage"]) if "OldImage" in body else None
        raw_keys = stream_image(body.get("Keys") or {})
    except ValidationError as exc:
        return unrouted("invalid_record", str(exc), error=exc)
    entity = _entity(new, type_attribute) or _entity(old, type_attribute)
    if new is None and old is None:
        view = body.get("StreamViewType")
        return unrouted("no_image", f"no item image (stream view {view}): entity type unknown")
    if entity is None:
        return unrouted(
            "no_entity_type", f"the image has no entity type attribute {type_attribute!r}"
        )
    model = registry.get(entity)
    if model is None:
        return unrouted("unknown_entity", f"no model for entity type {entity!r}", entity)
    try:
        new_model = _parse(new, registry, type_attribute, model)
        old_model = _parse(old, registry, type_attribute, model)
    except Exception as exc:
        reason = f"the image does not fit {model.__name__}: {exc}"
        return unrouted("invalid_image", reason, entity, exc)
    return ChangeRecord(
        event_name=name,
        model=model,
        new=new_model,
        old=old_model,
        keys=decode_item(raw_keys),
        raw_keys=raw_keys,
        is_ttl_delete=name == "REMOVE" and _is_ttl_delete(change),
        sequence_number=str(sequence),
        event_id=change.get("eventID"),
        stream_view_type=body.get("StreamViewType"),
        approximate_creation_time=time,
        table_name=table_name,
        raw=raw,
        payload=payload,
    )


def _parse(
    image: Item | None,
    registry: Mapping[str, type[ModelBase]],
    type_attribute: str,
    default: type[ModelBase],
) -> ModelBase | None:
    if image is None:
        return None
    model = registry.get(_entity(image, type_attribute) or "", default)
    return model.from_item(image)


def parse_stream_event(
    event: Mapping[str, Any],
    *,
    models: Sequence[type[ModelBase]] | None = None,
    table: Table | None = None,
) -> StreamBatch:
    """Parse a DynamoDB Streams or Kinesis Lambda event (``{"Records": [...]}``) into a batch.

    ``table`` routes with every model registered on it; ``models`` lists the classes to
    route to (both may be given). Records that cannot be routed land in ``unrouted``. Each
    record's ``eventSource`` says how it came: ``aws:dynamodb`` (a DynamoDB stream) or
    ``aws:kinesis`` (Kinesis Data Streams for DynamoDB, the change base64 JSON in its data).
    """
    registry, type_attribute = _registry(models, table)
    records = event.get("Records") if isinstance(event, Mapping) else None
    if not isinstance(records, list):
        raise ValidationError("parse_stream_event: the event has no 'Records' list")
    batch = StreamBatch()
    for record in records:
        parsed = (
            parse_record(record, registry, type_attribute)
            if isinstance(record, Mapping)
            else UnroutedRecord("invalid_record", f"a record must be an object: {record!r}", None)
        )
        if (
            isinstance(parsed, UnroutedRecord)
            and parsed.kind == "unknown_entity"
            and (parsed.entity or "").startswith(RESERVED_PREFIX)
        ):
            continue  # dynamodel's own records (unique-constraint guards): not application data
        batch.in_order.append(parsed)
        if isinstance(parsed, ChangeRecord):
            batch.records.append(parsed)
        else:
            batch.unrouted.append(parsed)
    return batch


def handle_stream_event(
    event: Mapping[str, Any],
    handler: Callable[[ChangeRecord], Any],
    *,
    models: Sequence[type[ModelBase]] | None = None,
    table: Table | None = None,
    on_unrouted: Literal["fail", "skip", "skip_unknown"] | Callable[[UnroutedRecord], Any] = "fail",
    latest_only: bool = False,
) -> dict[str, Any]:
    """Run ``handler`` on each record in stream order; return the partial failure response.

    Processing stops at the first record whose handler raises: that record's sequence number
    is reported, so Lambda retries from it (the records after it would be retried anyway,
    and skipping ahead would apply changes out of order). The exception is logged.

    ``on_unrouted`` decides what an unrouted record does: ``"fail"`` (default) stops there
    like a failed record, so nothing is skipped unseen; ``"skip_unknown"`` logs a warning
    and goes on for entity types no model knows (other entities of a single table) but fails
    on the other kinds; ``"skip"`` logs a warning and goes on for every kind; a function is
    called with the `UnroutedRecord` (raise in it to fail the record).

    ``latest_only=True`` runs ``handler`` only on each item's newest change in the batch
    (`StreamBatch.latest`; for Kinesis, which may deliver an item's changes out of order or
    twice); the older ones count as done. Unrouted records are handled as above either way.
    """
    if isinstance(on_unrouted, str) and on_unrouted not in ("fail", "skip", "skip_unknown"):
        raise ValidationError(
            f"on_unrouted must be 'fail', 'skip', 'skip_unknown' or a function, got {on_unrouted!r}"
        )
    batch = parse_stream_event(event, models=models, table=table)
    entries = batch.in_order
    if latest_only:
        keep = {id(record) for record in batch.latest()}
        entries = [e for e in entries if isinstance(e, UnroutedRecord) or id(e) in keep]
    for entry in entries:
        try:
            if isinstance(entry, ChangeRecord):
                handler(entry)
            elif on_unrouted == "skip" or (
                on_unrouted == "skip_unknown" and entry.kind == "unknown_entity"
            ):
                log.warning("skipping stream record %s: %s", entry.sequence_number, entry.reason)
            elif isinstance(on_unrouted, str):
                raise ValidationError(f"unrouted stream record: {entry.reason}")
            else:
                on_unrouted(entry)
        except Exception:
            sequence = entry.sequence_number
            log.exception("stream record %s failed", sequence)
            if not sequence:
                raise  # cannot be reported on its own: fail the whole batch
            return batch_item_failures([sequence])
    return batch_item_failures([])
