"""Batch writes and gets against the local server, through the sync and the async API, with and
without injected faults; includes the 10,000-item acceptance check of issue 5."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
from conftest import user_items
from shop_models import APP, T0, Customer, Note, order

from dynamodel import Connection, Model, RetryPolicy, Table, ValidationError
from dynamodel.ops.batch import (
    BatchWriteError,
    BatchWriter,
    Key,
    abatch_get,
    batch_get,
    batch_write,
)
from dynamodel.testing import FaultInjector

BULK = Table("batch-bulk")
PLAIN = Table("batch-plain", sk=None)


class Reading(Model):
    class Meta:
        table = BULK
        pk = "SENSOR#{sensor}"
        sk = "READING#{n}"

    sensor: str
    n: int
    value: int
    label: str = ""


class Sample(Model):
    """A small item: the 10,000-item test measures batching, not item encoding."""

    class Meta:
        table = BULK
        pk = "SAMPLE#{n}"
        sk = "S"

    n: int
    value: int


class Setting(Model):
    class Meta:
        table = PLAIN
        pk = "SETTING#{name}"

    name: str
    value: str


class Doc(Model):
    class Meta:
        table = BULK
        pk = "DOC#{doc_id}"
        sk = "DOC"
        version = "version"

    doc_id: str
    version: int | None = None


@pytest.fixture(params=["sync", "async"])
def mode(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def tables(fresh_db: Any) -> Any:
    BULK.create(poll=0.01)
    PLAIN.create(poll=0.01)
    return fresh_db


async def flush(writer: BatchWriter, mode: str) -> Any:
    return writer.flush() if mode == "sync" else await writer.aflush()


async def get(keys: Any, mode: str, **options: Any) -> Any:
    return batch_get(keys, **options) if mode == "sync" else await abatch_get(keys, **options)


@asynccontextmanager
async def faulty(
    mode: str, retry: RetryPolicy | None = None, **faults: Any
) -> AsyncIterator[tuple[Connection, FaultInjector]]:
    """A connection whose client (made by dynamodel: botocore standard retries) injects faults
    into the batch calls (not into the once-per-process shard-layout check)."""
    faults.setdefault("operations", {"batch_write_item", "batch_get_item"})
    base = Connection()
    try:
        if mode == "sync":
            injector = FaultInjector(base.client(), **faults)
            yield Connection(client=injector, retry=retry), injector
        else:
            injector = FaultInjector(await base.aclient(), **faults)
            yield Connection(aclient=injector, retry=retry), injector
    finally:
        base.close()
        await base.aclose()


def stored(ddb: Any, table: Table) -> dict[tuple[str, ...], dict[str, Any]]:
    """Every item in a table, by its key, read with a plain client."""
    out = {}
    for page in ddb.get_paginator("scan").paginate(TableName=table.name, ConsistentRead=True):
        for item in user_items(page["Items"], table.pk):
            out[tuple(item[a]["S"] for a in table.key_attributes())] = item
    return out


# -- behaviour on a real (local) server ---------------------------------------------------------


async def test_models_of_several_tables_in_one_batch(mode: str, table: Table, ddb: Any) -> None:
    PLAIN.create(poll=0.01)
    customer = Customer(customer_id="c1", name="Ann", email="ann@example.com")
    orders = [order(n, coupon="SAVE" if n % 2 else None) for n in range(1, 31)]
    note = Note(customer_id="c1", written_at=T0, text="hello")
    writer = batch_write()
    writer.put(customer, *orders, note).put(Setting(name="mode", value="fast"))
    result = await flush(writer, mode)
    assert len(result.written) == 33 and result.chunks == 2
    # whole items are written, index keys included (the sparse coupon index: odd orders only)
    items = stored(ddb, APP)
    with_coupon = [i for i in items.values() if i["_type"]["S"] == "Order" and "gsi2pk" in i]
    assert sorted(int(i["order_id"]["N"]) for i in with_coupon) == list(range(1, 31, 2))
    assert items[("CUSTOMER#c1", "PROFILE")]["gsi1pk"] == {"S": "EMAIL#ann@example.com"}

    keys = [Key.of(customer), Key(Setting, name="mode"), Key(Setting, name="nope")]
    keys += [Key.of(o) for o in orders[:3]]
    found = await get(keys, mode)
    assert found.items == [customer, Setting(name="mode", value="fast"), *orders[:3]]
    assert found.missing == [Key(Setting, name="nope")]

    deleting = batch_write().delete(*orders[10:], note, Key(Setting, name="mode"))
    result = await flush(deleting, mode)
    assert [r.action for r in result.written] == ["delete"] * 22
    assert sum(i["_type"]["S"] == "Order" for i in stored(ddb, APP).values()) == 10
    assert stored(ddb, PLAIN) == {}


async def test_last_write_wins_on_the_server(mode: str, tables: Any, ddb: Any) -> None:
    writer = batch_write()
    writer.put(*(Reading(sensor="s", n=i, value=1) for i in range(40)))
    writer.delete(*(Key(Reading, sensor="s", n=i) for i in range(0, 40, 2)))
    writer.put(*(Reading(sensor="s", n=i, value=2) for i in range(0, 10)))
    result = await flush(writer, mode)
    items = stored(ddb, BULK)
    expected = {i: 2 for i in range(10)} | {i: 1 for i in range(11, 40, 2)}
    got = {int(sk.split("#")[1]): int(item["value"]["N"]) for (_, sk), item in items.items()}
    assert got == expected
    assert len(result.written) == 40 and len(result.superseded) == 30


async def test_batch_get_order_duplicates_and_missing(mode: str, tables: Any) -> None:
    batch_write().put(*(Reading(sensor="s", n=i, value=i) for i in range(250))).flush()
    keys = [Key(Reading, sensor="s", n=i) for i in (240, 3, 999, 3, 0)]
    keys += [Key(Reading, sensor="s", n=i) for i in range(250)]
    result = await get(keys, mode, consistent=True)
    assert [r.n for r in result.items] == [
        240,
        3,
        0,
        *(i for i in range(250) if i not in {240, 3, 0}),
    ]
    assert result.missing == [Key(Reading, sensor="s", n=999)]
    assert result.duplicates == 4 and result.chunks == 3
    assert result.by_key[Key(Reading, sensor="s", n=7)].value == 7


async def test_versioned_models_need_an_explicit_opt_in(mode: str, tables: Any, ddb: Any) -> None:
    with pytest.raises(ValidationError, match="skip_version_check=True"):
        batch_write().put(Doc(doc_id="d1", version=4))
    writer = batch_write(skip_version_check=True)
    await flush(writer.put(Doc(doc_id="d1", version=4), Doc(doc_id="d2")), mode)
    items = stored(ddb, BULK)
    assert items[("DOC#d1", "DOC")]["version"] == {"N": "4"}  # as it is: no check, no increment
    assert "version" not in items[("DOC#d2", "DOC")]  # no version yet: none stored
    fresh = Doc.get(doc_id="d2")
    if mode == "async":
        await fresh.asave()
    else:
        fresh.save()
    assert Doc.get(doc_id="d2").version == 1  # the next locked save works as for a new item


# -- faults ------------------------------------------------------------------------------------


def readings(count: int, label: str = "") -> list[Reading]:
    return [Reading(sensor=f"s{i % 7}", n=i, value=i * 3, label=label) for i in range(count)]


@pytest.mark.slow
async def test_10000_items_through_the_fault_injector(
    mode: str, tables: Any, ddb: Any, record_property: Any
) -> None:
    """Issue 5's acceptance check: 30% of the items of every call come back unprocessed and
    10% of the calls are throttled; the table ends with exactly the 10,000 items written and
    the result reports the retries."""
    policy = RetryPolicy(base=0.001, cap=0.05, max_attempts=30)
    items = [Sample(n=n, value=n * 3) for n in range(10_000)]
    started = time.perf_counter()
    async with faulty(mode, policy, seed=2024, unprocessed=0.3, throttle=0.1) as (conn, faults):
        writer = batch_write(connection=conn)
        writer.put(*items)
        result = await flush(writer, mode)
        sample = [Key.of(s) for s in items[::20]]
        read = await get(sample, mode, connection=conn)
    record_property("seconds", round(time.perf_counter() - started, 2))

    table_items = stored(ddb, BULK)
    assert len(table_items) == 10_000
    assert [Sample.from_item(table_items[(f"SAMPLE#{s.n}", "S")]) for s in items] == items

    assert len(result.written) == 10_000 and result.chunks == 400
    assert result.retries == result.unprocessed_retries + result.error_retries > 400
    assert result.error_retries == faults.stats.throttled - read.error_retries > 0
    assert result.unprocessed_retries > 400
    assert result.calls + read.calls == faults.stats.calls
    assert result.consumed_capacity.get("batch-bulk", 0) > 0
    assert read.items == items[::20] and read.missing == []


async def test_giving_up_leaves_exactly_the_reported_items(
    mode: str, tables: Any, ddb: Any
) -> None:
    items = readings(300)
    policy = RetryPolicy(base=0.0, max_attempts=2)
    async with faulty(mode, policy, seed=9, unprocessed=0.6) as (conn, _):
        writer = batch_write(connection=conn, max_concurrency=8)
        writer.put(*items)
        with pytest.raises(BatchWriteError) as caught:
            await flush(writer, mode)
    error = caught.value
    on_server = {Key.of(Reading.from_item(i)) for i in stored(ddb, BULK).values()}
    assert {r.key for r in error.written} == on_server
    assert [r.item for r in error.unprocessed] == [r for r in items if Key.of(r) not in on_server]
    assert len(error.written) > 0 and len(error.written) + len(error.unprocessed) == 300

    await flush(batch_write().add(*error.unprocessed), mode)
    assert len(stored(ddb, BULK)) == 300


async def test_lost_responses_are_resent_safely(mode: str, tables: Any, ddb: Any) -> None:
    batch_write().put(*readings(100, label="old")).flush()
    writer = batch_write(connection=None)
    writer.put(*readings(200, label="new")[50:])
    writer.delete(*(Key.of(r) for r in readings(50)))
    policy = RetryPolicy(base=0.001, cap=0.01, max_attempts=30)
    async with faulty(mode, policy, seed=1, server_error=0.4, server_error_after_apply=0.5) as (
        conn,
        faults,
    ):
        writer.connection = conn
        result = await flush(writer, mode)
    assert faults.stats.server_errors_after_apply > 0
    assert result.error_retries == faults.stats.server_errors
    labels = {int(k[1].split("#")[1]): i["label"]["S"] for k, i in stored(ddb, BULK).items()}
    assert labels == {n: "new" for n in range(50, 200)}
