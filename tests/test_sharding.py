"""Write sharding end to end: sharded writes, fan-out reads merged in sort key order,
calculated shards, GSI sharding and the shard-count record that stops wrong-N reads."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
from backends import Backend
from conftest import SyncIO, user_items

from dynamodel import GSI, Attr, Collection, Model, Table, TransactWrite, ValidationError
from dynamodel.modelling.sharding import ShardCountMismatch, Shards
from dynamodel.ops.batch import abatch_get, batch_get, batch_write
from dynamodel.ops.batch_flows import Key
from dynamodel.ops.shard_guard import forget_shard_checks, registry_key

TABLE = Table("sharding", indexes=[GSI("gsi1", pk="gsi1pk", sk="gsi1sk")])
HOT_SHARDS = 16


class PageView(Model):
    """A write-hot partition: every view of a page goes to PAGE#<page>, spread 16 ways."""

    class Meta:
        table = TABLE
        pk = "PAGE#{page}"
        sk = "VIEW#{seq}"
        shards = Shards(HOT_SHARDS)

    page: str
    seq: int
    visitor: str = "v"


class Account(Model):
    """Calculated shards: the shard is a hash of the account id, so gets need no fan-out."""

    class Meta:
        table = TABLE
        pk = "ACCOUNTS#{region}"
        sk = "ACCOUNT#{account_id}"
        shards = Shards(8, by="account_id")
        version = "version"

    region: str
    account_id: str
    balance: int = 0
    version: int | None = None


class Order(Model):
    """GSI sharding: orders by status (a hot index key), spread over 4 index shards."""

    class Meta:
        table = TABLE
        pk = "ORDER#{order_id}"
        sk = "ORDER"
        indexes = {"gsi1": ("STATUS#{status}", "{placed}", Shards(4, by="order_id"))}

    order_id: str
    status: str
    placed: dt.datetime


class Like(Model):
    """Shares PageView's partition template and shards: a collection over both."""

    class Meta:
        table = TABLE
        pk = "PAGE#{page}"
        sk = "LIKE#{seq}"
        shards = Shards(HOT_SHARDS)

    page: str
    seq: int


@pytest.fixture
def sharded(fresh_db: Backend) -> Iterator[Table]:
    forget_shard_checks()
    TABLE.create(poll=0.01)
    yield TABLE
    forget_shard_checks()


