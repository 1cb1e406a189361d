"""The compiled per-model encoders store exactly what the model_dump() path stores."""

from __future__ import annotations

import datetime as dt
import enum
import uuid
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings, strategies as st
from pydantic import BaseModel, Field, field_serializer

from dynamodel import TTL, ItemTooLarge, Model, Table, ValidationError
from dynamodel.core.codec import item_size

TABLE = Table("compiled")


class Colour(enum.Enum):
    RED = "red"
    BLUE = "blue"


class Address(BaseModel):
    street: str
    zip_code: str = Field(alias="zip")


class SpecialAddress(Address):
    floor: int = 0


class Everything(Model):
    class Meta:
        table = TABLE
        pk = "E#{eid}"
        sk = "E"

    eid: str
    text: str = ""
    count: int = 0
    ratio: float = 0.5
    amount: Decimal = Decimal("0")
    flag: bool = False
    when: dt.datetime = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
    day: dt.date = dt.date(2024, 1, 1)
    maybe: str | None = None
    maybe_int: int | None = None
    tags: set[str] = Field(default_factory=set)
    numbers: set[int] = Field(default_factory=set)
    scores: list[int] = Field(default_factory=list)
    words: list[str] = Field(default_factory=list)
    mixed: list[Any] = Field(default_factory=list)
    blob: bytes = b""
    colour: Colour = Colour.RED
    ident: uuid.UUID = uuid.UUID(int=0)
    address: Address | None = None
    addresses: list[Address] = Field(default_factory=list)
    doc: dict[str, Any] = Field(default_factory=dict)
    expires: TTL | None = None
    renamed: str = Field(default="r", alias="rn")
    hidden: str = Field(default="not stored", exclude=True)


class Serialized(Model):
    class Meta:
        table = TABLE
        pk = "S#{sid}"
        sk = "S"

    sid: str
    secret: str = "x"

    @field_serializer("secret")
    def _mask(self, value: str) -> str:
        return value.upper()


def _normal(value: Any) -> Any:
    """Set types compare as sets (their element order is the set's iteration order)."""
    if isinstance(value, dict):
        return {
            k: frozenset(v) if k in ("SS", "NS", "BS") else _normal(v) for k, v in value.items()
        }
    if isinstance(value, list):
        return [_normal(v) for v in value]
    return value


def _both(instance: Model) -> tuple[dict[str, Any], dict[str, Any]]:
    spec = instance._spec()
    instance.to_item()  # compiles the encoder
    assert spec.encoder is not None
    compiled, size = spec.encoder(instance.__dict__)
    dumped = instance._dumped_item(spec)
    # exact for everything but numbers, whose size is bounded (len(text) // 2 + 2 each)
    exact = item_size(compiled)
    assert exact <= size <= exact + _number_chars(compiled)
    return _normal(compiled), _normal(dumped)


def _number_chars(value: Any) -> int:
    """Characters plus 2 per number in an item: how far the compiled size may exceed it."""
    if isinstance(value, dict):
        total = 0
        for tag, inner in value.items():
            if tag == "N":
                total += len(inner) + 2
            elif tag == "NS":
                total += sum(len(n) + 2 for n in inner)
            else:
                total += _number_chars(inner)
        return total
    if isinstance(value, list):
        return sum(_number_chars(v) for v in value)
    return 0


texts = st.text(max_size=20)
ints = st.integers(min_value=-(10**37), max_value=10**37)
decimals = st.decimals(
    allow_nan=False, allow_infinity=False, places=4, min_value=-(10**20), max_value=10**20
)


