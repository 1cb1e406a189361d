"""Property-based round trips: any value of any supported type is stored and read back exactly
(numerically equal for numbers), through save/get with the sync and the async API, and through
``to_item``/``from_item`` without a server."""

from __future__ import annotations

import datetime as dt
import enum
import uuid
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, given, settings, strategies as st
from pydantic import BaseModel, Field

from dynamodel import Model, Table
from dynamodel.local import LocalDynamoDB

# naive datetimes are valid values: they round-trip (stored as written) with a warning that
# every test here would repeat
pytestmark = pytest.mark.filterwarnings("ignore::dynamodel.NaiveDatetimeWarning")

ROUNDTRIP = Table("roundtrip")


class Color(enum.Enum):
    RED = "red"
    GREEN = "green"


class Level(enum.IntEnum):
    LOW = 1
    HIGH = 2


class Inner(BaseModel):
    label: str
    amount: Decimal
    flags: list[bool] = Field(default_factory=list)
    when: dt.datetime | None = None
    tags: set[str]


class Everything(Model):
    class Meta:
        table = ROUNDTRIP
        pk = "RT#{id}"
        sk = "ALL"

    id: str
    text: str
    whole: int
    exact: Decimal
    approx: float
    flag: bool
    nothing: None = None
    maybe: int | None = None
    blob: bytes
    numbers: list[int]
    prices: dict[str, Decimal]
    tree: dict[str, Any]
    inner: Inner
    inners: list[Inner]
    inner_map: dict[str, Inner]
    names: set[str]
    counts: set[int]
    blobs: set[bytes]
    at: dt.datetime
    day: dt.date
    uid: uuid.UUID
    color: Color
    level: Level
    aliased: str = Field(default="", alias="data")


# -- strategies within DynamoDB's limits -----------------------------------------------------------

texts = st.text(max_size=20)  # any unicode except lone surrogates (not valid UTF-8)
keys = st.text(min_size=1, max_size=10)
ints = st.integers(min_value=-(10**38) + 1, max_value=10**38 - 1)


@st.composite
def decimals(draw: Any) -> Decimal:
    """At most 38 significant digits, magnitude within DynamoDB's 1E-130 .. 9.99E+125."""
    length = draw(st.integers(min_value=1, max_value=38))
    digits = tuple(draw(st.lists(st.integers(0, 9), min_size=length, max_size=length)))
    exponent = draw(st.integers(min_value=-130, max_value=126 - length))
    return Decimal((draw(st.integers(0, 1)), digits, exponent))


floats = st.floats(min_value=-1e125, max_value=1e125, allow_nan=False, allow_infinity=False).filter(
    lambda x: x == 0 or abs(x) > 1e-129
)
binaries = st.binary(max_size=20)
scalars = st.one_of(st.none(), st.booleans(), ints, decimals(), texts, binaries)
trees = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.dictionaries(keys, children, max_size=4),
    ),
    max_leaves=12,
)
tree_maps = st.dictionaries(
    keys,
    st.one_of(trees, st.sets(st.text(min_size=1, max_size=5), min_size=1, max_size=3)),
    max_size=5,
)
offsets = st.integers(min_value=-14 * 60, max_value=14 * 60).map(
    lambda m: dt.timezone(dt.timedelta(minutes=m))
)
# years 1000+: years below 1000 are covered (and currently fail) in test_codec/test_keys
datetimes = st.datetimes(
    min_value=dt.datetime(1000, 1, 2), max_value=dt.datetime(9998, 12, 30)
) | st.datetimes(
    min_value=dt.datetime(1000, 1, 2),
    max_value=dt.datetime(9998, 12, 30),
    timezones=st.just(dt.UTC) | offsets,
)
inners = st.builds(
    Inner,
    label=texts,
    amount=decimals(),
    flags=st.lists(st.booleans(), max_size=3),
    when=st.none() | datetimes,
    tags=st.sets(st.text(min_size=1, max_size=5), max_size=2),
)


