"""Attributes named like DynamoDB reserved words (``name``, ``status``, ``size``, ``data``), as
fields, as aliases and as the table's own key/type attributes, and values that look like
expression syntax (``"#x = :y"``), work in keys, conditions, filters, updates and projections.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from conftest import SyncIO, user_items
from pydantic import Field

from dynamodel import GSI, Attr, ConditionFailed, Model, Table
from dynamodel.local import LocalDynamoDB

TRICKY = "#x = :y"
WORDS = Table("words", indexes=[GSI("gsi1", pk="gsi1pk", sk="gsi1sk")])
# the table's own key, type and index attributes are reserved words too
KEYS = Table(
    "reserved-keys",
    pk="name",
    sk="size",
    type_attribute="status",
    indexes=[GSI("by-data", pk="data", sk="timestamp")],
)


class Thing(Model):
    class Meta:
        table = WORDS
        pk = "THING#{name}"
        sk = "{status}#{size}"
        indexes = {"gsi1": ("DATA#{data}", "{name}")}
        escape_keys = True  # the tricky values hold '#', the templates' separator

    name: str
    status: str
    size: int
    data: str
    count: int = 0
    value: dict[str, Any] = Field(default_factory=dict)


class Aliased(Model):
    class Meta:
        table = WORDS
        pk = "AL#{title}"
        sk = "{state}"
        escape_keys = True

    title: str = Field(alias="name")
    state: str = Field(alias="status")
    length: int = Field(alias="size")
    payload: dict[str, Any] = Field(default_factory=dict, alias="data")


class Word(Model):
    class Meta:
        table = KEYS
        pk = "{key}"
        sk = "{rank}"
        indexes = {"by-data": ("{group}", "{key}")}
        escape_keys = True

    key: str
    rank: int
    group: str | None = None
    comment: str = ""


@pytest.fixture
def tables(fresh_db: LocalDynamoDB) -> Iterator[None]:
    WORDS.create(poll=0.01)
    KEYS.create(poll=0.01)
    yield


pytestmark = pytest.mark.usefixtures("tables")


def tricky_thing(**extra: Any) -> Thing:
    values: dict[str, Any] = {"name": TRICKY, "status": ":v0", "size": 3, "data": "#n0 = :v0"}
    return Thing(**{**values, **extra})


async def test_tricky_values_in_keys(io: SyncIO, ddb: Any) -> None:
    thing = tricky_thing()
    await io.save(thing)
    [stored] = user_items(ddb.scan(TableName="words")["Items"])
    assert stored["pk"] == {"S": "THING#%23x = :y"}
    assert stored["sk"] == {"S": ":v0#" + "3".zfill(20)}
    assert stored["gsi1pk"] == {"S": "DATA#%23n0 = :v0"}
    assert stored["name"] == {"S": TRICKY} and stored["status"] == {"S": ":v0"}
    assert await io.get(Thing, name=TRICKY, status=":v0", size=3) == thing
    assert await io.all(Thing.query(name=TRICKY)) == [thing]
    assert await io.all(Thing.query(name=TRICKY).sk_begins_with(status=":v0")) == [thing]
    assert await io.all(Thing.query(name=TRICKY).sk_eq(status=":v0", size=3)) == [thing]
    assert await io.all(Thing.query(index="gsi1", data="#n0 = :v0")) == [thing]
    assert await io.all(Thing.query(index="gsi1", data="#n0 = :v0").sk_eq(name=TRICKY)) == [thing]


async def test_reserved_names_in_conditions(io: SyncIO) -> None:
    await io.create(tricky_thing())
    with pytest.raises(ConditionFailed) as info:
        await io.create(tricky_thing(count=9))
    assert info.value.current == tricky_thing()
    condition = (
        (Attr("name") == TRICKY)
        & (Attr("status") == ":v0")
        & Attr("size").between(1, 5)
        & Attr("data").begins_with("#n0")
        & (Attr("data").size() == len("#n0 = :v0"))
    )
    await io.save(tricky_thing(count=1), condition=condition)
    with pytest.raises(ConditionFailed):
        await io.save(tricky_thing(count=2), condition=Attr("status") == TRICKY)
    with pytest.raises(ConditionFailed):
        await io.delete(tricky_thing(), condition=Attr("data") == TRICKY)
    await io.delete(tricky_thing(), condition=Attr("data") == "#n0 = :v0")
    assert await io.get_or_none(Thing, name=TRICKY, status=":v0", size=3) is None


async def test_reserved_names_in_filters(io: SyncIO) -> None:
    for size, status in [(1, TRICKY), (2, "open"), (3, TRICKY)]:
        await io.save(tricky_thing(size=size, status=status, value={"size": size, "name": TRICKY}))
    query = Thing.query(name=TRICKY)
    found = await io.all(query.filter((Attr("status") == TRICKY) & (Attr("size") > 1)))
    assert [t.size for t in found] == [3]
    found = await io.all(query.filter(Attr("value.size").is_in(1, 2)))
    assert sorted(t.size for t in found) == [1, 2]
    found = await io.all(query.filter(Attr("value.name") == TRICKY))
    assert len(found) == 3
    assert await io.count(query.filter(Attr("data").contains(":v0"))) == 3
    scanned = await io.all(Thing.scan().filter(Attr("status") == TRICKY))
    assert sorted(t.size for t in scanned) == [1, 3]


async def test_reserved_names_in_updates(io: SyncIO) -> None:
    await io.save(tricky_thing())
    updated = await io.update(
        tricky_thing(),
        Attr("data").set(TRICKY),
        Attr("count").add(2),
        Attr("value").set({"name": TRICKY, "size": 1, "data": [TRICKY]}),
        condition=Attr("status") == ":v0",
    )
    assert updated.data == TRICKY
    assert updated.count == 2
    assert updated.value == {"name": TRICKY, "size": 1, "data": [TRICKY]}
    # the index key built from `data` followed the update
    assert await io.all(Thing.query(index="gsi1", data=TRICKY)) == [updated]
    assert await io.all(Thing.query(index="gsi1", data="#n0 = :v0")) == []
    nested = await io.update(
        updated,
        Attr("value.size").set(Attr("value.size") + 1),
        Attr("value.data[0]").set("#y = :x"),
        Attr("value.name").remove(),
    )
    assert nested.value == {"size": 2, "data": ["#y = :x"]}
    by_key = await io.update_item(
        Thing, {"name": TRICKY, "status": ":v0", "size": 3}, [Attr("count").set(Attr("count") + 1)]
    )
    assert by_key.count == 3


async def test_reserved_words_as_aliases(io: SyncIO, ddb: Any) -> None:
    item = Aliased(title=TRICKY, state="on", length=5, payload={"size": 1})
    await io.save(item)
    stored = ddb.get_item(TableName="words", Key=item.item_key())["Item"]
    assert stored["name"] == {"S": TRICKY}
    assert stored["status"] == {"S": "on"}
    assert stored["size"] == {"N": "5"}
    assert stored["data"] == {"M": {"size": {"N": "1"}}}
    assert await io.get(Aliased, title=TRICKY, state="on") == item
    # python names and stored names both work in expressions
    for condition in (Attr("length") == 5, Attr("size") == 5):
        await io.save(item, condition=condition)
    query = Aliased.query(title=TRICKY)
    assert await io.all(query.filter(Attr("state") == "on")) == [item]
    assert await io.all(query.filter(Attr("status") == "on")) == [item]
    assert await io.all(query.filter(Attr("payload.size") == 1)) == [item]
    assert await io.all(query.filter(Attr("data.size") == 1)) == [item]
    updated = await io.update(item, Attr("length").add(1), Attr("payload.name").set(TRICKY))
    assert updated.length == 6
    assert updated.payload == {"size": 1, "name": TRICKY}
    updated = await io.update(updated, Attr("size").set(10), Attr("data").set({"x": 1}))
    assert updated.length == 10 and updated.payload == {"x": 1}
    partial = await io.get(Aliased, title=TRICKY, state="on", projection=["length", "data"])
    assert partial.length == 10 and partial.payload == {"x": 1}
    projected = await io.all(query.project("title", "size"))
    assert [(p.title, p.length) for p in projected] == [(TRICKY, 10)]


async def test_reserved_words_as_key_type_and_index_attributes(io: SyncIO, ddb: Any) -> None:
    words = [Word(key=TRICKY, rank=r, group="#g" if r % 2 else None) for r in range(4)]
    for word in words:
        await io.save(word)
    raw = ddb.get_item(TableName="reserved-keys", Key=words[1].item_key())["Item"]
    escaped = TRICKY.replace("#", "%23")  # escape_keys: '#' separates the templates' parts
    assert raw["name"] == {"S": escaped}
    assert raw["size"] == {"S": "1".zfill(20)}
    assert raw["status"] == {"S": "Word"}
    assert raw["data"] == {"S": "%23g"} and raw["timestamp"] == {"S": escaped}
    assert await io.get(Word, key=TRICKY, rank=2) == words[2]
    assert await io.all(Word.query(key=TRICKY)) == words
    assert await io.all(Word.query(key=TRICKY).sk_gt(rank=1)) == words[2:]
    assert await io.all(Word.query(key=TRICKY).filter(Attr("group") == "#g")) == [
        words[1],
        words[3],
    ]
    assert await io.count(Word.query(key=TRICKY)) == 4
    assert sorted(w.rank for w in await io.all(Word.query(index="by-data", group="#g"))) == [1, 3]
    with pytest.raises(ConditionFailed):
        await io.create(words[0])
    updated = await io.update(words[0], Attr("group").set("#g"), Attr("comment").set(TRICKY))
    assert updated.group == "#g" and updated.comment == TRICKY
    assert sorted(w.rank for w in await io.all(Word.query(index="by-data", group="#g"))) == [
        0,
        1,
        3,
    ]
    gone = await io.delete_item(Word, {"key": TRICKY, "rank": 3})
    assert gone == words[3]
    assert sorted(w.rank for w in await io.all(Word.scan())) == [0, 1, 2]
    assert sorted(w.rank for w in await io.all(Word.scan().parallel(2))) == [0, 1, 2]
