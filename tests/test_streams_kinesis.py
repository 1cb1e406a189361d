"""DynamoDB change records delivered through Kinesis Data Streams (no server needed).

The events are built in the documented shape: a Lambda event from a Kinesis stream whose
records carry, as base64 JSON in ``kinesis.data``, the change record DynamoDB sends there
(``tableName``, no ``SequenceNumber``, ``ApproximateCreationDateTime`` in milliseconds).
"""

from __future__ import annotations

import base64
import binascii
import copy
import datetime as dt
import json
import logging
from decimal import Decimal
from typing import Any

import pytest
from pydantic import Field

from dynamodel import Model, Table, ValidationError
from dynamodel.modelling.ttl import TTL
from dynamodel.ops.kinesis_streams import KinesisChange, unwrap_kinesis_record
from dynamodel.ops.streams import (
    ChangeRecord,
    UnroutedRecord,
    handle_stream_event,
    parse_stream_event,
)

SHOP = Table("kinesis-shop", ttl="expires_at")
STREAM_ARN = "arn:aws:kinesis:eu-west-1:123456789012:stream/shop-changes"
T0 = 1714555800000  # 2024-05-01T09:30:00Z, in milliseconds


class Order(Model):
    class Meta:
        table = SHOP
        pk = "CUSTOMER#{customer_id}"
        sk = "ORDER#{order_id}"

    customer_id: str
    order_id: str
    status: str
    total: Decimal
    tags: set[str] = Field(default_factory=set)


class Cart(Model):
    class Meta:
        table = SHOP
        pk = "CUSTOMER#{customer_id}"
        sk = "CART"

    customer_id: str
    expires_at: TTL
    token: bytes = b""
    fingerprints: set[bytes] = Field(default_factory=set)


def b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


def order(status: str, order_id: str = "o1") -> dict[str, Any]:
    return {
        "pk": {"S": "CUSTOMER#c1"},
        "sk": {"S": f"ORDER#{order_id}"},
        "_type": {"S": "Order"},
        "customer_id": {"S": "c1"},
        "order_id": {"S": order_id},
        "status": {"S": status},
        "total": {"N": "25.50"},
        "tags": {"SS": ["gift", "express"]},
    }


CART = {
    "pk": {"S": "CUSTOMER#c1"},
    "sk": {"S": "CART"},
    "_type": {"S": "Cart"},
    "customer_id": {"S": "c1"},
    "expires_at": {"N": "1714642200"},
    "token": {"B": b64(b"\x00\x01secret\xff")},
    "fingerprints": {"BS": [b64(b"\x01\x02"), b64(b"\xfe")]},
}
AUDIT = {"pk": {"S": "AUDIT#1"}, "sk": {"S": "E#1"}, "_type": {"S": "AuditEntry"}}


def change(
    name: str,
    new: dict[str, Any] | None = None,
    old: dict[str, Any] | None = None,
    *,
    ms: int = T0,
    identity: dict[str, str] | None = None,
    event_id: str = "4b6ed2c5-cb3b-4a1a-9a6e-4f0c7b0d2a11",
) -> dict[str, Any]:
    """The change record DynamoDB writes to the Kinesis stream (the decoded ``data``)."""
    image = new if new is not None else old
    assert image is not None
    body: dict[str, Any] = {
        "ApproximateCreationDateTime": ms,
        "Keys": {"pk": image["pk"], "sk": image["sk"]},
        "SizeBytes": 120,
        "ApproximateCreationDateTimePrecision": "MILLISECOND",
    }
    if new is not None:
        body["NewImage"] = new
    if old is not None:
        body["OldImage"] = old
    return {
        "awsRegion": "eu-west-1",
        "eventID": event_id,
        "eventName": name,
        "userIdentity": identity,
        "recordFormat": "application/json",
        "tableName": "kinesis-shop",
        "dynamodb": body,
        "eventSource": "aws:dynamodb",
    }


def seq(n: int) -> str:
    return f"4959033827149025660855969253836157109592157598913658{n:04d}"


