"""Unit tests for dynamodel.keys: key templates and how values render into key text."""

from __future__ import annotations

import datetime as dt
import enum
import random
import uuid
from decimal import Decimal

import pytest

from dynamodel import Model, Table, ValidationError
from dynamodel.keys import INT_SORT_WIDTH, KeyTemplate, render_part

KEYS = Table("keys-unit")


class Kind(enum.Enum):
    A = "alpha"


class Rank(enum.IntEnum):
    ONE = 1


def test_template_parsing() -> None:
    t = KeyTemplate("ORDER#{placed_at}#{order_id:08d}")
    assert t.fields == ("placed_at", "order_id")
    assert t.text == "ORDER#{placed_at}#{order_id:08d}"
    assert not t.is_constant
    assert KeyTemplate("PROFILE").is_constant
    assert KeyTemplate("PROFILE").render({}) == "PROFILE"
    assert KeyTemplate("{a}{b}").fields == ("a", "b")


@pytest.mark.parametrize("text", ["A#{x!r}", "A#{x.y}", "A#{0}", "A#{}", "A#{x", "A#}", "{x[0]}"])
def test_bad_templates(text: str) -> None:
    with pytest.raises(ValidationError):
        KeyTemplate(text)


def test_template_must_be_a_string() -> None:
    with pytest.raises(ValidationError):
        KeyTemplate(42)  # type: ignore[arg-type]


def test_render_values_in_partition_keys() -> None:
    t = KeyTemplate("X#{v}")
    assert t.render({"v": "abc"}) == "X#abc"
    assert t.render({"v": 42}) == "X#42"  # ints are not padded in partition keys
    assert t.render({"v": -3}) == "X#-3"
    assert t.render({"v": True}) == "X#true"
    assert t.render({"v": False}) == "X#false"
    assert t.render({"v": Kind.A}) == "X#alpha"
    assert t.render({"v": Decimal("1.50")}) == "X#1.50"
    assert t.render({"v": 2.5}) == "X#2.5"
    u = uuid.UUID("12345678-1234-5678-1234-567812345678")
    assert t.render({"v": u}) == "X#12345678-1234-5678-1234-567812345678"
    assert t.render({"v": dt.date(2024, 1, 2)}) == "X#2024-01-02"


def test_ints_zero_padded_in_sort_keys() -> None:
    t = KeyTemplate("N#{n}", sort=True)
    assert t.render({"n": 7}) == "N#" + "7".zfill(INT_SORT_WIDTH)
    assert t.render({"n": 0}) == "N#" + "0" * 20
    assert t.render({"n": Rank.ONE}) == "N#" + "1".zfill(20)
    values = [*random.Random(1).sample(range(10**12), 200), 0, 9, 10, 99, 100, 10**19]
    rendered = [t.render({"n": v}) for v in values]
    assert sorted(rendered) == [t.render({"n": v}) for v in sorted(values)]
    assert len({len(r) for r in rendered}) == 1


def test_negative_ints_refused_in_sort_keys() -> None:
    t = KeyTemplate("N#{n}", sort=True)
    with pytest.raises(ValidationError, match="negative int"):
        t.render({"n": -1})
    # an explicit format spec is the documented way out
    assert KeyTemplate("N#{n:+08d}", sort=True).render({"n": -1}) == "N#-0000001"


def test_bools_are_not_padded_like_ints() -> None:
    assert KeyTemplate("{b}", sort=True).render({"b": True}) == "true"


def test_format_spec_wins() -> None:
    assert KeyTemplate("{n:08d}", sort=True).render({"n": 42}) == "00000042"
    assert KeyTemplate("{n:08d}").render({"n": 42}) == "00000042"
    assert KeyTemplate("{p:012.2f}").render({"p": Decimal("3.14159")}) == "000000003.14"
    assert KeyTemplate("{d:%Y/%m}").render({"d": dt.date(2024, 3, 9)}) == "2024/03"
    with pytest.raises(ValidationError, match="cannot format"):
        KeyTemplate("{s:08d}").render({"s": "text"})


def test_datetime_rendering_fixed_width_utc() -> None:
    t = KeyTemplate("T#{at}", sort=True)
    plus5 = dt.timezone(dt.timedelta(hours=5, minutes=30))
    at = dt.datetime(2024, 5, 1, 15, 0, tzinfo=plus5)
    assert t.render({"at": at}) == "T#2024-05-01T09:30:00.000000Z"
    assert t.render({"at": dt.datetime(2024, 5, 1, 9, 30, tzinfo=dt.UTC)}) == (
        "T#2024-05-01T09:30:00.000000Z"
    )


