"""Parsing DynamoDB Streams Lambda events into models (no server needed)."""

from __future__ import annotations

import copy
import datetime as dt
import json
import logging
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel, Field

from dynamodel import Model, Table, ValidationError
from dynamodel.modelling.ttl import TTL
from dynamodel.ops.streams import (
    ChangeRecord,
    UnroutedRecord,
    batch_item_failures,
    handle_stream_event,
    parse_stream_event,
)

FIXTURE = Path(__file__).resolve().parent / "fixtures" / "stream_event.json"
SHOP = Table("shop", ttl="expires_at")


class Line(BaseModel):
    sku: str
    qty: int


class Order(Model):
    class Meta:
        table = SHOP
        pk = "CUSTOMER#{customer_id}"
        sk = "ORDER#{order_id}"

    customer_id: str
    order_id: str
    status: str
    total: Decimal
    lines: list[Line] = Field(default_factory=list)
    tags: set[str] = Field(default_factory=set)


class Cart(Model):
    class Meta:
        table = SHOP
        pk = "CUSTOMER#{customer_id}"
        sk = "CART"

    customer_id: str
    skus: list[str] = Field(default_factory=list)
    expires_at: TTL
    token: bytes = b""


def event() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(FIXTURE.read_text(encoding="utf-8"))
    return data


def test_fixture_is_shaped_like_an_aws_event() -> None:
    for record in event()["Records"]:
        assert record["eventSource"] == "aws:dynamodb"
        assert len(record["eventID"]) == 32
        body = record["dynamodb"]
        assert {"Keys", "SequenceNumber", "StreamViewType", "SizeBytes"} <= set(body)
        assert body["StreamViewType"] == "NEW_AND_OLD_IMAGES"
        assert ("NewImage" in body) == (record["eventName"] != "REMOVE")
        assert ("OldImage" in body) == (record["eventName"] != "INSERT")


def test_records_parse_into_their_classes_with_flags() -> None:
    batch = parse_stream_event(event(), table=SHOP)
    summary = [
        (r.event_name, r.model.__name__, r.is_ttl_delete, r.new is not None, r.old is not None)
        for r in batch
    ]
    assert summary == [
        ("INSERT", "Order", False, True, False),
        ("INSERT", "Cart", False, True, False),
        ("MODIFY", "Order", False, True, True),
        ("MODIFY", "Cart", False, True, True),
        ("REMOVE", "Order", False, False, True),
        ("REMOVE", "Cart", True, False, True),  # TTL deletion: userIdentity is DynamoDB
    ]
    modify = batch.records[2]
    assert isinstance(modify.old, Order) and isinstance(modify.new, Order)
    assert (modify.old.status, modify.new.status) == ("placed", "shipped")
    assert modify.new.total == Decimal("25.50")
    assert modify.new.lines == [Line(sku="sku-1", qty=2)]
    assert modify.new.tags == {"gift", "express"}
    assert modify.keys == {"pk": "CUSTOMER#c1", "sk": "ORDER#o1"}
    assert modify.raw_keys == {"pk": {"S": "CUSTOMER#c1"}, "sk": {"S": "ORDER#o1"}}
    assert modify.sequence_number == "1000000000000000000300"
    assert modify.table_name == "shop"
    assert modify.stream_view_type == "NEW_AND_OLD_IMAGES"
    assert modify.approximate_creation_time == dt.datetime(2024, 5, 1, 9, 30, 3, tzinfo=dt.UTC)
    assert modify.item is modify.new


def test_ttl_delete_carries_the_expired_item_with_decoded_binary_and_ttl() -> None:
    expired = parse_stream_event(event(), models=[Order, Cart]).records[5]
    assert expired.is_ttl_delete and expired.event_name == "REMOVE"
    cart = expired.item
    assert isinstance(cart, Cart)
    assert cart.token == b"tok-c2"  # JSON events carry binary as base64 text
    assert cart.expires_at == dt.datetime.fromtimestamp(1714469400, dt.UTC)
    inserted = parse_stream_event(event(), table=SHOP).records[1].item
    assert isinstance(inserted, Cart) and inserted.token == b"\x00\x01secret\xff"


def test_a_user_remove_is_not_a_ttl_delete() -> None:
    data = event()
    # a REMOVE by another service principal is not TTL either
    data["Records"][4]["userIdentity"] = {"type": "Service", "principalId": "other.amazonaws.com"}
    removed = parse_stream_event(data, table=SHOP).records[4]
    assert removed.event_name == "REMOVE" and not removed.is_ttl_delete


def test_unknown_entity_types_are_reported_not_dropped() -> None:
    batch = parse_stream_event(event(), table=SHOP)
    assert len(batch) == 7 and len(batch.records) == 6
    (unknown,) = batch.unrouted
    assert unknown.kind == "unknown_entity"
    assert unknown.entity == "AuditEntry"
    assert unknown.sequence_number == "1000000000000000000700"
    assert "AuditEntry" in unknown.reason
    assert batch.in_order[6] is unknown
    only_orders = parse_stream_event(event(), models=[Order])
    assert [r.model for r in only_orders] == [Order] * 3
    assert [u.entity for u in only_orders.unrouted] == ["Cart", "Cart", "Cart", "AuditEntry"]
    assert only_orders.of(Order) == only_orders.records