@st.composite
def everything(draw: Any) -> Everything:
    return Everything(
        id=str(draw(st.uuids())),
        text=draw(texts),
        whole=draw(ints),
        exact=draw(decimals()),
        approx=draw(floats),
        flag=draw(st.booleans()),
        maybe=draw(st.none() | ints),
        blob=draw(binaries),
        numbers=draw(st.lists(ints, max_size=5)),
        prices=draw(st.dictionaries(keys, decimals(), max_size=4)),
        tree=draw(tree_maps),
        inner=draw(inners),
        inners=draw(st.lists(inners, max_size=2)),
        inner_map=draw(st.dictionaries(keys, inners, max_size=2)),
        names=draw(st.sets(st.text(min_size=1, max_size=8), max_size=4)),
        counts=draw(st.sets(ints, max_size=4)),
        blobs=draw(st.sets(st.binary(min_size=1, max_size=8), max_size=4)),
        at=draw(datetimes),
        day=draw(st.dates()),
        uid=draw(st.uuids()),
        color=draw(st.sampled_from(Color)),
        level=draw(st.sampled_from(Level)),
        data=draw(texts),
    )


def assert_same(back: Everything, original: Everything) -> None:
    assert type(back) is Everything
    # field by field for readable failures; == on numbers is numeric (Decimal("1.50") == 1.5)
    for name in Everything.model_fields:
        assert getattr(back, name) == getattr(original, name), name
    assert back == original
    assert type(back.whole) is int and type(back.exact) is Decimal and type(back.approx) is float


# no shrinking through the server (each step is a round trip): a failure is shrunk, readably,
# by test_to_item_from_item_round_trip below, which runs the same strategy without a server
SETTINGS = settings(
    max_examples=50,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    phases=[Phase.explicit, Phase.reuse, Phase.generate],
)


@pytest.fixture
def roundtrip_table(fresh_db: LocalDynamoDB) -> Iterator[Table]:
    ROUNDTRIP.create(poll=0.01)
    yield ROUNDTRIP


# -- through the server ----------------------------------------------------------------------------


@SETTINGS
@given(original=everything())
def test_round_trip_sync(roundtrip_table: Table, original: Everything) -> None:
    original.save()
    assert_same(Everything.get(id=original.id), original)
    assert_same(Everything.get(id=original.id, consistent=True), original)


@SETTINGS
@given(original=everything())
async def test_round_trip_async(roundtrip_table: Table, original: Everything) -> None:
    await original.asave()
    assert_same(await Everything.aget(id=original.id), original)
    (queried,) = [item async for item in Everything.query(id=original.id)]
    assert_same(queried, original)


def test_round_trip_of_extremes(roundtrip_table: Table) -> None:
    extreme = Everything(
        id="extreme",
        text="ünï©ødé 🙂 \u0000 #x = :y",
        whole=-(10**38) + 1,
        exact=Decimal("-9.9999999999999999999999999999999999999E+125"),
        approx=-1.7976931348623157e100,
        flag=False,
        maybe=10**37,
        blob=bytes(range(256)),
        numbers=[0, -1, 10**38 - 1],
        prices={"tiny": Decimal("1E-130"), "precise": Decimal("0." + "1" * 38)},
        tree={"deep": [[[{"x": [b"", None, True, ""]}]]], "set": {"a", "b"}},
        inner=Inner(label="", amount=Decimal("-0"), tags=set()),
        inners=[],
        inner_map={"k": Inner(label="x", amount=Decimal(1), tags=set())},
        names=set(),
        counts={-(10**38) + 1, 0, 10**38 - 1},
        blobs=set(),
        at=dt.datetime(9998, 12, 31, 23, 59, 59, 999999, tzinfo=dt.UTC),
        day=dt.date(1, 1, 1),
        uid=uuid.UUID(int=0),
        color=Color.GREEN,
        level=Level.HIGH,
        data="",
    )
    extreme.save()
    assert_same(Everything.get(id="extreme"), extreme)


# -- without a server ------------------------------------------------------------------------------


@settings(max_examples=150, deadline=None)
@given(original=everything())
def test_to_item_from_item_round_trip(original: Everything) -> None:
    item = original.to_item()
    assert item["pk"] == {"S": f"RT#{original.id}"}
    assert item["_type"] == {"S": "Everything"}
    assert "data" in item and "aliased" not in item
    assert_same(Everything.from_item(item), original)
