"""Dirty tracking: which fields of an instance differ from the item it was read as.

An instance read from the table (or written by `save`/`create`/`save_changes`) remembers the
stored item. A field has changed when its value, encoded as it would be stored, is not the
stored attribute: comparing encoded values catches changes made in place (``user.tags.add(x)``,
``order.lines[0].qty = 2``) that comparing Python objects by identity would miss. Numbers are
compared as numbers and sets as sets, so ``1.50`` against a stored ``1.5`` is not a change.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

_SETS = ("SS", "BS")


def same_value(a: Any, b: Any) -> bool:
    """Whether two AttributeValues hold the same value (None: absent)."""
    if a is None or b is None:
        return a is b
    if a == b:
        return True
    if len(a) != 1 or len(b) != 1:
        return False
    (tag, x), (other, y) = next(iter(a.items())), next(iter(b.items()))
    if tag != other:
        return False
    if tag == "N":
        return _number(x) == _number(y)
    if tag == "NS":
        return {_number(n) for n in x} == {_number(n) for n in y}
    if tag in _SETS:
        return set(x) == set(y)
    if tag == "M":
        return x.keys() == y.keys() and all(same_value(x[k], y[k]) for k in x)
    if tag == "L":
        return len(x) == len(y) and all(same_value(i, j) for i, j in zip(x, y, strict=True))
    return False


def _number(text: str) -> Decimal | str:
    try:
        return Decimal(text)
    except InvalidOperation:
        return text


def changed_fields(
    names: Iterable[str],
    stored_names: Mapping[str, str],
    current: Mapping[str, Any],
    stored: Mapping[str, Any],
) -> list[str]:
    """The fields among ``names`` (Python names, in order) whose attribute in ``current`` (the
    instance encoded as it would be written) differs from the one in ``stored``."""
    return [
        name
        for name in names
        if not same_value(current.get(stored_names[name]), stored.get(stored_names[name]))
    ]
