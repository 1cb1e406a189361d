"""Tenant scopes: inside ``tenant_scope(field, value)`` every operation on another tenant's keys
is refused with `TenantViolation` and no request is sent; the tenant's own keys work as before."""

from __future__ import annotations

import asyncio
import contextvars
import datetime as dt
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from dynamodel import (
    GSI,
    Attr,
    Collection,
    Model,
    Shards,
    Table,
    TenantViolation,
    TransactGet,
    TransactWrite,
    ValidationError,
    current_tenant,
    tenant_scope,
)
from dynamodel.ops.batch import Key, abatch_get, batch_get, batch_write
from dynamodel.ops.shard_guard import forget_shard_checks
from tests.conftest import SentLog, SyncIO

TT = Table("tenant-scope", indexes=[GSI("gsi1", pk="gsi1pk", sk="gsi1sk")])


class Account(Model):
    class Meta:
        table = TT
        pk = "TENANT#{tenant}"
        sk = "ACCOUNT"
        indexes = {"gsi1": ("EMAIL#{email}", "ACCOUNT")}  # not tenant-scoped: refused

    tenant: str
    email: str = "a@example.com"
    name: str = ""


class Note(Model):
    class Meta:
        table = TT
        pk = "TENANT#{tenant}"
        sk = "NOTE#{note_id}"
        indexes = {"gsi1": ("TENANT#{tenant}#NOTES", "{note_id}")}

    tenant: str
    note_id: str
    text: str = ""


class Reading(Model):  # a hot key, write-sharded
    class Meta:
        table = TT
        pk = "TENANT#{tenant}#READINGS"
        sk = "{at}"
        shards = Shards(4)

    tenant: str
    at: dt.datetime
    value: int = 0


class Plan(Model):  # every tenant reads the price list: no tenant field
    class Meta:
        table = TT
        pk = "PLAN#{plan_id}"
        sk = "PLAN"

    plan_id: str
    price: int = 0


T1, T2 = "t1", "t2"
AT = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


@pytest.fixture
def data(fresh_db: Any) -> Iterator[None]:
    TT.create(poll=0.01)
    for tenant in (T1, T2):
        Account(tenant=tenant, name=tenant).save()
        for n in range(3):
            Note(tenant=tenant, note_id=f"n{n}", text=f"{tenant} note {n}").save()
        Reading(tenant=tenant, at=AT, value=1).save()
    Plan(plan_id="basic", price=5).save()
    yield
    TT.unbind()


def refused(sent: SentLog, action: Callable[[], Any], name: str = "") -> TenantViolation:
    """Run ``action`` in t1's scope: it must raise TenantViolation with nothing sent (not
    even the first read of a key's shard-layout record)."""
    forget_shard_checks()
    sent.clear()
    with tenant_scope("tenant", T1), pytest.raises(TenantViolation) as caught:
        action()
    assert sent == [], f"{name}: requests were sent before the refusal: {sent}"
    return caught.value


async def arefused(sent: SentLog, action: Callable[[], Any]) -> TenantViolation:
    forget_shard_checks()
    sent.clear()
    async with tenant_scope("tenant", T1):
        with pytest.raises(TenantViolation) as caught:
            await action()
    assert sent == [], f"requests were sent before the refusal: {sent}"
    return caught.value


# -- the tenant's own keys ------------------------------------------------------------------


