"""Key integrity (docs/security.md), replayed on the session's backend through the sync and the
async API: no value forges, merges or leaks another item's key; refusals send nothing; a read
never parses another entity's item; a changed shard layout never reads or writes silently."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import pytest
from conftest import SyncIO

from dynamodel import (
    Attr,
    Collection,
    EntityMismatch,
    Model,
    ShardCountMismatch,
    Shards,
    Table,
    ValidationError,
)
from dynamodel.ops.batch import Key, abatch_get, batch_get
from dynamodel.ops.shard_guard import forget_shard_checks
from dynamodel.ops.shard_reads import decode_shard_cursor, encode_shard_cursor
from dynamodel.ops.transactions import TransactGet

SEC = Table("key-integrity", ttl="expires_at")


class Team(Model):
    class Meta:
        table = SEC
        pk = "ORG#{org}#TEAM#{team}"
        sk = "TEAM"

    org: str
    team: str
    owner: str


class Order(Model):
    class Meta:
        table = SEC
        pk = "TENANT#{tenant}"
        sk = "USER#{user_id}#ORDER#{order_id}"

    tenant: str
    user_id: str
    order_id: str
    total: int = 0


class Profile(Model):
    class Meta:
        table = SEC
        pk = "TENANT#{tenant}"
        sk = "USER#{user_id}"

    tenant: str
    user_id: str
    expires_at: int | None = None


class Bare(Model):
    class Meta:
        table = SEC
        pk = "{a}"
        sk = "{b}"

    a: str
    b: str


class Impostor(Model):  # renders exactly Order's keys: reads of Orders through it must fail
    class Meta:
        table = SEC
        pk = "TENANT#{tenant}"
        sk = "USER#{user_id}#ORDER#{order_id}"

    tenant: str
    user_id: str
    order_id: str


class Reading(Model):
    class Meta:
        table = SEC
        pk = "SENSOR#{sensor}"
        sk = "N#{n}"

    sensor: str
    n: int


class Doc(Model):
    class Meta:
        table = SEC
        pk = "DOC#{owner}"
        sk = "PATH#{path}"
        escape_keys = True

    owner: str
    path: str


@pytest.fixture
def sec(fresh_db: Any) -> Iterator[Table]:
    forget_shard_checks()
    SEC.create(poll=0.01)
    yield SEC
    forget_shard_checks()


# -- forged keys are refused, and nothing is sent -------------------------------------------------


async def test_a_team_key_cannot_be_forged(sec: Table, io: SyncIO, sent: list[str]) -> None:
    await io.save(Team(org="a", team="b", owner="victim"))
    before = len(sent)
    for org, team in [("a", "b#TEAM#c"), ("a#TEAM#b", "c"), ("a#TEAM", "b")]:
        with pytest.raises(ValidationError, match="a separator of key template"):
            await io.save(Team(org=org, team=team, owner="attacker"))
        with pytest.raises(ValidationError, match="a separator of key template"):
            await io.get_or_none(Team, org=org, team=team)
    assert sent[before:] == []  # refused before any request
    assert (await io.get(Team, org="a", team="b")).owner == "victim"


async def test_sort_key_prefixes_match_whole_segments(sec: Table, io: SyncIO) -> None:
    for user in ("u1", "u10", "u2"):
        await io.save(Order(tenant="t", user_id=user, order_id="o1", total=1))
    with pytest.raises(ValidationError):
        await io.save(Order(tenant="t", user_id="u1#ORDER#x", order_id="o9"))

    def users(orders: list[Order]) -> list[str]:
        return [o.user_id for o in orders]

    assert users(await io.all(Order.query(tenant="t").sk_begins_with(user_id="u1"))) == ["u1"]
    assert users(await io.all(Order.query(tenant="t").sk_le(user_id="u1"))) == ["u1"]
    assert users(await io.all(Order.query(tenant="t").sk_gt(user_id="u1"))) == ["u10", "u2"]
    assert users(await io.all(Order.query(tenant="t").sk_lt(user_id="u10"))) == ["u1"]
    between = Order.query(tenant="t").sk_between({"user_id": "u1"}, {"user_id": "u1"})
    assert users(await io.all(between)) == ["u1"]
    whole = Order.query(tenant="t").sk_begins_with(user_id="u1", order_id="o1")
    assert users(await io.all(whole)) == ["u1"]


async def test_one_entity_cannot_overwrite_another(sec: Table, io: SyncIO) -> None:
    await io.save(Order(tenant="t", user_id="u1", order_id="o1", total=5))
    with pytest.raises(ValidationError):
        await io.save(Profile(tenant="t", user_id="u1#ORDER#o1"))
    assert (await io.get(Order, tenant="t", user_id="u1", order_id="o1")).total == 5


async def test_the_reserved_key_space_is_out_of_reach(
    sec: Table, io: SyncIO, sent: list[str]
) -> None:
    await io.save(Reading(sensor="s", n=1))  # the shard-layout record now exists
    before = len(sent)
    for a in ("_dynamodel#shards", "_dynamodel", "_dynamodel_x"):
        with pytest.raises(ValidationError):
            await io.save(Bare(a=a, b="Reading#table"))
        with pytest.raises(ValidationError):
            await io.get_or_none(Bare, a=a, b="Reading#table")
    with pytest.raises(ValidationError, match="reserved"):
        Collection(Bare).query_key("_dynamodel#shards")
    assert sent[before:] == []
    await io.save(Reading(sensor="s", n=2))  # reads and writes still work
    assert [r.n for r in await io.all(Reading.query(sensor="s"))] == [1, 2]


# -- reads never parse another entity's item ------------------------------------------------------


async def test_reading_another_entitys_item_names_both_types(sec: Table, io: SyncIO) -> None:
    await io.save(Order(tenant="t", user_id="u1", order_id="o1"))
    for read in (io.get, io.get_or_none):
        with pytest.raises(EntityMismatch) as info:
            await read(Impostor, tenant="t", user_id="u1", order_id="o1")
        assert (info.value.expected, info.value.stored) == ("Impostor", "Order")
        assert "'Order' entity, not 'Impostor'" in str(info.value)
    key = Key(Impostor, tenant="t", user_id="u1", order_id="o1")
    with pytest.raises(EntityMismatch):
        batch_get([key]) if io.name == "sync" else await abatch_get([key])
    tx = TransactGet()
    tx.get(Impostor, tenant="t", user_id="u1", order_id="o1")
    with pytest.raises(EntityMismatch):
        tx.execute() if io.name == "sync" else await tx.aexecute()


async def test_updates_and_deletes_by_key_never_touch_another_entitys_item(
    sec: Table, io: SyncIO
) -> None:
    await io.save(Order(tenant="t", user_id="u1", order_id="o1", total=5))
    key = {"tenant": "t", "user_id": "u1", "order_id": "o1"}
    for upsert in (False, True):
        with pytest.raises(EntityMismatch) as info:
            # Impostor does not declare "total" (Order does): raw=True names it unchecked
            action = Attr("total", raw=True).set(0)
            await io.update_item(Impostor, key, [action], upsert=upsert)
        assert (info.value.expected, info.value.stored) == ("Impostor", "Order")
    with pytest.raises(EntityMismatch):
        await io.delete_item(Impostor, key)
    order = await io.get(Order, **key)  # still there, unchanged, still an Order
    assert order.total == 5
    assert await io.delete_item(Order, key) == order


# -- numbers, TTL ---------------------------------------------------------------------------------


async def test_sort_key_ints_out_of_the_sortable_range_are_refused(sec: Table, io: SyncIO) -> None:
    await io.save(Reading(sensor="s", n=10**20 - 1))
    for n in (10**20, -1):
        with pytest.raises(ValidationError):
            await io.save(Reading(sensor="s", n=n))
    assert [r.n for r in await io.all(Reading.query(sensor="s"))] == [10**20 - 1]


async def test_create_treats_an_expired_item_as_absent(sec: Table, io: SyncIO) -> None:
    past = int(dt.datetime(2020, 1, 1, tzinfo=dt.UTC).timestamp())
    await io.save(Profile(tenant="t", user_id="gone", expires_at=past))
    assert await io.get_or_none(Profile, tenant="t", user_id="gone") is None
    await io.create(Profile(tenant="t", user_id="gone"))
    assert (await io.get(Profile, tenant="t", user_id="gone")).expires_at is None
    with pytest.raises(Exception, match="conditional"):  # a live item still blocks create()
        await io.create(Profile(tenant="t", user_id="gone"))


# -- escape mode ----------------------------------------------------------------------------------


async def test_escape_mode_stores_any_string(sec: Table, io: SyncIO) -> None:
    paths = ["a#b", "a%23b", "100%", "a", "é#/ü", "#", "%"]
    for path in paths:
        await io.save(Doc(owner="o#1", path=path))
    for path in paths:
        assert (await io.get(Doc, owner="o#1", path=path)).path == path
    assert sorted(d.path for d in await io.all(Doc.query(owner="o#1"))) == sorted(paths)
    found = await io.all(Doc.query(owner="o#1").sk_eq(path="a#b"))
    assert [d.path for d in found] == ["a#b"]


async def test_escape_mode_keys_resume_from_cursors(sec: Table, io: SyncIO) -> None:
    paths = ["a#b", "a%23b", "100%", "a", "#"]
    for path in paths:
        await io.save(Doc(owner="o#1", path=path))
    query = Doc.query(owner="o#1").page_size(2)
    first = (await io.pages(query))[0]
    rest = await io.all(Doc.query(owner="o#1").start_from(first.cursor))
    assert sorted([d.path for d in first.items] + [d.path for d in rest]) == sorted(paths)


async def test_a_cursor_of_another_partition_is_refused(
    sec: Table, io: SyncIO, sent: list[str]
) -> None:
    for tenant in ("victim", "attacker"):
        for order in ("o1", "o2", "o3"):
            await io.save(Order(tenant=tenant, user_id="u1", order_id=order))
    page = (await io.pages(Order.query(tenant="attacker").page_size(1)))[0]
    assert page.cursor is not None
    # the attacker's cursor resumes the attacker's query...
    rest = await io.all(Order.query(tenant="attacker").start_from(page.cursor))
    assert [o.order_id for o in rest] == ["o2", "o3"]
    # ...and nobody else's: refused before any request (backends disagree on what it would do)
    before = len(sent)
    with pytest.raises(ValidationError, match="invalid cursor: it resumes a query of partition"):
        Order.query(tenant="victim").start_from(page.cursor)
    assert sent[before:] == []


# -- sharding adoption is never silent ------------------------------------------------------------


def _declare(physical: Table, layout: Shards | None) -> type[Model]:
    """A fresh declaration of the entity ``View`` on a physical table, with this layout."""

    class View(Model):
        class Meta:
            table = physical
            entity = "View"
            pk = "PAGE#{page}"
            sk = "VIEW#{seq}"
            if layout is not None:
                shards = layout

        page: str
        seq: int

    return View


async def test_a_sharded_cursor_of_another_partition_is_refused(sec: Table, io: SyncIO) -> None:
    # calculated shards (deterministic) with several items each: the cursor after two items
    # holds a resume key of at least one shard (a shard not read yet has none to check)
    view = _declare(Table(SEC.name), Shards(4, by="seq"))
    for page in ("mine", "theirs"):
        for seq in range(20):
            await io.save(view(page=page, seq=seq))
    first = (await io.pages(view.query(page="theirs").limit(2)))[0]
    assert first.cursor is not None
    positions, _ = decode_shard_cursor(first.cursor, 4)
    assert any(key is not None for key in positions.values())
    rest = await io.all(view.query(page="theirs").start_from(first.cursor))
    assert len(first.items) + len(rest) == 20
    with pytest.raises(ValidationError, match="invalid cursor: it resumes a query of partition"):
        view.query(page="mine").start_from(first.cursor)
    # the cursor names its partition, so one with no shard read yet is refused too
    unread = encode_shard_cursor({n: None for n in range(4)}, set(), "PAGE#theirs")
    assert unread is not None
    with pytest.raises(ValidationError, match="'PAGE#theirs', not this query's 'PAGE#mine'"):
        view.query(page="mine").start_from(unread)
    assert len(await io.all(view.query(page="theirs").start_from(unread))) == 20


LAYOUTS = {
    "unsharded": None,
    "random 4": Shards(4),
    "random 8": Shards(8),
    "calculated 4": Shards(4, by="seq"),
}


@pytest.mark.parametrize(
    ("before", "after"),
    [
        ("unsharded", "random 4"),
        ("random 4", "unsharded"),
        ("random 4", "random 8"),
        ("random 4", "calculated 4"),
        ("calculated 4", "random 4"),
    ],
)
async def test_a_changed_shard_layout_is_refused_on_first_read_and_write(
    sec: Table, io: SyncIO, before: str, after: str
) -> None:
    old = _declare(Table(SEC.name), LAYOUTS[before])
    for seq in range(5):
        await io.save(old(page="home", seq=seq))
    assert len(await io.all(old.query(page="home"))) == 5

    new = _declare(Table(SEC.name), LAYOUTS[after])
    forget_shard_checks()  # a new process, deployed with the new declaration
    with pytest.raises(ShardCountMismatch, match="records"):
        await io.all(new.query(page="home"))
    forget_shard_checks()
    with pytest.raises(ShardCountMismatch):
        await io.save(new(page="home", seq=99))
    assert len(await io.all(old.query(page="home"))) == 5  # nothing was written


async def test_the_layout_check_costs_one_request_per_process_per_key(
    sec: Table, io: SyncIO, sent: list[str]
) -> None:
    await io.save(Reading(sensor="s", n=1))
    forget_shard_checks()
    sent.clear()
    await io.get(Reading, sensor="s", n=1)
    await io.get(Reading, sensor="s", n=1)
    assert sent == ["get_item", "get_item", "get_item"]  # the record once, then the item twice
    forget_shard_checks()
    sent.clear()
    await io.save(Reading(sensor="s", n=2))
    await io.save(Reading(sensor="s", n=3))
    assert sent == ["put_item", "put_item", "put_item"]  # the conditional record write once
