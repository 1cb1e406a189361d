"""The key analysis behind tenant IAM policies (`dynamodel.schema.policy`).

How one model's partition key template ties to the tenant field (`LeadingKey`: the literal
prefix, whether the field is a whole leading segment, the ``dynamodb:LeadingKeys`` values), why
a field cannot be tied (its type), and whether another entity's key space overlaps it. Pure.
"""

from __future__ import annotations

import re
import typing
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from dynamodel.core.keys import DEFAULT_SEPARATOR, KeyTemplate
from dynamodel.modelling.sharding import SEPARATOR as SHARD_SEPARATOR

if TYPE_CHECKING:
    from dynamodel.modelling.base import ModelBase


def iam_literal(text: str) -> str:
    """``text`` as literal text in an IAM condition value: ``$``, ``*`` and ``?`` escaped as
    ``${$}``, ``${*}`` and ``${?}`` (else they would be variables or wildcards)."""
    return re.sub(r"[$*?]", lambda m: "${" + m.group() + "}", text)


@dataclass(frozen=True)
class LeadingKey:
    """One ``dynamodb:LeadingKeys`` value made for a model's partition key.

    Attributes:
        prefix: the literal text before the identity.
        tail: what follows it: ``""`` (exact), a separator followed by more text and ``*``
            (``"#ORDER#*"``), or a shard suffix (``".3"``).
        value: the condition value (``prefix`` escaped, the variable, ``tail``).
    """

    prefix: str
    tail: str
    value: str

    @property
    def segment_end(self) -> str | None:
        """The character right after the identity (None for an exact value)."""
        return self.tail[0] if self.tail else None


def field_type_reason(model: type[ModelBase], field: str) -> str | None:
    """Why ``model``'s ``field`` cannot hold a tenant's id in a key (None when it can)."""
    info = model.model_fields.get(field)
    if info is None:
        return f"it has no field {field!r}"
    annotation: Any = info.annotation
    if typing.get_origin(annotation) is typing.Annotated:
        annotation = typing.get_args(annotation)[0]
    if annotation is not str:
        return (
            f"field {field!r} is of type {getattr(annotation, '__name__', annotation)}, not "
            "str: the key holds its rendering (an int's digits, zero-padded in sort keys; an "
            "enum's value; a formatted date), which need not be the identity text itself"
        )
    return None


def template_values(
    template: KeyTemplate, field: str, variable: str, shards_count: int | None, where: str
) -> tuple[list[LeadingKey], str | None]:
    """The LeadingKeys values of one partition key template, or the reason it cannot be
    tied to the identity."""
    if template.escape:
        return [], (
            "Meta.escape_keys is on: key values are percent-encoded (a '#' becomes '%23'), so "
            "the key text need not equal the identity value"
        )
    if field not in template.fields:
        return [], f"the {where} template {template.text!r} does not contain {{{field}}}"
    literal, first, spec = template.parts[0]
    if first != field:
        return [], (
            f"the {where} template {template.text!r} has {{{first}}} before {{{field}}}: only "
            "literal text may come before the identity, or IAM could not tell whose key it is"
        )
    if spec:
        return [], (
            f"the {where} template {template.text!r} formats {{{field}}} with "
            f"{spec!r}: the key text would not be the identity value itself"
        )
    prefix = iam_literal(literal) + variable
    rest = template.parts[1:]
    if not rest:  # PREFIX{field}: an exact key
        if shards_count is None:
            return [LeadingKey(literal, "", prefix)], None
        return [
            LeadingKey(literal, f"{SHARD_SEPARATOR}{n}", f"{prefix}{SHARD_SEPARATOR}{n}")
            for n in range(shards_count)
        ], None
    following, next_field, _ = rest[0]
    if not following or following[0] not in template.separators or following[0].isalnum():
        return [], (
            f"the {where} template {template.text!r} has {following[:1]!r} right after "
            f"{{{field}}}, which is not a separator: a longer identity value would match it "
            "too (t1 would cover t10)"
        )
    head = prefix + iam_literal(following)
    if next_field is None:  # PREFIX{field}SEP-literal: still exact keys
        if shards_count is None:
            return [LeadingKey(literal, following, head)], None
        return [
            LeadingKey(literal, f"{following}{SHARD_SEPARATOR}{n}", f"{head}{SHARD_SEPARATOR}{n}")
            for n in range(shards_count)
        ], None
    # more fields follow: every key that continues after the separator (shard suffix included)
    return [LeadingKey(literal, following + "*", head + "*")], None


# -- overlap with the other keys of the table ---------------------------------------------------


@dataclass(frozen=True)
class KeyShape:
    """A partition key template that stores items in a key space (the table or one GSI)."""

    owner: str  # the model's name, or a description of dynamodel's own records
    template: KeyTemplate | None  # None: a constant key (``text``)
    text: str
    sharded_exact: bool = False  # PREFIX{field} with Shards: physical keys end in .<n>


def overlap_reason(key: LeadingKey, field: str, own_separators: str, other: KeyShape) -> str | None:
    """Why ``other``'s keys could fall inside another tenant's ``key``, or None.

    Stored values of a field never contain its template's separators (escape mode refused),
    and an identity value must be storable in the tied field, so it contains none of
    ``own_separators``.
    """
    template = other.template
    literal = template.parts[0][0] if template is not None and template.parts else other.text
    prefix = key.prefix
    if literal == prefix and template is not None and template.fields:
        first, spec = template.parts[0][1], template.parts[0][2]
        if first != field or spec:
            return (
                f"{other.owner}'s partition key {other.text!r} starts with the same text "
                f"{prefix!r} but holds {{{first}}}, not the identity: an item whose {first} "
                "equals a tenant's identity would be inside that tenant's keys"
            )
        end = key.segment_end
        if end is not None and end not in template.separators:
            if end == SHARD_SEPARATOR and other.sharded_exact:
                return None  # both end in .<n>: the suffix is where it is in both
            return (
                f"{other.owner}'s partition key {other.text!r} does not treat {end!r} as a "
                f"separator, so its {field} values may contain it: a value '<identity>{end}...' "
                "would fall inside the tenant's keys; use a separator both templates share "
                f"(such as '{DEFAULT_SEPARATOR}')"
            )
        if end is None and other.sharded_exact and SHARD_SEPARATOR not in template.separators:
            return (
                f"{other.owner}'s partition key {other.text!r} is sharded (keys end in "
                "'.<n>') while this exact key is not: an identity ending in '.<n>' would "
                "reach another tenant's shard"
            )
        return None
    if literal != prefix and prefix.startswith(literal):
        remainder = prefix[len(literal) :]
        if template is None or not template.fields:
            return None  # a constant shorter than the prefix is another key
        if any(c in template.separators for c in remainder):
            return None
        return (
            f"{other.owner}'s partition key {other.text!r} can render {prefix!r} followed by "
            "any text from its own fields, so its items could fall inside a tenant's keys"
        )
    if literal != prefix and literal.startswith(prefix):
        extra = literal[len(prefix) :]
        if extra[0] in own_separators:
            return None  # an identity value contains no separator: it cannot start there
        return (
            f"{other.owner}'s partition key {other.text!r} starts with {prefix!r} then "
            f"{extra!r}: a tenant whose identity starts with {extra!r} would reach its items"
        )
    return None
