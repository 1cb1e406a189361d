"""Unique constraints (``Meta.unique``) against the local DynamoDB, each through the sync and
the async API: duplicates refused by create, save, update and update_item (the error names
model, field and value); deleting or changing a value frees it; the constraint is per entity;
a race of creates has one winner; versioned models still raise VersionConflict; batches and
user-built transactions refuse such models; guard items never show up in model reads."""

from __future__ import annotations

import asyncio
import enum
import threading
import uuid
from collections.abc import Iterator
from typing import Annotated, Any

import pytest
from conftest import SentLog, SyncIO
from pydantic import AfterValidator

from dynamodel import (
    Attr,
    ConditionFailed,
    ItemNotFound,
    Model,
    Table,
    UniqueConstraintViolation,
    ValidationError,
    VersionConflict,
)
from dynamodel.local import LocalDynamoDB
from dynamodel.ops.batch import batch_write
from dynamodel.ops.collection import Collection
from dynamodel.ops.transactions import TransactWrite
from dynamodel.ops.unique import GUARD_PREFIX, GUARD_TYPE, guard_key

#: normalised in the type (not a model validator), so updates normalise too
Email = Annotated[str, AfterValidator(str.lower)]

UNIQ = Table("uniq")
FLAT = Table("uniqflat", sk=None)


class Member(Model):
    class Meta:
        table = UNIQ
        pk = "ORG#{org}"
        sk = "MEMBER#{member_id}"
        unique = ("email", "handle")

    org: str
    member_id: str
    email: Email
    handle: str | None = None
    name: str = ""


class Staff(Model):
    """Another entity with a unique email: the constraint is per entity."""

    class Meta:
        table = UNIQ
        pk = "ORG#{org}"
        sk = "STAFF#{staff_id}"
        unique = ("email",)

    org: str
    staff_id: str
    email: str


class Account(Model):
    class Meta:
        table = UNIQ
        pk = "ACCOUNT#{account_id}"
        sk = "ACCOUNT"
        unique = ("email",)
        version = "version"

    account_id: str
    email: str
    version: int = 0


class Device(Model):
    class Meta:
        table = FLAT
        pk = "DEVICE#{device_id}"
        unique = ("serial",)

    device_id: str
    serial: int


@pytest.fixture
def uniq(fresh_db: LocalDynamoDB) -> Iterator[Table]:
    UNIQ.create(poll=0.01)
    FLAT.create(poll=0.01)
    yield UNIQ


pytestmark = pytest.mark.usefixtures("uniq")


def guards(ddb: Any, table: str = "uniq") -> list[dict[str, Any]]:
    items = ddb.scan(TableName=table, ConsistentRead=True)["Items"]
    return [i for i in items if i.get("_type", {}).get("S") == GUARD_TYPE]


def guard_values(ddb: Any, table: str = "uniq") -> set[tuple[str, str, str]]:
    return {
        (g["unique_entity"]["S"], g["unique_field"]["S"], g["unique_value"]["S"])
        for g in guards(ddb, table)
    }


def member(member_id: str = "m1", email: str = "ann@example.com", **kw: Any) -> Member:
    return Member(org="o", member_id=member_id, email=email, **kw)


# -- create ---------------------------------------------------------------------------------------


async def test_create_claims_and_refuses_a_duplicate(io: SyncIO, ddb: Any) -> None:
    await io.create(member(handle="ann"))
    assert guard_values(ddb) == {
        ("Member", "email", "ann@example.com"),
        ("Member", "handle", "ann"),
    }
    with pytest.raises(UniqueConstraintViolation) as caught:
        await io.create(member("m2", "ANN@example.com"))  # normalised by the validator
    error = caught.value
    assert isinstance(error, ConditionFailed)
    assert (error.model, error.field, error.value) == ("Member", "email", "ann@example.com")
    assert error.owner == {"pk": "ORG#o", "sk": "MEMBER#m1"}
    assert "Member.email" in str(error) and "ann@example.com" in str(error)
    assert await io.get_or_none(Member, org="o", member_id="m2") is None  # nothing written
    with pytest.raises(UniqueConstraintViolation) as caught:
        await io.create(member("m3", "bob@example.com", handle="ann"))
    assert caught.value.field == "handle"
    assert await io.get_or_none(Member, org="o", member_id="m3") is None
    assert len(guards(ddb)) == 2  # the refused creates claimed nothing


