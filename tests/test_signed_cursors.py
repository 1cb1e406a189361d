"""Signed cursors (#21): a connection with ``cursor_key`` signs the cursors of every read it runs
(queries, index queries, collections, sharded queries, scans and their segments, sync and
async) and a read resuming from a cursor verifies it with the connection it runs on, before
its first request: an unsigned cursor, one signed with another key, an altered one, or one made
by another read (another partition, index, entity set, table or segment) is refused with
`InvalidCursor`, and nothing is sent. Keys rotate (the first signs, every one verifies)."""

from __future__ import annotations

import base64
import binascii
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from conftest import SentLog, SyncIO

from dynamodel import (
    GSI,
    Collection,
    Connection,
    InvalidCursor,
    Model,
    Shards,
    Table,
    ValidationError,
    use_connection,
)
from dynamodel.core.cursors import CursorKeys

KEY = b"k" * 32
OTHER_KEY = b"o" * 32
NEW_KEY = "a new key, rotated in: 32 bytes!"

SC = Table("signed-cursors", indexes=[GSI("gsi1", pk="gsi1pk", sk="gsi1sk")])


class Account(Model):
    class Meta:
        table = SC
        pk = "TENANT#{tenant}"
        sk = "ACCOUNT"

    tenant: str
    name: str = ""


class Note(Model):
    class Meta:
        table = SC
        pk = "TENANT#{tenant}"
        sk = "NOTE#{n}"
        indexes = {"gsi1": ("AUTHOR#{author}", "NOTE#{n}")}

    tenant: str
    n: int
    author: str = "ann"
    text: str = ""


class Hit(Model):
    class Meta:
        table = SC
        pk = "HITS#{page}"
        sk = "HIT#{n}"
        shards = Shards(3)

    page: str
    n: int


Make = Callable[..., Connection]


@pytest.fixture
async def connect(fresh_db: Any) -> AsyncIterator[Make]:
    """Connections to the local server (``Connection(**options)``), closed afterwards; the
    table and its items are created."""
    made: list[Connection] = []

    def make(**options: Any) -> Connection:
        connection = Connection(**options)
        made.append(connection)
        return connection

    SC.create(poll=0.01)
    Account(tenant="t1", name="one").save()
    Account(tenant="t2", name="two").save()
    for n in range(1, 8):
        Note(tenant="t1", n=n, author="ann" if n % 2 else "bob", text=f"secret {n}").save()
        Note(tenant="t2", n=n).save()
    for n in range(1, 10):
        Hit(page="home", n=n).save()
        Hit(page="away", n=n).save()
    try:
        yield make
    finally:
        SC.unbind()
        for connection in made:
            await connection.aclose()
            connection.close()


async def walk(io: SyncIO, query: Any, step: int = 2) -> tuple[list[Any], list[str]]:
    """Read ``query`` ``step`` items at a time, each time resuming from the last cursor."""
    items: list[Any] = []
    cursors: list[str] = []
    cursor = None
    for _ in range(50):
        pages = await io.pages(query.limit(step).start_from(cursor))
        items += [item for page in pages for item in page.items]
        cursor = pages[-1].cursor
        if cursor is None:
            return items, cursors
        cursors.append(cursor)
    raise AssertionError("no end")


def reads() -> dict[str, Callable[[], Any]]:
    """One of each kind of read (built fresh: a query is resolved when it runs)."""
    return {
        "query": lambda: Note.query(tenant="t1"),
        "index": lambda: Note.query(index="gsi1", author="ann"),
        "collection": lambda: Collection(Account, Note).query(tenant="t1"),
        "sharded": lambda: Hit.query(page="home"),
        "scan": lambda: Note.scan(),
        "segment": lambda: Note.scan().segment(0, 2),
    }


def refused(error: pytest.ExceptionInfo[InvalidCursor], *words: str) -> None:
    text = str(error.value)
    assert "Nothing was sent" in text, text
    for word in words:
        assert word in text, text
    for key in (KEY, OTHER_KEY, NEW_KEY.encode()):
        assert key.decode() not in text


def flip(cursor: str, position: int) -> str:
    """``cursor`` with the character at ``position`` changed (still URL-safe base64)."""
    char = cursor[position]
    return cursor[:position] + ("A" if char != "A" else "B") + cursor[position + 1 :]


# -- round trips -------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", list(reads()))
async def test_every_read_signs_its_cursors_and_resumes_from_them(
    io: SyncIO, connect: Make, kind: str
) -> None:
    keyed = connect(cursor_key=KEY)
    whole = await io.all(reads()[kind]())
    with use_connection(keyed):
        items, cursors = await walk(io, reads()[kind]())
    assert items == whole and len(whole) >= 3  # nothing skipped or repeated
    assert cursors and all(c.startswith("s2." if kind == "sharded" else "k2.") for c in cursors)
    assert all(c.isascii() and "=" not in c and "/" not in c and "+" not in c for c in cursors)
    # the same read without a key makes unsigned cursors, as before
    plain_items, plain_cursors = await walk(io, reads()[kind]())
    assert plain_items == whole
    assert not any(c.startswith(("k2.", "s2.")) for c in plain_cursors)