async def test_own_tenant_works_for_every_kind_of_operation(data: None, io: SyncIO) -> None:
    async with tenant_scope("tenant", T1, shared=[Plan]):
        assert (await io.get(Account, tenant=T1)).name == T1
        notes = await io.all(Note.query(tenant=T1))
        assert [n.text for n in notes] == [f"t1 note {n}" for n in range(3)]
        assert await io.count(Note.query(tenant=T1)) == 3
        assert len(await io.all(Note.query(index="gsi1", tenant=T1))) == 3
        assert [r.value for r in await io.all(Reading.query(tenant=T1))] == [1]
        collection = await io.fetch(Collection(Account, Note), tenant=T1)
        assert len(collection.of(Note)) == 3
        note = await io.get(Note, tenant=T1, note_id="n0")
        await io.update(note, Attr("text").set("edited"))
        await io.save(Note(tenant=T1, note_id="n9", text="new"))
        await io.delete_item(Note, {"tenant": T1, "note_id": "n9"})
        assert (await io.get(Plan, plan_id="basic")).price == 5  # shared
    assert Note.get(tenant=T1, note_id="n0").text == "edited"
    assert Note.get(tenant=T2, note_id="n0").text == "t2 note 0"  # untouched


def test_batches_and_transactions_of_the_own_tenant(data: None) -> None:
    with tenant_scope("tenant", T1):
        found = batch_get([Key(Note, tenant=T1, note_id=f"n{n}") for n in range(3)])
        assert len(found.items) == 3
        with batch_write() as batch:
            batch.put(Note(tenant=T1, note_id="b1"))
            batch.delete(Key(Note, tenant=T1, note_id="n2"))
        with TransactWrite() as tx:
            tx.put(Note(tenant=T1, note_id="x1"))
            tx.update_item(Note, {"tenant": T1, "note_id": "n1"}, [Attr("text").set("tx")])
        reads = TransactGet()
        ref = reads.get(Note, tenant=T1, note_id="x1")
        reads.execute()
        assert ref.require().note_id == "x1"
    assert Note.get(tenant=T1, note_id="n1").text == "tx"


# -- another tenant's keys: refused, nothing sent ---------------------------------------------


def test_item_operations_on_another_tenant_are_refused(data: None, sent: SentLog) -> None:
    other = Note.get(tenant=T2, note_id="n0")
    cases: dict[str, Callable[[], Any]] = {
        "get": lambda: Note.get(tenant=T2, note_id="n0"),
        "get_or_none": lambda: Note.get_or_none(tenant=T2, note_id="n0"),
        "save": lambda: Note(tenant=T2, note_id="evil").save(),
        "create": lambda: Note(tenant=T2, note_id="evil").create(),
        "save of a read instance": lambda: other.save(),
        "update": lambda: other.update(Attr("text").set("evil")),
        "save_changes": lambda: (setattr(other, "text", "evil"), other.save_changes()),
        "delete": lambda: other.delete(),
        "update_item": lambda: Note.update_item(
            {"tenant": T2, "note_id": "n0"}, [Attr("text").set("evil")]
        ),
        "delete_item": lambda: Note.delete_item({"tenant": T2, "note_id": "n0"}),
        "sharded save": lambda: Reading(tenant=T2, at=AT).save(),
    }
    for name, action in cases.items():
        error = refused(sent, action, name)
        assert error.field == "tenant", name
        assert "t2" not in str(error), f"{name}: the message echoes the other tenant's key"
    assert Note.get(tenant=T2, note_id="n0").text == "t2 note 0"


def test_reads_of_another_tenant_are_refused(data: None, sent: SentLog) -> None:
    cases: dict[str, Callable[[], Any]] = {
        "query": lambda: Note.query(tenant=T2).all(),
        "first": lambda: Note.query(tenant=T2).first(),
        "count": lambda: Note.query(tenant=T2).count(),
        "pages": lambda: list(Note.query(tenant=T2).pages()),
        "index query": lambda: Note.query(index="gsi1", tenant=T2).all(),
        "sharded query": lambda: Reading.query(tenant=T2).all(),
        "one shard": lambda: Reading.query(tenant=T2, shard=0).all(),
        "collection": lambda: Collection(Account, Note).fetch(tenant=T2),
        "collection query": lambda: Collection(Account, Note).query(tenant=T2).all(),
        "raw partition key": lambda: Collection(Account, Note).query_key("TENANT#t1").all(),
        "scan": lambda: Note.scan().all(),
        "parallel scan": lambda: Note.scan().parallel(2).all(),
        "scan count": lambda: Note.scan().count(),
    }
    for name, action in cases.items():
        refused(sent, action, name)


