"""Unit tests for dynamodel.core.keys: key templates and how values render into key text."""

from __future__ import annotations

import datetime as dt
import enum
import random
import uuid
from decimal import Decimal

import pytest

from dynamodel import Model, Table, ValidationError
from dynamodel.core.keys import INT_SORT_WIDTH, KeyTemplate, render_part

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
    assert KeyTemplate("{a}#{b}").fields == ("a", "b")
    for ambiguous in ("{a}{b}", "X#{a}B{b}"):  # "aB"+"c" and "a"+"Bc" would collide
        with pytest.raises(ValidationError, match="need a separator between them"):
            KeyTemplate(ambiguous)


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


# -- injectivity: no value can forge another item's key (docs/security.md) ---------------------

from hypothesis import (  # noqa: E402
    assume,
    given,
    settings,
    strategies as st,
)

_LITERAL_PIECES = st.sampled_from(["#", "ORG#", "#TEAM#", "/", ":", "-x-", "#A#", "|", ".", "_"])


@st.composite
def templates(draw: st.DrawFn) -> str:
    """Templates of 1-3 fields, each field followed by a literal with a separator (the last
    one may end the template), with an optional constant start."""
    count = draw(st.integers(1, 3))
    text = draw(st.sampled_from(["", "P#", "X"]))
    for n in range(count):
        text += f"{{f{n}}}"
        if n < count - 1 or draw(st.booleans()):
            text += draw(_LITERAL_PIECES)
    return text


_TEXT = st.text(min_size=1, max_size=8)


@settings(max_examples=300, deadline=None)
@given(templates(), st.data())
def test_distinct_values_never_render_the_same_key(text: str, data: st.DataObject) -> None:
    template = KeyTemplate(text)
    first = {f: data.draw(_TEXT) for f in template.fields}
    second = {f: data.draw(_TEXT) for f in template.fields}
    assume(first != second)
    rendered = []
    for values in (first, second):
        try:
            rendered.append(template.render(values))
        except ValidationError as error:  # refused: it contains a separator
            assert "a separator of key template" in str(error)
            assert any(c in template.separators for v in values.values() for c in v)
    if len(rendered) == 2:
        assert rendered[0] != rendered[1]
        assert template.parse(rendered[0]) == first


@settings(max_examples=300, deadline=None)
@given(templates(), st.data())
def test_escape_mode_renders_any_strings_distinctly_and_parses_them_back(
    text: str, data: st.DataObject
) -> None:
    template = KeyTemplate(text, escape=True)
    first = {f: data.draw(st.text(min_size=1, max_size=8)) for f in template.fields}
    second = {f: data.draw(st.text(min_size=1, max_size=8)) for f in template.fields}
    one = template.render(first)
    assert template.parse(one) == first
    if first != second:
        assert template.render(second) != one


def test_separators_are_hash_and_the_literal_punctuation() -> None:
    assert KeyTemplate("ORG#{org}#TEAM#{team}").separators == "#"
    assert KeyTemplate("v1.{a}:{b}").separators == "#.:"
    assert KeyTemplate("{a}").separators == "#"


def test_a_forged_value_is_refused_naming_field_template_and_character() -> None:
    team = KeyTemplate("ORG#{org}#TEAM#{team}")
    assert team.render({"org": "a", "team": "b"}) == "ORG#a#TEAM#b"
    with pytest.raises(ValidationError) as info:
        team.render({"org": "a", "team": "b#TEAM#c"}, "Team")
    message = str(info.value)
    assert all(part in message for part in ("Team", "'team'", "ORG#{org}#TEAM#{team}", "'#'"))
    with pytest.raises(ValidationError, match="'org'"):
        team.render({"org": "a#TEAM#b", "team": "c"})
    # every checked type is checked, the fixed-format ones are not
    dotted = KeyTemplate("V.{a}", sort=True)
    with pytest.raises(ValidationError, match=r"'\.'"):
        dotted.render({"a": Decimal("1.5")})
    assert dotted.render({"a": dt.date(2024, 5, 1)}) == "V.2024-05-01"
    at = dt.datetime(2024, 5, 1, 9, 30, tzinfo=dt.UTC)  # (naive ones are refused in keys)
    assert KeyTemplate("K:{a}").render({"a": at}).startswith("K:2024")


