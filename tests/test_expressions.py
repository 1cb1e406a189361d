"""Unit tests for dynamodel.core.expressions: conditions, filters, updates and projections."""

from __future__ import annotations

import re

import pytest

from dynamodel import Attr, ValidationError
from dynamodel.core.expressions import (
    MAX_EXPRESSION_BYTES,
    Placeholders,
    all_of,
    parse_path,
    render_condition,
    render_projection,
    render_update,
)

RESERVED = ["name", "status", "size", "data", "count", "key", "value", "timestamp", "user"]
# what may appear in a rendered expression besides placeholders: syntax and function names
SYNTAX = re.compile(
    r"#n\d+|:v\d+|\[\d+\]|AND|OR|NOT|BETWEEN|IN|SET|REMOVE|ADD|DELETE|"
    r"attribute_exists|attribute_not_exists|attribute_type|begins_with|contains|size|"
    r"if_not_exists|list_append|[\s().,=<>+\-]"
)


def _only_placeholders(expression: str) -> bool:
    return SYNTAX.sub("", expression) == ""


def _render(condition: object, names: dict[str, str] | None = None) -> tuple[str, Placeholders]:
    ph = Placeholders(names)
    return render_condition(condition, ph, "ConditionExpression"), ph  # type: ignore[arg-type]


# -- paths ---------------------------------------------------------------------------------------


def test_parse_path() -> None:
    assert parse_path("a") == ("a",)
    assert parse_path("a.b[0].c") == ("a", "b", 0, "c")
    assert parse_path("a[1][2]") == ("a", 1, 2)
    assert parse_path(("weird.name[0]",)) == ("weird.name[0]",)
    assert parse_path(["x", 3, "y"]) == ("x", 3, "y")


@pytest.mark.parametrize("bad", ["", "a..b", "[0]", "a.", ".a", "a.[0]", "a]b", "a[x]"])
def test_bad_paths(bad: str) -> None:
    with pytest.raises(ValidationError):
        parse_path(bad)


def test_path_segments_must_start_with_a_name() -> None:
    with pytest.raises(ValidationError):
        parse_path((0, "a"))
    with pytest.raises(ValidationError):
        parse_path(())


def test_nested_path_placeholders() -> None:
    text, ph = _render(Attr("a.b[0].c") == 1)
    assert text == "#n0.#n1[0].#n2 = :v0"
    assert ph.names == {"#n0": "a", "#n1": "b", "#n2": "c"}
    assert ph.values == {":v0": {"N": "1"}}
    text, ph = _render(Attr("a")["b"][2] == 1)
    assert text == "#n0.#n1[2] = :v0"


def test_dotted_name_as_a_single_segment() -> None:
    text, ph = _render(Attr(("weird.name",)).exists())
    assert text == "attribute_exists(#n0)"
    assert ph.names == {"#n0": "weird.name"}


# -- placeholders everywhere ----------------------------------------------------------------------


@pytest.mark.parametrize("word", RESERVED)
def test_reserved_words_always_placeholders(word: str) -> None:
    condition = (
        (Attr(word) == "v")
        & Attr(f"{word}.{word}").exists()
        & Attr(word).size().between(1, 2)
        & Attr(word).is_in("a", "b")
    )
    text, ph = _render(condition)
    assert _only_placeholders(text), text
    assert set(ph.names.values()) == {word}
    assert len(ph.names) == 1  # the same name reuses one placeholder


@pytest.mark.parametrize("value", ["#x = :y", ":v0", "#n0", "a) OR (b", "'quoted'", ""])
def test_tricky_values_are_placeholders(value: str) -> None:
    text, ph = _render((Attr("name") == value) | Attr("status").begins_with(value))
    assert text == "(#n0 = :v0) OR (begins_with(#n1, :v1))"
    assert ph.values == {":v0": {"S": value}, ":v1": {"S": value}}


def test_field_names_map_to_stored_names_unless_raw() -> None:
    names = {"display_name": "dn"}
    text, ph = _render(
        (Attr("display_name") == "x") & (Attr("display_name", raw=True) == "y"), names
    )
    assert text == "(#n0 = :v0) AND (#n1 = :v1)"
    assert ph.names == {"#n0": "dn", "#n1": "display_name"}
    text, ph = _render(Attr("display_name.first") == "x", names)
    assert ph.names == {"#n0": "dn", "#n1": "first"}


