"""The benchmark item and how each peer models, stores and reads it.

One 10-attribute item (strings, an int, a Decimal, a datetime, a bool, a string set, a list of
numbers, a nested map, an optional string) stored under ``pk``/``sk`` with a ``_type``
attribute, as dynamodel stores it. Every peer writes the same attributes:

* ``floor``: the raw boto3 low-level client with hand-written AttributeValue dicts, reading into
  the same plain pydantic model (validated with ``model_validate``).
* ``pydantic+TypeSerializer``: the same plain pydantic model, ``model_dump`` and boto3's
  ``TypeSerializer``/``TypeDeserializer`` per attribute (what boto3's ``Table`` resource does).
* ``PynamoDB`` and ``pydynox`` models declared with their own attribute classes.
* ``dynamodel`` models (sync and async share the codec).

PynamoDB and pydynox are optional (the ``bench`` extra): rows for a missing one say so.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from pydantic import BaseModel

from dynamodel import Model, Table

TABLE = "bench"
PK = "pk"
SK = "sk"
TYPE = "_type"

#: dynamodel's table (bound to a connection at run time with ``BENCH.bind(...)``)
BENCH = Table(TABLE)


class Address(BaseModel):
    street: str
    city: str
    zip: str


class UserFields(BaseModel):
    """The 10 attributes, as a plain pydantic model (the floor's and boto3 peers' model)."""

    user_id: str
    name: str
    age: int
    balance: Decimal
    created: dt.datetime
    active: bool
    tags: set[str]
    scores: list[int]
    address: Address
    nickname: str | None = None
    stream_id: str | None = None  # set for items of a query partition (STREAM#..., ITEM#...)


class DUser(Model):
    """dynamodel's model of the item."""

    class Meta:
        table = BENCH
        entity = "User"
        pk = "USER#{user_id}"
        sk = "PROFILE"

    user_id: str
    name: str
    age: int
    balance: Decimal
    created: dt.datetime
    active: bool
    tags: set[str]
    scores: list[int]
    address: Address
    nickname: str | None = None


class DStreamUser(Model):
    """dynamodel's model of the streamed items (one partition of 100,000)."""

    class Meta:
        table = BENCH
        entity = "StreamUser"
        pk = "STREAM#{stream_id}"
        sk = "ITEM#{user_id}"

    stream_id: str
    user_id: str
    name: str
    age: int
    balance: Decimal
    created: dt.datetime
    active: bool
    tags: set[str]
    scores: list[int]
    address: Address
    nickname: str | None = None


def values(i: int, prefix: str = "u") -> dict[str, Any]:
    """Field values of item ``i`` (python objects, as an application holds them)."""
    return {
        "user_id": f"{prefix}{i:07d}",
        "name": "Ann Example",
        "age": 30 + i % 50,
        "balance": Decimal("1234.56") + i,
        "created": dt.datetime(2024, 5, 1, 9, 30, tzinfo=dt.UTC) + dt.timedelta(seconds=i),
        "active": i % 2 == 0,
        "tags": {"admin", "beta", "eu"},
        "scores": [1, 2, 3, 5, 8],
        "address": Address(street="1 Main Street", city="Springfield", zip="12345"),
        "nickname": "annie",
    }


def keys_of(user_id: str, stream: str | None = None) -> tuple[str, str, str]:
    """(pk, sk, entity type) of an item: a user profile, or an item of a query partition."""
    if stream is None:
        return f"USER#{user_id}", "PROFILE", "User"
    return f"STREAM#{stream}", f"ITEM#{user_id}", "StreamUser"


def dynamodel_make(i: int, prefix: str = "u", stream: str | None = None) -> DUser | DStreamUser:
    v = values(i, prefix)
    return DUser(**v) if stream is None else DStreamUser(stream_id=stream, **v)


def plain_make(i: int, prefix: str = "u", stream: str | None = None) -> UserFields:
    return UserFields(**values(i, prefix), stream_id=stream)


# -- floor: hand-written AttributeValue dicts ---------------------------------------------------