def kinesis(n: int, payload: dict[str, Any] | list[Any] | str | bytes) -> dict[str, Any]:
    """A Lambda event record from the Kinesis stream; ``payload`` becomes its base64 data."""
    if isinstance(payload, str):
        data = payload  # given as is (to test data that is not base64)
    else:
        raw = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        data = b64(raw)
    return {
        "kinesis": {
            "kinesisSchemaVersion": "1.0",
            "partitionKey": "8C5D3B7E2F1A4C6D9E0B1A2C3D4E5F60",
            "sequenceNumber": seq(n),
            "data": data,
            "approximateArrivalTimestamp": 1714555800.5 + n,
        },
        "eventSource": "aws:kinesis",
        "eventVersion": "1.0",
        "eventID": f"shardId-000000000000:{seq(n)}",
        "eventName": "aws:kinesis:record",
        "invokeIdentityArn": "arn:aws:iam::123456789012:role/shop-stream-consumer",
        "awsRegion": "eu-west-1",
        "eventSourceARN": STREAM_ARN,
    }


TTL_IDENTITY = {"type": "Service", "principalId": "dynamodb.amazonaws.com"}


def event() -> dict[str, Any]:
    return {
        "Records": [
            kinesis(1, change("INSERT", order("placed"), ms=T0 + 1, event_id="e-1")),
            kinesis(2, change("MODIFY", order("shipped"), order("placed"), ms=T0 + 2)),
            kinesis(3, change("INSERT", CART, ms=T0 + 3)),
            kinesis(4, change("REMOVE", old=order("shipped"), ms=T0 + 4)),
            kinesis(5, change("REMOVE", old=CART, ms=T0 + 5, identity=TTL_IDENTITY)),
            kinesis(6, change("INSERT", AUDIT, ms=T0 + 6)),
        ]
    }


def test_the_sample_event_has_the_documented_shape() -> None:
    for record in event()["Records"]:
        assert record["eventSource"] == "aws:kinesis"
        assert record["eventName"] == "aws:kinesis:record"
        assert record["eventID"] == f"shardId-000000000000:{record['kinesis']['sequenceNumber']}"
        data = json.loads(base64.b64decode(record["kinesis"]["data"]))
        assert data["eventSource"] == "aws:dynamodb"
        assert data["recordFormat"] == "application/json"
        assert {"tableName", "eventID", "eventName", "userIdentity", "awsRegion"} <= set(data)
        body = data["dynamodb"]
        assert "SequenceNumber" not in body and "StreamViewType" not in body
        assert body["ApproximateCreationDateTime"] > 10**12  # milliseconds


def test_kinesis_records_parse_into_change_records() -> None:
    batch = parse_stream_event(event(), table=SHOP)
    summary = [
        (r.event_name, r.model.__name__, r.is_ttl_delete, r.new is not None, r.old is not None)
        for r in batch
    ]
    assert summary == [
        ("INSERT", "Order", False, True, False),
        ("MODIFY", "Order", False, True, True),
        ("INSERT", "Cart", False, True, False),
        ("REMOVE", "Order", False, False, True),
        ("REMOVE", "Cart", True, False, True),  # TTL deletion: userIdentity is DynamoDB
    ]
    assert all(isinstance(r, ChangeRecord) for r in batch)
    inserted, modified = batch.records[0], batch.records[1]
    # the partial failure identity is the Kinesis record's sequence number
    assert [r.sequence_number for r in batch] == [seq(n) for n in range(1, 6)]
    assert inserted.event_id == "e-1"  # the DynamoDB change's eventID, from inside data
    assert inserted.table_name == "kinesis-shop"  # tableName, not the Kinesis stream's ARN
    assert inserted.stream_view_type is None
    assert modified.approximate_creation_time == dt.datetime(
        2024, 5, 1, 9, 30, 0, 2000, tzinfo=dt.UTC
    )  # milliseconds, not seconds
    assert isinstance(modified.old, Order) and isinstance(modified.new, Order)
    assert (modified.old.status, modified.new.status) == ("placed", "shipped")
    assert modified.new.total == Decimal("25.50") and modified.new.tags == {"gift", "express"}
    assert modified.keys == {"pk": "CUSTOMER#c1", "sk": "ORDER#o1"}
    assert modified.raw_keys == {"pk": {"S": "CUSTOMER#c1"}, "sk": {"S": "ORDER#o1"}}
    assert modified.raw == event()["Records"][1]  # the record as received
    assert modified.payload is not None and modified.payload["eventName"] == "MODIFY"
    assert modified.item is modified.new