async def test_a_parallel_scan_signs_each_segments_cursors(io: SyncIO, connect: Make) -> None:
    keyed = connect(cursor_key=KEY)
    scan = Note.scan().page_size(3).using(keyed).parallel(2)
    pages = list(scan.pages()) if io.name == "sync" else [p async for p in scan.apages()]
    cursors = [page.cursor for page in pages if page.cursor is not None]
    assert cursors and all(c.startswith("k2.") for c in cursors)
    assert sorted(n.n for page in pages for n in page.items) == sorted([*range(1, 8)] * 2)


async def test_count_verifies_its_cursor(io: SyncIO, connect: Make, sent: SentLog) -> None:
    keyed = connect(cursor_key=KEY)
    query = Note.query(tenant="t1").using(keyed)
    (page, *_) = await io.pages(query.page_size(3))
    assert page.cursor is not None
    assert await io.count(query.start_from(page.cursor)) == 4
    sent.clear()
    with pytest.raises(InvalidCursor) as error:
        await io.count(query.start_from(flip(page.cursor, len(page.cursor) - 3)))
    refused(error, "signature does not match")
    assert sent == []


# -- refusals, before any request ---------------------------------------------------------------


async def first_cursor(io: SyncIO, query: Any) -> str:
    pages = await io.pages(query.limit(2))
    cursor = pages[-1].cursor
    assert cursor is not None
    return cursor


@pytest.mark.parametrize("kind", list(reads()))
async def test_an_altered_cursor_is_refused_and_nothing_is_sent(
    io: SyncIO, connect: Make, sent: SentLog, kind: str
) -> None:
    keyed = connect(cursor_key=KEY)
    cursor = await first_cursor(io, reads()[kind]().using(keyed))
    body_end = cursor.rindex(".")
    for position in (3, len(cursor) // 2, body_end - 1, body_end + 1, len(cursor) - 1):
        altered = flip(cursor, position)
        sent.clear()
        with pytest.raises(InvalidCursor) as error:
            query = reads()[kind]().using(keyed).start_from(altered)
            await io.pages(query)
        assert sent == [], (position, sent)
        assert "Nothing was sent" in str(error.value)
    # the payload edited by hand (a key value changed, re-encoded): refused as well
    prefix, body, tag = cursor[:3], *cursor[3:].split(".")
    payload = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)).decode()
    forged = payload.replace('"t":', '"t":1', 1)
    edited = f"{prefix}{base64.urlsafe_b64encode(forged.encode()).decode().rstrip('=')}.{tag}"
    sent.clear()
    with pytest.raises(InvalidCursor) as error:
        await io.pages(reads()[kind]().using(keyed).start_from(edited))
    refused(error, "signature does not match")
    assert sent == []


async def test_a_cursor_signed_with_another_key_is_refused(
    io: SyncIO, connect: Make, sent: SentLog
) -> None:
    theirs = connect(cursor_key=OTHER_KEY)
    ours = connect(cursor_key=KEY)
    cursor = await first_cursor(io, Note.query(tenant="t1").using(theirs))
    sent.clear()
    with pytest.raises(InvalidCursor) as error:
        await io.pages(Note.query(tenant="t1").using(ours).start_from(cursor))
    refused(error, "signature does not match", "key this connection does not have")
    assert sent == []


@pytest.mark.parametrize("kind", list(reads()))
async def test_an_unsigned_cursor_is_refused_where_a_key_is_set(
    io: SyncIO, connect: Make, sent: SentLog, kind: str
) -> None:
    cursor = await first_cursor(io, reads()[kind]())  # the default connection: no key
    assert not cursor.startswith(("k2.", "s2."))
    sent.clear()
    with pytest.raises(InvalidCursor) as error:
        await io.pages(reads()[kind]().using(connect(cursor_key=KEY)).start_from(cursor))
    refused(error, "not signed", "cursor_key")
    assert sent == []


async def test_a_signed_cursor_is_refused_where_no_key_can_verify_it(
    io: SyncIO, connect: Make, sent: SentLog
) -> None:
    cursor = await first_cursor(io, Note.query(tenant="t1").using(connect(cursor_key=KEY)))
    query = Note.query(tenant="t1").start_from(cursor)  # well formed: accepted while building
    sent.clear()
    with pytest.raises(InvalidCursor) as error:
        await io.pages(query)  # the default connection has no key
    refused(error, "no cursor_key")
    assert sent == []


