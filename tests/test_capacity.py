"""Consumed capacity: collectors, the connection hook, and offline estimates."""

from __future__ import annotations

from typing import Any

import pytest
from shop_models import APP, T0, Customer, Note, Order, order

from dynamodel import Connection, ValidationError, batch_write, estimate_capacity
from dynamodel.core.codec import item_size
from dynamodel.core.flows import Flow, Gather, Request
from dynamodel.io.capacity import (
    CapacityRecord,
    Tracker,
    capacity,
    records_from,
    tracker,
)
from dynamodel.io.executors import arun, run
from dynamodel.testing import trust_shard_layouts

# -- parsing what DynamoDB reports ------------------------------------------------------------


def test_records_from_single_and_list_shapes() -> None:
    (get,) = records_from("get_item", {"TableName": "app", "CapacityUnits": 0.5})
    assert (get.table, get.read_units, get.write_units, get.units) == ("app", 0.5, 0.0, 0.5)
    (put,) = records_from("put_item", {"TableName": "app", "CapacityUnits": 3.0})
    assert (put.read_units, put.write_units) == (0.0, 3.0)
    batch = records_from(
        "batch_get_item",
        [{"TableName": "a", "CapacityUnits": 1.5}, {"TableName": "b", "CapacityUnits": 2}],
    )
    assert [(r.table, r.read_units) for r in batch] == [("a", 1.5), ("b", 2.0)]
    assert records_from("query", None) == [] and records_from("query", []) == []


def test_records_from_indexes_mode_and_reported_split() -> None:
    (record,) = records_from(
        "transact_write_items",
        {
            "TableName": "app",
            "CapacityUnits": 6.0,
            "ReadCapacityUnits": 2.0,
            "WriteCapacityUnits": 4.0,
            "Table": {"CapacityUnits": 4.0},
            "GlobalSecondaryIndexes": {"gsi1": {"CapacityUnits": 1.0}},
            "LocalSecondaryIndexes": {"lsi1": {"CapacityUnits": 1.0}},
        },
    )
    assert (record.read_units, record.write_units) == (2.0, 4.0)
    assert record.indexes == {"gsi1": 1.0, "lsi1": 1.0}


def test_tracker_asks_for_the_strongest_mode_and_keeps_stronger_requests() -> None:
    t = Tracker("query", (), None, "TOTAL")
    assert t.params({"TableName": "x"}) == {"TableName": "x", "ReturnConsumedCapacity": "TOTAL"}
    asked = {"TableName": "x", "ReturnConsumedCapacity": "INDEXES"}
    assert t.params(asked) is asked
    strong = Tracker("query", (), None, "INDEXES")
    assert strong.params({"ReturnConsumedCapacity": "TOTAL"}) == {
        "ReturnConsumedCapacity": "INDEXES"
    }
    assert strong.params({"ReturnConsumedCapacity": "NONE"}) == {
        "ReturnConsumedCapacity": "INDEXES"
    }


def test_tracker_is_none_unless_someone_wants_capacity() -> None:
    plain = Connection()
    data = Request("get_item", {"TableName": "t"})
    assert tracker(plain, data) is None
    with capacity():
        assert tracker(plain, data) is not None
        assert tracker(plain, Request("describe_table", {"TableName": "t"})) is None
        assert tracker(plain, Request("get_item", {}, control=True)) is None
    assert tracker(plain, data) is None  # the block ended
    hooked = Connection(on_capacity=lambda r: None)
    t = tracker(hooked, data)
    assert t is not None and t.mode == "TOTAL"
    indexes = tracker(Connection(return_consumed_capacity="INDEXES"), data)
    assert indexes is not None and indexes.mode == "INDEXES"
    with capacity("INDEXES"):
        t = tracker(hooked, data)
        assert t is not None and t.mode == "INDEXES"


def test_bad_settings_are_refused() -> None:
    with pytest.raises(ValidationError, match="return_consumed_capacity"):
        Connection(return_consumed_capacity="ALL")  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="on_capacity must be callable"):
        Connection(on_capacity="print")  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="capacity mode"), capacity("SOME"):  # type: ignore[arg-type]
        pass


# -- estimates ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("length", "size", "wcu", "rcu"),
    [(1, 2, 1, 1), (1023, 1024, 1, 1), (1024, 1025, 2, 1), (4095, 4096, 4, 1), (4096, 4097, 5, 2)],
)
def test_estimate_rounds_up_per_kb_write_and_4kb_read(
    length: int, size: int, wcu: int, rcu: int
) -> None:
    estimate = estimate_capacity({"a": {"S": "x" * length}})  # 1 byte of name + the value
    assert estimate.size == size
    assert estimate.write_units == wcu and estimate.transactional_write_units == 2 * wcu
    assert estimate.strong_read_units == rcu
    assert estimate.eventual_read_units == rcu / 2
    assert estimate.transactional_read_units == 2 * rcu
    assert estimate.index_write_units == {}


def test_estimate_of_a_model_counts_the_indexes_it_is_in() -> None:
    plain = estimate_capacity(order(1))
    assert plain.size == item_size(order(1).to_item())
    assert set(plain.index_write_units) == {"gsi1", "lsi1"}  # gsi2 is sparse: coupon only
    assert all(units == plain.write_units for units in plain.index_write_units.values())
    coupon = estimate_capacity(order(1, coupon="SPRING"))
    assert set(coupon.index_write_units) == {"gsi1", "gsi2", "lsi1"}
    big = estimate_capacity(order(2, note="x" * 5000))
    assert big.write_units == 6 and big.strong_read_units == 2
    assert big.index_write_units["gsi1"] == 6