def test_binary_attributes_arrive_as_bytes() -> None:
    batch = parse_stream_event(event(), models=[Cart])
    inserted, expired = batch.records
    assert isinstance(inserted.new, Cart)
    assert inserted.new.token == b"\x00\x01secret\xff"
    assert inserted.new.fingerprints == {b"\x01\x02", b"\xfe"}
    assert expired.is_ttl_delete and isinstance(expired.item, Cart)
    assert expired.item.expires_at == dt.datetime.fromtimestamp(1714642200, dt.UTC)


def test_only_the_dynamodb_service_principal_makes_a_ttl_delete() -> None:
    other = {"type": "Service", "principalId": "other.amazonaws.com"}
    records = [
        kinesis(1, change("REMOVE", old=CART, identity=None)),
        kinesis(2, change("REMOVE", old=CART, identity=other)),
        kinesis(3, change("REMOVE", old=CART, identity=TTL_IDENTITY)),
        kinesis(4, change("MODIFY", CART, CART, identity=TTL_IDENTITY)),  # not a REMOVE
    ]
    batch = parse_stream_event({"Records": records}, table=SHOP)
    assert [r.is_ttl_delete for r in batch] == [False, False, True, False]


def test_unknown_entities_are_reported_with_the_kinesis_sequence_number() -> None:
    batch = parse_stream_event(event(), table=SHOP)
    assert len(batch) == 6 and len(batch.records) == 5
    (unknown,) = batch.unrouted
    assert isinstance(unknown, UnroutedRecord)
    assert (unknown.kind, unknown.entity, unknown.sequence_number) == (
        "unknown_entity",
        "AuditEntry",
        seq(6),
    )
    assert unknown.payload is not None and unknown.payload["tableName"] == "kinesis-shop"
    assert unknown.raw["eventSource"] == "aws:kinesis"
    assert batch.in_order[5] is unknown


def test_undecodable_and_foreign_kinesis_records_are_unrouted_never_dropped() -> None:
    foreign = {"eventSource": "aws:s3", "eventName": "ObjectCreated:Put", "s3": {}}
    broken_image = change("INSERT", {**CART, "token": {"B": "not base64!"}})
    records = [
        kinesis(1, "this is not base64!"),
        kinesis(2, b"{not json"),
        kinesis(3, b"\xff\xfe\x00"),  # base64 of bytes that are not UTF-8 text
        kinesis(4, [1, 2, 3]),  # JSON, but not an object
        kinesis(5, foreign),  # another producer writing to the same stream
        kinesis(6, {"clicks": 3}),  # no eventSource at all
        kinesis(7, broken_image),
        kinesis(8, change("INSERT", order("placed"))),
    ]
    batch = parse_stream_event({"Records": records}, table=SHOP)
    assert [r.sequence_number for r in batch] == [seq(8)]
    assert [(u.kind, u.sequence_number) for u in batch.unrouted] == [
        ("invalid_record", seq(n)) for n in range(1, 8)
    ]
    reasons = [u.reason for u in batch.unrouted]
    assert "not base64" in reasons[0] and isinstance(batch.unrouted[0].error, binascii.Error)
    assert "not JSON" in reasons[1] and "not JSON" in reasons[2]
    assert "not an object" in reasons[3]
    assert "not a DynamoDB change record" in reasons[4] and "'aws:s3'" in reasons[4]
    assert "not a DynamoDB change record" in reasons[5] and "None" in reasons[5]
    assert "binary attribute value is not base64" in reasons[6]
    assert [u.payload for u in batch.unrouted[:4]] == [None] * 4
    assert batch.unrouted[4].payload == foreign  # decoded, kept for inspection
    assert all(u.raw is r for u, r in zip(batch.unrouted, records, strict=False))


def test_envelope_problems_and_the_unwrapper() -> None:
    no_sequence = kinesis(1, change("INSERT", order("placed")))
    del no_sequence["kinesis"]["sequenceNumber"]
    no_data = kinesis(2, change("INSERT", order("placed")))
    no_data["kinesis"]["data"] = None
    records = [{"eventSource": "aws:kinesis"}, no_sequence, no_data]
    batch = parse_stream_event({"Records": records}, table=SHOP)
    assert [(u.kind, u.sequence_number) for u in batch.unrouted] == [
        ("invalid_record", None),
        ("invalid_record", None),
        ("invalid_record", seq(2)),
    ]
    assert "no 'kinesis' object" in batch.unrouted[0].reason
    assert "no sequenceNumber" in batch.unrouted[1].reason
    assert "no base64 'data'" in batch.unrouted[2].reason

    found = unwrap_kinesis_record(kinesis(9, change("INSERT", order("placed"), ms=T0)))
    assert isinstance(found, KinesisChange) and found.problem is None
    assert found.sequence_number == seq(9) and found.table_name == "kinesis-shop"
    assert found.approximate_creation_time == dt.datetime(2024, 5, 1, 9, 30, tzinfo=dt.UTC)
    assert found.change is not None and found.change["eventName"] == "INSERT"


