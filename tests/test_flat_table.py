"""A table without a sort key, with keys built from Enum, UUID, date and int fields (sync and
async)."""

from __future__ import annotations

import datetime as dt
import enum
import uuid
from collections.abc import Iterator

import pytest
from conftest import SyncIO

from dynamodel import Attr, ConditionFailed, ItemNotFound, Model, Table, ValidationError
from dynamodel.local import LocalDynamoDB

FLAT = Table("flat", sk=None, indexes=[])


class Kind(enum.Enum):
    WEB = "web"
    API = "api"


class Session(Model):
    class Meta:
        table = FLAT
        pk = "SESSION#{kind}#{sid}#{day}#{shard}"

    kind: Kind
    sid: uuid.UUID
    day: dt.date
    shard: int
    user: str
    hits: int = 0


SID = uuid.UUID("12345678-1234-5678-1234-567812345678")
KEY = {"kind": "web", "sid": str(SID), "day": "2024-05-01", "shard": "7"}


@pytest.fixture
def flat(fresh_db: LocalDynamoDB) -> Iterator[Table]:
    FLAT.create(poll=0.01)
    yield FLAT


pytestmark = pytest.mark.usefixtures("flat")


def session(**extra: object) -> Session:
    values: dict[str, object] = {
        "kind": Kind.WEB,
        "sid": SID,
        "day": dt.date(2024, 5, 1),
        "shard": 7,
        "user": "ann",
    }
    return Session(**{**values, **extra})  # type: ignore[arg-type]


async def test_flat_table_operations(io: SyncIO, ddb: object) -> None:
    await io.create(session())
    assert session().item_key() == {
        "pk": {"S": f"SESSION#web#{SID}#2024-05-01#7"}  # partition keys: ints not padded
    }
    with pytest.raises(ConditionFailed):
        await io.create(session(user="bob"))
    assert await io.get(Session, **KEY) == session()
    assert await io.all(Session.query(**KEY)) == [session()]
    assert await io.count(Session.query(**KEY)) == 1
    updated = await io.update_item(Session, KEY, [Attr("hits").add(5)])
    assert updated == session(hits=5)
    updated = await io.update(updated, Attr("user").set("bob"), condition=Attr("hits") == 5)
    assert updated.user == "bob"
    assert await io.all(Session.scan()) == [updated]
    assert await io.delete_item(Session, KEY) == updated
    with pytest.raises(ItemNotFound):
        await io.get(Session, **KEY)


async def test_key_values_are_validated(io: SyncIO) -> None:
    with pytest.raises(ValidationError, match="kind"):
        await io.get(Session, **{**KEY, "kind": "desktop"})
    with pytest.raises(ValidationError, match="sid"):
        await io.get(Session, **{**KEY, "sid": "not-a-uuid"})
    with pytest.raises(ValidationError, match="no sort key"):
        Session.query(**KEY).sk_eq("x")
