"""``update_item(..., upsert=True)``: an item created by an upsert is a complete item of its model,
including the index keys that depend only on key fields (an "inverted index"), as ``save()``
would write them (sync and async)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from conftest import SyncIO

from dynamodel import GSI, Attr, Model, Table, ValidationError
from dynamodel.local import LocalDynamoDB

GROUPS = Table("groups", indexes=[GSI("inverted", pk="gsi1pk", sk="gsi1sk")])


class Membership(Model):
    class Meta:
        table = GROUPS
        pk = "GROUP#{group}"
        sk = "USER#{user}"
        indexes = {"inverted": ("USER#{user}", "GROUP#{group}")}

    group: str
    user: str
    role: str = "member"


@pytest.fixture
def groups(fresh_db: LocalDynamoDB) -> Iterator[Table]:
    GROUPS.create(poll=0.01)
    yield GROUPS


pytestmark = pytest.mark.usefixtures("groups")
KEY = {"group": "g1", "user": "ann"}


async def test_upsert_creates_a_parseable_item(io: SyncIO) -> None:
    created = await io.update_item(Membership, KEY, [Attr("role").set("admin")], upsert=True)
    assert created == Membership(group="g1", user="ann", role="admin")
    assert await io.get(Membership, **KEY) == created
    again = await io.update_item(Membership, KEY, [Attr("role").set("owner")], upsert=True)
    assert again.role == "owner"


async def test_upsert_writes_index_keys_built_from_key_fields(io: SyncIO, ddb: Any) -> None:
    saved = Membership(group="g0", user="ann")
    await io.save(saved)
    await io.update_item(Membership, KEY, [Attr("role").set("admin")], upsert=True)
    stored = ddb.get_item(TableName="groups", Key=Membership.build_key(**KEY))["Item"]
    expected = Membership(group="g1", user="ann", role="admin").to_item()
    assert stored == expected  # the same item save() would have written
    by_user = await io.all(Membership.query(index="inverted", user="ann"))
    assert [m.group for m in by_user] == ["g0", "g1"]


async def test_upsert_with_condition(io: SyncIO) -> None:
    from dynamodel import ConditionFailed

    await io.update_item(Membership, KEY, [Attr("role").set("admin")], upsert=True)
    with pytest.raises(ConditionFailed) as info:
        await io.update_item(
            Membership,
            KEY,
            [Attr("role").set("x")],
            condition=Attr("role") == "member",
            upsert=True,
        )
    assert info.value.current == Membership(group="g1", user="ann", role="admin")


async def test_update_item_without_upsert_does_not_create(io: SyncIO) -> None:
    from dynamodel import ItemNotFound

    with pytest.raises(ItemNotFound):
        await io.update_item(Membership, KEY, [Attr("role").set("admin")])
    assert await io.get_or_none(Membership, **KEY) is None
    with pytest.raises(ValidationError):
        await io.update_item(Membership, {"group": "g1"}, [Attr("role").set("admin")])