def test_enum_values_and_format_specs_are_checked_too() -> None:
    class Bad(enum.Enum):
        X = "x#y"

    with pytest.raises(ValidationError, match="a separator"):
        KeyTemplate("E#{e}").render({"e": Bad.X})
    assert KeyTemplate("N#{n:+d}").render({"n": 5}) == "N#+5"  # '+' separates nothing here
    with pytest.raises(ValidationError, match="a separator"):
        KeyTemplate("N+{n:+d}").render({"n": 5})  # here it does


def test_escape_mode_encodes_separators_and_the_escape_itself() -> None:
    doc = KeyTemplate("DOC#{path}", escape=True)
    assert doc.render({"path": "a#b/100%"}) == "DOC#a%23b/100%25"
    assert doc.parse("DOC#a%23b/100%25") == {"path": "a#b/100%"}
    assert doc.render({"path": "plain"}) == "DOC#plain"  # unchanged without such characters


def test_partial_prefixes_end_on_a_whole_segment() -> None:
    order = KeyTemplate("USER#{user_id}#ORDER#{order_id}", sort=True)
    assert order.prefix({"user_id": "u1"}) == ("USER#u1#ORDER#", False)
    with pytest.raises(ValidationError):
        order.prefix({"user_id": "u1#ORDER#x"})


def test_reserved_key_space_is_refused() -> None:
    bare = KeyTemplate("{name}")
    for name in ("_dynamodel", "_dynamodel_x", "_dynamodelshards"):
        with pytest.raises(ValidationError, match="reserved for dynamodel's own records"):
            bare.render({"name": name})
    assert bare.render({"name": "dynamodel"}) == "dynamodel"
    with pytest.raises(ValidationError, match="reserved"):
        KeyTemplate("_dynamodel#{x}")
    with pytest.raises(ValidationError, match="reserved"):  # escape mode cannot sneak in
        KeyTemplate("{name}", escape=True).render({"name": "_dynamodel#shards"})


def test_reserved_and_blank_entity_names_are_refused() -> None:
    # the library's records carry type names under _dynamodel: a model of that name would
    # read them through scans and backfills
    from dynamodel import Model, Table

    for chosen, message in [
        ("_dynamodel:migrations", "reserved for dynamodel's own records"),
        ("", "must be a non-empty string"),
        (7, "must be a non-empty string"),
    ]:
        with pytest.raises(ValidationError, match=message):

            class Spy(Model):
                class Meta:
                    table = Table("reserved-entities")
                    pk = "SPY#{a}"
                    sk = "SPY"
                    entity = chosen

                a: str

    class Fine(Model):
        class Meta:
            table = Table("reserved-entities")
            pk = "SPY#{a}"
            sk = "SPY"
            entity = "dynamodel_spy"

        a: str

    assert Fine._spec().entity == "dynamodel_spy"


def test_sort_key_ints_of_20_digits_or_more_are_refused() -> None:
    n = KeyTemplate("N#{n}", sort=True)
    assert n.render({"n": 10**20 - 1}) == "N#" + "9" * 20
    with pytest.raises(ValidationError, match=r"10\*\*20 or more"):
        n.render({"n": 10**20})
    assert KeyTemplate("N#{n}").render({"n": 10**20}) == "N#" + str(10**20)  # partition key


def _define(source: str, table: Table) -> None:
    exec(source, {"Model": Model, "table": table})


@pytest.mark.parametrize("name", ["index", "consistent", "projection", "connection"])
def test_key_fields_cannot_be_named_like_an_option(name: str) -> None:
    from dynamodel import GSI

    table = Table(f"options-{name}", indexes=[GSI("gsi1", pk="gsi1pk", sk="gsi1sk")])
    in_key = f"""
class InKey(Model):
    class Meta:
        table = table
        pk = "K#{{{name}}}"
        sk = "K"

    {name}: str
"""
    with pytest.raises(ValidationError, match=f"uses field '{name}', named like an option"):
        _define(in_key, table)
    in_index = f"""
class InIndex(Model):
    class Meta:
        table = table
        pk = "K#{{k}}"
        sk = "K"
        indexes = {{"gsi1": ("I#{{{name}}}", "I")}}

    k: str
    {name}: str
"""
    with pytest.raises(ValidationError, match=r"index gsi1 pk template .* named like an option"):
        _define(in_index, table)
    # a field outside every key may have the name: it is never passed as a key keyword
    _define(in_index.replace("I#{" + name + "}", "I#{k}").replace("InIndex", "Elsewhere"), table)