def test_batches_and_transactions_with_one_foreign_key_are_refused_whole(
    data: None, sent: SentLog
) -> None:
    mine = [Key(Note, tenant=T1, note_id="n0")]

    def batch_put() -> None:
        with batch_write() as batch:
            batch.put(Note(tenant=T1, note_id="ok"))
            batch.put(Note(tenant=T2, note_id="evil"))

    def batch_delete() -> None:
        with batch_write() as batch:
            batch.delete(Key(Note, tenant=T2, note_id="n0"))

    def transaction(add: Callable[[TransactWrite], Any]) -> Callable[[], None]:
        def run() -> None:
            with TransactWrite() as tx:
                tx.put(Note(tenant=T1, note_id="ok"))
                add(tx)

        return run

    def transact_get() -> None:
        reads = TransactGet()
        reads.get(Note, tenant=T1, note_id="n0")
        reads.get(Note, tenant=T2, note_id="n0")
        reads.execute()

    cases: dict[str, Callable[[], Any]] = {
        "batch_get": lambda: batch_get([*mine, Key(Note, tenant=T2, note_id="n0")]),
        "batch put": batch_put,
        "batch delete": batch_delete,
        "tx put": transaction(lambda tx: tx.put(Note(tenant=T2, note_id="evil"))),
        "tx update_item": transaction(
            lambda tx: tx.update_item(
                Note, {"tenant": T2, "note_id": "n0"}, [Attr("text").set("x")]
            )
        ),
        "tx delete_item": transaction(
            lambda tx: tx.delete_item(Note, {"tenant": T2, "note_id": "n0"})
        ),
        "tx condition_check_item": transaction(
            lambda tx: tx.condition_check_item(
                Note, {"tenant": T2, "note_id": "n0"}, Attr("text").exists()
            )
        ),
        "transact_get": transact_get,
    }
    for name, action in cases.items():
        refused(sent, action, name)
    assert not Note.get_or_none(tenant=T1, note_id="ok")  # nothing of a refused batch landed
    assert Note.get(tenant=T2, note_id="n0").text == "t2 note 0"


async def test_async_operations_on_another_tenant_are_refused(data: None, sent: SentLog) -> None:
    await arefused(sent, lambda: Note.aget(tenant=T2, note_id="n0"))
    await arefused(sent, lambda: Note(tenant=T2, note_id="evil").asave())
    await arefused(sent, lambda: Note.query(tenant=T2).aall())
    await arefused(sent, lambda: Reading.query(tenant=T2).aall())
    await arefused(sent, lambda: Note.scan().aall())
    await arefused(sent, lambda: Collection(Account, Note).afetch(tenant=T2))
    await arefused(sent, lambda: abatch_get([Key(Note, tenant=T2, note_id="n0")]))


def test_models_without_the_tenant_field_need_an_explicit_opt_in(data: None, sent: SentLog) -> None:
    error = refused(sent, lambda: Plan.get(plan_id="basic"))
    assert "does not carry the tenant field 'tenant'" in str(error)
    assert "shared=" in str(error)
    refused(sent, lambda: Plan(plan_id="evil").save())
    # an index whose partition key does not carry the tenant: another tenant's e-mail
    error = refused(sent, lambda: Account.query(index="gsi1", email="a@example.com").all())
    assert "index 'gsi1'" in str(error)
    with tenant_scope("tenant", T1, shared=[Plan]):
        assert Plan.get(plan_id="basic").price == 5
        assert [p.plan_id for p in Plan.scan().all()] == ["basic"]  # a scan of shared models