async def test_none_has_no_guard(io: SyncIO, ddb: Any) -> None:
    await io.create(member("m1", "a@x.io"))
    await io.create(member("m2", "b@x.io"))  # both without a handle: allowed, like SQL NULL
    assert guard_values(ddb) == {("Member", "email", "a@x.io"), ("Member", "email", "b@x.io")}


async def test_create_of_an_existing_key_is_a_plain_condition_failure(io: SyncIO) -> None:
    await io.create(member())
    with pytest.raises(ConditionFailed) as caught:
        await io.create(member())
    assert not isinstance(caught.value, UniqueConstraintViolation)


async def test_the_constraint_is_per_entity(io: SyncIO, ddb: Any) -> None:
    await io.create(member("m1", "same@x.io"))
    await io.create(Staff(org="o", staff_id="s1", email="same@x.io"))
    with pytest.raises(UniqueConstraintViolation):
        await io.create(Staff(org="o", staff_id="s2", email="same@x.io"))
    assert guard_values(ddb) == {("Member", "email", "same@x.io"), ("Staff", "email", "same@x.io")}


# -- delete frees, change moves -------------------------------------------------------------------


async def test_delete_frees_the_value(io: SyncIO, ddb: Any) -> None:
    ann = member(handle="ann")
    await io.create(ann)
    await io.delete(ann)
    assert guards(ddb) == []
    await io.create(member("m2", handle="ann"))  # free again
    deleted = await io.delete_item(Member, {"org": "o", "member_id": "m2"})
    assert deleted is not None and deleted.handle == "ann"
    assert guards(ddb) == []
    assert await io.delete_item(Member, {"org": "o", "member_id": "m2"}) is None
    await io.create(member("m3"))


async def test_delete_of_a_stale_instance_releases_the_stored_value(io: SyncIO, ddb: Any) -> None:
    ann = member()
    await io.create(ann)
    await io.update(ann, Attr("email").set("new@x.io"))  # ann still holds the old email
    await io.delete(ann)
    assert guards(ddb) == []
    assert await io.get_or_none(Member, org="o", member_id="m1") is None


async def test_save_changing_the_value_frees_the_old_one(io: SyncIO, ddb: Any) -> None:
    ann = member(handle="ann")
    await io.save(ann)  # save of a new item claims too
    assert guard_values(ddb) == {
        ("Member", "email", "ann@example.com"),
        ("Member", "handle", "ann"),
    }
    ann.email = "ann@new.io"
    ann.handle = None
    await io.save(ann)
    assert guard_values(ddb) == {("Member", "email", "ann@new.io")}
    await io.create(member("m2", "ann@example.com", handle="ann"))  # the old ones are free
    ann.email = "ann@example.com"
    with pytest.raises(UniqueConstraintViolation) as caught:
        await io.save(ann)
    assert caught.value.field == "email"
    assert (await io.get(Member, org="o", member_id="m1")).email == "ann@new.io"


async def test_save_without_a_change_is_a_plain_put(io: SyncIO, ddb: Any) -> None:
    ann = member()
    await io.save(ann)
    ann.name = "Ann"
    await io.save(ann)
    assert (await io.get(Member, org="o", member_id="m1")).name == "Ann"
    assert guard_values(ddb) == {("Member", "email", "ann@example.com")}


