"""Per-model compiled decoders: a stored item -> the dict `Model.from_item` validates.

`dynamodel.core.codec.decode_item` walks every attribute of an item (keys and type tag included)
and tries the AttributeValue tags in turn. A compiled decoder is straight-line Python generated
once per model class: it looks up only the model's own attributes and, from each field's
declared type, tries the tag that type is stored as first (``S`` for a ``str``, ``N`` for a
number, ``M`` for a nested model...), falling back to the general `decode` for anything else.
Its result is the same dict ``decode_item(item, only=the model's attributes)`` gives (a set
field that is absent, as DynamoDB stores an empty set, becomes ``set()``): the tests compare
the two on every field type.
"""

from __future__ import annotations

import datetime as dt
import typing
from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

from dynamodel.core.codec import AttributeValue, _decode_list, decode, decode_item
from dynamodel.modelling.compiled import _strip_optional

if TYPE_CHECKING:
    from dynamodel.modelling.base import ModelBase
    from dynamodel.modelling.spec import ModelSpec

Decoder = Callable[[Mapping[str, AttributeValue]], dict[str, Any]]

_NUMBERS = (int, float, Decimal)
_STRINGS = (str, dt.datetime, dt.date, dt.time)


def _tag(annotation: Any) -> str | None:
    """The AttributeValue tag a value of this (non-optional) type is stored under, when one
    is usual enough to try first."""
    annotation, _ = _strip_optional(annotation)
    origin = typing.get_origin(annotation)
    if annotation is bool:
        return "BOOL"
    if annotation in _NUMBERS:
        return "N"
    if annotation in _STRINGS:
        return "S"
    if (isinstance(annotation, type) and issubclass(annotation, BaseModel)) or (
        annotation is dict or origin is dict
    ):
        return "M"
    if annotation is list or origin in (list, tuple):
        return "L"
    if origin in (set, frozenset) and typing.get_args(annotation) == (str,):
        return "SS"
    return None


_READ = {
    "S": "x",
    "N": "(Decimal(x) if '.' in x or 'e' in x or 'E' in x else int(x))",
    "M": "decode_item(x)",
    "L": "decode_list(x)",
    "SS": "set(x)",
    "BOOL": "bool(x)",
}


def compile_decoder(model: type[ModelBase], spec: ModelSpec) -> Decoder:
    """The model's compiled decoder (see the module docstring)."""
    namespace: dict[str, Any] = {
        "decode": decode,
        "decode_item": decode_item,
        "decode_list": _decode_list,
        "Decimal": Decimal,
    }
    lines = ["def decode_fields(item):", "    out = {}"]
    for name, info in model.model_fields.items():
        stored = spec.stored_names[name]
        key = repr(stored)
        tag = _tag(info.annotation)
        lines.append(f"    v = item.get({key})")
        lines.append("    if v is not None:")
        if tag is None:
            lines.append(f"        out[{key}] = decode(v)")
        else:
            lines += [
                f"        x = v.get({tag!r})",
                f"        out[{key}] = {_READ[tag]} if x is not None else decode(v)",
            ]
        if stored in spec.set_fields:  # an empty set is not stored at the top level
            lines += ["    else:", f"        out[{key}] = set()"]
    lines.append("    return out")
    source = "\n".join(lines)
    exec(compile(source, f"<dynamodel decoder {model.__qualname__}>", "exec"), namespace)
    decoder: Decoder = namespace["decode_fields"]
    return decoder
