"""Multi-attribute GSI keys: an index whose partition and sort keys are made of up to four of
the items' own attributes each (DynamoDB, November 2025), declared with tuples:

```python
app = Table("app", indexes=[GSI("by_region", pk=("tenant_id", "region"),
                                sk=("created", "order_id"))])

class Order(Model):
    class Meta:
        table = app
        pk = "ORDER#{order_id}"
        sk = "ORDER"
        indexes = {"by_region": MultiKey}   # the index is made of these fields

    tenant_id: str
    region: str
    created: int
    order_id: str

Order.query(index="by_region", tenant_id="t1", region="eu").sk_gt(created=5)
```

Nothing synthetic is written: DynamoDB indexes an item when it has every key attribute (with
the declared type), and leaves it out otherwise (sparse). Pure code: no I/O.
"""

from __future__ import annotations

import types
import typing
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from dynamodel.core.errors import ValidationError

if TYPE_CHECKING:
    from dynamodel.modelling.base import ModelBase
    from dynamodel.modelling.table import GSI, Table


class _MultiKey:
    """The ``Meta.indexes`` value that opts a model into a multi-attribute GSI."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "MultiKey"

    def __reduce__(self) -> str:
        return "MultiKey"


#: ``Meta.indexes = {"by_region": MultiKey}``: the model's items are in this multi-attribute GSI
#: through their own fields named like its key attributes (stored names, i.e. aliases).
MultiKey = _MultiKey()


class MultiIndex:
    """How one model takes part in a multi-attribute GSI.

    ``pk_fields``/``sk_fields`` are the model's Python field names, in key order;
    ``pk_attrs``/``sk_attrs`` the stored attribute names; ``types`` maps each stored key
    attribute to ``S``, ``N`` or ``B``.
    """

    __slots__ = ("name", "pk_attrs", "pk_fields", "sk_attrs", "sk_fields", "types")

    def __init__(
        self,
        name: str,
        pk_fields: tuple[str, ...],
        sk_fields: tuple[str, ...],
        pk_attrs: tuple[str, ...],
        sk_attrs: tuple[str, ...],
        types: dict[str, str],
    ) -> None:
        self.name = name
        self.pk_fields = pk_fields
        self.sk_fields = sk_fields
        self.pk_attrs = pk_attrs
        self.sk_attrs = sk_attrs
        self.types = types

    def __repr__(self) -> str:
        return f"MultiIndex(name={self.name!r}, pk={self.pk_fields!r}, sk={self.sk_fields!r})"

    @property
    def fields(self) -> tuple[str, ...]:
        """Every key field (Python names), partition key fields first."""
        return self.pk_fields + self.sk_fields

    def attribute(self, field: str) -> str:
        """The stored attribute name of key field ``field``."""
        return dict(zip(self.fields, self.pk_attrs + self.sk_attrs, strict=True))[field]


def is_multi_key(value: Any) -> bool:
    """Whether a ``Meta.indexes`` value is the `MultiKey` marker."""
    return value is MultiKey or value is _MultiKey


def key_type(annotation: Any) -> str | None:
    """``S``/``N``/``B`` for a field type DynamoDB accepts as a key attribute, else None.

    ``str`` (and str enums) -> S; ``int``/``Decimal`` (and int enums) -> N; ``bytes`` -> B.
    ``bool``, ``float``, other enums, optional and composite types are not key types.
    """
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return key_type(typing.get_args(annotation)[0])
    if origin is typing.Literal:
        kinds = {key_type(type(arg)) for arg in typing.get_args(annotation)}
        return kinds.pop() if len(kinds) == 1 else None
    if not isinstance(annotation, type) or origin is not None:
        return None
    if issubclass(annotation, bool):
        return None
    if issubclass(annotation, str):
        return "S"
    if issubclass(annotation, int | Decimal):
        return "N"
    if issubclass(annotation, bytes):
        return "B"
    return None


def _allows_none(annotation: Any) -> bool:
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _allows_none(typing.get_args(annotation)[0])
    if origin in (typing.Union, types.UnionType):
        return any(a is type(None) for a in typing.get_args(annotation))
    return annotation is type(None)


def model_multi_index(model: type[ModelBase], table: Table, index: GSI) -> MultiIndex:
    """Check that ``model`` can be in the multi-attribute GSI ``index`` and describe how.

    Each key attribute must be a field of the model (by stored name), of a key type, not
    optional (None would be stored as NULL, which DynamoDB refuses for a key attribute), and
    of the same type as in the index's ``types`` and in the other models declaring it.
    """
    owner = model.__name__
    by_stored = {(info.alias or name): name for name, info in model.model_fields.items()}
    fields: list[str] = []
    kinds: dict[str, str] = {}
    for attribute in index.pk_attributes + index.sk_attributes:
        name = by_stored.get(attribute)
        if name is None:
            raise ValidationError(
                f"{owner}: multi-attribute GSI {index.name!r} is keyed on {attribute!r}, which "
                f"is not a field of {owner} (stored names: {sorted(by_stored)})"
            )
        annotation = model.model_fields[name].annotation
        if _allows_none(annotation):
            raise ValidationError(
                f"{owner}.{name}: a key attribute of multi-attribute GSI {index.name!r} cannot "
                f"be optional ({annotation!r}): None would be stored as NULL, which DynamoDB "
                "refuses for a key attribute. Items without the attribute (other entities, or "
                "an update that removes it) are left out of the index"
            )
        kind = key_type(annotation)
        if kind is None:
            raise ValidationError(
                f"{owner}.{name}: {annotation!r} cannot be a key attribute of multi-attribute "
                f"GSI {index.name!r}; key attributes are str (S), int or Decimal (N), or bytes (B)"
            )
        fields.append(name)
        kinds[attribute] = kind
    declared = dict(index.types or {})
    for attribute, kind in kinds.items():
        expected = declared.get(attribute)
        if expected is not None and expected != kind:
            raise ValidationError(
                f"{owner}: GSI {index.name!r} key attribute {attribute!r} is {kind} in {owner} "
                f"but the GSI declares {expected}"
            )
    for other in table.entities.values():
        if (other.__module__, other.__qualname__) == (model.__module__, model.__qualname__):
            continue
        theirs = getattr(other.__dynamodel__, "multi_indexes", {}).get(index.name)
        if theirs is None:
            continue
        for attribute, kind in kinds.items():
            if theirs.types[attribute] != kind:
                raise ValidationError(
                    f"{owner}: GSI {index.name!r} key attribute {attribute!r} is {kind} in "
                    f"{owner} but {theirs.types[attribute]} in {other.__qualname__}; models "
                    "sharing a multi-attribute index need the same key types"
                )
    count = len(index.pk_attributes)
    return MultiIndex(
        index.name,
        tuple(fields[:count]),
        tuple(fields[count:]),
        index.pk_attributes,
        index.sk_attributes,
        kinds,
    )


def split_fields(
    owner: str, multi: MultiIndex, values: Mapping[str, Any], what: str
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Split query keywords into (partition field values, leading sort field values), not yet
    validated through the field types.

    Every partition field is required; sort fields given must be a prefix of the sort key
    (no skipping), since DynamoDB conditions sort attributes left to right. None means not
    given.
    """
    unknown = sorted(set(values) - set(multi.fields))
    if unknown:
        raise ValidationError(
            f"{owner} {what} on index {multi.name!r}: unexpected fields {unknown}; "
            f"partition key fields {list(multi.pk_fields)}, sort key fields "
            f"{list(multi.sk_fields)}"
        )
    missing = [f for f in multi.pk_fields if values.get(f) is None]
    if missing:
        raise ValidationError(
            f"{owner} {what} on index {multi.name!r}: missing partition key fields "
            f"{missing}; a multi-attribute partition key needs every one of "
            f"{list(multi.pk_fields)}"
        )
    sort = {f: values[f] for f in multi.sk_fields if values.get(f) is not None}
    check_sort_prefix(multi, (), tuple(sort), what)
    return {f: values[f] for f in multi.pk_fields}, sort