def test_a_query_built_outside_the_scope_is_checked_when_it_runs(data: None, sent: SentLog) -> None:
    theirs = Note.query(tenant=T2)
    refused(sent, theirs.all)
    mine = Note.query(tenant=T1).limit(1)
    with tenant_scope("tenant", T1):
        page = next(iter(mine.pages()))
        cursor = page.cursor
    assert cursor is not None
    with tenant_scope("tenant", T1):
        rest = Note.query(tenant=T1).start_from(cursor).all()
    assert [n.note_id for n in rest] == ["n1", "n2"]
    with pytest.raises(ValidationError):  # t1's cursor on t2's partition: refused anyway
        Note.query(tenant=T2).start_from(cursor)


def test_table_wide_operations_are_refused(data: None, sent: SentLog) -> None:
    refused(sent, TT.delete)
    refused(sent, lambda: TT.create(exist_ok=True))
    assert TT.describe()["TableStatus"] == "ACTIVE"


# -- the scope itself ------------------------------------------------------------------------


def test_scope_nesting_and_restoring() -> None:
    assert current_tenant() is None
    with tenant_scope("tenant", T1) as outer:
        assert current_tenant() is outer
        with tenant_scope("tenant", T1, shared=[Plan]) as inner:  # same tenant: fine
            assert current_tenant() is inner
        assert current_tenant() is outer
        with (
            pytest.raises(TenantViolation, match="cannot switch tenants"),
            tenant_scope("tenant", T2),
        ):
            pass
        assert current_tenant() is outer
        with pytest.raises(RuntimeError), tenant_scope("tenant", T1):
            raise RuntimeError("boom")
        assert current_tenant() is outer
    assert current_tenant() is None


def test_bad_scopes_are_refused() -> None:
    for value in (None, ""):
        with pytest.raises(TenantViolation, match="empty"):
            tenant_scope("tenant", value)
    with pytest.raises(TypeError):
        tenant_scope("", T1)
    with pytest.raises(TypeError, match="model classes"):
        tenant_scope("tenant", T1, shared=["Plan"])  # type: ignore[list-item]


def test_leaving_the_scope_from_another_context_does_not_fail() -> None:
    """A framework may run a dependency's teardown in a copy of the context (FastAPI): leaving
    there must not raise (a ContextVar token would), and leaves that context unscoped."""
    from dynamodel.modelling import tenancy

    scope = tenant_scope("tenant", T1)
    context = contextvars.copy_context()
    context.run(scope.__enter__)
    contextvars.copy_context().run(scope.__exit__, None, None, None)
    assert context.run(current_tenant) is scope  # the entering context keeps its own value
    assert current_tenant() is None
    assert tenancy._SCOPE.get() is None


async def test_tasks_started_in_the_scope_inherit_it(data: None, sent: SentLog) -> None:
    async with tenant_scope("tenant", T1):
        mine, theirs = await asyncio.gather(
            Note.aget(tenant=T1, note_id="n0"),
            Note.aget(tenant=T2, note_id="n0"),
            return_exceptions=True,
        )
    assert isinstance(mine, Note)
    assert isinstance(theirs, TenantViolation)


def test_batches_and_transactions_built_outside_are_checked_when_sent(
    data: None, sent: SentLog
) -> None:
    """Keys added before the scope was entered are checked again when the request is sent."""
    writer = batch_write()
    writer.put(Note(tenant=T2, note_id="evil"))
    tx = TransactWrite()
    tx.delete_item(Note, {"tenant": T2, "note_id": "n0"})
    reads = TransactGet()
    reads.get(Note, tenant=T2, note_id="n0")
    keys = [Key(Note, tenant=T2, note_id="n0")]
    refused(sent, writer.flush, "batch write flush")
    refused(sent, tx.commit, "transaction commit")
    refused(sent, reads.execute, "transaction get")
    refused(sent, lambda: batch_get(keys), "batch_get of keys made outside")
    assert Note.get(tenant=T2, note_id="n0").text == "t2 note 0"
    assert Note.get_or_none(tenant=T2, note_id="evil") is None
