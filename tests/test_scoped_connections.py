"""Scoped connections (#20): ``connection=`` on every operation and
``dynamodel.use_connection``, resolved explicit > scoped > bound > default.

Three in-process DynamoDBs (moto, no server) hold the same empty ``app`` table: ``home`` is the
default connection, ``a`` and ``b`` are only reachable through their own connections. Where an
item lands, and which backend counted a call, shows which connection a request went to.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import user_items
from shop_models import APP, Customer, Order, order

import dynamodel
from dynamodel import Attr, Collection, Connection, Model, Shards, ValidationError, use_connection
from dynamodel.io.clients import default_connection
from dynamodel.io.scope import resolve_connection, scoped_connection
from dynamodel.modelling.table import Table
from dynamodel.ops.batch import abatch_get, batch_get, batch_write
from dynamodel.ops.locking import aretry_on_conflict, retry_on_conflict
from dynamodel.ops.transactions import TransactGet, TransactWrite
from dynamodel.testing import InProcessDynamoDB


class Wallet(Model):
    class Meta:
        table = APP
        pk = "WALLET#{wallet_id}"
        sk = "WALLET"
        version = "version"

    wallet_id: str
    balance: int = 0
    version: int = 0


class Backends:
    def __init__(self, home: InProcessDynamoDB) -> None:
        self.home = home
        self.a = InProcessDynamoDB()
        self.b = InProcessDynamoDB()
        for db in (home, self.a, self.b):
            db.create_tables(APP)
        self.conn_a = self.a.connection()
        self.conn_b = self.b.connection()
        for db in (home, self.a, self.b):
            db.calls.clear()  # count what the tests send, not the setup

    @staticmethod
    def _uncounted(db: InProcessDynamoDB, method: str, **params: Any) -> dict[str, Any]:
        """A call the test makes to look, left out of ``db.calls``."""
        before = Counter(db.calls)
        response: dict[str, Any] = getattr(db.client(), method)(**params)
        db.calls.clear()
        db.calls.update(before)
        return response

    def items(self, db: InProcessDynamoDB) -> list[dict[str, Any]]:
        return user_items(self._uncounted(db, "scan", TableName="app")["Items"])

    def holder(self, customer_id: str) -> list[str]:
        """The backends holding customer ``customer_id``."""
        found = []
        for name, db in (("home", self.home), ("a", self.a), ("b", self.b)):
            response = self._uncounted(
                db,
                "get_item",
                TableName="app",
                Key={"pk": {"S": f"CUSTOMER#{customer_id}"}, "sk": {"S": "PROFILE"}},
            )
            if "Item" in response:
                found.append(name)
        return found

    def close(self) -> None:
        self.a.close()
        self.b.close()


@pytest.fixture
def dbs(dynamodel_inprocess: InProcessDynamoDB) -> Iterator[Backends]:
    backends = Backends(dynamodel_inprocess)
    try:
        yield backends
    finally:
        APP.unbind()
        backends.close()


def ann(customer_id: str = "c1") -> Customer:
    return Customer(customer_id=customer_id, name="Ann", email=f"{customer_id}@example.com")


# -- explicit connection= ---------------------------------------------------------------------


def test_explicit_connection_routes_every_item_operation(dbs: Backends) -> None:
    conn = dbs.conn_a
    ann("c1").save(connection=conn)
    assert dbs.holder("c1") == ["a"]
    assert Customer.get_or_none(customer_id="c1") is None  # the default backend has none
    got = Customer.get(customer_id="c1", connection=conn, consistent=True)
    assert got.name == "Ann"
    assert Customer.get_or_none(customer_id="c1", connection=conn) == got
    ann("c2").create(connection=conn)
    assert dbs.holder("c2") == ["a"]
    updated = got.update(Attr("visits").add(1), connection=conn)
    assert updated.visits == 1
    changed = Customer.update_item({"customer_id": "c1"}, [Attr("visits").add(1)], connection=conn)
    assert changed.visits == 2
    got.name = "Anna"
    assert got.save_changes(connection=conn) == ["name"]
    assert Customer.get(customer_id="c1", connection=conn).name == "Anna"
    assert Customer.delete_item({"customer_id": "c2"}, connection=conn) is not None
    got.delete(connection=conn)
    assert dbs.holder("c1") == [] and dbs.items(dbs.a) == []
    wallet = Wallet(wallet_id="w1")
    wallet.save(connection=conn)
    saved = retry_on_conflict(
        Wallet, {"wallet_id": "w1"}, lambda w: setattr(w, "balance", 5), connection=conn
    )
    assert saved.balance == 5 and Wallet.get(wallet_id="w1", connection=conn).version == 2
    assert dbs.items(dbs.home) == [] and dbs.items(dbs.b) == []
    assert set(dbs.home.calls) <= {"GetItem"}  # only the get_or_none above went home


async def test_explicit_connection_routes_every_async_item_operation(dbs: Backends) -> None:
    conn = dbs.conn_b
    await ann("c1").asave(connection=conn)
    assert dbs.holder("c1") == ["b"]
    assert await Customer.aget_or_none(customer_id="c1") is None
    got = await Customer.aget(customer_id="c1", connection=conn)
    assert await Customer.aget_or_none(customer_id="c1", connection=conn) == got
    await ann("c2").acreate(connection=conn)
    assert (await got.aupdate(Attr("visits").add(1), connection=conn)).visits == 1
    changed = await Customer.aupdate_item(
        {"customer_id": "c1"}, [Attr("visits").add(1)], connection=conn
    )
    assert changed.visits == 2
    got.name = "Anna"
    assert await got.asave_changes(connection=conn) == ["name"]
    assert await Customer.adelete_item({"customer_id": "c2"}, connection=conn) is not None
    await got.adelete(connection=conn)
    assert dbs.items(dbs.b) == []
    await Wallet(wallet_id="w1").asave(connection=conn)
    saved = await aretry_on_conflict(
        Wallet, {"wallet_id": "w1"}, lambda w: setattr(w, "balance", 7), connection=conn
    )
    assert saved.balance == 7
    assert dbs.items(dbs.home) == [] and dbs.items(dbs.a) == []
    assert set(dbs.home.calls) <= {"GetItem"}


def test_explicit_connection_routes_reads_batches_transactions_and_tables(
    dbs: Backends,
) -> None:
    conn = dbs.conn_a
    with batch_write(connection=conn, max_concurrency=4) as batch:
        batch.put(*(order(n) for n in range(30)))
    assert len(dbs.items(dbs.a)) == 30 and dbs.items(dbs.home) == []
    query = Order.query(customer_id="c1", connection=conn)
    assert query.connection is conn
    assert len(query.all()) == 30 and query.count() == 30
    assert len(list(query.filter(Attr("order_id") < 10).pages())) >= 1
    assert len(Order.scan(connection=conn).all()) == 30
    assert len(Order.scan(connection=conn).parallel(3).all()) == 30
    assert len(Order.aquery(customer_id="c1").all()) == 0  # the default backend: empty
    orders = Collection(Customer, Order)
    assert len(orders.fetch(customer_id="c1", connection=conn).of(Order)) == 30
    assert orders.query(customer_id="c1", connection=conn).count() == 30
    assert orders.fetch(customer_id="c1").of(Order) == []
    keys = [order(n) for n in range(5)]
    assert len(batch_get(keys, connection=conn).items) == 5
    with TransactWrite(connection=conn) as tx:
        tx.put(ann("c9"))
    assert dbs.holder("c9") == ["a"]
    read = TransactGet(connection=conn)
    ref = read.get(Customer, customer_id="c9")
    read.execute()
    assert ref.require().name == "Ann"
    assert APP.describe(connection=conn)["TableName"] == "app"
    from dynamodel import schema

    assert schema.describe(APP, connection=conn).table["TableName"] == "app"
    assert schema.diff(APP, connection=conn) == schema.diff(APP)
    described = dbs.a.calls["DescribeTable"]
    assert schema.apply(APP, dry_run=True, connection=conn).dry_run
    assert dbs.a.calls["DescribeTable"] == described + 1
    home_calls = set(dbs.home.calls)
    assert "BatchWriteItem" not in home_calls and "TransactWriteItems" not in home_calls
    assert "TransactGetItems" not in home_calls and "BatchGetItem" not in home_calls
    assert dbs.a.calls["DescribeTable"] >= 2


async def test_explicit_connection_routes_async_reads_batches_transactions_and_tables(
    dbs: Backends,
) -> None:
    conn = dbs.conn_b
    async with batch_write(connection=conn) as batch:
        batch.put(*(order(n) for n in range(12)))
    assert len(dbs.items(dbs.b)) == 12 and dbs.items(dbs.home) == []
    query = Order.aquery(customer_id="c1", connection=conn)
    assert len(await query.aall()) == 12 and await query.acount() == 12
    assert (await query.afirst()) is not None
    assert len(await Order.ascan(connection=conn).aall()) == 12
    assert len(await Order.ascan(connection=conn).parallel(2).aall()) == 12
    assert (
        len((await Collection(Customer, Order).afetch(customer_id="c1", connection=conn)).of(Order))
        == 12
    )
    keys = [order(n) for n in range(3)]
    assert len((await abatch_get(keys, connection=conn)).items) == 3
    tx = TransactWrite(connection=conn)
    tx.put(ann("c9"))
    await tx.acommit()
    assert dbs.holder("c9") == ["b"]
    read = TransactGet(connection=conn)
    ref = read.get(Customer, customer_id="c9")
    await read.aexecute()
    assert ref.item is not None
    assert (await APP.adescribe(connection=conn))["TableName"] == "app"
    from dynamodel import schema

    assert (await schema.adescribe(APP, connection=conn)).table["TableName"] == "app"
    assert await schema.adiff(APP, connection=conn) == []
    assert (await schema.aapply(APP, dry_run=True, connection=conn)).dry_run
    assert "DescribeTable" not in dbs.home.calls
    assert not {"BatchWriteItem", "TransactWriteItems", "Scan", "Query"} & set(dbs.home.calls)


def test_table_create_and_delete_take_a_connection(dbs: Backends) -> None:
    extra = Table("scoped-extra")
    extra.create(connection=dbs.conn_a, poll=0.0)
    assert "scoped-extra" in dbs.a.table_names()
    assert "scoped-extra" not in dbs.home.table_names()
    extra.delete(connection=dbs.conn_a)
    assert "scoped-extra" not in dbs.a.table_names()


async def test_async_table_create_and_delete_take_a_connection(dbs: Backends) -> None:
    extra = Table("scoped-extra")
    await extra.acreate(connection=dbs.conn_b, poll=0.0)
    assert "scoped-extra" in dbs.b.table_names()
    assert "scoped-extra" not in dbs.home.table_names()
    await extra.adelete(connection=dbs.conn_b)
    assert "scoped-extra" not in dbs.b.table_names()


# -- use_connection ----------------------------------------------------------------------------


def test_use_connection_is_exported() -> None:
    assert dynamodel.use_connection is use_connection
    assert "use_connection" in dynamodel.__all__


def test_a_scope_routes_the_operations_in_it_and_nests(dbs: Backends) -> None:
    assert scoped_connection() is None
    with use_connection(dbs.conn_a) as entered:
        assert entered is dbs.conn_a and scoped_connection() is dbs.conn_a
        ann("c1").save()
        with use_connection(dbs.conn_b):
            ann("c2").save()
            assert Customer.get(customer_id="c2").customer_id == "c2"
        ann("c3").save()  # the outer scope is back
        assert len(Customer.scan().all()) == 2
    assert scoped_connection() is None
    ann("c4").save()
    assert dbs.holder("c1") == ["a"] and dbs.holder("c2") == ["b"]
    assert dbs.holder("c3") == ["a"] and dbs.holder("c4") == ["home"]


def test_a_scope_is_restored_when_the_block_raises(dbs: Backends) -> None:
    with use_connection(dbs.conn_a):
        with pytest.raises(RuntimeError, match="boom"), use_connection(dbs.conn_b):
            ann("c1").save()
            raise RuntimeError("boom")
        assert scoped_connection() is dbs.conn_a
        ann("c2").save()
    assert scoped_connection() is None
    assert dbs.holder("c1") == ["b"] and dbs.holder("c2") == ["a"]


async def test_async_with_scopes_nest_and_restore(dbs: Backends) -> None:
    async with use_connection(dbs.conn_a):
        await ann("c1").asave()
        with pytest.raises(KeyError):
            async with use_connection(dbs.conn_b):
                await ann("c2").asave()
                raise KeyError("x")
        await ann("c3").asave()
        assert len(await Customer.ascan().aall()) == 2
    assert scoped_connection() is None
    assert dbs.holder("c1") == ["a"] and dbs.holder("c2") == ["b"] and dbs.holder("c3") == ["a"]


def test_a_scope_object_can_be_reentered() -> None:
    conn = Connection()
    scope = use_connection(conn)
    with scope:
        with scope:
            assert scoped_connection() is conn
        assert scoped_connection() is conn
    assert scoped_connection() is None
    with pytest.raises(TypeError, match="needs a Connection"):
        use_connection(None)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="needs a Connection, got 'eu-west-1'"):
        use_connection("eu-west-1")  # type: ignore[arg-type]


def test_an_explicit_connection_that_is_not_a_connection_is_refused(dbs: Backends) -> None:
    """A boto3 client (or anything else) passed as ``connection=`` fails with a clear error
    before any request, not with an attribute error deep in the executor."""
    with pytest.raises(TypeError, match="connection= needs a dynamodel Connection, got 'x'"):
        Wallet.get(wallet_id="w1", connection="x")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="connection= needs a dynamodel Connection"):
        Wallet.query(wallet_id="w1", connection=object()).all()  # type: ignore[arg-type]


def test_precedence_explicit_then_scoped_then_bound_then_default(dbs: Backends) -> None:
    home = default_connection()
    assert resolve_connection(APP) is home
    assert resolve_connection(None) is home
    APP.bind(connection=dbs.conn_b)
    try:
        assert resolve_connection(APP) is dbs.conn_b
        ann("bound").save()  # bound beats the default
        with use_connection(dbs.conn_a):
            assert resolve_connection(APP) is dbs.conn_a
            assert resolve_connection(APP, home) is home
            ann("scoped").save()  # the scope beats the binding
            ann("explicit").save(connection=home)  # explicit beats the scope
            query = Customer.scan()
        # a query resolves when it runs: outside the scope, the binding again
        assert [c.customer_id for c in query] == ["bound"]
    finally:
        APP.unbind()
    ann("default").save()
    assert dbs.holder("bound") == ["b"] and dbs.holder("scoped") == ["a"]
    assert dbs.holder("explicit") == ["home"] and dbs.holder("default") == ["home"]


async def test_a_scope_in_one_task_is_not_seen_by_a_sibling_task(dbs: Backends) -> None:
    inside = asyncio.Event()
    checked = asyncio.Event()
    seen: dict[str, Any] = {}

    async def scoped() -> None:
        async with use_connection(dbs.conn_a):
            inside.set()
            await checked.wait()  # the sibling runs while this task is in its scope
            seen["scoped"] = scoped_connection()
            await ann("from-scoped").asave()

    async def sibling() -> None:
        await inside.wait()
        seen["sibling"] = scoped_connection()
        await ann("from-sibling").asave()
        checked.set()

    await asyncio.gather(scoped(), sibling())
    assert seen == {"scoped": dbs.conn_a, "sibling": None}
    assert dbs.holder("from-scoped") == ["a"] and dbs.holder("from-sibling") == ["home"]
    assert scoped_connection() is None


async def test_a_task_started_in_a_scope_inherits_it_but_cannot_change_it(
    dbs: Backends,
) -> None:
    async def child() -> Connection | None:
        with use_connection(dbs.conn_b):  # changes the child's copy only
            await ann("child").asave()
        return scoped_connection()

    with use_connection(dbs.conn_a):
        assert await asyncio.create_task(child()) is dbs.conn_a
        assert scoped_connection() is dbs.conn_a
    assert dbs.holder("child") == ["b"]


def test_a_scope_in_one_thread_is_not_seen_by_another(dbs: Backends) -> None:
    inside = threading.Event()
    checked = threading.Event()
    seen: dict[str, Any] = {}

    def scoped() -> None:
        with use_connection(dbs.conn_a):
            inside.set()
            checked.wait(10)
            seen["scoped"] = scoped_connection()
            ann("from-thread").save()

    thread = threading.Thread(target=scoped)
    thread.start()
    assert inside.wait(10)
    seen["main"] = scoped_connection()
    ann("from-main").save()
    checked.set()
    thread.join(10)
    assert seen == {"scoped": dbs.conn_a, "main": None}
    assert dbs.holder("from-thread") == ["a"] and dbs.holder("from-main") == ["home"]
    # and the main thread's scope is not seen by a thread it starts
    with use_connection(dbs.conn_b):
        other: list[Connection | None] = []
        worker = threading.Thread(target=lambda: other.append(scoped_connection()))
        worker.start()
        worker.join(10)
    assert other == [None]


def test_a_scope_covers_the_work_dynamodel_runs_in_worker_threads(dbs: Backends) -> None:
    """Parallel scans and concurrent batch chunks run on threads: the scope still applies."""
    with use_connection(dbs.conn_a):
        with batch_write(max_concurrency=4) as batch:
            batch.put(*(order(n) for n in range(60)))  # 3 chunks, sent concurrently
        assert len(Order.scan().parallel(4, max_concurrency=4).all()) == 60
        keys = [order(n) for n in range(60)]
        assert len(batch_get(keys, max_concurrency=4).items) == 60
    assert len(dbs.items(dbs.a)) == 60 and dbs.items(dbs.home) == []
    assert not {"Scan", "BatchGetItem", "BatchWriteItem"} & set(dbs.home.calls)


async def test_a_scope_covers_concurrent_async_work(dbs: Backends) -> None:
    async with use_connection(dbs.conn_b):
        async with batch_write(max_concurrency=4) as batch:
            batch.put(*(order(n) for n in range(60)))
        assert len(await Order.ascan().parallel(4).aall()) == 60
    assert len(dbs.items(dbs.b)) == 60 and dbs.items(dbs.home) == []


def test_transactions_follow_the_same_resolution(dbs: Backends) -> None:
    other = Table("scoped-other")
    dbs.b.create_tables(other)

    class Thing(Model):
        class Meta:
            table = other
            pk = "THING#{thing_id}"
            sk = "THING"

        thing_id: str

    other.bind(connection=dbs.conn_b)
    try:
        tx = TransactWrite()
        tx.put(ann("c1"))
        tx.put(Thing(thing_id="t1"))
        with pytest.raises(ValidationError, match="one connection: pass connection="):
            tx.connection()
        with use_connection(dbs.conn_b):  # a scope names the one connection for all
            assert tx.connection() is dbs.conn_b
            tx.commit()
        assert dbs.holder("c1") == ["b"]
        things = user_items(dbs.b.client().scan(TableName="scoped-other")["Items"])
        assert [t["thing_id"] for t in things] == [{"S": "t1"}]
        with use_connection(dbs.conn_b):
            assert TransactWrite(connection=dbs.conn_a).connection() is dbs.conn_a
            assert TransactGet().connection() is dbs.conn_b  # no actions: the scope's
        assert TransactGet().connection() is default_connection()
    finally:
        other.unbind()


REFUSED = Table("scoped-refused")


def test_a_key_field_named_connection_is_refused() -> None:
    with pytest.raises(ValidationError, match="uses field 'connection', named like an option"):

        class Link(Model):
            class Meta:
                table = REFUSED
                pk = "LINK#{connection}"
                sk = "LINK"

            connection: str

    class Elsewhere(Model):  # outside every key the name is free
        class Meta:
            table = REFUSED
            pk = "LINK#{link_id}"
            sk = "LINK"

        link_id: str
        connection: str = ""

    assert Elsewhere(link_id="l1", connection="x").connection == "x"


# -- migrations: their worker threads and the lock's heartbeat ----------------------------------

MIGRATED = Table("scoped-migrated")


class Ticket(Model):
    class Meta:
        table = MIGRATED
        pk = "TICKET#{ticket_id}"
        sk = "TICKET"

    ticket_id: int
    status: str | None = None


def test_a_migration_run_in_a_scope_uses_it_on_every_thread(dbs: Backends, tmp_path: Path) -> None:
    """The backfill's segment threads and the lock's heartbeat thread do not see the scope
    themselves: the connection is resolved before they start. The default backend has no such
    table, so a request sent there would fail."""
    from dynamodel.migrations import BackfillSettings, MigrationLock, Migrator
    from dynamodel.migrations.store import Store

    dbs.a.create_tables(MIGRATED)
    with batch_write(connection=dbs.conn_a) as batch:
        batch.put(*(Ticket(ticket_id=n) for n in range(50)))
    (tmp_path / "0001_status.py").write_text(
        "def up(ctx):\n"
        "    Ticket = ctx.model('Ticket')\n"
        "    ctx.backfill(Ticket, lambda t: t.model_copy(update={'status': 'open'}))\n"
        "\n"
        "def down(ctx):\n"
        "    pass\n"
    )
    settings = BackfillSettings(segments=4, page_size=5)
    with use_connection(dbs.conn_a):
        Migrator(MIGRATED, tmp_path, settings=settings).up()
        assert {t.status for t in Ticket.scan()} == {"open"}
        lock = MigrationLock(Store(MIGRATED), lease=0.15)
        updates = dbs.a.calls["UpdateItem"]
        lock.acquire()
    time.sleep(0.25)  # a few heartbeats, on their own thread, out of the block
    assert lock.release()
    assert lock.heartbeat_error is None and lock.lost is None
    assert dbs.a.calls["UpdateItem"] >= updates + 2  # the beats reached the scoped backend
    assert "scoped-migrated" not in dbs.home.table_names()


class Reading(Model):
    class Meta:
        table = APP
        pk = "SENSOR#{sensor}"
        sk = "AT#{seq}"
        shards = Shards(4)

    sensor: str
    seq: int


def test_a_sharded_query_fans_out_on_the_scoped_connection(dbs: Backends) -> None:
    """A sharded partition is read from every shard concurrently (threads when sync)."""
    with use_connection(dbs.conn_a):
        with batch_write() as batch:
            batch.put(*(Reading(sensor="s1", seq=n) for n in range(40)))
        assert [r.seq for r in Reading.query(sensor="s1")] == list(range(40))
        assert Reading.query(sensor="s1").concurrency(4).count() == 40
    assert Reading.query(sensor="s1", connection=dbs.conn_a).count() == 40
    assert not {"Query", "BatchWriteItem"} & set(dbs.home.calls)


async def test_an_async_sharded_query_fans_out_on_the_scoped_connection(dbs: Backends) -> None:
    async with use_connection(dbs.conn_b):
        async with batch_write() as batch:
            batch.put(*(Reading(sensor="s1", seq=n) for n in range(40)))
        assert [r.seq async for r in Reading.aquery(sensor="s1")] == list(range(40))
    assert not {"Query", "BatchWriteItem"} & set(dbs.home.calls)
