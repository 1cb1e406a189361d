"""A Lambda function consuming a DynamoDB stream, with partial batch failure reporting.

The shop table holds orders and carts (and other entity types this function ignores). The
stream handler keeps a per-customer ``CustomerStats`` item up to date:

* an order INSERT counts a placed order, a MODIFY to ``shipped`` a shipped one;
* a cart REMOVE made by TTL (the cart expired) counts an abandoned cart.

Deploy ``handler`` with an event source mapping that has ``ReportBatchItemFailures``
enabled: when a record fails, the response names its sequence number and Lambda retries the
batch from that record on. Records of entity types no model knows are logged and skipped;
a record of a known type whose image does not fit its model fails (it is not dropped).
Lambda delivers records at least once (a retried batch repeats the records before the
failed one), so real counters should be made idempotent, e.g. by storing the last sequence
number applied per customer and conditioning the update on it.

Run as a script (``python examples/lambda_stream_handler.py``), it creates the table on the
endpoint boto3 resolves (``dynamodel local`` prints the variables to export) and feeds the
handler the sample event in ``tests/fixtures/stream_event.json``, then a broken copy of it.
"""

from __future__ import annotations

import copy
import json
import logging
from decimal import Decimal
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from dynamodel import Attr, Model, Table
from dynamodel.modelling.ttl import TTL
from dynamodel.ops.streams import ChangeRecord, UnroutedRecord, handle_stream_event

log = logging.getLogger("shop.stream")

shop = Table("shop", ttl="expires_at", stream="NEW_AND_OLD_IMAGES")


class OrderLine(BaseModel):
    sku: str
    qty: int


class Order(Model):
    class Meta:
        table = shop
        pk = "CUSTOMER#{customer_id}"
        sk = "ORDER#{order_id}"

    customer_id: str
    order_id: str
    status: str
    total: Decimal
    lines: list[OrderLine] = Field(default_factory=list)
    tags: set[str] = Field(default_factory=set)


class Cart(Model):
    class Meta:
        table = shop
        pk = "CUSTOMER#{customer_id}"
        sk = "CART"

    customer_id: str
    skus: list[str] = Field(default_factory=list)
    expires_at: TTL
    token: bytes = b""


class CustomerStats(Model):
    class Meta:
        table = shop
        pk = "CUSTOMER#{customer_id}"
        sk = "STATS"

    customer_id: str
    orders_placed: int = 0
    orders_shipped: int = 0
    carts_expired: int = 0


def _count(customer_id: str, counter: str) -> None:
    CustomerStats.update_item({"customer_id": customer_id}, [Attr(counter).add(1)], upsert=True)


def on_change(change: ChangeRecord) -> None:
    """Apply one change to the statistics (raise to fail the record)."""
    if change.model is Order:
        new, old = change.new, change.old
        assert new is None or isinstance(new, Order)
        assert old is None or isinstance(old, Order)
        if change.event_name == "INSERT" and new is not None:
            _count(new.customer_id, "orders_placed")
        elif (
            change.event_name == "MODIFY"
            and new is not None
            and new.status == "shipped"
            and (old is None or old.status != "shipped")
        ):
            _count(new.customer_id, "orders_shipped")
    elif change.model is Cart and change.is_ttl_delete:
        expired = change.old
        assert isinstance(expired, Cart)
        _count(expired.customer_id, "carts_expired")


def on_unrouted(record: UnroutedRecord) -> None:
    """Other entity types share the table: skip them. Anything else is a failure."""
    if record.kind == "unknown_entity":
        log.info("ignoring %s record %s", record.entity, record.sequence_number)
        return
    raise ValueError(record.reason)


def handler(event: dict[str, Any], context: Any = None) -> dict[str, Any]:
    """The Lambda entry point: returns ``{"batchItemFailures": [...]}``."""
    return handle_stream_event(event, on_change, table=shop, on_unrouted=on_unrouted)


def _sample_event() -> dict[str, Any]:
    path = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "stream_event.json"
    event: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return event


def main() -> None:
    logging.basicConfig(level=logging.WARNING)
    shop.create(exist_ok=True)
    event = _sample_event()
    print(f"1. a batch of {len(event['Records'])} records: {handler(event)}")
    for customer_id in ("c1", "c2"):
        stats = CustomerStats.get(customer_id=customer_id)
        print(
            f"   {customer_id}: placed {stats.orders_placed}, shipped {stats.orders_shipped}, "
            f"expired carts {stats.carts_expired}"
        )

    broken = copy.deepcopy(event)
    bad = broken["Records"][2]["dynamodb"]["NewImage"]  # the MODIFY of order o1
    bad["total"] = {"S": "twenty-five"}
    response = handler(broken)
    failed = [f["itemIdentifier"] for f in response["batchItemFailures"]]
    print(f"2. with a broken order image: {response}")
    assert failed == [broken["Records"][2]["dynamodb"]["SequenceNumber"]]
    print(f"   Lambda retries from record 3 of {len(broken['Records'])} on")


if __name__ == "__main__":
    main()