async def test_a_cursor_of_another_read_is_refused(
    io: SyncIO, connect: Make, sent: SentLog
) -> None:
    keyed = connect(cursor_key=KEY)
    tenant_one = await first_cursor(io, Note.query(tenant="t1").using(keyed))
    # another partition: refused when the query is built (the key inside names another
    # partition), and by the signature
    with pytest.raises(InvalidCursor) as error:
        Note.query(tenant="t2").start_from(tenant_one)
    assert "partition" in str(error.value)
    # reads of the same partition that are not the one that made it: refused when they run
    others = {
        "collection": Collection(Account, Note).query(tenant="t1"),  # another entity set
        "consistent-free scan": Note.scan(),
        "segment": Note.scan().segment(0, 1),
        "account": Account.query(tenant="t1"),  # another model
    }
    for name, other in others.items():
        sent.clear()
        with pytest.raises(InvalidCursor) as error:
            await io.pages(other.using(keyed).start_from(tenant_one))
        refused(error, "signature does not match", "made by another query")
        assert sent == [], name
    # a scan segment's cursor does not resume another segment
    segment = await first_cursor(io, Note.scan().segment(0, 2).using(keyed))
    sent.clear()
    with pytest.raises(InvalidCursor):
        await io.pages(Note.scan().segment(1, 2).using(keyed).start_from(segment))
    assert sent == []
    # an index query's cursor does not resume another index partition, nor the table
    ann = await first_cursor(io, Note.query(index="gsi1", author="ann").using(keyed))
    with pytest.raises(InvalidCursor):
        Note.query(index="gsi1", author="bob").start_from(ann)
    # a sharded query's cursor resumes only that sharded partition
    home = await first_cursor(io, Hit.query(page="home").using(keyed))
    with pytest.raises(InvalidCursor):
        Hit.query(page="away").start_from(home)
    with pytest.raises(InvalidCursor):
        Note.query(tenant="t1").start_from(home)
    with pytest.raises(InvalidCursor):
        Hit.query(page="home").start_from(tenant_one)


async def test_a_cursor_of_another_physical_table_is_refused(
    io: SyncIO, connect: Make, sent: SentLog
) -> None:
    keyed = connect(cursor_key=KEY)
    cursor = await first_cursor(io, Note.query(tenant="t1").using(keyed))
    SC.bind(name="signed-cursors-copy")
    SC.create(poll=0.01)
    for n in range(1, 4):
        Note(tenant="t1", n=n).save()
    sent.clear()
    with pytest.raises(InvalidCursor) as error:
        await io.pages(Note.query(tenant="t1").using(keyed).start_from(cursor))
    refused(error, "signature does not match")
    assert sent == []


def test_malformed_cursors_are_refused_while_the_query_is_built() -> None:
    for cursor in ("k2.", "k2.abc", "k2.abc.def", "k2.!!.AAAAAAAAAAAAAAAAAAAAAA", "s2.x", "zz"):
        with pytest.raises(InvalidCursor):
            Note.query(tenant="t1").start_from(cursor)
    with pytest.raises(InvalidCursor):
        Hit.query(page="home").start_from("k2.abc.AAAAAAAAAAAAAAAAAAAAAA")
    with pytest.raises(InvalidCursor):
        Note.query(tenant="t1").start_from(b"bytes")  # type: ignore[arg-type]


# -- keys ------------------------------------------------------------------------------------------


async def test_rotation_the_first_key_signs_every_key_verifies(io: SyncIO, connect: Make) -> None:
    old = connect(cursor_key=KEY)
    rotated = connect(cursor_key=[NEW_KEY, KEY])
    new_only = connect(cursor_key=NEW_KEY)
    issued_before = await first_cursor(io, Note.query(tenant="t1").using(old))
    resumed = await io.pages(Note.query(tenant="t1").using(rotated).start_from(issued_before))
    assert [n.n for page in resumed for n in page.items] == [3, 4, 5, 6, 7]
    issued_after = await first_cursor(io, Note.query(tenant="t1").using(rotated))
    # signed with the new key: the new key alone verifies it, the old one alone does not
    assert await io.pages(Note.query(tenant="t1").using(new_only).start_from(issued_after))
    with pytest.raises(InvalidCursor):
        await io.pages(Note.query(tenant="t1").using(old).start_from(issued_after))
    # once the old key is dropped, the cursors it signed stop working
    with pytest.raises(InvalidCursor):
        await io.pages(Note.query(tenant="t1").using(new_only).start_from(issued_before))


