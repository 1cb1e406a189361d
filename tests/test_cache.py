"""LocalCache on a Connection, through the models' sync and async API, on the local backend."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from shop_models import APP, Customer, Order, order

from dynamodel import Attr, Connection
from dynamodel.io.cache import LocalCache


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def cache(table: Any, clock: Clock) -> AsyncIterator[LocalCache]:
    """The shared table bound to a connection reading through a fresh cache."""
    cache = LocalCache(item_ttl=300, query_ttl=30, clock=clock)
    connection = Connection(cache=cache)
    APP.bind(connection=connection)
    yield cache
    await connection.aclose()
    connection.close()
    APP.unbind()


def customer(name: str = "Ann") -> Customer:
    return Customer(customer_id="c1", name=name, email="ann@example.com")


async def test_a_get_after_a_write_through_the_cache_returns_the_new_value(
    cache: LocalCache, io: Any
) -> None:
    assert await io.get_or_none(Customer, customer_id="c1") is None
    await io.save(customer("Ann"))
    assert (await io.get(Customer, customer_id="c1")).name == "Ann"
    stored = await io.get(Customer, customer_id="c1")
    await io.update(stored, Attr("name").set("Bea"))
    assert (await io.get(Customer, customer_id="c1")).name == "Bea"
    await io.delete_item(Customer, {"customer_id": "c1"})
    assert await io.get_or_none(Customer, customer_id="c1") is None
    # one read reached the server; every later one was answered by the write-through cache
    assert (cache.stats.item_misses, cache.stats.item_hits) == (1, 4)


async def test_writes_elsewhere_are_unseen_until_the_item_ttl(
    cache: LocalCache, clock: Clock, io: Any, ddb: Any
) -> None:
    await io.save(customer("Ann"))
    assert (await io.get(Customer, customer_id="c1")).name == "Ann"
    ddb.put_item(TableName="app", Item=customer("Changed elsewhere").to_item())
    assert (await io.get(Customer, customer_id="c1")).name == "Ann"
    clock.now += 301
    assert (await io.get(Customer, customer_id="c1")).name == "Changed elsewhere"


async def test_a_consistent_read_always_reaches_the_server(
    cache: LocalCache, io: Any, ddb: Any
) -> None:
    await io.get_or_none(Customer, customer_id="c1")  # the cache learns the table's key
    await io.save(customer("Ann"))  # so the save is written through to the item cache
    ddb.put_item(TableName="app", Item=customer("Changed elsewhere").to_item())
    for _ in range(2):
        fresh = await io.get(Customer, customer_id="c1", consistent=True)
        assert fresh.name == "Changed elsewhere"
    assert cache.stats.bypassed == 2
    assert (await io.get(Customer, customer_id="c1")).name == "Ann"  # the cached item


async def test_not_found_is_cached_but_a_consistent_read_finds_the_item(
    cache: LocalCache, io: Any, ddb: Any
) -> None:
    assert await io.get_or_none(Customer, customer_id="c1") is None
    ddb.put_item(TableName="app", Item=customer().to_item())
    assert await io.get_or_none(Customer, customer_id="c1") is None
    assert (await io.get(Customer, customer_id="c1", consistent=True)).name == "Ann"


async def test_a_query_result_stays_cached_until_its_ttl(
    cache: LocalCache, clock: Clock, io: Any
) -> None:
    await io.save(order(1))
    assert [o.order_id for o in await io.all(Order.query(customer_id="c1"))] == [1]
    await io.save(order(2))  # through the cache: the query cache is not invalidated
    assert [o.order_id for o in await io.all(Order.query(customer_id="c1"))] == [1]
    consistent = Order.query(customer_id="c1").consistent()
    assert [o.order_id for o in await io.all(consistent)] == [1, 2]
    clock.now += 29
    assert [o.order_id for o in await io.all(Order.query(customer_id="c1"))] == [1]
    clock.now += 2
    assert [o.order_id for o in await io.all(Order.query(customer_id="c1"))] == [1, 2]
    assert (cache.stats.query_hits, cache.stats.query_misses) == (2, 2)


async def test_table_management_does_not_go_through_the_cache(cache: LocalCache, io: Any) -> None:
    description = await io.describe_table(APP)
    assert description["TableName"] == "app"
    assert len(cache) == 0
    assert cache.stats == type(cache.stats)()