def test_aware_datetimes_sort_chronologically_as_key_text() -> None:
    rng = random.Random(7)
    zones = [dt.timezone(dt.timedelta(minutes=m)) for m in (-720, -300, 0, 60, 330, 840)]
    base = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)
    moments = [
        (
            base + dt.timedelta(seconds=rng.randrange(10**9), microseconds=rng.randrange(10**6))
        ).astimezone(rng.choice(zones))
        for _ in range(300)
    ]
    t = KeyTemplate("{at}", sort=True)
    by_text = sorted(moments, key=lambda m: t.render({"at": m}))
    assert by_text == sorted(moments)


def test_early_datetimes_sort_chronologically_as_key_text() -> None:
    """Years below 1000 must keep the fixed width so key order stays chronological."""
    t = KeyTemplate("{at}", sort=True)
    early = dt.datetime(999, 12, 31, tzinfo=dt.UTC)
    late = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
    assert t.render({"at": early}) < t.render({"at": late})


def test_dates_sort_chronologically() -> None:
    t = KeyTemplate("{d}", sort=True)
    days = [dt.date(1, 1, 1), dt.date(999, 5, 5), dt.date(2024, 2, 29), dt.date(9999, 12, 31)]
    assert sorted(days, key=lambda d: t.render({"d": d})) == days


def test_missing_and_none_fields() -> None:
    t = KeyTemplate("A#{a}#B#{b}")
    with pytest.raises(ValidationError, match="needs field 'b'"):
        t.render({"a": 1})
    with pytest.raises(ValidationError, match="needs field 'a'"):
        t.render({"a": None, "b": 2})
    assert t.try_render({"a": 1}) is None
    assert t.try_render({"a": 1, "b": None}) is None
    assert t.try_render({"a": 1, "b": 2}) == "A#1#B#2"


def test_unrenderable_value() -> None:
    with pytest.raises(ValidationError, match="cannot render"):
        render_part([1], "", sort=False, field="x")
    with pytest.raises(ValidationError, match="is None"):
        render_part(None, "", sort=False, field="x")


def test_prefix() -> None:
    t = KeyTemplate("ORDER#{placed_at}#{order_id}", sort=True)
    at = dt.datetime(2024, 5, 1, tzinfo=dt.UTC)
    assert t.prefix({}) == ("ORDER#", False)
    assert t.prefix({"placed_at": at}) == ("ORDER#2024-05-01T00:00:00.000000Z#", False)
    assert t.prefix({"placed_at": at, "order_id": 3}) == (
        "ORDER#2024-05-01T00:00:00.000000Z#" + "3".zfill(20),
        True,
    )
    # stops at the first missing field even when later ones are given
    assert t.prefix({"order_id": 3}) == ("ORDER#", False)
    assert KeyTemplate("PROFILE").prefix({}) == ("PROFILE", True)


# -- keys rendered by models -------------------------------------------------------------------


class Event(Model):
    class Meta:
        table = KEYS
        pk = "DEV#{device}"
        sk = "AT#{at}#{seq}"

    device: int
    at: dt.datetime
    seq: int


def test_model_keys_use_partition_and_sort_rules() -> None:
    at = dt.datetime(2024, 5, 1, 11, 30, tzinfo=dt.timezone(dt.timedelta(hours=2)))
    key = Event.build_key(device=5, at=at, seq=12)
    assert key == {
        "pk": {"S": "DEV#5"},
        "sk": {"S": "AT#2024-05-01T09:30:00.000000Z#" + "12".zfill(20)},
    }
    # key values are validated through the field types ("5" -> 5, ISO text -> datetime)
    assert Event.build_key(device="5", at="2024-05-01T09:30:00Z", seq="12") == key
    assert Event(device=5, at=at, seq=12).item_key() == key
    with pytest.raises(ValidationError, match="negative int"):
        Event(device=5, at=at, seq=-1).to_item()
    with pytest.raises(ValidationError, match="unexpected fields"):
        Event.build_key(device=5, at=at, seq=1, other=2)
    with pytest.raises(ValidationError, match="seq"):
        Event.build_key(device=5, at=at, seq="not a number")


class Sized(Model):
    class Meta:
        table = KEYS
        pk = "{p}"
        sk = "{s}"

    p: str
    s: str


def test_key_size_limits_and_empty_keys() -> None:
    Sized(p="x" * 2048, s="y" * 1024).to_item()
    with pytest.raises(ValidationError, match="2049 bytes"):
        Sized(p="x" * 2049, s="y").to_item()
    with pytest.raises(ValidationError, match="1025 bytes"):
        Sized(p="x", s="é" * 512 + "y").to_item()
    with pytest.raises(ValidationError, match="renders empty"):
        Sized(p="", s="y").to_item()


def test_escaped_braces_are_literal_text() -> None:
    t = KeyTemplate("A{{x}}#{y}#{z}", sort=True)
    assert t.fields == ("y", "z")
    assert t.render({"y": 1, "z": "q"}) == "A{x}#" + "1".zfill(20) + "#q"
    assert t.prefix({"y": 1}) == ("A{x}#" + "1".zfill(20) + "#", False)