def test_apply_adds_only_used_members() -> None:
    ph = Placeholders()
    assert ph.apply({"TableName": "t"}) == {"TableName": "t"}
    render_condition(Attr("a").exists(), ph, "C")
    assert ph.apply({}) == {"ExpressionAttributeNames": {"#n0": "a"}}


# -- operators and functions ------------------------------------------------------------------


def test_comparisons() -> None:
    cases = [
        (Attr("a") == 1, "#n0 = :v0"),
        (Attr("a") != 1, "#n0 <> :v0"),
        (Attr("a") < 1, "#n0 < :v0"),
        (Attr("a") <= 1, "#n0 <= :v0"),
        (Attr("a") > 1, "#n0 > :v0"),
        (Attr("a") >= 1, "#n0 >= :v0"),
        (Attr("a").between(1, 2), "#n0 BETWEEN :v0 AND :v1"),
        (Attr("a").is_in(1, 2, 3), "#n0 IN (:v0, :v1, :v2)"),
        (Attr("a").is_in([1, 2]), "#n0 IN (:v0, :v1)"),
        (Attr("a").exists(), "attribute_exists(#n0)"),
        (Attr("a").not_exists(), "attribute_not_exists(#n0)"),
        (Attr("a").begins_with("x"), "begins_with(#n0, :v0)"),
        (Attr("a").contains("x"), "contains(#n0, :v0)"),
        (Attr("a").attribute_type("SS"), "attribute_type(#n0, :v0)"),
        (Attr("a").size() > 3, "size(#n0) > :v0"),
        (Attr("a").size() == 3, "size(#n0) = :v0"),
        (Attr("a") == Attr("b"), "#n0 = #n1"),
    ]
    for condition, expected in cases:
        assert _render(condition)[0] == expected


def test_and_or_not() -> None:
    a, b, c = Attr("a") == 1, Attr("b") == 2, Attr("c") == 3
    assert _render(a & b)[0] == "(#n0 = :v0) AND (#n1 = :v1)"
    assert _render(a | b)[0] == "(#n0 = :v0) OR (#n1 = :v1)"
    assert _render(~a)[0] == "NOT (#n0 = :v0)"
    assert _render((a | b) & ~c)[0] == "((#n0 = :v0) OR (#n1 = :v1)) AND (NOT (#n2 = :v2))"
    assert _render(a & (b | c))[0] == "(#n0 = :v0) AND ((#n1 = :v1) OR (#n2 = :v2))"


def test_conditions_are_not_booleans() -> None:
    with pytest.raises(TypeError, match=re.escape("& | ~")):
        bool(Attr("a") == 1)
    with pytest.raises(TypeError):
        _ = (Attr("a") == 1) and (Attr("b") == 2)
    with pytest.raises(ValidationError):
        _ = (Attr("a") == 1) & True  # type: ignore[operator]


def test_all_of() -> None:
    a = Attr("a") == 1
    assert all_of() is None
    assert all_of(None, a, None) is a
    assert _render(all_of(a, Attr("b").exists()))[0] == "(#n0 = :v0) AND (attribute_exists(#n1))"


def test_in_limit() -> None:
    _text, ph = _render(Attr("a").is_in(*range(100)))
    assert len(ph.values) == 100
    with pytest.raises(ValidationError, match="1 to 100"):
        Attr("a").is_in(*range(101))
    with pytest.raises(ValidationError, match="1 to 100"):
        Attr("a").is_in()
    with pytest.raises(ValidationError):
        Attr("a").is_in([])


def test_attribute_type_kinds() -> None:
    for kind in ("S", "SS", "N", "NS", "B", "BS", "BOOL", "NULL", "L", "M"):
        Attr("a").attribute_type(kind)  # type: ignore[arg-type]
    with pytest.raises(ValidationError):
        Attr("a").attribute_type("STRING")  # type: ignore[arg-type]


def test_values_are_encoded() -> None:
    _, ph = _render(Attr("a").is_in(b"x", None, True, {"k": [1]}))
    assert list(ph.values.values()) == [
        {"B": b"x"},
        {"NULL": True},
        {"BOOL": True},
        {"M": {"k": {"L": [{"N": "1"}]}}},
    ]
    with pytest.raises(ValidationError, match="empty set"):
        _render(Attr("a").contains(set()))


def test_expression_size_limit() -> None:
    small = all_of(*[Attr(f"attribute_{i}") == i for i in range(50)])
    render_condition(small, Placeholders(), "FilterExpression")  # type: ignore[arg-type]
    big = all_of(*[Attr(f"a{i}") == i for i in range(400)])
    with pytest.raises(ValidationError, match=f"at most {MAX_EXPRESSION_BYTES}"):
        render_condition(big, Placeholders(), "FilterExpression")  # type: ignore[arg-type]


