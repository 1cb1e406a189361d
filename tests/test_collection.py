"""Collections: one query over a partition returns instances of several model classes, and items
of unknown entity types are reported instead of crashing the query."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from conftest import SyncIO
from shop_models import T0, Customer, Note, Order, order

from dynamodel import Attr, Collection, CollectionResult

pytestmark = pytest.mark.usefixtures("table")

VIEW = Collection(Customer, Order, Note)
MYSTERY = {
    "pk": {"S": "CUSTOMER#c1"},
    "sk": {"S": "MYSTERY#1"},
    "_type": {"S": "Mystery"},
    "what": {"S": "from a newer version of the app"},
}
UNTYPED = {"pk": {"S": "CUSTOMER#c1"}, "sk": {"S": "LEGACY#1"}, "x": {"N": "1"}}


@pytest.fixture
def partition(ddb: Any) -> list[Any]:
    """Partition c1: a note, two orders, an unknown entity, the profile; c2 holds one order."""
    items: list[Any] = [
        Note(customer_id="c1", written_at=T0, text="hello"),
        order(1),
        order(2, coupon="X"),
        Customer(customer_id="c1", name="Ann", email="ann@example.com", tags={"vip"}),
    ]
    for item in items:
        item.save()
    order(3, customer_id="c2").save()
    ddb.put_item(TableName="app", Item=MYSTERY)
    ddb.put_item(TableName="app", Item=UNTYPED)
    return items  # in sort key order: LEGACY < MYSTERY < NOTE < ORDER < PROFILE


async def test_fetch_returns_typed_instances(io: SyncIO, partition: list[Any]) -> None:
    result = await io.fetch(VIEW, customer_id="c1")
    assert isinstance(result, CollectionResult)
    assert result.items == partition
    assert [type(x) for x in result.items] == [Note, Order, Order, Customer]
    assert result.of(Order) == [order(1), order(2, coupon="X")]
    assert result.of(Customer) == [partition[3]]
    assert result.of(Note)[0].text == "hello"
    assert result.unknown == [UNTYPED, MYSTERY]
    assert result.cursor is None
    assert result.requests == 1


async def test_fetch_of_other_partition_and_empty_partition(io: SyncIO, partition: Any) -> None:
    other = await io.fetch(VIEW, customer_id="c2")
    assert other.items == [order(3, customer_id="c2")] and other.unknown == []
    empty = await io.fetch(VIEW, customer_id="nobody")
    assert empty.items == [] and empty.unknown == []


async def test_collection_query_iterates_and_pages(io: SyncIO, partition: list[Any]) -> None:
    query = VIEW.query(customer_id="c1")
    assert await io.iterate(query) == partition
    assert await io.all(query) == partition
    assert await io.all(query.reverse()) == partition[::-1]
    pages = await io.pages(query.page_size(2))
    assert [x for p in pages for x in p.items] == partition
    assert [u for p in pages for u in p.unknown] == [UNTYPED, MYSTERY]
    assert len(pages) >= 3
    assert await io.count(query) == 6  # every item of the partition, known or not


async def test_collection_query_refinements(io: SyncIO, partition: list[Any]) -> None:
    query = VIEW.query(customer_id="c1")
    orders_only = query.sk_begins_with("ORDER#")
    assert await io.all(orders_only) == [order(1), order(2, coupon="X")]
    with_coupon = query.filter(Attr("coupon").exists() & (Attr("coupon") != None))  # noqa: E711
    assert await io.all(with_coupon) == [order(2, coupon="X")]
    limited = await io.pages(query.limit(2))
    assert [x for p in limited for x in p.items] == partition[:2]
    resumed = await io.all(query.start_from(limited[-1].cursor))
    assert resumed == partition[2:]


async def test_collection_resumes_from_cursor_with_unknowns(io: SyncIO, partition: Any) -> None:
    first = (await io.pages(VIEW.query(customer_id="c1").page_size(3)))[0]
    assert first.unknown == [UNTYPED, MYSTERY]
    assert first.items == partition[:1]
    rest = await io.all(VIEW.query(customer_id="c1").start_from(first.cursor))
    assert rest == partition[1:]


async def test_collection_on_a_gsi(io: SyncIO) -> None:
    Customer(customer_id="c1", name="Ann", email="ann@example.com").save()
    for n in (1, 2):
        order(n, status="shipped").save()
    by_status = Collection(Order, index="gsi1")
    result = await io.fetch(by_status, status="shipped")
    assert result.items == [order(1, status="shipped"), order(2, status="shipped")]


def test_collection_query_key() -> None:
    query = VIEW.query_key("CUSTOMER#c1")
    assert query == VIEW.query(customer_id="c1")
    assert query.single is None
    assert set(query.models) == {"Customer", "Order", "Note"}


async def test_item_that_no_longer_fits_its_model_is_an_error_not_unknown(ddb: Any) -> None:
    """An item of a known type that fails validation is not silently dropped."""
    broken = Order(customer_id="c1", order_id=9, placed_at=T0 + dt.timedelta(hours=9)).to_item()
    broken["total_cents"] = {"S": "not a number"}
    ddb.put_item(TableName="app", Item=broken)
    with pytest.raises(Exception) as info:
        VIEW.fetch(customer_id="c1")
    assert "total_cents" in str(info.value)
