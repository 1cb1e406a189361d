"""Unit tests for dynamodel.core.codec: Python values <-> AttributeValues and item sizes."""

from __future__ import annotations

import datetime as dt
import enum
import uuid
from decimal import Decimal
from typing import Any

import pytest
from pydantic import BaseModel, Field

from dynamodel import ItemTooLarge, Model, Table, ValidationError
from dynamodel.core.codec import (
    MAX_DEPTH,
    MAX_ITEM_BYTES,
    OMIT,
    check_item_size,
    decode,
    decode_item,
    decode_number,
    encode,
    encode_map,
    format_datetime,
    item_size,
    value_size,
)

UNIT = Table("codec-unit")


class Color(enum.Enum):
    RED = "red"
    BLUE = "blue"


class Level(enum.IntEnum):
    LOW = 1
    HIGH = 2


class Point(BaseModel):
    x: int
    label: str = Field(alias="lbl")


# -- encoding every type ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("", {"S": ""}),
        ("héllo ✓ 🙂", {"S": "héllo ✓ 🙂"}),
        (True, {"BOOL": True}),
        (False, {"BOOL": False}),
        (0, {"N": "0"}),
        (-17, {"N": "-17"}),
        (10**37, {"N": str(10**37)}),
        (Decimal("1.50"), {"N": "1.50"}),
        (Decimal("-0.000001"), {"N": "-0.000001"}),
        (None, {"NULL": True}),
        (b"\x00\xff", {"B": b"\x00\xff"}),
        (bytearray(b"ab"), {"B": b"ab"}),
        (memoryview(b"cd"), {"B": b"cd"}),
        ([], {"L": []}),
        ([1, "a", None], {"L": [{"N": "1"}, {"S": "a"}, {"NULL": True}]}),
        ((1, 2), {"L": [{"N": "1"}, {"N": "2"}]}),
        ({}, {"M": {}}),
        ({"a": {"b": [True]}}, {"M": {"a": {"M": {"b": {"L": [{"BOOL": True}]}}}}}),
        (Color.RED, {"S": "red"}),
        (Level.HIGH, {"N": "2"}),
        (
            dt.datetime(2024, 5, 1, 9, 30, 0, 5, tzinfo=dt.UTC),
            {"S": "2024-05-01T09:30:00.000005Z"},
        ),
        (dt.date(2024, 5, 1), {"S": "2024-05-01"}),
        (dt.time(9, 30), {"S": "09:30:00"}),
        (
            uuid.UUID("12345678-1234-5678-1234-567812345678"),
            {"S": "12345678-1234-5678-1234-567812345678"},
        ),
        (Point(x=1, lbl="p"), {"M": {"x": {"N": "1"}, "lbl": {"S": "p"}}}),
    ],
)
def test_encode_every_type(value: Any, expected: dict[str, Any]) -> None:
    assert encode(value) == expected


def test_encode_sets() -> None:
    assert sorted(encode({"b", "a"})["SS"]) == ["a", "b"]
    assert sorted(encode({3, 1, Decimal("2.5")})["NS"]) == ["1", "2.5", "3"]
    assert sorted(encode(frozenset({b"x", b"y"}))["BS"]) == [b"x", b"y"]
    assert sorted(encode({1.5, 2})["NS"]) == ["1.5", "2"]


def test_mixed_set_is_refused() -> None:
    with pytest.raises(ValidationError, match="only strings, only numbers or only bytes"):
        encode({"a", 1})


def test_float_sets_need_float_declaration() -> None:
    with pytest.raises(ValidationError):
        encode({1.5, 2.5}, allow_float=False)


def test_empty_set_is_omitted_at_top_level_and_stored_as_empty_list_when_nested() -> None:
    assert encode(set()) is OMIT
    assert encode(frozenset()) is OMIT
    assert encode_map({"a": set(), "b": 1}) == {"a": {"L": []}, "b": {"N": "1"}}
    assert encode({"inner": {"s": set()}}) == {"M": {"inner": {"M": {"s": {"L": []}}}}}
    assert encode([{"a"}, set()]) == {"L": [{"SS": ["a"]}, {"L": []}]}


def test_unsupported_type_and_bad_map_key() -> None:
    with pytest.raises(ValidationError, match="cannot store"):
        encode(object())
    with pytest.raises(ValidationError, match="map keys must be strings"):
        encode({1: "a"})


def test_str_subclass_and_enum_keys() -> None:
    class Name(str):
        pass

    assert encode(Name("x")) == {"S": "x"}
    assert encode({Color.BLUE: 1}) == {"M": {"blue": {"N": "1"}}}