@settings(max_examples=150, deadline=None)
@given(
    text=texts,
    count=ints,
    amount=decimals,
    flag=st.booleans(),
    when=st.datetimes(timezones=st.just(dt.UTC)),
    maybe=st.none() | texts,
    maybe_int=st.none() | ints,
    tags=st.sets(texts, max_size=4),
    numbers=st.sets(ints, max_size=4),
    scores=st.lists(ints, max_size=5),
    words=st.lists(texts, max_size=5),
    mixed=st.lists(st.one_of(texts, ints, st.booleans(), st.none()), max_size=4),
    blob=st.binary(max_size=10),
    address=st.none() | st.builds(Address, street=texts, zip=texts),
    special=st.booleans(),
    doc=st.dictionaries(texts, st.one_of(texts, ints), max_size=3),
)
def test_compiled_equals_model_dump_path(special: bool, **values: Any) -> None:
    if special and values["address"] is not None:
        values["address"] = SpecialAddress(street="s", zip="z", floor=3)
    instance = Everything(eid="e", **values)
    compiled, dumped = _both(instance)
    assert compiled == dumped


@pytest.mark.filterwarnings("ignore:Pydantic serializer warnings:UserWarning")
def test_values_assigned_without_validation_take_the_general_path() -> None:
    instance = Everything(
        eid="e", expires=dt.timedelta(hours=1), addresses=[Address(street="a", zip="1")]
    )
    instance.count = "not a number"  # type: ignore[assignment]  # no validate_assignment
    instance.flag = 1  # type: ignore[assignment]
    instance.scores = [1, "two"]  # type: ignore[list-item]
    compiled, dumped = _both(instance)
    assert compiled == dumped
    assert compiled["count"] == {"S": "not a number"} and compiled["flag"] == {"N": "1"}
    assert compiled["expires"]["N"].isdigit()  # the TTL serializer ran
    assert "hidden" not in compiled and compiled["rn"] == {"S": "r"}


def test_bad_numbers_are_refused_with_the_field_name() -> None:
    instance = Everything(eid="e")
    instance.count = 10**38 + 1  # 39 significant digits
    with pytest.raises(ValidationError, match="count"):
        instance.to_item()
    instance = Everything(eid="e", amount=Decimal("1e200"))  # beyond 9.99e125
    with pytest.raises(ValidationError, match="amount"):
        instance.to_item()


def test_models_with_serializers_keep_the_general_path() -> None:
    item = Serialized(sid="1", secret="abc").to_item()
    assert Serialized._spec().encoder is None
    assert item["secret"] == {"S": "ABC"}


def test_size_limit_still_enforced() -> None:
    with pytest.raises(ItemTooLarge, match="409,600"):
        Everything(eid="e", text="x" * 409_600).to_item()
    Everything(eid="e", text="x" * 400_000).to_item()


def test_numbers_bounded_above_the_limit_are_measured_exactly() -> None:
    # 1,000 numbers of 1 significant digit: 2 bytes each exactly, bounded at 7 ("100000000")
    scores = [100_000_000] * 1_000
    base = Everything(eid="e", scores=scores).to_item()
    text = 409_600 - item_size(base)  # brings the exact size to the limit
    item = Everything(eid="e", scores=scores, text="x" * text).to_item()
    assert item_size(item) == 409_600  # accepted: the bound exceeded the limit, not the item
    with pytest.raises(ItemTooLarge, match="409,601"):
        Everything(eid="e", scores=scores, text="x" * (text + 1)).to_item()


def test_models_with_their_own_private_attributes_keep_them() -> None:
    from pydantic import PrivateAttr

    from dynamodel import Shards

    class Tracked(Model):
        class Meta:
            table = TABLE
            pk = "T#{tid}"
            sk = "T"
            shards = Shards(4)

        tid: str
        _seen: int = PrivateAttr(default=0)

    first = Tracked(tid="a")
    first._seen = 5
    item = first.to_item()  # chooses and records a random shard
    shard = first.shard_number()
    assert item["pk"] == {"S": f"T#a.{shard}"} and first._seen == 5
    read = Tracked.from_item(item)
    assert read._seen == 0 and read.shard_number() == shard
    partial = Tracked.from_partial_item({"pk": item["pk"], "tid": {"S": "a"}})
    assert partial._dm_partial and partial.shard_number() == shard and partial._seen == 0
