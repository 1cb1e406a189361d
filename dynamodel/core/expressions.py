"""Composable conditions, filters, update actions and projections.

Every attribute name and value goes through ``#n``/``:v`` placeholders, so reserved words
(``name``, ``status``, ``size``...) and values such as ``"#x = :y"`` are always safe.

>>> cond = (Attr("status") == "open") & Attr("tags").contains("vip") & ~Attr("deleted").exists()
>>> update = [Attr("count").add(1), Attr("address.city").set("Oslo"), Attr("old").remove()]
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Generic, Literal, Protocol, TypeVar

from dynamodel.core.codec import OMIT, encode
from dynamodel.core.errors import ValidationError

MAX_EXPRESSION_BYTES = 4096
MAX_IN_OPERANDS = 100
AttributeTypeName = Literal["S", "SS", "N", "NS", "B", "BS", "BOOL", "NULL", "L", "M"]

_SEGMENT_PATTERN = r"([^.\[\]]+)|\[(\d+)\]|(\.)"
_segment: re.Pattern[str] | None = None  # compiled on first use: `import dynamodel` stays cheap

PathSegment = str | int
T = TypeVar("T")


class PathCheck(Protocol):
    """Resolves a path as written to the stored path, refusing undeclared ones
    (`dynamodel.modelling.paths.PathResolver`)."""

    def resolve(self, segments: tuple[PathSegment, ...]) -> tuple[PathSegment, ...]: ...


def parse_path(path: str | Sequence[PathSegment]) -> tuple[PathSegment, ...]:
    """``"a.b[0].c"`` -> ``("a", "b", 0, "c")``; a sequence is taken as segments verbatim.

    Pass a tuple such as ``("weird.name",)`` for an attribute whose name contains ``.`` or ``[``.
    """
    if not isinstance(path, str):
        segments = tuple(path)
        if not segments or not isinstance(segments[0], str):
            raise ValidationError(f"attribute path {path!r} must start with a name")
        return segments
    if not path:
        raise ValidationError("attribute path is empty")
    out: list[PathSegment] = []
    position = 0
    expect_name = True
    global _segment
    if _segment is None:
        _segment = re.compile(_SEGMENT_PATTERN)
    while position < len(path):
        match = _segment.match(path, position)
        if match is None:
            raise ValidationError(f"bad attribute path {path!r} at position {position}")
        name, index, _dot = match.groups()
        if name is not None:
            if not expect_name:
                raise ValidationError(f"bad attribute path {path!r} at position {position}")
            out.append(name)
            expect_name = False
        elif index is not None:
            if expect_name:
                raise ValidationError(f"bad attribute path {path!r}: index without a name")
            out.append(int(index))
        else:
            if expect_name:
                raise ValidationError(f"bad attribute path {path!r}: empty name")
            expect_name = True
        position = match.end()
    if expect_name:
        raise ValidationError(f"bad attribute path {path!r}: ends with '.'")
    return tuple(out)


class Placeholders:
    """Allocates ``#n``/``:v`` placeholders for one request.

    ``paths`` (what requests for models use) checks every path that is not ``raw`` against
    the model's declarations and maps it, at every level, to the stored path. Without it,
    ``names`` maps the first segment of a path (a field's Python name) to its stored name and
    nothing is checked.
    """

    def __init__(
        self, names: Mapping[str, str] | None = None, *, paths: PathCheck | None = None
    ) -> None:
        self.field_names = names or {}
        self.paths = paths
        self.names: dict[str, str] = {}
        self.values: dict[str, Any] = {}
        self._name_for: dict[str, str] = {}

    def name(self, name: str) -> str:
        """Placeholder for one attribute name."""
        existing = self._name_for.get(name)
        if existing is None:
            existing = f"#n{len(self._name_for)}"
            self._name_for[name] = existing
            self.names[existing] = name
        return existing

    def path(self, segments: tuple[PathSegment, ...], raw: bool = False) -> str:
        """Placeholder text for a document path (``raw``: no checks, no field-name mapping)."""
        if raw:
            first = segments[0]
        elif self.paths is not None:
            segments = self.paths.resolve(segments)
            first = segments[0]
        else:
            first = segments[0]
            assert isinstance(first, str)
            first = self.field_names.get(first, first)
        assert isinstance(first, str)
        out = [self.name(first)]
        for segment in segments[1:]:
            if isinstance(segment, int):
                out.append(f"[{segment}]")
            else:
                out.append("." + self.name(segment))
        return "".join(out)

    def value(self, value: Any, where: str = "value") -> str:
        """Placeholder for one value (encoded as an AttributeValue)."""
        encoded = encode(value, where)
        if encoded is OMIT:
            raise ValidationError(f"{where}: an empty set cannot be used as a value")
        key = f":v{len(self.values)}"
        self.values[key] = encoded
        return key

    def apply(self, params: dict[str, Any]) -> dict[str, Any]:
        """Add ExpressionAttributeNames/Values to request params (when any were used)."""
        if self.names:
            params["ExpressionAttributeNames"] = dict(self.names)
        if self.values:
            params["ExpressionAttributeValues"] = dict(self.values)
        return params


def _check_size(kind: str, text: str) -> str:
    size = len(text.encode("utf-8"))
    if size > MAX_EXPRESSION_BYTES:
        raise ValidationError(
            f"{kind} is {size} bytes; DynamoDB allows at most {MAX_EXPRESSION_BYTES}"
        )
    return text


# -- operands ------------------------------------------------------------------------------


class Operand:
    """Something that renders to an expression operand."""

    def render(self, ph: Placeholders) -> str:
        raise NotImplementedError

    def __add__(self, other: Any) -> Arithmetic:
        return Arithmetic(self, "+", as_operand(other))

    def __sub__(self, other: Any) -> Arithmetic:
        return Arithmetic(self, "-", as_operand(other))


class Value(Operand):
    """A literal value operand."""

    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value

    def render(self, ph: Placeholders) -> str:
        return ph.value(self.value)

    def __repr__(self) -> str:
        return f"Value({self.value!r})"


def as_operand(value: Any) -> Operand:
    """Wrap a plain value as `Value`; operands pass through."""
    return value if isinstance(value, Operand) else Value(value)


class Arithmetic(Operand):
    """``a + b`` or ``a - b`` in an update's SET."""

    def __init__(self, left: Operand, op: str, right: Operand) -> None:
        self.left, self.op, self.right = left, op, right

    def render(self, ph: Placeholders) -> str:
        return f"{self.left.render(ph)} {self.op} {self.right.render(ph)}"


class IfNotExists(Operand):
    """``if_not_exists(path, default)``."""

    def __init__(self, attr: Attr, default: Any) -> None:
        self.attr, self.default = attr, as_operand(default)

    def render(self, ph: Placeholders) -> str:
        return f"if_not_exists({self.attr.render(ph)}, {self.default.render(ph)})"


class ListAppend(Operand):
    """``list_append(a, b)``."""

    def __init__(self, first: Operand, second: Operand) -> None:
        self.first, self.second = first, second

    def render(self, ph: Placeholders) -> str:
        return f"list_append({self.first.render(ph)}, {self.second.render(ph)})"


class Comparable(Operand):
    """An operand that comparison operators turn into conditions."""

    def __eq__(self, other: Any) -> Condition:  # type: ignore[override]
        return Compare(self, "=", as_operand(other))

    def __ne__(self, other: Any) -> Condition:  # type: ignore[override]
        return Compare(self, "<>", as_operand(other))

    def __lt__(self, other: Any) -> Condition:
        return Compare(self, "<", as_operand(other))

    def __le__(self, other: Any) -> Condition:
        return Compare(self, "<=", as_operand(other))

    def __gt__(self, other: Any) -> Condition:
        return Compare(self, ">", as_operand(other))

    def __ge__(self, other: Any) -> Condition:
        return Compare(self, ">=", as_operand(other))

    __hash__ = None  # type: ignore[assignment]

    def between(self, low: Any, high: Any) -> Condition:
        """``operand BETWEEN low AND high`` (inclusive)."""
        return Between(self, as_operand(low), as_operand(high))


class Size(Comparable):
    """``size(path)``: compare it like an attribute (``Attr("tags").size() > 3``)."""

    def __init__(self, attr: Attr) -> None:
        self.attr = attr

    def render(self, ph: Placeholders) -> str:
        return f"size({self.attr.render(ph)})"


class Attr(Comparable):
    """An attribute path: ``Attr("status")``, ``Attr("address.city")``, ``Attr("tags[0]")``.

    In a model's requests the path is checked against the model's fields (nested models,
    lists, maps included) before anything is sent, and each segment may be a field's Python
    name or its stored name (alias). ``raw=True`` names the stored attribute exactly: no
    mapping and no check, for attributes the model does not declare.
    Comparison operators and methods build `Condition` objects; ``set``/``remove``/
    ``add``/``delete``/``append`` build update actions.
    """

    __slots__ = ("raw", "segments")

    def __init__(self, path: str | Sequence[PathSegment], *, raw: bool = False) -> None:
        self.segments = parse_path(path)
        self.raw = raw

    def __repr__(self) -> str:
        return f"Attr({self.segments!r})"

    @property
    def top(self) -> str:
        """The top-level attribute (or field) name."""
        first = self.segments[0]
        assert isinstance(first, str)
        return first

    def __getitem__(self, key: str | int) -> Attr:
        return Attr((*self.segments, key), raw=self.raw)

    def render(self, ph: Placeholders) -> str:
        return ph.path(self.segments, self.raw)

    # conditions (comparisons and between come from Comparable)

    def is_in(self, *values: Any) -> Condition:
        """``path IN (v1, v2, ...)``; 1 to 100 values."""
        if len(values) == 1 and isinstance(values[0], list | tuple | set | frozenset):
            values = tuple(values[0])
        return In(self, [as_operand(v) for v in values])

    def exists(self) -> Condition:
        """``attribute_exists(path)``."""
        return Function("attribute_exists", self)

    def not_exists(self) -> Condition:
        """``attribute_not_exists(path)``."""
        return Function("attribute_not_exists", self)

    def begins_with(self, prefix: Any) -> Condition:
        """``begins_with(path, prefix)``."""
        return Function("begins_with", self, as_operand(prefix))

    def contains(self, value: Any) -> Condition:
        """``contains(path, value)``: substring of a string, or member of a set or list."""
        return Function("contains", self, as_operand(value))

    def attribute_type(self, kind: AttributeTypeName) -> Condition:
        """``attribute_type(path, kind)`` with kind one of S, N, B, SS, NS, BS, BOOL, NULL, L, M."""
        if kind not in ("S", "SS", "N", "NS", "B", "BS", "BOOL", "NULL", "L", "M"):
            raise ValidationError(f"attribute_type: unknown type {kind!r}")
        return Function("attribute_type", self, Value(kind))

    def size(self) -> Size:
        """``size(path)`` as an operand to compare."""
        return Size(self)

    # update operands and actions
    def if_not_exists(self, default: Any) -> IfNotExists:
        """Operand ``if_not_exists(path, default)``, e.g. ``Attr("n").if_not_exists(0) + 1``."""
        return IfNotExists(self, default)

    def set(self, value: Any) -> UpdateAction:
        """``SET path = value`` (value may be an operand such as ``Attr("n") + 1``)."""
        return UpdateAction("SET", self, as_operand(value))

    def set_if_not_exists(self, value: Any) -> UpdateAction:
        """``SET path = if_not_exists(path, value)``."""
        return UpdateAction("SET", self, IfNotExists(self, value))

    def remove(self) -> UpdateAction:
        """``REMOVE path``."""
        return UpdateAction("REMOVE", self, None)

    def add(self, value: Any) -> UpdateAction:
        """``ADD path value``: increment a number or add elements to a set."""
        return UpdateAction("ADD", self, Value(value))

    def delete(self, value: Any) -> UpdateAction:
        """``DELETE path value``: remove elements from a set."""
        return UpdateAction("DELETE", self, Value(value))

    def append(self, values: Iterable[Any]) -> UpdateAction:
        """Append to a list (created when missing)."""
        return UpdateAction(
            "SET", self, ListAppend(IfNotExists(self, Value([])), Value(list(values)))
        )

    def prepend(self, values: Iterable[Any]) -> UpdateAction:
        """Prepend to a list (created when missing)."""
        return UpdateAction(
            "SET", self, ListAppend(Value(list(values)), IfNotExists(self, Value([])))
        )


class TypedAttr(Attr, Generic[T]):
    """A checked path to a field whose value type is ``T``, made by ``Model.attr(lambda o:
    o.address.city)``: a type checker sees the field names and the value types that
    comparisons and ``set``/``add``/``delete`` accept. Its segments are Python names."""

    __slots__ = ()

    def __repr__(self) -> str:
        return f"TypedAttr({self.segments!r})"

    def __eq__(self, other: T | Operand) -> Condition:  # type: ignore[override]
        return Compare(self, "=", as_operand(other))

    def __ne__(self, other: T | Operand) -> Condition:  # type: ignore[override]
        return Compare(self, "<>", as_operand(other))

    def __lt__(self, other: T | Operand) -> Condition:
        return Compare(self, "<", as_operand(other))

    def __le__(self, other: T | Operand) -> Condition:
        return Compare(self, "<=", as_operand(other))

    def __gt__(self, other: T | Operand) -> Condition:
        return Compare(self, ">", as_operand(other))

    def __ge__(self, other: T | Operand) -> Condition:
        return Compare(self, ">=", as_operand(other))

    __hash__ = None  # type: ignore[assignment]

    def between(self, low: T | Operand, high: T | Operand) -> Condition:
        """``path BETWEEN low AND high`` (inclusive)."""
        return Between(self, as_operand(low), as_operand(high))

    def is_in(self, *values: T | Sequence[T] | set[T] | frozenset[T]) -> Condition:
        """``path IN (v1, v2, ...)``; 1 to 100 values."""
        return super().is_in(*values)

    def set(self, value: T | Operand) -> UpdateAction:
        """``SET path = value``."""
        return super().set(value)

    def set_if_not_exists(self, value: T) -> UpdateAction:
        """``SET path = if_not_exists(path, value)``."""
        return super().set_if_not_exists(value)

    def add(self, value: T) -> UpdateAction:
        """``ADD path value``: increment a number or add elements to a set."""
        return super().add(value)

    def delete(self, value: T) -> UpdateAction:
        """``DELETE path value``: remove elements from a set."""
        return super().delete(value)


# -- conditions ----------------------------------------------------------------------------


class Condition:
    """A condition or filter expression; combine with ``&``, ``|`` and ``~``."""

    def render(self, ph: Placeholders) -> str:
        raise NotImplementedError

    def __and__(self, other: Condition) -> Condition:
        return And(self, _check_condition(other))

    def __or__(self, other: Condition) -> Condition:
        return Or(self, _check_condition(other))

    def __invert__(self) -> Condition:
        return Not(self)

    def __bool__(self) -> bool:
        raise TypeError(
            "conditions cannot be used as booleans; combine them with & | ~ instead of and/or/not"
        )


def _check_condition(value: Any) -> Condition:
    if not isinstance(value, Condition):
        raise ValidationError(f"expected a condition, got {value!r}")
    return value


class Compare(Condition):
    """``a <op> b``."""

    def __init__(self, left: Operand, op: str, right: Operand) -> None:
        self.left, self.op, self.right = left, op, right

    def render(self, ph: Placeholders) -> str:
        return f"{self.left.render(ph)} {self.op} {self.right.render(ph)}"


class Between(Condition):
    """``a BETWEEN low AND high``."""

    def __init__(self, operand: Operand, low: Operand, high: Operand) -> None:
        self.operand, self.low, self.high = operand, low, high

    def render(self, ph: Placeholders) -> str:
        return f"{self.operand.render(ph)} BETWEEN {self.low.render(ph)} AND {self.high.render(ph)}"


class In(Condition):
    """``a IN (v1, ...)``."""

    def __init__(self, operand: Operand, values: list[Operand]) -> None:
        if not 1 <= len(values) <= MAX_IN_OPERANDS:
            raise ValidationError(f"IN takes 1 to {MAX_IN_OPERANDS} values, got {len(values)}")
        self.operand, self.values = operand, values

    def render(self, ph: Placeholders) -> str:
        inner = ", ".join(v.render(ph) for v in self.values)
        return f"{self.operand.render(ph)} IN ({inner})"


class Function(Condition):
    """A function condition such as ``attribute_exists(path)``."""

    def __init__(self, name: str, *args: Operand) -> None:
        self.name, self.args = name, args

    def render(self, ph: Placeholders) -> str:
        return f"{self.name}({', '.join(a.render(ph) for a in self.args)})"


class And(Condition):
    """Both conditions."""

    def __init__(self, *parts: Condition) -> None:
        self.parts = parts

    def render(self, ph: Placeholders) -> str:
        return " AND ".join(f"({p.render(ph)})" for p in self.parts)


class Or(Condition):
    """Either condition."""

    def __init__(self, *parts: Condition) -> None:
        self.parts = parts

    def render(self, ph: Placeholders) -> str:
        return " OR ".join(f"({p.render(ph)})" for p in self.parts)


class Not(Condition):
    """The negated condition."""

    def __init__(self, inner: Condition) -> None:
        self.inner = inner

    def render(self, ph: Placeholders) -> str:
        return f"NOT ({self.inner.render(ph)})"


def all_of(*conditions: Condition | None) -> Condition | None:
    """AND of the given conditions, skipping None (None when there are none)."""
    present = [c for c in conditions if c is not None]
    if not present:
        return None
    if len(present) == 1:
        return present[0]
    return And(*present)


def render_condition(condition: Condition, ph: Placeholders, kind: str) -> str:
    """Render and check the 4 KB expression limit."""
    return _check_size(kind, _check_condition(condition).render(ph))


# -- updates -------------------------------------------------------------------------------


UpdateKind = Literal["SET", "REMOVE", "ADD", "DELETE"]
UPDATE_KINDS: tuple[UpdateKind, ...] = ("SET", "REMOVE", "ADD", "DELETE")


class UpdateAction:
    """One clause of an UpdateExpression: SET, REMOVE, ADD or DELETE."""

    __slots__ = ("attr", "kind", "operand")

    def __init__(self, kind: UpdateKind, attr: Attr, operand: Operand | None) -> None:
        if kind not in UPDATE_KINDS:
            raise ValidationError(
                f"update action kind {kind!r} is not one of {', '.join(UPDATE_KINDS)}"
            )
        if not isinstance(attr, Attr):
            raise ValidationError(f"update action {kind}: {attr!r} is not an Attr")
        if (operand is None) != (kind == "REMOVE"):
            wanted = "no operand" if kind == "REMOVE" else "an operand"
            raise ValidationError(f"update action {kind} {attr.segments!r} takes {wanted}")
        self.kind, self.attr, self.operand = kind, attr, operand

    def __repr__(self) -> str:
        return f"UpdateAction({self.kind} {self.attr.segments!r})"

    def render(self, ph: Placeholders) -> str:
        path = self.attr.render(ph)
        if self.kind == "REMOVE":
            return path
        assert self.operand is not None
        if self.kind == "SET":
            return f"{path} = {self.operand.render(ph)}"
        return f"{path} {self.operand.render(ph)}"


def _overlaps(a: tuple[PathSegment, ...], b: tuple[PathSegment, ...]) -> bool:
    shorter = min(len(a), len(b))
    return a[:shorter] == b[:shorter]


def render_update(actions: Sequence[UpdateAction], ph: Placeholders) -> str:
    """Render actions into one UpdateExpression, refusing overlapping paths."""
    if not actions:
        raise ValidationError("an update needs at least one action")
    for i, action in enumerate(actions):
        if not isinstance(action, UpdateAction):
            raise ValidationError(f"update action {i} is {action!r}, not an UpdateAction")
        for other in actions[:i]:
            if _overlaps(action.attr.segments, other.attr.segments):
                raise ValidationError(
                    f"update paths overlap: {other.attr.segments!r} and {action.attr.segments!r}"
                )
    clauses: list[str] = []
    for kind in UPDATE_KINDS:
        parts = [a.render(ph) for a in actions if a.kind == kind]
        if parts:
            clauses.append(f"{kind} {', '.join(parts)}")
    return _check_size("UpdateExpression", " ".join(clauses))


def render_projection(paths: Iterable[str | Sequence[PathSegment] | Attr], ph: Placeholders) -> str:
    """Render a ProjectionExpression from attribute paths."""
    # the same path named twice (say a field and a key attribute dynamodel adds) is sent once
    rendered = list(
        dict.fromkeys((p if isinstance(p, Attr) else Attr(p)).render(ph) for p in paths)
    )
    if not rendered:
        raise ValidationError("a projection needs at least one attribute")
    return _check_size("ProjectionExpression", ", ".join(rendered))


_PARTS: dict[type, Callable[[Any], Iterable[Any]]] = {
    Compare: lambda n: (n.left, n.right),
    Arithmetic: lambda n: (n.left, n.right),
    And: lambda n: n.parts,
    Or: lambda n: n.parts,
    Not: lambda n: (n.inner,),
    Function: lambda n: n.args,
    Between: lambda n: (n.operand, n.low, n.high),
    In: lambda n: (n.operand, *n.values),
    Size: lambda n: (n.attr,),
    IfNotExists: lambda n: (n.attr, n.default),
    ListAppend: lambda n: (n.first, n.second),
    UpdateAction: lambda n: (n.attr,) if n.operand is None else (n.attr, n.operand),
    Value: lambda n: (),
}


def attrs_in(node: Any) -> list[Attr]:
    """Every `Attr` a condition, operand or update action uses."""
    found: list[Attr] = []
    stack = [node]
    while stack:
        item = stack.pop()
        if isinstance(item, Attr):
            found.append(item)
            continue
        parts = _PARTS.get(type(item))
        if parts is None:  # a subclass of a known node, or not a node at all
            parts = next((p for k, p in _PARTS.items() if isinstance(item, k)), None)
            if parts is None:
                continue
        stack.extend(parts(item))
    return found