# -- numbers ---------------------------------------------------------------------------------


def test_float_refused_unless_allowed() -> None:
    with pytest.raises(ValidationError, match="float"):
        encode(0.1, allow_float=False)
    with pytest.raises(ValidationError, match="float"):
        encode({"nested": [0.1]}, allow_float=False)
    assert encode(0.1, allow_float=True) == {"N": "0.1"}
    assert encode(1e-7) == {"N": "1e-07"}


def test_38_significant_digits_limit() -> None:
    biggest = int("9" * 38)
    assert encode(biggest) == {"N": "9" * 38}
    assert encode(-biggest) == {"N": "-" + "9" * 38}
    assert encode(Decimal("0." + "1" * 38)) == {"N": "0." + "1" * 38}
    with pytest.raises(ValidationError, match="39 significant digits"):
        encode(int("1" * 39))
    with pytest.raises(ValidationError, match="significant digits"):
        encode(Decimal("1." + "1" * 38))
    with pytest.raises(ValidationError, match="significant digits"):
        encode({"deep": [Decimal("0." + "7" * 39)]})
    # leading and trailing zeros are not significant
    assert encode(10**40) == {"N": "1" + "0" * 40}
    assert encode(Decimal("0.000" + "5" * 38)) == {"N": "0.000" + "5" * 38}
    assert encode(Decimal("1" * 38 + ".000")) == {"N": "1" * 38 + ".000"}


@pytest.mark.parametrize(
    "value",
    [Decimal("NaN"), Decimal("sNaN"), Decimal("Infinity"), Decimal("-Infinity")],
)
def test_non_finite_decimals_refused(value: Decimal) -> None:
    with pytest.raises(ValidationError, match="finite"):
        encode(value)


@pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf")])
def test_non_finite_floats_refused(value: float) -> None:
    with pytest.raises(ValidationError, match="finite"):
        encode(value, allow_float=True)
    with pytest.raises(ValidationError):
        encode({value, 1.0}, allow_float=True)


def test_decode_numbers_never_float() -> None:
    assert decode_number("12") == 12 and type(decode_number("12")) is int
    assert decode_number("-0") == 0
    assert decode_number("1.50") == Decimal("1.50")
    assert decode_number("1E+5") == Decimal("1E+5")
    assert decode_number("1e-7") == Decimal("1e-7")
    big = "1" * 38
    assert decode_number(big) == int(big)


# -- decoding ----------------------------------------------------------------------------------


def test_decode_every_tag() -> None:
    raw = {
        "s": {"S": "x"},
        "n": {"N": "7"},
        "b": {"B": b"\x01"},
        "t": {"BOOL": True},
        "z": {"NULL": True},
        "ss": {"SS": ["a", "b"]},
        "ns": {"NS": ["1", "2.5"]},
        "bs": {"BS": [b"x"]},
        "l": {"L": [{"N": "1"}, {"M": {"k": {"S": "v"}}}]},
        "m": {"M": {}},
    }
    assert decode_item(raw) == {
        "s": "x",
        "n": 7,
        "b": b"\x01",
        "t": True,
        "z": None,
        "ss": {"a", "b"},
        "ns": {1, Decimal("2.5")},
        "bs": {b"x"},
        "l": [1, {"k": "v"}],
        "m": {},
    }
    with pytest.raises(ValidationError, match="unknown AttributeValue type"):
        decode({"X": 1})


# -- datetimes -----------------------------------------------------------------------------------


@pytest.mark.filterwarnings("ignore::dynamodel.NaiveDatetimeWarning")  # naive: stored as is
def test_format_datetime_is_fixed_width_utc() -> None:
    plus2 = dt.timezone(dt.timedelta(hours=2))
    assert format_datetime(dt.datetime(2024, 5, 1, 11, 30, tzinfo=plus2)) == (
        "2024-05-01T09:30:00.000000Z"
    )
    assert format_datetime(dt.datetime(2024, 5, 1, 9, 30)) == "2024-05-01T09:30:00.000000"


@pytest.mark.filterwarnings("ignore::dynamodel.NaiveDatetimeWarning")
@pytest.mark.parametrize("year", [1, 999, 1000, 9999])
def test_format_datetime_fixed_width_for_every_year(year: int) -> None:
    """Fixed width (and so string order = time order) must hold for every datetime year."""
    aware = dt.datetime(year, 2, 3, 4, 5, 6, 7, tzinfo=dt.UTC)
    assert format_datetime(aware) == f"{year:04d}-02-03T04:05:06.000007Z"
    assert len(format_datetime(aware.replace(tzinfo=None))) == len("2024-05-01T09:30:00.000000")