def test_images_that_do_not_fit_and_keys_only_records_are_reported() -> None:
    data = event()
    data["Records"][0]["dynamodb"]["NewImage"]["total"] = {"S": "lots"}
    keys_only = data["Records"][1]["dynamodb"]
    del keys_only["NewImage"]
    keys_only["StreamViewType"] = "KEYS_ONLY"
    data["Records"][3]["dynamodb"]["NewImage"]["token"] = {"B": "not base64!"}
    del data["Records"][4]["dynamodb"]["OldImage"]["_type"]
    data["Records"].append({"eventSource": "aws:kinesis", "kinesis": {}})
    batch = parse_stream_event(data, table=SHOP)
    kinds = [(u.kind, u.sequence_number) for u in batch.unrouted]
    assert kinds == [
        ("invalid_image", "1000000000000000000100"),
        ("no_image", "1000000000000000000200"),
        ("invalid_record", "1000000000000000000400"),
        ("no_entity_type", "1000000000000000000500"),
        ("unknown_entity", "1000000000000000000700"),
        ("invalid_record", None),
    ]
    assert batch.unrouted[0].error is not None and "total" in batch.unrouted[0].reason
    assert "KEYS_ONLY" in batch.unrouted[1].reason


def test_parse_needs_models_or_table_and_a_records_list() -> None:
    with pytest.raises(ValidationError, match=r"models=\[...\] or table"):
        parse_stream_event(event())
    with pytest.raises(ValidationError, match="'Records'"):
        parse_stream_event({"records": []}, table=SHOP)
    other = Table("other", type_attribute="kind")

    class Thing(Model):
        class Meta:
            table = other
            pk = "T#{id}"
            sk = "T"

        id: str

    with pytest.raises(ValidationError, match="different attributes"):
        parse_stream_event(event(), models=[Order, Thing])


def test_batch_item_failures_shape() -> None:
    assert batch_item_failures([]) == {"batchItemFailures": []}
    assert batch_item_failures(["2", "5", "2"]) == {
        "batchItemFailures": [{"itemIdentifier": "2"}, {"itemIdentifier": "5"}]
    }
    with pytest.raises(ValidationError, match="SequenceNumber"):
        batch_item_failures([None])
    batch = parse_stream_event(event(), table=SHOP)
    assert batch.failures([batch.records[1].sequence_number]) == {
        "batchItemFailures": [{"itemIdentifier": "1000000000000000000200"}]
    }


def test_handler_stops_at_the_first_failure_and_reports_it(
    caplog: pytest.LogCaptureFixture,
) -> None:
    seen: list[str] = []

    def handler(change: ChangeRecord) -> None:
        seen.append(change.sequence_number)
        if change.event_name == "MODIFY" and change.model is Cart:
            raise RuntimeError("downstream unavailable")

    with caplog.at_level(logging.ERROR, logger="dynamodel.ops.streams"):
        response = handle_stream_event(event(), handler, table=SHOP)
    assert response == {"batchItemFailures": [{"itemIdentifier": "1000000000000000000400"}]}
    assert seen == [f"1000000000000000000{n}00" for n in range(1, 5)]  # none after the failure
    assert "downstream unavailable" in caplog.text


def test_unrouted_records_fail_by_default_and_can_be_skipped(
    caplog: pytest.LogCaptureFixture,
) -> None:
    seen: list[str] = []
    assert handle_stream_event(event(), lambda c: seen.append(c.sequence_number), table=SHOP) == {
        "batchItemFailures": [{"itemIdentifier": "1000000000000000000700"}]
    }
    assert len(seen) == 6
    with caplog.at_level(logging.WARNING, logger="dynamodel.ops.streams"):
        assert handle_stream_event(event(), lambda c: None, table=SHOP, on_unrouted="skip") == {
            "batchItemFailures": []
        }
    assert "AuditEntry" in caplog.text  # skipped, but logged

    broken = copy.deepcopy(event())
    broken["Records"][2]["dynamodb"]["NewImage"]["status"] = {"N": "1"}
    response = handle_stream_event(broken, lambda c: None, table=SHOP, on_unrouted="skip_unknown")
    assert response == {"batchItemFailures": [{"itemIdentifier": "1000000000000000000300"}]}
    assert handle_stream_event(event(), lambda c: None, table=SHOP, on_unrouted="skip_unknown") == {
        "batchItemFailures": []
    }

    got: list[UnroutedRecord] = []
    handle_stream_event(event(), lambda c: None, table=SHOP, on_unrouted=got.append)
    assert [u.entity for u in got] == ["AuditEntry"]
    with pytest.raises(ValidationError, match="on_unrouted"):
        handle_stream_event(event(), lambda c: None, table=SHOP, on_unrouted="ignore")  # type: ignore[arg-type]


def test_a_failed_record_without_sequence_number_fails_the_whole_batch() -> None:
    data = event()
    data["Records"].insert(0, {"eventSource": "aws:sqs"})
    with pytest.raises(ValidationError, match="not a DynamoDB stream record"):
        handle_stream_event(data, lambda c: None, table=SHOP)
