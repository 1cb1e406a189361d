"""Pagination on a large partition: a filter that matches 10 of 2,500 items, resumable cursors,
and explicit limits that are never exceeded nor truncated (sync and async).

The data is written once for the module (batch_write_item on ``Model.to_item()``); the tests
here only read it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import pytest
from conftest import SyncIO
from shop_models import APP, T0, Note, Order

from dynamodel import Attr, Page
from dynamodel.local import LocalDynamoDB

BIG = 2500
NEEDLES = [17, 400, 401, 999, 1234, 1500, 1800, 2222, 2499, 2500]
SMALL = 40


def _order(customer_id: str, n: int, status: str = "open") -> Order:
    return Order(
        customer_id=customer_id,
        order_id=n,
        placed_at=T0 + dt.timedelta(minutes=n),
        status=status,
        total_cents=n,
    )


def _batch_write(ddb: Any, items: list[dict[str, Any]]) -> None:
    for start in range(0, len(items), 25):
        requests = [{"PutRequest": {"Item": item}} for item in items[start : start + 25]]
        pending: dict[str, Any] = {"app": requests}
        while pending:
            pending = ddb.batch_write_item(RequestItems=pending).get("UnprocessedItems") or {}


@pytest.fixture(scope="module")
def data(local_env: LocalDynamoDB) -> Iterator[None]:
    local_env.reset()
    APP.create(poll=0.01)
    ddb = APP.connection.client()
    items = [
        _order("big", n, "needle" if n in NEEDLES else "open").to_item() for n in range(1, BIG + 1)
    ]
    # other entity types in the same partition, before and after the orders in key order
    items += [
        Note(customer_id="big", written_at=T0 + dt.timedelta(days=d), text="n").to_item()
        for d in range(5)
    ]
    items += [_order("small", n).to_item() for n in range(1, SMALL + 1)]
    _batch_write(ddb, items)
    yield
    local_env.reset()


pytestmark = pytest.mark.usefixtures("data")


def ids(items: list[Order]) -> list[int]:
    return [o.order_id for o in items]


def needles() -> Any:
    return Order.query(customer_id="big").filter(Attr("status") == "needle")


# -- a filter matching 10 of 2,500 -------------------------------------------------------------


async def test_filter_returns_exactly_the_matches_across_pages(io: SyncIO) -> None:
    pages = await io.pages(needles().page_size(300))
    assert [o.order_id for p in pages for o in p.items] == NEEDLES
    assert len(pages) >= 9  # 2,500 evaluated items, 300 per request
    assert sum(p.scanned_count for p in pages) == BIG
    assert any(len(p) == 0 for p in pages)  # pages with no match still carry a cursor
    assert all(p.cursor for p in pages[:-1])
    assert pages[-1].cursor is None
    assert [p.request_number for p in pages] == list(range(1, len(pages) + 1))
    assert all(isinstance(p, Page) and p.skipped == 0 and p.unknown == [] for p in pages)


async def test_filter_without_page_size(io: SyncIO) -> None:
    assert ids(await io.all(needles())) == NEEDLES
    assert ids(await io.iterate(needles())) == NEEDLES
    assert await io.count(needles()) == 10


async def test_whole_partition_count(io: SyncIO) -> None:
    assert await io.count(Order.query(customer_id="big")) == BIG
    assert await io.count(Note.query(customer_id="big")) == 5
    assert await io.count(Order.query(customer_id="big").page_size(1000)) == BIG


async def test_cursor_resumes_a_filtered_query(io: SyncIO) -> None:
    pages = await io.pages(needles().page_size(300))
    page = next(p for p in pages if len(p))
    assert pages.index(page) == 0
    assert ids(page.items) == [17]  # the first page (items 1-300) holds only order 17
    assert page.cursor is not None
    rest = await io.all(needles().page_size(300).start_from(page.cursor))
    assert ids(rest) == NEEDLES[1:]
    # a cursor from a page without matches resumes just as well
    empty = next(p for p in pages if len(p) == 0)
    resumed = await io.all(needles().start_from(empty.cursor))
    assert ids(resumed) == [n for n in NEEDLES if n > 300 * (pages.index(empty) + 1)]
    assert ids(resumed) == NEEDLES[3:]  # the first empty page is items 601-900


async def test_limit_on_a_filtered_query_resumes_without_gap(io: SyncIO) -> None:
    pages = await io.pages(needles().page_size(1000).limit(4))
    got = [o.order_id for p in pages for o in p.items]
    assert got == NEEDLES[:4]
    cursor = pages[-1].cursor
    assert cursor is not None
    rest = await io.all(needles().page_size(1000).start_from(cursor))
    assert ids(rest) == NEEDLES[4:]


# -- explicit limits: never exceeded, never truncated --------------------------------------------


async def test_limit_7_with_page_size_5(io: SyncIO) -> None:
    query = Order.query(customer_id="small").page_size(5).limit(7)
    items = await io.all(query)
    assert ids(items) == list(range(1, 8))
    pages = await io.pages(query)
    assert [len(p) for p in pages] == [5, 2]
    cursor = pages[-1].cursor
    assert cursor is not None
    nxt = await io.all(Order.query(customer_id="small").page_size(5).limit(7).start_from(cursor))
    assert ids(nxt) == list(range(8, 15))  # resumes at item 8: no gap, no repeat


async def test_limited_chunks_concatenate_to_the_full_result(io: SyncIO) -> None:
    full = ids(await io.all(Order.query(customer_id="small")))
    assert full == list(range(1, SMALL + 1))
    collected: list[int] = []
    cursor: str | None = None
    chunks = 0
    while True:
        query = Order.query(customer_id="small").page_size(5).limit(7).start_from(cursor)
        pages = await io.pages(query)
        chunk = [o.order_id for p in pages for o in p.items]
        assert len(chunk) <= 7
        collected += chunk
        chunks += 1
        cursor = pages[-1].cursor
        if cursor is None:
            break
        assert len(chunk) == 7  # only the last chunk may be short
        assert chunks < 20
    assert collected == full


@pytest.mark.parametrize(("limit", "page_size"), [(1, None), (5, 5), (6, 5), (10, 3), (39, 7)])
async def test_limit_page_size_combinations(io: SyncIO, limit: int, page_size: int | None) -> None:
    query = Order.query(customer_id="small").limit(limit)
    if page_size is not None:
        query = query.page_size(page_size)
    pages = await io.pages(query)
    got = [o.order_id for p in pages for o in p.items]
    assert got == list(range(1, limit + 1))
    if page_size is not None:
        assert all(len(p) <= page_size for p in pages)
    rest = await io.all(Order.query(customer_id="small").start_from(pages[-1].cursor))
    assert ids(rest) == list(range(limit + 1, SMALL + 1))


async def test_limit_larger_than_the_result(io: SyncIO) -> None:
    pages = await io.pages(Order.query(customer_id="small").limit(100).page_size(15))
    assert [o.order_id for p in pages for o in p.items] == list(range(1, SMALL + 1))
    assert pages[-1].cursor is None


async def test_reverse_limit_and_resume(io: SyncIO) -> None:
    query = Order.query(customer_id="small").reverse().page_size(4).limit(6)
    pages = await io.pages(query)
    assert [o.order_id for p in pages for o in p.items] == list(range(40, 34, -1))
    rest = await io.all(Order.query(customer_id="small").reverse().start_from(pages[-1].cursor))
    assert ids(rest) == list(range(34, 0, -1))


async def test_gsi_limit_and_resume(io: SyncIO) -> None:
    query = Order.query(index="gsi1", status="needle").page_size(3).limit(4)
    pages = await io.pages(query)
    assert [o.order_id for p in pages for o in p.items] == NEEDLES[:4]
    rest = await io.all(Order.query(index="gsi1", status="needle").start_from(pages[-1].cursor))
    assert ids(rest) == NEEDLES[4:]


async def test_first_on_a_big_filter(io: SyncIO) -> None:
    first = await io.first(needles().page_size(100))
    assert first is not None and first.order_id == 17
