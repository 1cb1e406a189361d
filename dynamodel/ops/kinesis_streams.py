"""DynamoDB change records delivered through Kinesis Data Streams, unwrapped for the parser.

A table can send its changes to a Kinesis data stream ("Kinesis Data Streams for DynamoDB")
instead of, or besides, its DynamoDB stream. A Lambda function subscribed to that Kinesis
stream receives ``{"Records": [...]}`` whose entries have ``"eventSource": "aws:kinesis"`` and
carry the change as base64 JSON in ``kinesis.data``::

    {"kinesis": {"sequenceNumber": "4959...", "partitionKey": "...", "data": "<base64>", ...},
     "eventSource": "aws:kinesis", "eventID": "shardId-000000000000:4959...", ...}

    data -> {"awsRegion": "...", "eventID": "...", "eventName": "INSERT|MODIFY|REMOVE",
             "userIdentity": null, "recordFormat": "application/json", "tableName": "...",
             "dynamodb": {"ApproximateCreationDateTime": 1714555800123, "Keys": {...},
                          "NewImage": {...}, "OldImage": {...}, "SizeBytes": 142,
                          "ApproximateCreationDateTimePrecision": "MILLISECOND"},
             "eventSource": "aws:dynamodb"}

The change inside is a DynamoDB Streams record with these differences: the table is named by
``tableName`` (there is no ``eventSourceARN`` of the table), ``dynamodb`` has neither
``SequenceNumber`` nor ``StreamViewType``, and ``ApproximateCreationDateTime`` counts
milliseconds since the epoch (microseconds when the destination's
``ApproximateCreationDateTimePrecision`` is ``MICROSECOND``), not seconds. The identifier of a
partial batch failure is the Kinesis record's ``kinesis.sequenceNumber``.

Kinesis gives no ordering guarantee for one item's changes and may deliver a change more than
once (docs/streams.md, "Kinesis Data Streams").

`dynamodel.ops.streams.parse_stream_event` calls `unwrap_kinesis_record` for every record
whose ``eventSource`` is ``aws:kinesis`` and routes the change inside like any other; this
module only opens the envelope and knows nothing of models.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["KINESIS_EVENT_SOURCE", "KinesisChange", "is_kinesis_record", "unwrap_kinesis_record"]

#: the ``eventSource`` of a record a Lambda function receives from a Kinesis data stream
KINESIS_EVENT_SOURCE = "aws:kinesis"
_DYNAMODB_EVENT_SOURCE = "aws:dynamodb"
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


@dataclass(frozen=True)
class KinesisChange:
    """What a Kinesis record carries: the DynamoDB change record inside, or why there is none.

    Attributes:
        sequence_number: the Kinesis record's ``kinesis.sequenceNumber`` (None if missing).
        change: the decoded ``data`` document (None when it could not be decoded).
        problem: why the record holds no usable DynamoDB change record (None when it does).
        error: the exception raised while decoding ``data``, if that was the problem.
    """

    sequence_number: str | None
    change: Mapping[str, Any] | None
    problem: str | None = None
    error: BaseException | None = None

    @property
    def table_name(self) -> str | None:
        """The change's ``tableName``."""
        name = self.change.get("tableName") if self.change is not None else None
        return name if isinstance(name, str) else None

    @property
    def approximate_creation_time(self) -> dt.datetime | None:
        """``dynamodb.ApproximateCreationDateTime`` (milliseconds, or microseconds) in UTC."""
        body = self.change.get("dynamodb") if self.change is not None else None
        if not isinstance(body, Mapping):
            return None
        value = body.get("ApproximateCreationDateTime")
        if isinstance(value, bool) or not isinstance(value, int | float):
            return None
        if body.get("ApproximateCreationDateTimePrecision") == "MICROSECOND":
            return _EPOCH + dt.timedelta(microseconds=value)
        return _EPOCH + dt.timedelta(milliseconds=value)


def is_kinesis_record(record: Mapping[str, Any]) -> bool:
    """True for a record delivered by a Kinesis data stream (``eventSource`` ``aws:kinesis``)."""
    return record.get("eventSource") == KINESIS_EVENT_SOURCE


def unwrap_kinesis_record(record: Mapping[str, Any]) -> KinesisChange:
    """Decode a Kinesis record's ``data`` into the DynamoDB change record it carries.

    Never raises: a record without a ``kinesis`` object or sequence number, whose ``data`` is
    not base64 or not a JSON object, or whose document is not from ``aws:dynamodb`` (another
    producer writing to the same stream) comes back with ``problem`` saying so.
    """
    envelope = record.get("kinesis")
    if not isinstance(envelope, Mapping):
        return KinesisChange(None, None, "the Kinesis record has no 'kinesis' object")
    sequence = envelope.get("sequenceNumber")
    sequence = sequence if isinstance(sequence, str) and sequence else None
    if sequence is None:
        return KinesisChange(None, None, "the Kinesis record has no sequenceNumber")
    data = envelope.get("data")
    if not isinstance(data, str):
        return KinesisChange(sequence, None, "the Kinesis record has no base64 'data'")
    try:
        text = base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError) as exc:
        return KinesisChange(sequence, None, f"the Kinesis data is not base64: {exc}", exc)
    try:
        change = json.loads(text)
    except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError
        return KinesisChange(sequence, None, f"the Kinesis data is not JSON: {exc}", exc)
    if not isinstance(change, Mapping):
        kind = type(change).__name__
        return KinesisChange(sequence, None, f"the Kinesis data is JSON but not an object: {kind}")
    source = change.get("eventSource")
    if source != _DYNAMODB_EVENT_SOURCE:
        problem = f"the Kinesis data is not a DynamoDB change record (eventSource {source!r})"
        return KinesisChange(sequence, change, problem)
    return KinesisChange(sequence, change)