def test_a_kinesis_record_without_sequence_number_fails_the_whole_batch() -> None:
    record = kinesis(1, change("INSERT", order("placed")))
    del record["kinesis"]["sequenceNumber"]
    with pytest.raises(ValidationError, match="no sequenceNumber"):
        handle_stream_event({"Records": [record]}, lambda c: None, table=SHOP)


def test_microsecond_precision_and_records_without_images() -> None:
    precise = change("INSERT", order("placed"))
    precise["dynamodb"]["ApproximateCreationDateTime"] = 1714555800123456
    precise["dynamodb"]["ApproximateCreationDateTimePrecision"] = "MICROSECOND"
    keys_only = change("INSERT", order("placed"))
    del keys_only["dynamodb"]["NewImage"]
    unnamed = change("INSERT", order("placed"))
    unnamed["eventName"] = "UPSERT"
    records = [kinesis(1, precise), kinesis(2, keys_only), kinesis(3, unnamed)]
    batch = parse_stream_event({"Records": records}, table=SHOP)
    (record,) = batch.records
    assert record.approximate_creation_time == dt.datetime(
        2024, 5, 1, 9, 30, 0, 123456, tzinfo=dt.UTC
    )
    assert [(u.kind, u.sequence_number) for u in batch.unrouted] == [
        ("no_image", seq(2)),
        ("invalid_record", seq(3)),
    ]
    assert "UPSERT" in batch.unrouted[1].reason


def test_dynamodel_guard_items_are_left_out_as_for_dynamodb_streams() -> None:
    guard = {"pk": {"S": "_U#x"}, "sk": {"S": "_U"}, "_type": {"S": "_dynamodel_unique"}}
    batch = parse_stream_event({"Records": [kinesis(1, change("INSERT", guard))]}, table=SHOP)
    assert len(batch) == 0


def test_a_failing_handler_reports_its_kinesis_sequence_number(
    caplog: pytest.LogCaptureFixture,
) -> None:
    seen: list[str] = []

    def handler(record: ChangeRecord) -> None:
        seen.append(record.sequence_number)
        if record.model is Cart and record.event_name == "INSERT":
            raise RuntimeError("downstream unavailable")

    with caplog.at_level(logging.ERROR, logger="dynamodel.ops.streams"):
        response = handle_stream_event(event(), handler, table=SHOP)
    assert response == {"batchItemFailures": [{"itemIdentifier": seq(3)}]}
    assert seen == [seq(1), seq(2), seq(3)]  # none after the failure
    assert "downstream unavailable" in caplog.text


def test_unrouted_kinesis_records_fail_by_default_and_can_be_skipped() -> None:
    data = event()
    data["Records"].insert(2, kinesis(99, "not base64!"))
    seen: list[str] = []
    response = handle_stream_event(data, lambda r: seen.append(r.sequence_number), table=SHOP)
    assert response == {"batchItemFailures": [{"itemIdentifier": seq(99)}]}
    assert seen == [seq(1), seq(2)]
    assert handle_stream_event(data, lambda r: None, table=SHOP, on_unrouted="skip") == {
        "batchItemFailures": []
    }
    skip_unknown = handle_stream_event(data, lambda r: None, table=SHOP, on_unrouted="skip_unknown")
    assert skip_unknown == {"batchItemFailures": [{"itemIdentifier": seq(99)}]}