def floor_item(u: UserFields, created: str | None = None) -> dict[str, Any]:
    """The item, written by hand from the model (what a raw-client user writes)."""
    pk, sk, kind = keys_of(u.user_id, u.stream_id)
    a = u.address
    item: dict[str, Any] = {
        PK: {"S": pk},
        SK: {"S": sk},
        TYPE: {"S": kind},
        "user_id": {"S": u.user_id},
        "name": {"S": u.name},
        "age": {"N": str(u.age)},
        "balance": {"N": str(u.balance)},
        "created": {"S": created or u.created.isoformat()},
        "active": {"BOOL": u.active},
        "tags": {"SS": list(u.tags)},
        "scores": {"L": [{"N": str(s)} for s in u.scores]},
        "address": {"M": {"street": {"S": a.street}, "city": {"S": a.city}, "zip": {"S": a.zip}}},
    }
    if u.nickname is not None:
        item["nickname"] = {"S": u.nickname}
    if u.stream_id is not None:
        item["stream_id"] = {"S": u.stream_id}
    return item


def shared_item(i: int, stream: str) -> dict[str, Any]:
    """An item of the streamed partition, in a form every peer reads (UTC as ``+0000``)."""
    u = UserFields(**values(i), stream_id=stream)
    return floor_item(u, created=u.created.strftime("%Y-%m-%dT%H:%M:%S.%f+0000"))


def floor_put_params(u: UserFields) -> dict[str, Any]:
    return {"TableName": TABLE, "Item": floor_item(u)}


def floor_key(user_id: str) -> dict[str, Any]:
    return {PK: {"S": "USER#" + user_id}, SK: {"S": "PROFILE"}}


def floor_query_params(stream: str) -> dict[str, Any]:
    """A hand-written query of one stream partition: the request dynamodel sends for
    ``DStreamUser.query(stream_id=...)`` (the entity's sort-key prefix, and a filter on the
    type attribute, as a single-table query needs when other entities can share the prefix),
    so that the floor asks the server for the same work as dynamodel."""
    return {
        "TableName": TABLE,
        "KeyConditionExpression": "#pk = :pk AND begins_with(#sk, :prefix)",
        "FilterExpression": "#type = :type",
        "ExpressionAttributeNames": {"#pk": PK, "#sk": SK, "#type": TYPE},
        "ExpressionAttributeValues": {
            ":pk": {"S": f"STREAM#{stream}"},
            ":prefix": {"S": "ITEM#"},
            ":type": {"S": "StreamUser"},
        },
    }


def floor_parse(item: dict[str, Any]) -> UserFields:
    """A response item back into the model, by hand (then validated by pydantic)."""
    a = item["address"]["M"]
    nickname = item.get("nickname")
    return UserFields.model_validate(
        {
            "user_id": item["user_id"]["S"],
            "name": item["name"]["S"],
            "age": int(item["age"]["N"]),
            "balance": Decimal(item["balance"]["N"]),
            "created": dt.datetime.fromisoformat(item["created"]["S"]),
            "active": item["active"]["BOOL"],
            "tags": set(item["tags"]["SS"]),
            "scores": [int(s["N"]) for s in item["scores"]["L"]],
            "address": {"street": a["street"]["S"], "city": a["city"]["S"], "zip": a["zip"]["S"]},
            "nickname": nickname["S"] if nickname is not None else None,
            "stream_id": item["stream_id"]["S"] if "stream_id" in item else None,
        }
    )


# -- pydantic + boto3 TypeSerializer / TypeDeserializer -----------------------------------------


def plain_item(u: UserFields) -> dict[str, Any]:
    """The item as plain Python values (what boto3's Table resource takes)."""
    data = u.model_dump(exclude_none=True)
    data["created"] = u.created.isoformat()  # TypeSerializer has no datetime
    data[PK], data[SK], data[TYPE] = keys_of(u.user_id, u.stream_id)
    return data