async def test_save_of_a_read_instance_trusts_what_it_read(
    io: SyncIO, ddb: Any, sent: SentLog
) -> None:
    await io.create(member())
    ann = await io.get(Member, org="o", member_id="m1")
    ann.email = "ann@two.io"
    sent.clear()
    await io.save(ann)  # what it read is what is stored: no read before the transaction
    assert sent == ["transact_write_items"]
    assert guard_values(ddb) == {("Member", "email", "ann@two.io")}

    stale = await io.get(Member, org="o", member_id="m1")
    await io.update(stale, Attr("email").set("ann@three.io"))  # stale now holds ann@two.io
    stale.email = "ann@four.io"
    sent.clear()
    await io.save(stale)  # the item condition fails, the stored values are read, then retried
    assert sent == ["transact_write_items", "get_item", "transact_write_items"]
    assert guard_values(ddb) == {("Member", "email", "ann@four.io")}  # three.io released
    assert (await io.get(Member, org="o", member_id="m1")).email == "ann@four.io"


async def test_update_changes_and_refuses(io: SyncIO, ddb: Any) -> None:
    ann, bob = member("m1", "ann@x.io"), member("m2", "bob@x.io")
    await io.create(ann)
    await io.create(bob)
    with pytest.raises(UniqueConstraintViolation) as caught:
        await io.update(bob, Attr("email").set("ANN@x.io"))
    assert (caught.value.field, caught.value.value) == ("email", "ann@x.io")
    updated = await io.update(bob, Attr("email").set("robert@x.io"), Attr("name").set("Bob"))
    assert (updated.email, updated.name) == ("robert@x.io", "Bob")
    assert guard_values(ddb) == {
        ("Member", "email", "ann@x.io"),
        ("Member", "email", "robert@x.io"),
    }
    done = await io.update_item(
        Member, {"org": "o", "member_id": "m1"}, [Attr("handle").set("ann")]
    )
    assert done.handle == "ann"
    done = await io.update_item(Member, {"org": "o", "member_id": "m1"}, [Attr("handle").remove()])
    assert done.handle is None
    assert ("Member", "handle", "ann") not in guard_values(ddb)
    with pytest.raises(UniqueConstraintViolation):
        await io.update_item(
            Member, {"org": "o", "member_id": "m1"}, [Attr("email").set("robert@x.io")]
        )
    with pytest.raises(ItemNotFound):
        await io.update_item(Member, {"org": "o", "member_id": "zz"}, [Attr("email").set("z@x.io")])
    # an update that does not touch a unique field stays one UpdateItem
    plain = await io.update_item(Member, {"org": "o", "member_id": "m1"}, [Attr("name").set("A")])
    assert plain.name == "A"


async def test_update_item_upsert_claims(io: SyncIO, ddb: Any) -> None:
    made = await io.update_item(
        Member, {"org": "o", "member_id": "m9"}, [Attr("email").set("u@x.io")], upsert=True
    )
    assert made.email == "u@x.io"
    assert guard_values(ddb) == {("Member", "email", "u@x.io")}


def test_update_with_an_expression_on_a_unique_field_is_refused() -> None:
    with pytest.raises(ValidationError, match="unique field 'email'"):
        Member.update_item({"org": "o", "member_id": "m1"}, [Attr("email").set(Attr("name"))])


# -- versioned models -----------------------------------------------------------------------------


async def test_versioned_model_still_raises_version_conflict(io: SyncIO, ddb: Any) -> None:
    account = Account(account_id="a1", email="a@x.io")
    await io.create(account)
    assert account.version == 1
    stale = account.model_copy()
    account.email = "b@x.io"
    await io.save(account)
    assert account.version == 2
    stale.email = "c@x.io"
    with pytest.raises(VersionConflict):
        await io.save(stale)
    with pytest.raises(VersionConflict):
        await io.update(stale, Attr("email").set("d@x.io"))
    with pytest.raises(VersionConflict):
        await io.delete(stale)
    assert guard_values(ddb) == {("Account", "email", "b@x.io")}
    stale.email = "e@x.io"
    await io.save(stale, force=True)
    assert guard_values(ddb) == {("Account", "email", "e@x.io")}
    fresh = await io.get(Account, account_id="a1")
    assert fresh.version == 3
    await io.delete(fresh)
    assert guards(ddb) == []


# -- a race ---------------------------------------------------------------------------------------