# -- nesting depth -------------------------------------------------------------------------------


def _nested_lists(levels: int) -> Any:
    value: Any = "leaf"
    for _ in range(levels):
        value = [value]
    return value


def _nested_maps(levels: int) -> Any:
    value: Any = "leaf"
    for _ in range(levels):
        value = {"k": value}
    return value


@pytest.mark.parametrize("make", [_nested_lists, _nested_maps])
def test_nesting_depth_limit(make: Any) -> None:
    encode(make(MAX_DEPTH))  # 32 levels of lists/maps are allowed
    with pytest.raises(ValidationError, match="nesting deeper than 32"):
        encode(make(MAX_DEPTH + 1))
    with pytest.raises(ValidationError, match="nesting"):
        encode(make(100))


# -- item sizes ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "size"),
    [
        ({"S": "abc"}, 3),
        ({"S": "é"}, 2),
        ({"S": "🙂"}, 4),
        ({"S": ""}, 0),
        ({"B": b"12345"}, 5),
        ({"BOOL": True}, 1),
        ({"NULL": True}, 1),
        ({"N": "0"}, 1),
        ({"N": "7"}, 2),
        ({"N": "12"}, 2),
        ({"N": "123"}, 3),
        ({"N": "-12345.6700"}, 5),  # significant digits 1234567: ceil(7 / 2) + 1
        ({"N": "1000000"}, 2),
        ({"N": "1E+5"}, 2),
        ({"SS": ["ab", "cde"]}, 5),
        ({"NS": ["1", "22"]}, 4),
        ({"BS": [b"x", b"yz"]}, 3),
        ({"L": []}, 3),
        ({"M": {}}, 3),
        ({"L": [{"S": "ab"}, {"N": "1"}]}, 3 + (1 + 2) + (1 + 2)),
        ({"M": {"key": {"S": "ab"}}}, 3 + 1 + 3 + 2),
        ({"M": {"a": {"L": [{"BOOL": False}]}}}, 3 + 1 + 1 + (3 + 1 + 1)),
    ],
)
def test_value_sizes(value: dict[str, Any], size: int) -> None:
    assert value_size(value) == size


def test_item_size_counts_names_and_values() -> None:
    item = {"pk": {"S": "USER#1"}, "age": {"N": "42"}, "név": {"BOOL": True}}
    assert item_size(item) == (2 + 6) + (3 + 2) + (4 + 1)
    assert item_size({}) == 0


def test_check_item_size_boundary() -> None:
    name = "blob"
    exact = {name: {"B": b"x" * (MAX_ITEM_BYTES - len(name))}}
    assert check_item_size(exact, "T") == MAX_ITEM_BYTES == 409_600
    over = {name: {"B": b"x" * (MAX_ITEM_BYTES - len(name) + 1)}}
    with pytest.raises(ItemTooLarge) as info:
        check_item_size(over, "T")
    assert info.value.size == MAX_ITEM_BYTES + 1
    assert info.value.limit == MAX_ITEM_BYTES
    assert "409,601" in str(info.value)
    assert isinstance(info.value, ValidationError)


# -- models: float declaration, empty sets, item shape ---------------------------------------


class Floaty(Model):
    class Meta:
        table = UNIT
        pk = "F#{id}"
        sk = "F"

    id: str
    ratio: float = 0.0
    weights: dict[str, float] = Field(default_factory=dict)
    anything: dict[str, Any] = Field(default_factory=dict)


class WithSets(Model):
    class Meta:
        table = UNIT
        pk = "S#{id}"
        sk = "S"

    id: str
    names: set[str] = Field(default_factory=set)
    numbers: set[int] = Field(default_factory=set)
    blobs: frozenset[bytes] = frozenset()
    maybe: set[str] | None = None


def test_float_stored_only_where_declared() -> None:
    item = Floaty(id="1", ratio=0.1, weights={"a": 2.5}).to_item()
    assert item["ratio"] == {"N": "0.1"}
    assert item["weights"] == {"M": {"a": {"N": "2.5"}}}
    with pytest.raises(ValidationError, match="lose precision"):
        Floaty(id="1", anything={"x": 0.1}).to_item()
    ok = Floaty(id="1", anything={"x": Decimal("0.1")}).to_item()
    assert ok["anything"] == {"M": {"x": {"N": "0.1"}}}


def test_model_to_item_shape() -> None:
    item = Floaty(id="7").to_item()
    assert item["pk"] == {"S": "F#7"}
    assert item["sk"] == {"S": "F"}
    assert item["_type"] == {"S": "Floaty"}
    assert item["id"] == {"S": "7"}