class TypeSerializerPeer:
    """``model_dump`` + boto3's TypeSerializer, TypeDeserializer + ``model_validate``."""

    def __init__(self) -> None:
        from boto3.dynamodb.types import TypeDeserializer, TypeSerializer

        self.serializer = TypeSerializer()
        self.deserializer = TypeDeserializer()

    def put_params(self, u: UserFields) -> dict[str, Any]:
        serialize = self.serializer.serialize
        return {"TableName": TABLE, "Item": {k: serialize(v) for k, v in plain_item(u).items()}}

    def parse(self, item: dict[str, Any]) -> UserFields:
        deserialize = self.deserializer.deserialize
        return UserFields.model_validate({k: deserialize(v) for k, v in item.items()})


# -- PynamoDB -----------------------------------------------------------------------------------


def pynamodb_models(endpoint_url: str | None, region: str = "us-east-1") -> Any:
    """PynamoDB model classes for the item (None when PynamoDB is not installed)."""
    try:
        from pynamodb import attributes as pa
        from pynamodb.models import Model as PModel
    except ImportError:
        return None

    class PAddress(pa.MapAttribute[str, Any]):
        street = pa.UnicodeAttribute()
        city = pa.UnicodeAttribute()
        zip = pa.UnicodeAttribute()

    class Fields:
        user_id = pa.UnicodeAttribute()
        name = pa.UnicodeAttribute()
        age = pa.NumberAttribute()
        balance = pa.NumberAttribute()  # PynamoDB numbers are floats (no Decimal attribute)
        created = pa.UTCDateTimeAttribute()
        active = pa.BooleanAttribute()
        tags = pa.UnicodeSetAttribute()
        scores = pa.ListAttribute(of=pa.NumberAttribute)
        address = PAddress()
        nickname = pa.UnicodeAttribute(null=True)
        stream_id = pa.UnicodeAttribute(null=True)

    class PUser(PModel):
        class Meta:
            table_name = TABLE
            host = endpoint_url
            region = "us-east-1"
            aws_access_key_id = "testing"
            aws_secret_access_key = "testing"

        pk = pa.UnicodeAttribute(hash_key=True)
        sk = pa.UnicodeAttribute(range_key=True)
        type_ = pa.UnicodeAttribute(attr_name=TYPE, default="User")
        user_id = Fields.user_id
        name = Fields.name
        age = Fields.age
        balance = Fields.balance
        created = Fields.created
        active = Fields.active
        tags = Fields.tags
        scores = Fields.scores
        address = Fields.address
        nickname = Fields.nickname
        stream_id = Fields.stream_id

    def make(i: int, prefix: str = "u", stream: str | None = None) -> Any:
        v = values(i, prefix)
        v["balance"] = float(v["balance"])  # NumberAttribute takes floats
        address = v.pop("address")
        pk, sk, kind = keys_of(v["user_id"], stream)
        return PUser(
            pk=pk,
            sk=sk,
            type_=kind,
            stream_id=stream,
            address=PAddress(street=address.street, city=address.city, zip=address.zip),
            **v,
        )

    return PUser, make


# -- pydynox ------------------------------------------------------------------------------------


def pydynox_models(client: Any) -> Any:
    """pydynox model class for the item (None when pydynox is not installed)."""
    try:
        from pydynox import Model as XModel, ModelConfig, attributes as xa
    except ImportError:
        return None

    class XUser(XModel):
        model_config = ModelConfig(table=TABLE, client=client)
        pk = xa.StringAttribute(partition_key=True)
        sk = xa.StringAttribute(sort_key=True)
        type_ = xa.StringAttribute(alias=TYPE, default="User")
        user_id = xa.StringAttribute()
        name = xa.StringAttribute()
        age = xa.NumberAttribute()
        balance = xa.DecimalAttribute()
        created = xa.DatetimeAttribute()
        active = xa.BooleanAttribute()
        tags = xa.StringSetAttribute()
        scores = xa.ListAttribute()
        address = xa.MapAttribute(Address)
        nickname = xa.StringAttribute()
        stream_id = xa.StringAttribute()

    def make(i: int, prefix: str = "u", stream: str | None = None) -> Any:
        v = values(i, prefix)
        pk, sk, kind = keys_of(v["user_id"], stream)
        return XUser(pk=pk, sk=sk, type_=kind, stream_id=stream, **v)

    return XUser, make


def installed_version(distribution: str) -> str | None:
    from importlib import metadata

    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return None