def test_dynamodb_streams_and_kinesis_records_parse_alike_in_one_event() -> None:
    streams_record = {
        "eventID": "7de3041b2b9d6f8c0a54e7a1c8f3e2d1",
        "eventName": "INSERT",
        "eventVersion": "1.1",
        "eventSource": "aws:dynamodb",
        "awsRegion": "eu-west-1",
        "eventSourceARN": "arn:aws:dynamodb:eu-west-1:123456789012:table/kinesis-shop/stream/x",
        "dynamodb": {
            "ApproximateCreationDateTime": 1714555800,
            "Keys": {"pk": {"S": "CUSTOMER#c1"}, "sk": {"S": "ORDER#o2"}},
            "NewImage": order("placed", "o2"),
            "SequenceNumber": "4421584500000000017450439091",
            "SizeBytes": 142,
            "StreamViewType": "NEW_AND_OLD_IMAGES",
        },
    }
    mixed = {"Records": [streams_record, kinesis(1, change("INSERT", order("placed")))]}
    first, second = parse_stream_event(mixed, table=SHOP)
    assert (first.sequence_number, second.sequence_number) == (
        "4421584500000000017450439091",
        seq(1),
    )
    assert first.table_name == second.table_name == "kinesis-shop"
    assert first.payload is None and second.payload is not None
    assert first.approximate_creation_time == dt.datetime(2024, 5, 1, 9, 30, tzinfo=dt.UTC)
    assert second.approximate_creation_time == first.approximate_creation_time


def duplicated_and_reordered() -> dict[str, Any]:
    """Order o1 placed, shipped, delivered; Kinesis delivers them out of order, one twice."""
    placed = change("INSERT", order("placed"), ms=T0 + 100, event_id="placed")
    shipped = change("MODIFY", order("shipped"), order("placed"), ms=T0 + 200, event_id="s")
    delivered = change("MODIFY", order("delivered"), order("shipped"), ms=T0 + 300)
    other = change("INSERT", order("placed", "o2"), ms=T0 + 150)
    return {
        "Records": [
            kinesis(1, placed),
            kinesis(2, delivered),  # newest, delivered before an older change
            kinesis(3, other),
            kinesis(4, shipped),
            kinesis(5, copy.deepcopy(placed)),  # a duplicate of record 1
            kinesis(6, "not base64!"),
        ]
    }


def test_latest_keeps_the_newest_change_of_each_item() -> None:
    batch = parse_stream_event(duplicated_and_reordered(), table=SHOP)
    assert len(batch.records) == 5
    latest = batch.latest()
    assert [(r.sequence_number, r.keys["sk"]) for r in latest] == [
        (seq(2), "ORDER#o1"),  # delivered: the newest change of o1, kept where it was
        (seq(3), "ORDER#o2"),
    ]
    assert latest[0].new is not None and latest[0].new.status == "delivered"
    assert len(batch.unrouted) == 1  # unrouted records are not part of latest()


def test_latest_breaks_ties_by_batch_position_and_serves_dynamodb_streams_too() -> None:
    first = change("MODIFY", order("a"), order("placed"), ms=T0)
    second = change("MODIFY", order("b"), order("a"), ms=T0)  # the same millisecond
    batch = parse_stream_event({"Records": [kinesis(1, first), kinesis(2, second)]}, table=SHOP)
    assert [r.sequence_number for r in batch.latest()] == [seq(2)]
    assert parse_stream_event({"Records": []}, table=SHOP).latest() == []


def test_handle_latest_only_runs_the_handler_on_the_newest_changes() -> None:
    seen: list[tuple[str, str]] = []

    def handler(record: ChangeRecord) -> None:
        assert isinstance(record.new, Order)
        seen.append((record.sequence_number, record.new.status))

    data = duplicated_and_reordered()
    response = handle_stream_event(data, handler, table=SHOP, latest_only=True, on_unrouted="skip")
    assert response == {"batchItemFailures": []}
    assert seen == [(seq(2), "delivered"), (seq(3), "placed")]

    seen.clear()
    everything = handle_stream_event(data, handler, table=SHOP, on_unrouted="skip")
    assert everything == {"batchItemFailures": []}
    assert [s for s, _ in seen] == [seq(n) for n in range(1, 6)]  # duplicates included

    def fail_on_o2(record: ChangeRecord) -> None:
        if record.keys["sk"] == "ORDER#o2":
            raise RuntimeError("no")

    response = handle_stream_event(data, fail_on_o2, table=SHOP, latest_only=True)
    assert response == {"batchItemFailures": [{"itemIdentifier": seq(3)}]}
    # the unrouted record still fails by default with latest_only
    response = handle_stream_event(data, lambda r: None, table=SHOP, latest_only=True)
    assert response == {"batchItemFailures": [{"itemIdentifier": seq(6)}]}