async def test_a_signed_cursor_holds_no_key_and_stays_short(io: SyncIO, connect: Make) -> None:
    keyed = connect(cursor_key=KEY)
    cursor = await first_cursor(io, Note.query(tenant="t1").using(keyed))
    prefix, body, tag = cursor[:3], *cursor[3:].split(".")
    assert prefix == "k2." and len(base64.urlsafe_b64decode(tag + "==")) == 16
    decoded = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
    for text in (cursor.encode(), decoded):
        assert KEY not in text and base64.b64encode(KEY) not in text
        assert binascii.hexlify(KEY) not in text
    # signing hides nothing: the resume key is readable (documented; encrypt to hide it)
    assert b"TENANT#t1" in decoded and b"NOTE#" in decoded
    unsigned = await first_cursor(io, Note.query(tenant="t1"))
    assert len(cursor) <= len(unsigned) + 50


async def test_the_connection_the_read_runs_on_verifies(
    io: SyncIO, connect: Make, sent: SentLog
) -> None:
    keyed = connect(cursor_key=KEY)
    other = connect(cursor_key=OTHER_KEY)
    cursor = await first_cursor(io, Note.query(tenant="t1").using(keyed))
    query = Note.query(tenant="t1").start_from(cursor)  # built outside any scope
    with use_connection(keyed):
        assert [n.n for page in await io.pages(query) for n in page.items] == [3, 4, 5, 6, 7]
        sent.clear()
        with pytest.raises(InvalidCursor):  # an explicit connection beats the scope
            await io.pages(query.using(other))
        assert sent == []
    SC.bind(connection=keyed)  # the table's connection verifies too
    assert len(await io.pages(query)) >= 1
    with use_connection(other), pytest.raises(InvalidCursor):  # the scope beats the binding
        await io.pages(query)


async def test_max_age_by_the_connection_clock(io: SyncIO, connect: Make) -> None:
    now = [1_900_000_000.0]
    keyed = connect(cursor_key=KEY, cursor_max_age=60, clock=lambda: now[0])
    cursor = await first_cursor(io, Note.query(tenant="t1").using(keyed))
    now[0] += 60
    assert await io.pages(Note.query(tenant="t1").using(keyed).start_from(cursor))
    now[0] += 1
    with pytest.raises(InvalidCursor) as error:
        await io.pages(Note.query(tenant="t1").using(keyed).start_from(cursor))
    refused(error, "expired")


def test_connection_keys_are_checked_and_never_shown() -> None:
    for bad in (b"short", "", [], [KEY, b"x"], 42, [KEY, 3]):
        with pytest.raises(ValidationError) as error:
            Connection(cursor_key=bad)  # type: ignore[arg-type]
        assert "cursor_key" in str(error.value)
    with pytest.raises(ValidationError):
        Connection(cursor_max_age=60)  # no key: unsigned cursors record no time
    with pytest.raises(ValidationError):
        Connection(cursor_key=KEY, cursor_max_age=0)
    connection = Connection(cursor_key=[KEY, NEW_KEY], cursor_max_age=30)
    keys = connection.inputs.cursor_keys
    assert len(keys) == 2 and keys.max_age == 30
    for shown in (repr(connection), repr(keys), repr(connection.inputs)):
        assert KEY.decode() not in shown and NEW_KEY not in shown
    assert not CursorKeys() and not Connection().inputs.cursor_keys  # None: unsigned


# -- the flows, driven by hand (no server) ---------------------------------------------------------


def test_a_flow_verifies_its_cursor_before_yielding_any_request() -> None:
    import random

    from dynamodel.core.flows import CONNECTION_INPUTS, Emit, Inputs, Request

    inputs = Inputs(lambda: 1_900_000_000.0, random.Random(0), CursorKeys(KEY))
    note = Note(tenant="t1", n=1).to_item()

    def drive(flow: Any) -> list[Any]:
        steps: list[Any] = []
        step = next(flow)
        try:
            while True:
                steps.append(step)
                if step is CONNECTION_INPUTS:
                    step = flow.send(inputs)
                elif isinstance(step, Request):
                    key = {"pk": note["pk"], "sk": note["sk"]}
                    more = {"LastEvaluatedKey": key} if len(steps) < 3 else {}
                    step = flow.send({"Items": [note], **more})
                else:
                    assert isinstance(step, Emit)
                    step = flow.send(None)
        except StopIteration:
            return steps

    # a scan: no shard records to check, so the flow's requests are the read's own
    steps = drive(Note.scan().limit(1)._flow())
    (page,) = [s.value for s in steps if isinstance(s, Emit)]
    assert page.cursor.startswith("k2.")
    assert len(drive(Note.scan().start_from(page.cursor)._flow())) > 1
    for cursor in (flip(page.cursor, len(page.cursor) - 2), "eyJ2IjoxLCJrIjp7fX0"):
        flow = Note.scan().start_from(cursor)._flow()
        assert next(flow) is CONNECTION_INPUTS  # the first step: nothing sent before
        with pytest.raises(InvalidCursor):
            flow.send(inputs)
