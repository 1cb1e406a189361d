"""Capacity estimates: the read and write units an item costs, from its encoded size and the
indexes it is projected into (no request is sent)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from dynamodel.core.codec import AttributeValue, item_size
from dynamodel.core.errors import ValidationError

if TYPE_CHECKING:
    from dynamodel.modelling.base import ModelBase


@dataclass(frozen=True)
class CapacityEstimate:
    """What one item costs, from its size (DynamoDB rounds up per 1 KB write, 4 KB read).

    Attributes:
        size: bytes DynamoDB counts for the item (names plus values).
        write_units: WCU of a standard write (PutItem, UpdateItem, DeleteItem).
        transactional_write_units: WCU of the same write inside a transaction (twice).
        strong_read_units: RCU of a strongly consistent read.
        eventual_read_units: RCU of an eventually consistent read (half).
        transactional_read_units: RCU of a transactional read (twice).
        index_write_units: for a model instance, each index the item is in and the WCU its
            index entry adds to every write that changes it (projected attributes only).
    """

    size: int
    write_units: int
    transactional_write_units: int
    strong_read_units: int
    eventual_read_units: float
    transactional_read_units: int
    index_write_units: Mapping[str, int] = field(default_factory=dict)


def _write_units(size: int) -> int:
    return max(1, math.ceil(size / 1024))


def _read_units(size: int) -> int:
    return max(1, math.ceil(size / 4096))


def estimate_capacity(item: ModelBase | Mapping[str, AttributeValue]) -> CapacityEstimate:
    """Size and WCU/RCU of one item: a model instance or a raw AttributeValue map.

    Reads of several items (Query, Scan) are rounded up over their total size, not per
    item, so a page costs less than the sum of its items' read units.
    """
    from dynamodel.modelling.base import ModelBase

    indexes: dict[str, int] = {}
    if isinstance(item, ModelBase):
        raw = item.to_item()
        indexes = _index_units(item, raw)
    elif isinstance(item, Mapping):
        raw = dict(item)
        for name, value in raw.items():
            if not isinstance(value, Mapping) or len(value) != 1:
                raise ValidationError(
                    f"estimate_capacity: attribute {name!r} is not an AttributeValue "
                    f"(a one-key dict such as {{'S': 'text'}}), got {value!r}"
                )
    else:
        raise ValidationError(
            f"estimate_capacity takes a Model instance or an AttributeValue map, got {item!r}"
        )
    size = item_size(raw)
    strong = _read_units(size)
    writes = _write_units(size)
    return CapacityEstimate(
        size=size,
        write_units=writes,
        transactional_write_units=2 * writes,
        strong_read_units=strong,
        eventual_read_units=strong / 2,
        transactional_read_units=2 * strong,
        index_write_units=indexes,
    )


def _index_units(instance: ModelBase, raw: dict[str, AttributeValue]) -> dict[str, int]:
    spec = instance._spec()
    table = spec.table
    out: dict[str, int] = {}
    for declared in table.indexes:
        keys = table.index_keys(declared.name)
        if any(a not in raw for a in keys.attributes):
            continue  # sparse: the item is not in this index
        projection = declared.projection
        if projection == "ALL":
            entry = raw
        else:
            names = {*table.key_attributes(), *keys.attributes}
            if projection != "KEYS_ONLY":
                names |= {spec.stored_names.get(n, n) for n in projection}
            entry = {n: v for n, v in raw.items() if n in names}
        out[declared.name] = _write_units(item_size(entry))
    return out
