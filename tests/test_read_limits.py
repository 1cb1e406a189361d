"""Reads with a limit read only about what they return: ``first()`` and ``limit(n)`` send
``Limit`` (what is still needed, growing when a filter thins a page out); reads without one
keep DynamoDB's 1 MB pages; ``page_size`` stays the explicit override."""

from __future__ import annotations

from typing import Any

import pytest

from dynamodel import Attr, Collection, Model, Table
from dynamodel.ops.pagination import ADAPTIVE_GROWTH, ADAPTIVE_MAX, page_limit
from tests.conftest import SentLog, SyncIO

RL = Table("read-limits")


class Customer(Model):
    class Meta:
        table = RL
        pk = "CUSTOMER#{customer_id}"
        sk = "PROFILE"

    customer_id: str


class Order(Model):
    class Meta:
        table = RL
        pk = "CUSTOMER#{customer_id}"
        sk = "ORDER#{n}"

    customer_id: str
    n: int
    big: bool = False


@pytest.fixture
def orders(fresh_db: Any, ddb: Any) -> None:
    RL.create(poll=0.01)
    Customer(customer_id="c1").save()
    for n in range(300):
        Order(customer_id="c1", n=n, big=n % 50 == 49).save()


def limits(sent: SentLog) -> list[int | None]:
    return [p.get("Limit") for op, p in zip(sent, sent.params, strict=True) if op == "query"]


async def test_first_reads_one_item(orders: None, sent: SentLog, io: SyncIO) -> None:
    sent.clear()
    first = await io.first(Order.query(customer_id="c1"))
    assert first is not None and first.n == 0
    assert limits(sent) == [1]
    page = (await io.pages(Order.query(customer_id="c1").limit(1)))[0]
    assert page.scanned_count == 1


async def test_limit_reads_what_it_returns(orders: None, sent: SentLog, io: SyncIO) -> None:
    sent.clear()
    got = await io.all(Order.query(customer_id="c1").limit(3))
    assert [o.n for o in got] == [0, 1, 2]
    assert limits(sent) == [3]
    sent.clear()
    newest = await io.all(Order.query(customer_id="c1").reverse().limit(2))
    assert [o.n for o in newest] == [299, 298]
    assert limits(sent) == [2]


async def test_a_filter_grows_the_pages(orders: None, sent: SentLog, io: SyncIO) -> None:
    """Every 50th order is big: a limit of 2 needs pages of 2, 8, 32, 128 evaluated items."""
    sent.clear()
    query = Order.query(customer_id="c1").filter(Attr("big").is_in(True))
    big = await io.all(query.limit(2))
    assert [o.n for o in big] == [49, 99]
    assert limits(sent) == [2, 8, 32, 128]
    assert sum(p.get("Limit", 0) for p in sent.params) < 300  # not the whole partition


async def test_collections_and_scans_with_limits(orders: None, sent: SentLog, io: SyncIO) -> None:
    sent.clear()
    items = await io.all(Collection(Customer, Order).query(customer_id="c1").reverse().limit(6))
    assert [type(i).__name__ for i in items] == ["Customer"] + ["Order"] * 5
    assert limits(sent) == [6]
    sent.clear()
    scanned = await io.all(Order.scan().limit(4))
    assert len(scanned) == 4
    scans = [p.get("Limit") for op, p in zip(sent, sent.params, strict=True) if op == "scan"]
    assert scans[0] == 4  # then more only if the entity filter thinned the page out


async def test_no_limit_and_page_size(orders: None, sent: SentLog, io: SyncIO) -> None:
    sent.clear()
    assert len(await io.all(Order.query(customer_id="c1"))) == 300
    assert set(limits(sent)) == {None}  # DynamoDB's own 1 MB pages
    sent.clear()
    got = await io.all(Order.query(customer_id="c1").page_size(7).limit(10))
    assert len(got) == 10
    assert limits(sent) == [7, 7]  # the explicit page size wins


def test_page_limit_rule() -> None:
    assert page_limit(None, None, None) is None
    assert page_limit(5, None, None) == 5
    assert page_limit(3, None, 5) == 5 * ADAPTIVE_GROWTH
    assert page_limit(500, None, 5) == 500
    assert page_limit(1, None, ADAPTIVE_MAX) is None  # past the cap: full pages
    assert page_limit(1, 25, None) == 25


@pytest.mark.parametrize("mode", ["sync", "async"])
@pytest.mark.parametrize("kind", ["query", "scan"])
async def test_streaming_holds_one_page_at_a_time(
    fresh_db: Any, ddb: Any, monkeypatch: pytest.MonkeyPatch, mode: str, kind: str
) -> None:
    """Iterating a read lets each page go before it fetches the next, sync and async: a large
    read streams in one page's memory, not two."""
    import gc
    import weakref

    import dynamodel.io.executors as executors

    RL.create(poll=0.01)
    for n in range(30):
        Order(customer_id="c9", n=n).save()
    seen: list[weakref.ref[Any]] = []
    alive_when_fetching: list[int] = []

    def check(op: str) -> None:
        if op in ("query", "scan") and seen:
            gc.collect()
            alive_when_fetching.append(sum(1 for ref in seen if ref() is not None))

    sync_send, async_send = executors._send_sync, executors._send_async

    def spy_sync(*args: Any) -> Any:  # (connection, client, request)
        check(args[-1].op)
        return sync_send(*args)

    async def spy_async(*args: Any) -> Any:
        check(args[-1].op)
        return await async_send(*args)

    monkeypatch.setattr(executors, "_send_sync", spy_sync)
    monkeypatch.setattr(executors, "_send_async", spy_async)
    read = (
        Order.query(customer_id="c9").page_size(10)
        if kind == "query"
        else Order.scan().page_size(10)
    )
    count = 0
    if mode == "sync":
        for order in read:
            seen.append(weakref.ref(order))
            count += 1
            del order
    else:
        async for order in read:
            seen.append(weakref.ref(order))
            count += 1
            del order
    assert count == 30
    # a request for each page after the first: none of the items
    # already handed out is still held by the iteration while it fetches
    assert len(alive_when_fetching) >= 2
    assert alive_when_fetching == [0] * len(alive_when_fetching)