def test_racing_creates_have_one_winner(ddb: Any) -> None:
    outcomes: list[str] = []
    barrier = threading.Barrier(6)

    def create(i: int) -> None:
        barrier.wait()
        try:
            member(f"r{i}", "race@x.io").create()
            outcomes.append("won")
        except UniqueConstraintViolation:
            outcomes.append("refused")
        except ConditionFailed as error:  # a cancellation by a conflicting transaction
            outcomes.append(f"other: {error}")

    threads = [threading.Thread(target=create, args=(i,)) for i in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert outcomes.count("won") == 1, outcomes
    assert len(Member.query(org="o").all()) == 1
    assert guard_values(ddb) == {("Member", "email", "race@x.io")}


async def test_racing_async_creates_have_one_winner(ddb: Any) -> None:
    async def create(i: int) -> bool:
        try:
            await member(f"r{i}", "arace@x.io").acreate()
            return True
        except ConditionFailed:
            return False

    won = await asyncio.gather(*(create(i) for i in range(6)))
    assert won.count(True) == 1
    assert len(await Member.query(org="o").aall()) == 1


# -- guards stay out of sight ---------------------------------------------------------------------


async def test_guards_never_appear_in_model_reads(io: SyncIO, ddb: Any) -> None:
    await io.create(member("m1", "a@x.io", handle="a"))
    await io.create(Staff(org="o", staff_id="s1", email="a@x.io"))
    assert len(guards(ddb)) == 3
    assert [m.member_id for m in await io.all(Member.scan())] == ["m1"]
    assert [m.member_id for m in await io.all(Member.query(org="o"))] == ["m1"]
    assert [s.staff_id for s in await io.all(Staff.scan())] == ["s1"]
    result = await io.fetch(Collection(Member, Staff), org="o")
    assert [m.member_id for m in result.of(Member)] == ["m1"]
    assert [s.staff_id for s in result.of(Staff)] == ["s1"]
    # a guard key cannot be rendered by a model: its partition key starts with _dynamodel
    key = guard_key(Member, "email", "a@x.io")
    assert key["pk"]["S"].startswith(GUARD_PREFIX)
    with pytest.raises(ValidationError):
        Member.build_key(org=key["pk"]["S"], member_id="x")


# -- refusals -------------------------------------------------------------------------------------


async def test_batch_writes_refuse_unique_models() -> None:
    with pytest.raises(ValidationError, match=r"Member has unique fields \['email', 'handle'\]"):
        batch_write().put(member())
    with pytest.raises(ValidationError, match="Member has unique fields"):
        batch_write().delete(member())


def test_transactions_refuse_unique_writes() -> None:
    tx = TransactWrite()
    for call in (
        lambda: tx.put(member()),
        lambda: tx.create(member()),
        lambda: tx.delete(member()),
        lambda: tx.delete_item(Member, {"org": "o", "member_id": "m1"}),
        lambda: tx.update(member(), Attr("email").set("x@x.io")),
        lambda: tx.update_item(Member, {"org": "o", "member_id": "m1"}, [Attr("handle").remove()]),
    ):
        with pytest.raises(ValidationError, match=r"Meta\.unique"):
            call()
    tx.update(member(), Attr("name").set("fine"))  # no unique field: allowed
    assert len(tx) == 1


# -- declaration ----------------------------------------------------------------------------------


class Colour(enum.Enum):
    RED = "red"


@pytest.mark.parametrize(
    ("unique", "match"),
    [
        (("nope",), "not a field"),
        (("member_id",), "primary key field"),
        (("score",), "type float"),
        (("flag",), "type bool"),
        (("either",), "union"),
        (("email", "email"), "twice"),
        (42, "tuple of field names"),
    ],
)
def test_declaration_errors(unique: Any, match: str) -> None:
    wanted = unique
    with pytest.raises(ValidationError, match=match):

        class Bad(Model):
            class Meta:
                table = UNIQ
                pk = "BAD#{member_id}"
                sk = "BAD"
                unique = wanted

            member_id: str
            email: str
            score: float = 0.0
            flag: bool = False
            either: int | str = 0


def test_declaration_accepts_key_like_types() -> None:
    class Fine(Model):
        class Meta:
            table = UNIQ
            pk = "FINE#{fine_id}"
            sk = "FINE"
            unique = ("code", "ref", "colour", "email")

        fine_id: str
        code: int | None = None
        ref: uuid.UUID
        colour: Colour
        email: str = "x"

    assert Fine._spec().unique == ("code", "ref", "colour", "email")


def test_a_too_long_value_names_the_field() -> None:
    with pytest.raises(ValidationError, match=r"Member.email: the unique value is 3000 bytes"):
        member(email="a" * 3000).create()


# -- a table without a sort key, an int value -----------------------------------------------------


async def test_flat_table_and_int_values(io: SyncIO, ddb: Any) -> None:
    await io.create(Device(device_id="d1", serial=7))
    with pytest.raises(UniqueConstraintViolation) as caught:
        await io.create(Device(device_id="d2", serial=7))
    assert caught.value.value == "7"
    await io.save(Device(device_id="d1", serial=8))
    await io.create(Device(device_id="d2", serial=7))
    assert guard_values(ddb, "uniqflat") == {("Device", "serial", "7"), ("Device", "serial", "8")}


def test_stream_events_leave_guard_records_out() -> None:
    from dynamodel.ops.streams import parse_stream_event

    def record(seq: str, image: dict[str, Any]) -> dict[str, Any]:
        keys = {k: image[k] for k in ("pk", "sk")}
        body = {"SequenceNumber": seq, "Keys": keys, "NewImage": image}
        return {"eventSource": "aws:dynamodb", "eventName": "INSERT", "dynamodb": body}

    ann = member()
    guard = {
        **guard_key(Member, "email", ann.email),
        "_type": {"S": GUARD_TYPE},
        "unique_owner": {"S": "{}"},
    }
    batch = parse_stream_event(
        {"Records": [record("1", ann.to_item()), record("2", guard)]}, table=UNIQ
    )
    assert [r.new for r in batch.records] == [ann]
    assert batch.unrouted == []


async def test_items_without_guards_can_change_and_never_free_anothers(
    io: SyncIO, ddb: Any
) -> None:
    """An item written before the constraint (no guard) changes its value without freeing a
    guard another item has claimed for its old value since."""
    old = member("m1", "shared@x.io")
    ddb.put_item(TableName="uniq", Item=old.to_item())  # written around dynamodel: no guard
    await io.create(member("m2", "shared@x.io"))  # claims the value the old item also has
    old.email = "mine@x.io"
    await io.save(old)  # the release of shared@x.io is skipped: m2 owns that guard
    assert guard_values(ddb) == {
        ("Member", "email", "shared@x.io"),
        ("Member", "email", "mine@x.io"),
    }
    owners = {g["unique_value"]["S"]: g["unique_owner"]["S"] for g in guards(ddb)}
    assert owners["shared@x.io"] == '{"pk":"ORG#o","sk":"MEMBER#m2"}'
    await io.delete(old)
    await io.delete(member("m2", "shared@x.io"))
    assert guards(ddb) == []


async def test_save_changes_moves_the_guard_and_hooks_run(ddb: Any) -> None:
    calls: list[str] = []

    class Hooked(Model):
        class Meta:
            table = UNIQ
            pk = "HOOKED#{hooked_id}"
            sk = "HOOKED"
            unique = ("email",)

        hooked_id: str
        email: str

        def after_write(self, operation: Any) -> None:
            calls.append(operation)

    first = Hooked(hooked_id="h1", email="a@x.io")
    first.create()
    first.email = "b@x.io"
    first.save()
    read = Hooked.get(hooked_id="h1")
    read.email = "c@x.io"
    assert read.save_changes() == ["email"]
    assert guard_values(ddb) == {("Hooked", "email", "c@x.io")}
    with pytest.raises(UniqueConstraintViolation):
        Hooked(hooked_id="h2", email="c@x.io").create()
    await Hooked.get(hooked_id="h1").adelete()
    assert guards(ddb) == []
    assert calls == ["create", "save", "save_changes", "delete"]