# -- updates ---------------------------------------------------------------------------------


def test_update_clauses() -> None:
    ph = Placeholders()
    text = render_update(
        [
            Attr("old").remove(),
            Attr("n").set(Attr("n") + 1),
            Attr("c").add(1),
            Attr("s").delete({"a"}),
            Attr("l").append([1]),
            Attr("m").set(Attr("m").if_not_exists(0) - 2),
            Attr("first").set_if_not_exists("x"),
            Attr("p").prepend(["z"]),
        ],
        ph,
    )
    assert text == (
        "SET #n0 = #n0 + :v0, #n1 = list_append(if_not_exists(#n1, :v1), :v2), "
        "#n2 = if_not_exists(#n2, :v3) - :v4, #n3 = if_not_exists(#n3, :v5), "
        "#n4 = list_append(:v6, if_not_exists(#n4, :v7)) "
        "REMOVE #n5 ADD #n6 :v8 DELETE #n7 :v9"
    )
    assert ph.names == {
        "#n0": "n",
        "#n1": "l",
        "#n2": "m",
        "#n3": "first",
        "#n4": "p",
        "#n5": "old",
        "#n6": "c",
        "#n7": "s",
    }
    assert ph.values[":v9"] == {"SS": ["a"]}
    assert ph.values[":v2"] == {"L": [{"N": "1"}]}


def test_update_reserved_words_and_tricky_values() -> None:
    ph = Placeholders()
    text = render_update([Attr(w).set("#x = :y") for w in RESERVED], ph)
    assert _only_placeholders(text)
    assert set(ph.names.values()) == set(RESERVED)
    assert all(v == {"S": "#x = :y"} for v in ph.values.values())


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ("a", "a"),
        ("a", "a.b"),
        ("a.b", "a"),
        ("a[0]", "a"),
        ("a.b[1].c", "a.b[1]"),
    ],
)
def test_overlapping_update_paths_refused(first: str, second: str) -> None:
    with pytest.raises(ValidationError, match="overlap"):
        render_update([Attr(first).set(1), Attr(second).remove()], Placeholders())


def test_disjoint_update_paths_allowed() -> None:
    ph = Placeholders()
    text = render_update([Attr("a[0]").set(1), Attr("a[1]").set(2), Attr("ab").set(3)], ph)
    assert text == "SET #n0[0] = :v0, #n0[1] = :v1, #n1 = :v2"
    render_update([Attr("m.x").set(1), Attr("m.y").remove()], Placeholders())


def test_update_needs_actions_of_the_right_type() -> None:
    with pytest.raises(ValidationError, match="at least one action"):
        render_update([], Placeholders())
    with pytest.raises(ValidationError, match="not an UpdateAction"):
        render_update([Attr("a") == 1], Placeholders())  # type: ignore[list-item]


def test_update_expression_size_limit() -> None:
    with pytest.raises(ValidationError, match="UpdateExpression is"):
        render_update([Attr(f"a{i}").set(i) for i in range(400)], Placeholders())


# -- projections ---------------------------------------------------------------------------------


def test_projection() -> None:
    ph = Placeholders({"display_name": "dn"})
    text = render_projection(["name", "display_name", "a.b[0]", Attr(("x.y",))], ph)
    assert text == "#n0, #n1, #n2.#n3[0], #n4"
    assert ph.names == {"#n0": "name", "#n1": "dn", "#n2": "a", "#n3": "b", "#n4": "x.y"}
    with pytest.raises(ValidationError):
        render_projection([], Placeholders())


def test_update_action_kinds_are_a_closed_set_checked_when_built() -> None:
    from dynamodel.core.expressions import UpdateAction, Value

    with pytest.raises(ValidationError, match="'APPEND' is not one of SET, REMOVE, ADD, DELETE"):
        UpdateAction("APPEND", Attr("a"), Value(1))  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match=r"REMOVE .* takes no operand"):
        UpdateAction("REMOVE", Attr("a"), Value(1))
    with pytest.raises(ValidationError, match=r"SET .* takes an operand"):
        UpdateAction("SET", Attr("a"), None)
    with pytest.raises(ValidationError, match="is not an Attr"):
        UpdateAction("SET", "a", Value(1))  # type: ignore[arg-type]
