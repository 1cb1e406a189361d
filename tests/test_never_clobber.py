"""Writes that never clobber (#19): unknown attributes survive a read-modify-write, dirty
tracking writes only what changed, automatic timestamps, write hooks.

Every item "written by a newer deployment" here is put with raw boto3, as another service
would, and read back raw, so the tests see exactly what is stored.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from conftest import SentLog, SyncIO
from pydantic import BaseModel, Field

from dynamodel import GSI, Attr, Connection, Model, Table, ValidationError, VersionConflict
from dynamodel.core.errors import ItemNotFound
from dynamodel.ops.batch import BatchWriter
from dynamodel.ops.shard_guard import forget_shard_checks
from dynamodel.ops.transactions import TransactWrite

NC = Table("never_clobber", indexes=[GSI("gsi1", pk="gsi1pk", sk="gsi1sk")])


class Line(BaseModel):
    sku: str
    qty: int = 1


class Profile(Model):
    class Meta:
        table = NC
        pk = "P#{pid}"
        sk = "PROFILE"
        indexes = {"gsi1": ("CITY#{city}", "P#{pid}")}

    pid: str
    name: str
    city: str = "oslo"
    tags: set[str] = Field(default_factory=set)
    lines: list[Line] = Field(default_factory=list)
    nick: str | None = Field(default=None, alias="nk")


class Account(Model):
    class Meta:
        table = NC
        pk = "A#{aid}"
        sk = "ACCOUNT"
        version = "version"

    aid: str
    owner: str = ""
    plan: str = "free"
    version: int | None = None


class Strict(Model):
    class Meta:
        table = NC
        pk = "S#{sid}"
        sk = "STRICT"
        unknown_attributes = "refuse"

    sid: str


class Forgetful(Model):
    class Meta:
        table = NC
        pk = "F#{fid}"
        sk = "FORGETFUL"
        unknown_attributes = "drop"

    fid: str
    name: str = ""


class Post(Model):
    class Meta:
        table = NC
        pk = "POST#{post_id}"
        sk = "POST"
        indexes = {"gsi1": ("RECENT", "{updated_at}#{post_id}")}
        timestamps = ("created_at", "updated_at")

    post_id: str
    title: str = ""
    created_at: dt.datetime | None = None
    updated_at: dt.datetime | None = None


@pytest.fixture
def nc(fresh_db: Any) -> Iterator[Table]:
    forget_shard_checks()
    NC.create(poll=0.01)
    yield NC
    forget_shard_checks()


def raw(ddb: Any, model: type[Model], **key: Any) -> dict[str, Any]:
    item: dict[str, Any] = ddb.get_item(
        TableName=NC.physical_name, Key=model.build_key(**key), ConsistentRead=True
    )["Item"]
    return item


def newer_deployment_writes(ddb: Any, instance: Model, **extra: Any) -> None:
    ddb.put_item(TableName=NC.physical_name, Item={**instance.to_item(), **extra})


# -- unknown attributes survive ------------------------------------------------------------------

NEW_ATTRS = {"loyalty": {"M": {"tier": {"S": "gold"}}}, "beta": {"BOOL": True}}


async def test_unknown_attributes_survive_load_and_save(nc: Table, ddb: Any, io: SyncIO) -> None:
    newer_deployment_writes(ddb, Profile(pid="1", name="Ann"), **NEW_ATTRS)
    profile = await io.get(Profile, pid="1")
    assert profile.unknown_attributes() == NEW_ATTRS
    profile.name = "Anna"
    await io.save(profile)
    stored = raw(ddb, Profile, pid="1")
    assert stored["name"] == {"S": "Anna"}
    assert {k: stored[k] for k in NEW_ATTRS} == NEW_ATTRS
    # and again: the instance now remembers the item it wrote
    profile.city = "bergen"
    await io.save(profile)
    stored = raw(ddb, Profile, pid="1")
    assert {k: stored[k] for k in NEW_ATTRS} == NEW_ATTRS
    assert stored["gsi1pk"] == {"S": "CITY#bergen"}  # index keys are still dynamodel's


async def test_unknown_attributes_survive_update_and_versioned_save(
    nc: Table, ddb: Any, io: SyncIO
) -> None:
    await io.create(Account(aid="1", owner="ann"))
    ddb.update_item(
        TableName=NC.physical_name,
        Key=Account.build_key(aid="1"),
        UpdateExpression="SET beta = :b",
        ExpressionAttributeValues={":b": {"BOOL": True}},
    )
    account = await io.get(Account, aid="1")
    updated = await io.update(account, Attr("plan").set("pro"))
    assert raw(ddb, Account, aid="1")["beta"] == {"BOOL": True}
    assert updated.unknown_attributes() == {"beta": {"BOOL": True}}
    updated.owner = "bob"
    await io.save(updated)  # a versioned whole-item put
    stored = raw(ddb, Account, aid="1")
    assert stored["beta"] == {"BOOL": True} and stored["owner"] == {"S": "bob"}
    assert stored["version"] == {"N": "3"} and updated.version == 3


def test_unknown_attributes_survive_batch_and_transaction_puts(nc: Table, ddb: Any) -> None:
    newer_deployment_writes(ddb, Profile(pid="1", name="a"), beta={"BOOL": True})
    newer_deployment_writes(ddb, Profile(pid="2", name="b"), beta={"BOOL": False})
    first, second = Profile.get(pid="1"), Profile.get(pid="2")
    first.name, second.name = "A", "B"
    with BatchWriter() as batch:
        batch.put(first)
    with TransactWrite() as tx:
        tx.put(second)
    assert raw(ddb, Profile, pid="1")["beta"] == {"BOOL": True}
    assert raw(ddb, Profile, pid="2")["beta"] == {"BOOL": False}


def test_a_model_may_drop_or_refuse_unknown_attributes(nc: Table, ddb: Any) -> None:
    newer_deployment_writes(ddb, Forgetful(fid="1"), beta={"BOOL": True})
    forgetful = Forgetful.get(fid="1")
    assert forgetful.unknown_attributes() == {"beta": {"BOOL": True}}  # still reported
    forgetful.save()
    assert "beta" not in raw(ddb, Forgetful, fid="1")  # but not written back

    newer_deployment_writes(ddb, Strict(sid="1"), beta={"BOOL": True}, zeta={"N": "1"})
    with pytest.raises(ValidationError, match=r"Strict: the item at .* \(beta, zeta\)"):
        Strict.get(sid="1")
    Strict(sid="2").save()
    assert Strict.get(sid="2") == Strict(sid="2")  # no unknown attribute: parsed as usual


def test_the_policy_is_checked_when_the_model_is_defined() -> None:
    with pytest.raises(ValidationError, match="unknown_attributes must be one of"):

        class Bad(Model):
            class Meta:
                table = NC
                pk = "B#{bid}"
                sk = "B"
                unknown_attributes = "ignore"

            bid: str


def test_a_read_instance_equals_a_built_one(nc: Table) -> None:
    Profile(pid="1", name="a", tags={"x"}).save()
    read = Profile.get(pid="1")
    assert read == Profile(pid="1", name="a", tags={"x"})
    assert read != Profile(pid="1", name="b", tags={"x"})


# -- dirty tracking -----------------------------------------------------------------------------


async def test_save_changes_writes_only_what_changed(
    nc: Table, ddb: Any, io: SyncIO, sent: SentLog
) -> None:
    await io.save(Profile(pid="1", name="a", lines=[Line(sku="x")]))
    profile = await io.get(Profile, pid="1")
    assert profile.changed_fields() == []
    before = len(sent)
    assert await io.save_changes(profile) == []  # nothing changed: nothing sent
    assert sent[before:] == []

    profile.nick = "al"  # an aliased field
    profile.tags.add("vip")  # changed in place
    profile.lines[0].qty = 3  # changed in place, nested
    assert profile.changed_fields() == ["tags", "lines", "nick"]
    assert await io.save_changes(profile) == ["tags", "lines", "nick"]
    assert sent[before:] == ["update_item"]
    params = sent.params[before]
    written = set(params["ExpressionAttributeNames"].values())
    assert written == {"pk", "_type", "tags", "lines", "nk"}  # pk: the exists check
    assert "name" not in written and "city" not in written
    assert profile.changed_fields() == []
    stored = raw(ddb, Profile, pid="1")
    assert stored["nk"] == {"S": "al"} and stored["tags"] == {"SS": ["vip"]}
    assert stored["lines"]["L"][0]["M"]["qty"] == {"N": "3"}


async def test_two_writers_changing_different_fields_both_persist(
    nc: Table, ddb: Any, io: SyncIO
) -> None:
    await io.save(Profile(pid="1", name="a", city="oslo"))
    mine, theirs = await io.get(Profile, pid="1"), await io.get(Profile, pid="1")
    mine.name = "mine"
    theirs.city = "bergen"
    await io.save_changes(mine)
    await io.save_changes(theirs)
    final = await io.get(Profile, pid="1")
    assert (final.name, final.city) == ("mine", "bergen")
    assert theirs.name == "mine"  # save_changes leaves the instance as stored now
    # the index key follows the changed field
    assert [p.pid for p in Profile.query(index="gsi1", city="bergen")] == ["1"]
    assert Profile.query(index="gsi1", city="oslo").all() == []


async def test_save_changes_removes_fields_that_are_no_longer_stored(
    nc: Table, ddb: Any, io: SyncIO
) -> None:
    await io.save(Profile(pid="1", name="a", nick="n", tags={"t"}))
    profile = await io.get(Profile, pid="1")
    profile.tags.clear()
    profile.nick = None
    await io.save_changes(profile)
    stored = raw(ddb, Profile, pid="1")
    assert "tags" not in stored and stored["nk"] == {"NULL": True}


async def test_versioned_save_changes_conflicts_instead_of_overwriting(
    nc: Table, io: SyncIO
) -> None:
    await io.create(Account(aid="1"))
    mine, theirs = await io.get(Account, aid="1"), await io.get(Account, aid="1")
    mine.owner, theirs.plan = "ann", "pro"
    await io.save_changes(mine)
    assert mine.version == 2
    with pytest.raises(VersionConflict):
        await io.save_changes(theirs)
    await io.save_changes(theirs, force=True)  # both changes kept, version still counted
    final = await io.get(Account, aid="1")
    assert (final.owner, final.plan, final.version) == ("ann", "pro", 3)


async def test_save_changes_needs_to_know_what_is_stored(
    nc: Table, io: SyncIO, sent: SentLog
) -> None:
    profile = Profile(pid="1", name="a")
    with pytest.raises(ValidationError, match="was not read from the table"):
        await io.save_changes(profile)
    assert sent == []
    await io.create(profile)  # now it knows: what it wrote
    profile.name = "b"
    assert await io.save_changes(profile) == ["name"]
    await io.delete(profile)
    profile.name = "c"
    with pytest.raises(ItemNotFound):  # the item must still exist
        await io.save_changes(profile)


async def test_save_changes_refuses_a_changed_key(nc: Table, io: SyncIO, sent: SentLog) -> None:
    await io.save(Profile(pid="1", name="a"))
    profile = await io.get(Profile, pid="1")
    profile.pid = "2"
    before = len(sent)
    with pytest.raises(ValidationError, match="'pid' is part of the primary key"):
        await io.save_changes(profile)
    assert sent[before:] == []


async def test_a_projected_instance_saves_its_changes(nc: Table, ddb: Any, io: SyncIO) -> None:
    await io.save(Profile(pid="1", name="a", city="oslo", nick="n"))
    partial = await io.get(Profile, pid="1", projection=["pid", "name"])
    partial.name = "b"
    assert partial.changed_fields() == ["name"]
    await io.save_changes(partial)
    stored = raw(ddb, Profile, pid="1")
    assert stored["name"] == {"S": "b"} and stored["nk"] == {"S": "n"}
    assert stored["city"] == {"S": "oslo"}


# -- timestamps -------------------------------------------------------------------------------


@pytest.fixture
async def clock(nc: Table) -> AsyncIterator[list[dt.datetime]]:
    """A settable clock for timestamps: the last entry is now. It is the clock of the
    connection the table is bound to for the test: timestamps come from the connection."""
    times = [dt.datetime(2026, 1, 1, 12, 0, tzinfo=dt.UTC)]
    connection = Connection(clock=lambda: times[-1].timestamp())
    nc.bind(connection=connection)
    try:
        yield times
    finally:
        nc.unbind()
        await connection.aclose()
        connection.close()


def tick(clock: list[dt.datetime]) -> dt.datetime:
    clock.append(clock[-1] + dt.timedelta(minutes=1))
    return clock[-1]


async def test_timestamps_in_every_write_path(
    nc: Table, ddb: Any, io: SyncIO, clock: list[dt.datetime]
) -> None:
    t0 = clock[-1]
    post = Post(post_id="1")
    await io.create(post)
    assert post.created_at == post.updated_at == t0
    stored = raw(ddb, Post, post_id="1")
    assert stored["created_at"] == {"S": "2026-01-01T12:00:00.000000Z"}  # sortable text
    assert stored["gsi1sk"] == {"S": "2026-01-01T12:00:00.000000Z#1"}  # index keys follow

    t1 = tick(clock)
    post.title = "t"
    await io.save(post)
    assert (post.created_at, post.updated_at) == (t0, t1)

    t2 = tick(clock)
    updated = await io.update(post, Attr("title").set("u"))
    assert (updated.created_at, updated.updated_at) == (t0, t2)
    assert raw(ddb, Post, post_id="1")["gsi1sk"]["S"].startswith("2026-01-01T12:02")

    t3 = tick(clock)
    updated.title = "v"
    await io.save_changes(updated)
    assert (updated.created_at, updated.updated_at) == (t0, t3)

    t4 = tick(clock)
    made = await io.update_item(Post, {"post_id": "2"}, [Attr("title").set("x")], upsert=True)
    assert (made.created_at, made.updated_at) == (t4, t4)
    t5 = tick(clock)
    again = await io.update_item(Post, {"post_id": "2"}, [Attr("title").set("y")], upsert=True)
    assert (again.created_at, again.updated_at) == (t4, t5)  # created is not overwritten


def test_timestamps_in_batches_and_transactions(
    nc: Table, ddb: Any, clock: list[dt.datetime]
) -> None:
    t0 = clock[-1]
    with BatchWriter() as batch:
        batch.put(Post(post_id="b"))
    assert Post.get(post_id="b").created_at == t0
    t1 = tick(clock)
    with TransactWrite() as tx:
        tx.create(Post(post_id="t"))
        tx.update(Post.get(post_id="b"), Attr("title").set("x"))
    assert Post.get(post_id="t").created_at == t1
    b = Post.get(post_id="b")
    assert (b.created_at, b.updated_at) == (t0, t1)
    # most recently updated first, through the index on updated_at (ties: by post_id)
    assert [p.post_id for p in Post.query(index="gsi1").reverse()] == ["t", "b"]
    tick(clock)
    b.update(Attr("title").set("z"))
    assert [p.post_id for p in Post.query(index="gsi1").reverse()] == ["b", "t"]


def test_timestamp_declarations_are_checked() -> None:
    with pytest.raises(ValidationError, match="must be a datetime"):

        class BadType(Model):
            class Meta:
                table = NC
                pk = "X#{x}"
                sk = "X"
                timestamps = ("made", None)

            x: str
            made: str = ""

    with pytest.raises(ValidationError, match="which is not a field"):

        class Missing(Model):
            class Meta:
                table = NC
                pk = "X#{x}"
                sk = "X"
                timestamps = (None, "changed")

            x: str

    with pytest.raises(ValidationError, match="cannot be used in the sk template"):

        class InKey(Model):
            class Meta:
                table = NC
                pk = "X#{x}"
                sk = "X#{changed}"
                timestamps = (None, "changed")

            x: str
            changed: dt.datetime | None = None


# -- hooks ---------------------------------------------------------------------------------------

calls: list[tuple[str, str, str]] = []


class Audited(Model):
    class Meta:
        table = NC
        pk = "AU#{aid}"
        sk = "AUDITED"

    aid: str
    text: str = ""

    def before_write(self, operation: Any) -> None:
        if self.text == "forbidden":
            raise ValueError("refused by the hook")
        self.text = self.text.strip()  # hooks may normalise fields before the write
        calls.append(("before", operation, self.aid))

    def after_write(self, operation: Any) -> None:
        calls.append(("after", operation, self.aid))


async def test_hooks_run_around_every_write(nc: Table, io: SyncIO, sent: SentLog) -> None:
    calls.clear()
    item = Audited(aid="1", text="  hi  ")
    await io.create(item)
    await io.save(item)
    read = await io.get(Audited, aid="1")
    assert read.text == "hi"
    await io.update(read, Attr("text").set("x"))
    read.text = "y"
    await io.save_changes(read)
    await io.delete(read)
    operations = ["create", "save", "update", "save_changes", "delete"]
    assert calls == [(when, op, "1") for op in operations for when in ("before", "after")]

    calls.clear()
    before = len(sent)
    with pytest.raises(ValueError, match="refused by the hook"):
        await io.save(Audited(aid="2", text="forbidden"))
    assert sent[before:] == [] and calls == []


def test_hooks_in_batches_and_transactions(nc: Table) -> None:
    calls.clear()
    with BatchWriter() as batch:
        batch.put(Audited(aid="1"), Audited(aid="2"))
    with TransactWrite() as tx:
        tx.put(Audited(aid="3"))
        tx.delete(Audited.get(aid="1"))
    assert calls == [
        ("before", "batch_put", "1"),
        ("before", "batch_put", "2"),
        ("after", "batch_put", "1"),
        ("after", "batch_put", "2"),
        ("before", "transaction_put", "3"),
        ("before", "transaction_delete", "1"),
        ("after", "transaction_put", "3"),
        ("after", "transaction_delete", "1"),
    ]