def test_empty_sets_omitted_and_read_back_empty() -> None:
    model = WithSets(id="1")
    item = model.to_item()
    for name in ("names", "numbers", "blobs"):
        assert name not in item
    assert item["maybe"] == {"NULL": True}
    back = WithSets.from_item(item)
    assert back == model
    assert back.names == set() and back.numbers == set() and back.blobs == frozenset()
    full = WithSets(id="2", names={"a"}, numbers={1, 2}, blobs=frozenset({b"z"}), maybe={"m"})
    assert WithSets.from_item(full.to_item()) == full
    empty_optional = WithSets(id="3", maybe=set())
    assert "maybe" not in empty_optional.to_item()
    assert WithSets.from_item(empty_optional.to_item()).maybe == set()


class Tagged(BaseModel):
    tags: set[str]


class Wrapper(BaseModel):
    tagged: Tagged
    more: list[Tagged] = Field(default_factory=list)


class Labelled(BaseModel):
    kind: str = "labelled"
    labels: set[str]


class HasNested(Model):
    class Meta:
        table = UNIT
        pk = "N#{id}"
        sk = "N"

    id: str
    inner: Tagged | None = None
    wrapped: Wrapper | None = None
    many: list[Tagged] = Field(default_factory=list)
    fixed: tuple[Tagged, ...] = ()
    maybe_many: list[Tagged] | None = None
    by_name: dict[str, Tagged] = Field(default_factory=dict)
    by_name_lists: dict[str, list[Tagged]] = Field(default_factory=dict)
    grid: list[list[Tagged]] = Field(default_factory=list)
    by_two_names: dict[str, dict[str, Tagged]] = Field(default_factory=dict)
    either: Tagged | Labelled | None = None
    eithers: list[Labelled | Tagged] = Field(default_factory=list)


EMPTY = Tagged(tags=set())


@pytest.mark.parametrize(
    "values",
    [
        {"inner": EMPTY},
        {"wrapped": Wrapper(tagged=EMPTY, more=[EMPTY, Tagged(tags={"a"})])},
        {"many": [EMPTY, Tagged(tags={"x"}), EMPTY]},
        {"fixed": (EMPTY,)},
        {"maybe_many": [EMPTY]},
        {"by_name": {"a": EMPTY, "b": Tagged(tags={"b"})}},
        {"by_name_lists": {"a": [EMPTY]}},
        {"grid": [[EMPTY], [Tagged(tags={"g"}), EMPTY]]},
        {"by_two_names": {"a": {"b": EMPTY}}},
        {"either": EMPTY},
        {"either": Labelled(labels=set())},
        {"eithers": [EMPTY, Labelled(labels=set()), Labelled(labels={"l"})]},
    ],
    ids=[
        "model",
        "model-in-model",
        "list",
        "tuple",
        "optional-list",
        "dict",
        "dict-of-lists",
        "list-of-lists",
        "dict-of-dicts",
        "union-first-member",
        "union-second-member",
        "list-of-union",
    ],
)
def test_empty_sets_in_nested_models_read_back_as_empty_sets(values: dict[str, Any]) -> None:
    """docs: an empty set nested in a map or list is stored as an empty list and read back as
    an empty set, in the same model class."""
    model = HasNested(id="1", **values)
    item = model.to_item()
    back = HasNested.from_item(item)
    assert back == model
    for name in values:  # the same classes, not just equal-looking data
        assert repr(getattr(back, name)) == repr(getattr(model, name))


def test_deep_nesting_in_a_model_is_refused() -> None:
    with pytest.raises(ValidationError, match="nesting"):
        Floaty(id="1", anything={"x": _nested_lists(40)}).to_item()


@pytest.mark.parametrize(
    "value", [Decimal("1E+126"), Decimal("-1E+126"), Decimal("1E-131"), 10**126, 1e300, 1e-140]
)
def test_numbers_outside_dynamodb_range_are_refused(value: Any) -> None:
    with pytest.raises(ValidationError, match="out of DynamoDB's number range"):
        encode(value)


@pytest.mark.parametrize("value", [Decimal("9.9E+125"), Decimal("1E-130"), 10**125, Decimal(0)])
def test_numbers_at_the_edges_of_the_range_are_accepted(value: Any) -> None:
    assert "N" in encode(value)


def test_aware_datetime_outside_utc_range_is_a_validation_error() -> None:
    late = dt.datetime(9999, 12, 31, 23, 0, tzinfo=dt.timezone(dt.timedelta(hours=-5)))
    with pytest.raises(ValidationError, match="out of range in UTC"):
        encode(late)
