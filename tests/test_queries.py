"""Queries and scans against the local DynamoDB, through the sync and the async API: sort key
conditions (complete and partial templates), reverse order, GSI and LSI queries, filters,
first/count/pages, projections and (parallel) scans."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from conftest import SyncIO
from shop_models import APP, T0, Customer, Note, Order, order

from dynamodel import Attr, Model, Page

pytestmark = pytest.mark.usefixtures("table")

H3 = T0 + dt.timedelta(hours=3)
SHIPPED = {2, 4}


@pytest.fixture
def shop(table: Any) -> None:
    """Customer c1 with orders 1-7 and two notes; customer c2 with orders 21, 22.

    Order 7 is placed at the same time as order 3 (so partial sort key bounds matter); orders
    2 and 4 are shipped. Totals are 100 * order number.
    """
    Customer(customer_id="c1", name="Ann", email="ann@example.com").save()
    Customer(customer_id="c2", name="Bob", email="bob@example.com").save()
    for n in range(1, 7):
        order(n, status="shipped" if n in SHIPPED else "open").save()
    order(7, placed_at=H3).save()
    for n in (21, 22):
        order(n, customer_id="c2").save()
    Note(customer_id="c1", written_at=T0, text="first").save()
    Note(customer_id="c1", written_at=T0 + dt.timedelta(days=1), text="second").save()


def ids(items: list[Order]) -> list[int]:
    assert all(type(i) is Order for i in items)
    return [i.order_id for i in items]


C1 = [1, 2, 3, 7, 4, 5, 6]  # sort key order: placed_at, then order_id


@pytest.mark.usefixtures("shop")
async def test_iterate_partition_by_model(io: SyncIO) -> None:
    assert ids(await io.iterate(Order.query(customer_id="c1"))) == C1
    assert ids(await io.all(Order.query(customer_id="c1"))) == C1
    assert ids(await io.all(Order.query(customer_id="c2"))) == [21, 22]
    assert ids(await io.all(Order.query(customer_id="nobody"))) == []
    customers = await io.all(Customer.query(customer_id="c1"))
    assert [c.name for c in customers] == ["Ann"]
    notes = await io.iterate(Note.query(customer_id="c1"))
    assert [n.text for n in notes] == ["first", "second"]


@pytest.mark.usefixtures("shop")
@pytest.mark.parametrize(
    ("build", "expected"),
    [
        (lambda q: q.sk_eq(placed_at=H3, order_id=3), [3]),
        (lambda q: q.sk_eq(placed_at=H3, order_id=8), []),
        (lambda q: q.sk_begins_with(placed_at=H3), [3, 7]),
        (lambda q: q.sk_begins_with(), C1),
        (
            lambda q: q.sk_between({"placed_at": T0 + dt.timedelta(hours=2)}, {"placed_at": H3}),
            [2, 3, 7],
        ),
        (
            lambda q: q.sk_between(
                {"placed_at": T0 + dt.timedelta(hours=2), "order_id": 2},
                {"placed_at": H3, "order_id": 3},
            ),
            [2, 3],
        ),
        (lambda q: q.sk_lt(placed_at=H3), [1, 2]),
        (lambda q: q.sk_le(placed_at=H3), [1, 2, 3, 7]),
        (lambda q: q.sk_gt(placed_at=H3), [4, 5, 6]),
        (lambda q: q.sk_ge(placed_at=H3), [3, 7, 4, 5, 6]),
        (lambda q: q.sk_lt(placed_at=H3, order_id=7), [1, 2, 3]),
        (lambda q: q.sk_le(placed_at=H3, order_id=3), [1, 2, 3]),
        (lambda q: q.sk_gt(placed_at=H3, order_id=3), [7, 4, 5, 6]),
        (lambda q: q.sk_ge(placed_at=H3, order_id=7), [7, 4, 5, 6]),
    ],
    ids=[
        "eq",
        "eq-none",
        "begins_with-partial",
        "begins_with-empty",
        "between-partial",
        "between-full",
        "lt-partial",
        "le-partial",
        "gt-partial",
        "ge-partial",
        "lt-full",
        "le-full",
        "gt-full",
        "ge-full",
    ],
)
async def test_sort_key_conditions(io: SyncIO, build: Any, expected: list[int]) -> None:
    """Ranges never leak other entity types of the partition (notes sort before orders, the
    profile after them)."""
    query = build(Order.query(customer_id="c1"))
    assert ids(await io.all(query)) == expected
    assert ids(await io.all(query.reverse())) == expected[::-1]
    assert await io.count(query) == len(expected)


@pytest.mark.usefixtures("shop")
async def test_reverse_order(io: SyncIO) -> None:
    assert ids(await io.all(Order.query(customer_id="c1").reverse())) == C1[::-1]
    first = await io.first(Order.query(customer_id="c1").reverse())
    assert first is not None and first.order_id == 6
    back = Order.query(customer_id="c1").reverse().reverse(False)
    assert ids(await io.all(back)) == C1


@pytest.mark.usefixtures("shop")
async def test_gsi_query(io: SyncIO) -> None:
    shipped = await io.all(Order.query(index="gsi1", status="shipped"))
    assert ids(shipped) == [2, 4]
    assert ids(await io.all(Order.query(index="gsi1", status="shipped").reverse())) == [4, 2]
    open_orders = Order.query(index="gsi1", status="open")
    assert ids(await io.all(open_orders)) == [1, 3, 7, 5, 6, 21, 22]  # by placed_at, order_id
    later = open_orders.sk_ge(placed_at=T0 + dt.timedelta(hours=5))
    assert ids(await io.all(later)) == [5, 6, 21, 22]
    assert ids(await io.all(open_orders.sk_begins_with(placed_at=H3))) == [3, 7]
    customers = await io.all(Customer.query(index="gsi1", email="bob@example.com"))
    assert [c.customer_id for c in customers] == ["c2"]


@pytest.mark.usefixtures("shop")
async def test_lsi_query(io: SyncIO) -> None:
    by_total = Order.query(index="lsi1", customer_id="c1")
    assert ids(await io.all(by_total)) == [1, 2, 3, 4, 5, 6, 7]
    assert ids(await io.all(by_total.reverse())) == [7, 6, 5, 4, 3, 2, 1]
    assert ids(await io.all(by_total.sk_between({"total_cents": 200}, {"total_cents": 400}))) == [
        2,
        3,
        4,
    ]
    assert ids(await io.all(by_total.sk_gt(total_cents=500).consistent())) == [6, 7]


@pytest.mark.usefixtures("shop")
async def test_filters(io: SyncIO) -> None:
    shipped = Order.query(customer_id="c1").filter(Attr("status") == "shipped")
    assert ids(await io.all(shipped)) == [2, 4]
    assert await io.count(shipped) == 2
    combined = Order.query(customer_id="c1").filter(
        (Attr("status") == "open") & (Attr("total_cents") > 300)
    )
    assert ids(await io.all(combined)) == [7, 5, 6]
    chained = combined.filter(~Attr("order_id").is_in(5, 6))
    assert ids(await io.all(chained)) == [7]
    by_alias = Order.query(customer_id="c1").filter(
        Attr("note").not_exists() | (Attr("data") == "")
    )
    assert ids(await io.all(by_alias)) == C1


@pytest.mark.usefixtures("shop")
async def test_first_count_and_limit(io: SyncIO) -> None:
    first = await io.first(Order.query(customer_id="c1"))
    assert first is not None and first.order_id == 1
    assert await io.first(Order.query(customer_id="nobody")) is None
    assert await io.first(Order.query(customer_id="c1").filter(Attr("status") == "x")) is None
    assert await io.count(Order.query(customer_id="c1")) == 7
    assert await io.count(Customer.query(customer_id="c1")) == 1
    assert await io.count(Note.query(customer_id="c1")) == 2
    limited = Order.query(customer_id="c1").limit(3)
    assert ids(await io.all(limited)) == [1, 2, 3]
    assert await io.count(limited) == 3


@pytest.mark.usefixtures("shop")
async def test_pages(io: SyncIO) -> None:
    pages = await io.pages(Order.query(customer_id="c1").page_size(3))
    assert all(isinstance(p, Page) for p in pages)
    assert [o.order_id for p in pages for o in p.items] == C1
    assert all(len(p) <= 3 for p in pages)
    assert [p.request_number for p in pages] == list(range(1, len(pages) + 1))
    assert all(p.cursor for p in pages[:-1])
    assert pages[-1].cursor is None
    assert len(pages) >= 3


@pytest.mark.usefixtures("shop")
async def test_projected_query_count(io: SyncIO) -> None:
    """count() of a projected query counts the same items as iterating it."""
    projected = Order.query(customer_id="c1").project("status")
    assert len(await io.all(projected)) == 7
    assert await io.count(projected) == 7


@pytest.mark.usefixtures("shop")
async def test_projection_keeps_cursors_working(io: SyncIO) -> None:
    pages = await io.pages(Order.query(customer_id="c1").project("order_id").page_size(2).limit(3))
    assert [p.order_id for page in pages for p in page.items] == [1, 2, 3]
    resumed = Order.query(customer_id="c1").project("order_id").start_from(pages[-1].cursor)
    assert [p.order_id for p in await io.all(resumed)] == [7, 4, 5, 6]


# -- scans -------------------------------------------------------------------------------------


ALL_ORDERS = {1, 2, 3, 4, 5, 6, 7, 21, 22}


@pytest.mark.usefixtures("shop")
async def test_scan(io: SyncIO) -> None:
    assert set(ids(await io.all(Order.scan()))) == ALL_ORDERS
    assert len(await io.iterate(Order.scan())) == len(ALL_ORDERS)
    customers = await io.all(Customer.scan())
    assert {c.customer_id for c in customers} == {"c1", "c2"}
    assert await io.count(Order.scan()) == len(ALL_ORDERS)
    assert await io.count(Note.scan()) == 2
    shipped = Order.scan().filter(Attr("status") == "shipped")
    assert set(ids(await io.all(shipped))) == SHIPPED
    pages = await io.pages(Order.scan().page_size(4))
    assert len(pages) >= 3
    assert sorted(o.order_id for p in pages for o in p.items) == sorted(ALL_ORDERS)
    limited = await io.all(Order.scan().limit(4))
    assert len(limited) == 4


@pytest.mark.usefixtures("shop")
async def test_scan_index(io: SyncIO) -> None:
    by_email = await io.all(Customer.scan(index="gsi1"))
    assert {c.customer_id for c in by_email} == {"c1", "c2"}
    assert set(ids(await io.all(Order.scan(index="lsi1")))) == ALL_ORDERS


@pytest.mark.usefixtures("shop")
@pytest.mark.parametrize("segments", [1, 3, 8])
async def test_parallel_scan(io: SyncIO, segments: int) -> None:
    parallel = Order.scan().parallel(segments)
    assert sorted(ids(await io.all(parallel))) == sorted(ALL_ORDERS)
    assert sorted(ids(await io.iterate(parallel))) == sorted(ALL_ORDERS)
    filtered = Order.scan().filter(Attr("status") == "shipped").page_size(2).parallel(segments, 2)
    assert sorted(ids(await io.all(filtered))) == sorted(SHIPPED)


@pytest.mark.usefixtures("shop")
async def test_parallel_scan_pages_sync_and_async() -> None:
    sync_pages = list(Order.scan().parallel(4).pages())
    async_pages = [p async for p in Order.scan().parallel(4).apages()]
    for pages in (sync_pages, async_pages):
        assert sorted(o.order_id for p in pages for o in p.items) == sorted(ALL_ORDERS)


@pytest.mark.usefixtures("shop")
def test_aquery_and_ascan_are_the_same_builders() -> None:
    assert Order.aquery(customer_id="c1") == Order.query(customer_id="c1")
    assert Order.ascan() == Order.scan()


async def test_parallel_scan_errors_reach_the_consumer(io: SyncIO, table: Any) -> None:
    from dynamodel import TableNotFound

    table.bind(name="no-such-table")
    with pytest.raises(TableNotFound):
        await io.all(Order.scan().parallel(3))
    with pytest.raises(TableNotFound):
        await io.all(Order.query(customer_id="c1"))


@pytest.mark.usefixtures("shop")
async def test_stopping_early_does_not_hang() -> None:
    for item in Order.scan().page_size(1).parallel(4):
        assert isinstance(item, Order)
        break
    async for item in Order.scan().page_size(1).parallel(4):
        assert isinstance(item, Order)
        break
    for page in Order.query(customer_id="c1").page_size(1).pages():
        assert len(page) == 1
        break


class OrderLine(Model):
    """Lines live under their order in the sort key: ``ORDER#<placed_at>#<order_id>#LINE#<n>``,
    so every line key starts with the ``ORDER#`` prefix that scopes ``Order.query``."""

    class Meta:
        table = APP
        pk = "CUSTOMER#{customer_id}"
        sk = "ORDER#{placed_at}#{order_id}#LINE#{line}"

    customer_id: str
    placed_at: dt.datetime
    order_id: int
    line: int
    sku: str


@pytest.fixture
def lines(shop: None) -> None:
    for n in (1, 2):
        placed_at = order(n).placed_at
        for line in (1, 2, 3):
            OrderLine(
                customer_id="c1", placed_at=placed_at, order_id=n, line=line, sku=f"s{line}"
            ).save()


@pytest.mark.usefixtures("lines")
async def test_entities_sharing_a_sort_key_prefix(io: SyncIO) -> None:
    """Iteration, limit, first and count agree for a model whose key prefix other types share."""
    orders = Order.query(customer_id="c1")
    assert ids(await io.all(orders)) == C1
    assert await io.count(orders) == len(C1)
    assert ids(await io.all(orders.limit(3))) == [1, 2, 3]
    assert await io.count(orders.limit(3)) == 3
    pages = await io.pages(orders.page_size(4))
    assert [o.order_id for p in pages for o in p.items] == C1
    lines_of_1 = OrderLine.query(customer_id="c1").sk_begins_with(
        placed_at=order(1).placed_at, order_id=1
    )
    assert [x.line for x in await io.all(lines_of_1)] == [1, 2, 3]
    assert await io.count(OrderLine.query(customer_id="c1")) == 6