class Recording:
    """A sync client wrapper that records the operations sent through it."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self.calls: list[str] = []

    def __getattr__(self, name: str) -> Any:
        target = getattr(self.client, name)
        if not callable(target) or name.startswith("_") or name in ("meta", "exceptions"):
            return target

        def recorded(**params: Any) -> Any:
            self.calls.append(name)
            return target(**params)

        return recorded


# -- the acceptance check: 20,000 writes to one hot key -------------------------------------------


HOT_ITEMS = 20_000
# moto re-reads a whole partition on every Query (about 1 s per 1,250-item shard page here), so
# on moto the same check runs at a tenth of the size; CI runs it at full size on dynoxide.
HOT_ITEMS_ON_MOTO = 2_000


def _write_hot(count: int) -> None:
    with batch_write() as batch:
        for seq in range(count):
            batch.put(PageView(page="home", seq=seq, visitor=f"v{seq % 97}"))


async def _awrite_hot(count: int) -> None:
    async with batch_write() as batch:
        for seq in range(count):
            batch.put(PageView(page="home", seq=seq, visitor=f"v{seq % 97}"))


@pytest.mark.slow
async def test_20000_hot_writes_spread_and_read_back_in_order(
    sharded: Table, io: SyncIO, backend_name: str
) -> None:
    items = HOT_ITEMS if backend_name == "dynoxide" else HOT_ITEMS_ON_MOTO
    page_limit = items // 7 + 3  # pages end mid-shard, and the last one is short
    if io.name == "sync":
        _write_hot(items)
    else:
        await _awrite_hot(items)

    # spread: every one of the 16 physical partitions holds close to 20,000/16 = 1,250 items
    per_shard = [await io.count(PageView.query(page="home", shard=n)) for n in range(HOT_SHARDS)]
    assert sum(per_shard) == items
    expected = items / HOT_SHARDS
    band = 5 * (items * (1 / HOT_SHARDS) * (1 - 1 / HOT_SHARDS)) ** 0.5  # 5 binomial sd
    assert all(expected - band <= n <= expected + band for n in per_shard), per_shard

    # the logical key reads back every item, in exact sort key order, both ways
    forward = await io.all(PageView.query(page="home"))
    assert [v.seq for v in forward] == list(range(items))
    backward = await io.all(PageView.query(page="home").reverse())
    assert [v.seq for v in backward] == list(range(items - 1, -1, -1))
    assert await io.count(PageView.query(page="home")) == items

    # limit + cursor resume: no duplicates, no gaps (forwards, then backwards)
    for reverse in (False, True):
        seen: list[int] = []
        cursor: str | None = None
        while True:
            query = PageView.query(page="home").reverse(reverse).limit(page_limit)
            pages = await io.pages(query.start_from(cursor))
            chunk = [v.seq for page in pages for v in page.items]
            assert 0 < len(chunk) <= page_limit
            seen.extend(chunk)
            cursor = pages[-1].cursor
            if cursor is None or len(seen) == items:
                break
        expected_order = list(range(items))
        assert seen == (expected_order[::-1] if reverse else expected_order)


# -- random shards -------------------------------------------------------------------------------


async def test_random_shard_is_remembered_for_updates_and_deletes(
    sharded: Table, io: SyncIO
) -> None:
    view = PageView(page="p", seq=1)
    await io.save(view)
    shard = view.shard_number()
    assert shard is not None and 0 <= shard < HOT_SHARDS

    read = await io.first(PageView.query(page="p"))
    assert read is not None and read.shard_number() == shard
    updated = await io.update(read, Attr("visitor").set("w"))
    assert updated.visitor == "w" and updated.shard_number() == shard
    await io.save(read)  # a second save overwrites the same physical item
    assert await io.count(PageView.query(page="p")) == 1

    # by key: the shard must be given; with it, exactly that item
    with pytest.raises(ValidationError, match="sharded randomly over 16 shards"):
        await io.get(PageView, page="p", seq=1)
    got = await io.get(PageView, page="p", seq=1, shard=shard)
    assert got.visitor == "v"  # the save above wrote the instance's own (unchanged) visitor
    wrong = (shard + 1) % HOT_SHARDS
    assert await io.get_or_none(PageView, page="p", seq=1, shard=wrong) is None
    with pytest.raises(ValidationError, match="shard must be an int from 0 to 15"):
        await io.get(PageView, page="p", seq=1, shard=16)

    await io.update_item(
        PageView, {"page": "p", "seq": 1, "shard": shard}, [Attr("visitor").set("x")]
    )
    deleted = await io.delete_item(PageView, {"page": "p", "seq": 1, "shard": shard})
    assert deleted is not None and deleted.visitor == "x"
    assert await io.count(PageView.query(page="p")) == 0


async def test_sharded_query_honours_filters_limits_and_sort_conditions(
    sharded: Table, io: SyncIO
) -> None:
    with batch_write() as batch:
        for seq in range(300):
            batch.put(PageView(page="f", seq=seq, visitor="even" if seq % 2 == 0 else "odd"))
    query = PageView.query(page="f").filter(Attr("visitor") == "odd").page_size(7)
    odd = await io.all(query)
    assert [v.seq for v in odd] == list(range(1, 300, 2))
    limited = await io.all(PageView.query(page="f").reverse().limit(5))
    assert [v.seq for v in limited] == [299, 298, 297, 296, 295]
    between = await io.all(PageView.query(page="f").sk_between({"seq": 100}, {"seq": 104}))
    assert [v.seq for v in between] == [100, 101, 102, 103, 104]
    assert await io.count(PageView.query(page="f").sk_ge(seq=250)) == 50
    assert await io.count(PageView.query(page="f").limit(10)) == 10


# -- calculated shards -----------------------------------------------------------------------


def test_calculated_get_issues_exactly_one_get_item(sharded: Table) -> None:
    Account(region="eu", account_id="a-1", balance=5).save()
    Account(region="eu", account_id="a-2", balance=7).save()

    recording = Recording(TABLE.connection.client())
    TABLE.bind(client=recording)
    try:
        Account.get(region="eu", account_id="a-1")
        # a new connection checks the shard record once (its own memory), then never again
        assert recording.calls == ["get_item", "get_item"]
        recording.calls.clear()
        got = Account.get(region="eu", account_id="a-2")
        assert got.balance == 7
        assert recording.calls == ["get_item"]
        # the shard is the documented hash: anyone can compute it
        assert got.shard_number() == Shards(8, by="account_id").calculate({"account_id": "a-2"})
        recording.calls.clear()
        got.update(Attr("balance").add(1))
        assert recording.calls == ["update_item"]
    finally:
        TABLE.unbind()


def test_calculated_key_lands_on_the_hashed_shard(sharded: Table, ddb: Any) -> None:
    account = Account(region="us", account_id="acct-42")
    account.save()
    shard = Shards(8, by="account_id").calculate({"account_id": "acct-42"})
    raw = ddb.get_item(
        TableName=TABLE.physical_name,
        Key={"pk": {"S": f"ACCOUNTS#us.{shard}"}, "sk": {"S": "ACCOUNT#acct-42"}},
    )
    assert raw["Item"]["balance"] == {"N": "0"}
    with pytest.raises(ValidationError, match="calculated from"):
        Account.get(region="us", account_id="acct-42", shard=(shard + 1) % 8)
    assert Account.get(region="us", account_id="acct-42", shard=shard).account_id == "acct-42"


async def test_all_shards_of_a_calculated_partition_are_queried(sharded: Table, io: SyncIO) -> None:
    for n in range(40):
        await io.save(Account(region="eu", account_id=f"a{n:03d}", balance=n))
    accounts = await io.all(Account.query(region="eu"))
    assert [a.account_id for a in accounts] == [f"a{n:03d}" for n in range(40)]
    assert len({a.shard_number() for a in accounts}) == 8


# -- writes through transactions and batches --------------------------------------------------


async def test_transactions_and_batches_write_sharded_keys(sharded: Table) -> None:
    first = Account(region="tx", account_id="x")
    second = Account(region="tx", account_id="y")
    with TransactWrite() as tx:
        tx.create(first)
        tx.create(second)
    assert first.version == 1
    with TransactWrite() as tx:
        tx.update(first, Attr("balance").add(10))
        tx.update_item(Account, {"region": "tx", "account_id": "y"}, [Attr("balance").add(5)])
    found = batch_get([Key(Account, region="tx", account_id="x"), second])
    assert sorted((a.account_id, a.balance) for a in found.items) == [("x", 10), ("y", 5)]

    views = [PageView(page="b", seq=n) for n in range(60)]
    with batch_write() as batch:
        for view in views:
            batch.put(view)
    keys = [Key(PageView, page="b", seq=v.seq, shard=v.shard_number()) for v in views]
    read = await abatch_get(keys)
    assert sorted(v.seq for v in read.items) == list(range(60))
    with batch_write() as batch:
        for view in views[:30]:
            batch.delete(view)
    left = PageView.query(page="b").all()
    assert [v.seq for v in left] == list(range(30, 60))


# -- GSI sharding and collections ---------------------------------------------------------------


async def test_sharded_index_key_merges_in_order(sharded: Table, io: SyncIO, ddb: Any) -> None:
    start = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    for n in range(50):
        placed = start + dt.timedelta(minutes=n)
        await io.save(Order(order_id=f"o{n}", status="open", placed=placed))
    await io.save(Order(order_id="closed", status="closed", placed=start))
    open_orders = await io.all(Order.query(index="gsi1", status="open"))
    assert [o.order_id for o in open_orders] == [f"o{n}" for n in range(50)]
    newest = await io.all(Order.query(index="gsi1", status="open").reverse().limit(3))
    assert [o.order_id for o in newest] == ["o49", "o48", "o47"]

    raw = user_items(ddb.scan(TableName=TABLE.physical_name)["Items"])
    index_keys = Counter(i["gsi1pk"]["S"] for i in raw if "gsi1pk" in i)
    assert {k.rsplit(".", 1)[0] for k in index_keys} == {"STATUS#open", "STATUS#closed"}
    assert len([k for k in index_keys if k.startswith("STATUS#open.")]) == 4  # all 4 shards used

    order = open_orders[0]
    moved = await io.update(order, Attr("status").set("closed"))
    assert moved.status == "closed"
    closed = await io.all(Order.query(index="gsi1", status="closed"))
    assert sorted(o.order_id for o in closed) == ["closed", "o0"]


async def test_collection_over_a_sharded_partition(sharded: Table, io: SyncIO) -> None:
    with batch_write() as batch:
        for n in range(30):
            batch.put(PageView(page="c", seq=n))
            batch.put(Like(page="c", seq=n))
    result = await io.fetch(Collection(PageView, Like), page="c")
    assert len(result.of(PageView)) == 30 and len(result.of(Like)) == 30
    kinds = [type(item).__name__ for item in result.items]
    assert kinds == ["Like"] * 30 + ["PageView"] * 30  # LIKE# sorts before VIEW#
    assert [like.seq for like in result.of(Like)] == list(range(30))

    with pytest.raises(ValidationError, match="shard their shared partition key the same way"):

        class Unsharded(Model):
            class Meta:
                table = TABLE
                pk = "PAGE#{page}"
                sk = "X#{seq}"

            page: str
            seq: int

        Collection(PageView, Unsharded)


# -- the shard-count record ----------------------------------------------------------------------


async def test_a_different_shard_count_cannot_read_silently(sharded: Table, io: SyncIO) -> None:
    await io.save(PageView(page="n", seq=1))
    stored = TABLE.connection.client().get_item(
        TableName=TABLE.physical_name, Key=registry_key(TABLE, "PageView", None)
    )["Item"]
    assert stored["count"] == {"N": "16"} and stored["strategy"] == {"S": "random"}

    redeployed = Table("sharding", indexes=[GSI("gsi1", pk="gsi1pk", sk="gsi1sk")])

    class PageViewV2(Model):  # the same entity in a new deployment, declaring 8 shards
        class Meta:
            table = redeployed
            entity = "PageView"
            pk = "PAGE#{page}"
            sk = "VIEW#{seq}"
            shards = Shards(8)

        page: str
        seq: int
        visitor: str = "v"

    with pytest.raises(ShardCountMismatch, match=r"records .*16.* declares .*8"):
        await io.all(PageViewV2.query(page="n"))  # caught in this process already
    forget_shard_checks()  # as a fresh process would start
    with pytest.raises(ShardCountMismatch, match="random"):
        await io.count(PageViewV2.query(page="n"))
    with pytest.raises(ShardCountMismatch):
        await io.save(PageViewV2(page="n", seq=2))
    assert await io.count(PageView.query(page="n")) == 1  # nothing was written with 8


def test_declaration_errors_are_clear() -> None:
    with pytest.raises(ValidationError, match="not key fields"):

        class BadCalc(Model):
            class Meta:
                table = TABLE
                pk = "X#{a}"
                sk = "Y"
                shards = Shards(4, by="b")

            a: str
            b: str

    with pytest.raises(ValidationError, match=r"Meta\.shards must be a dynamodel Shards"):

        class BadType(Model):
            class Meta:
                table = TABLE
                pk = "X#{a}"
                sk = "Y"
                shards = 4

            a: str

    with pytest.raises(ValidationError, match="named 'shard'"):

        class BadName(Model):
            class Meta:
                table = TABLE
                pk = "X#{shard}"
                sk = "Y"
                shards = Shards(4)

            shard: str


def test_sync_reads_of_a_random_model_without_shard_send_nothing(sharded: Table) -> None:
    recording = Recording(TABLE.connection.client())
    TABLE.bind(client=recording)
    try:
        with pytest.raises(ValidationError, match="pass shard="):
            PageView.get(page="home", seq=1)
        with pytest.raises(ValidationError, match="pass shard="):
            PageView.delete_item({"page": "home", "seq": 1})
        assert recording.calls == []
    finally:
        TABLE.unbind()