def test_estimate_refuses_what_is_not_an_item() -> None:
    with pytest.raises(ValidationError, match="not an AttributeValue"):
        estimate_capacity({"a": "plain"})
    with pytest.raises(ValidationError, match="Model instance or an AttributeValue map"):
        estimate_capacity(42)  # type: ignore[arg-type]


# -- against the backend -------------------------------------------------------------------------


async def test_collector_adds_up_one_call_and_several(table: Any, io: Any) -> None:
    note = Note(customer_id="c1", written_at=T0, text="hello")  # in no index: 1 WCU
    with capacity() as used:
        await io.save(note)
    assert (used.write_units, used.read_units, used.responses) == (1.0, 0.0, 1)
    assert used.by_table == {"app": 1.0}
    with capacity() as outer:
        await io.get(Note, customer_id="c1", written_at=T0)
        with capacity() as inner:
            await io.get(Note, customer_id="c1", written_at=T0)
    assert (outer.read_units, outer.responses) == (1.0, 2)
    assert (inner.read_units, inner.responses) == (0.5, 1)
    assert [r.operation for r in outer.records] == ["get_item", "get_item"]


async def test_collector_sees_concurrent_requests_in_threads_and_tasks(table: Any, io: Any) -> None:
    for n in range(3):
        order(n).save()
    requests = [
        Request("get_item", {"TableName": "app", "Key": order(n).item_key()}) for n in range(3)
    ]

    def flow() -> Flow[list[Any]]:
        responses: list[Any] = yield Gather(requests, max_concurrency=3)
        return responses

    with capacity() as used:
        if io.name == "sync":
            responses = run(flow(), APP.connection)  # a thread pool
        else:
            responses = await arun(flow(), APP.connection)  # concurrent tasks
    assert all("Item" in r for r in responses)
    assert (used.read_units, used.responses) == (1.5, 3)


def test_batch_chunks_in_worker_threads_are_counted(table: Any) -> None:
    with capacity() as used:
        writer = batch_write(max_concurrency=4)
        writer.put(*[order(n) for n in range(60)])  # 3 chunks of <= 25
        result = writer.flush()
    # the chunks ran in a thread pool: without the context following them, nothing is seen
    assert used.responses == 3 and used.write_units > 0
    assert result.consumed_capacity["app"] == used.write_units


async def test_connection_hook_and_mode(table: Any, io: Any) -> None:
    seen: list[CapacityRecord] = []
    connection = Connection(on_capacity=seen.append)
    APP.bind(connection=connection)
    try:
        await io.save(Note(customer_id="c2", written_at=T0, text="hi"))
        await io.get(Note, customer_id="c2", written_at=T0)
    finally:
        await connection.aclose()
        connection.close()
        APP.unbind()
    assert [(r.operation, r.table, r.read_units, r.write_units) for r in seen] == [
        ("put_item", "app", 0.0, 1.0),
        ("get_item", "app", 0.5, 0.0),
    ]
    pages_connection = Connection(return_consumed_capacity="TOTAL")
    APP.bind(connection=pages_connection)
    try:
        (page,) = await io.pages(Note.query(customer_id="c2"))
    finally:
        await pages_connection.aclose()
        pages_connection.close()
        APP.unbind()
    assert page.consumed_capacity["TableName"] == "app"
    assert page.consumed_capacity["CapacityUnits"] > 0


def test_reported_writes_match_the_estimate_with_indexes(table: Any, backend_name: str) -> None:
    if backend_name == "moto":
        pytest.skip("moto reports 1 unit per write, whatever the item's size and indexes")
    customer = Customer(customer_id="c3", name="Cy", email="cy@example.com", history=["x" * 3000])
    big = order(4, note="x" * 3000, coupon="SPRING")  # in gsi1, gsi2 and lsi1
    for item in (customer, big):
        estimate = estimate_capacity(item)
        with capacity("INDEXES") as used:
            item.save()
        expected = estimate.write_units + sum(estimate.index_write_units.values())
        assert used.write_units == expected, (type(item).__name__, estimate)


async def test_indexes_mode_reports_the_index_share(table: Any, io: Any) -> None:
    order(1).save()
    with capacity("INDEXES") as used:
        found = await io.all(Order.query(index="gsi1", status="open"))
    assert [o.order_id for o in found] == [1]
    assert used.by_index.get(("app", "gsi1"), 0.0) > 0


async def test_no_capacity_is_asked_outside_a_collector(table: Any) -> None:
    asked: list[Any] = []
    inner = APP.connection.client()

    class Spy:
        def __getattr__(self, name: str) -> Any:
            method = getattr(inner, name)

            def call(**params: Any) -> Any:
                asked.append(params.get("ReturnConsumedCapacity"))
                return method(**params)

            return call

    connection = Connection(client=Spy())
    APP.bind(connection=connection)
    trust_shard_layouts(Customer)  # only the reads themselves are counted
    try:
        Customer.get_or_none(customer_id="nobody")
        with capacity():
            Customer.get_or_none(customer_id="nobody")
        Customer.get_or_none(customer_id="nobody")
    finally:
        APP.unbind()
    assert asked == [None, "TOTAL", None]