def check_not_empty(owner: str, multi: MultiIndex, values: Mapping[str, Any], what: str) -> None:
    """Refuse empty strings and bytes: DynamoDB rejects them as key attribute values."""
    empty = [f for f, v in values.items() if isinstance(v, str | bytes) and not v]
    if empty:
        raise ValidationError(
            f"{owner} {what} on index {multi.name!r}: {empty} are empty; key "
            "attribute values cannot be empty strings or bytes"
        )


def check_sort_prefix(
    multi: MultiIndex, before: Sequence[str], given: Sequence[str], what: str
) -> None:
    """Refuse sort fields that are not the next ones in key order after ``before``."""
    used = set(before)
    twice = sorted(used.intersection(given))
    if twice:
        raise ValidationError(
            f"{what} on index {multi.name!r}: sort key fields {twice} are already given"
        )
    ordered = list(before) + [f for f in multi.sk_fields if f in given]
    unknown = sorted(set(given) - set(multi.sk_fields))
    if unknown:
        raise ValidationError(
            f"{what} on index {multi.name!r}: {unknown} are not sort key fields; sort key "
            f"fields are {list(multi.sk_fields)}"
        )
    expected = list(multi.sk_fields[: len(ordered)])
    if ordered != expected:
        skipped = [f for f in expected if f not in ordered]
        raise ValidationError(
            f"{what} on index {multi.name!r}: sort key fields are conditioned left to right "
            f"({list(multi.sk_fields)}); {skipped} would be skipped. Give every earlier sort "
            "key field (an equality), or leave the later ones out"
        )
