"""Per-model compiled encoders: model fields -> AttributeValues and the item's size, in one pass.

`Model.to_item` used to run ``model_dump()``, encode every value, then walk the result again to
size it. A compiled encoder is straight-line Python generated once per model class: for each
field it checks the value's exact type and, for the common ones (``str``, ``int``, ``bool``,
``Decimal``, ``datetime``, ``None``, and a nested model of exactly the declared class), writes the
AttributeValue and adds its size inline. Anything else goes through the general codec (after
the field's own pydantic serializer when it has one), so the stored item is exactly what the
``model_dump()`` path produced: the tests compare the two on every field type.

The size it returns is exact for strings and an upper bound for numbers: DynamoDB counts a
number as ``(significant digits + 1) // 2 + 1`` bytes, at most ``len(text) // 2 + 2``, which
skips stripping zeros on every number. Only the 400 KB check reads the size: when the bound
exceeds the limit, `dynamodel.core.codec.check_item_size` measures the item exactly, so an item is
refused only when its exact size is too large.

Models the generated code cannot mirror (a ``model_serializer``, computed fields, field
serializers declared on the class) keep the general path.
"""

from __future__ import annotations

import datetime as dt
import re
import types
import typing
from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, PlainSerializer, WrapSerializer

from dynamodel.core.codec import (
    EMPTY_SET,
    OMIT,
    Item,
    _number_size as number_size,
    _number_text as number_text,
    encode,
    format_datetime,
    value_size,
)
from dynamodel.core.keys import ESCAPE, RESERVED_PREFIX

if TYPE_CHECKING:
    from dynamodel.modelling.base import ModelBase
    from dynamodel.modelling.spec import ModelSpec

Encoder = Callable[[Mapping[str, Any]], tuple[Item, int]]

_INT_LIMIT = 10**38
_PLAIN = {str: "str", int: "int", bool: "bool", Decimal: "decimal", dt.datetime: "datetime"}


def _strip_optional(annotation: Any) -> tuple[Any, bool]:
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        if len(args) == 1 and len(typing.get_args(annotation)) == 2:
            return args[0], True
    return annotation, False


def _mentions_model(annotation: Any) -> bool:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return True
    return any(_mentions_model(arg) for arg in typing.get_args(annotation))


def _has_serializer(metadata: list[Any], annotation: Any) -> bool:
    """A pydantic serializer on the field or anywhere inside its type (``TTL | None``)."""
    if any(isinstance(m, PlainSerializer | WrapSerializer) for m in metadata):
        return True
    if typing.get_origin(annotation) is typing.Annotated and _has_serializer(
        list(annotation.__metadata__), annotation.__origin__
    ):
        return True
    return any(_has_serializer([], arg) for arg in typing.get_args(annotation))


def _is_string_set(annotation: Any) -> bool:
    return typing.get_origin(annotation) in (set, frozenset) and typing.get_args(annotation) == (
        str,
    )


def strings_size(values: Any) -> int:
    """Bytes of a set of strings, or -1 when an element is not a ``str``."""
    size = 0
    for text in values:
        if type(text) is not str:
            return -1
        size += len(text) if text.isascii() else len(text.encode("utf-8"))
    return size


def plain_list(values: list[Any]) -> tuple[dict[str, Any], int] | None:
    """``{"L": [...]}`` and its size (numbers: bounded) for a list of plain ``str``/``int``
    (None otherwise)."""
    out = []
    size = 3 + len(values)
    for value in values:
        kind = type(value)
        if kind is str:
            out.append({"S": value})
            size += len(value) if value.isascii() else len(value.encode("utf-8"))
        elif kind is int and -_INT_LIMIT < value < _INT_LIMIT:
            text = str(value)
            out.append({"N": text})
            size += len(text) // 2 + 2  # bound: see the module docstring
        else:
            return None
    return {"L": out}, size


# Pure memo keyed by model class (no I/O result): shared by every connection, and bounded by
# the classes the program defines.
_nested_cache: dict[tuple[type[BaseModel], bool], Encoder | None] = {}


def _nested_encoder(model: type[BaseModel], allow_float: bool) -> Encoder | None:
    """A compiled encoder of a nested (plain pydantic) model's fields, as a map's contents."""
    key = (model, allow_float)
    if key not in _nested_cache:
        _nested_cache[key] = None  # a model nested in itself keeps the general path
        stored = {
            name: info.serialization_alias or info.alias or name
            for name, info in model.model_fields.items()
        }
        floats = frozenset(stored.values()) if allow_float else frozenset()
        _nested_cache[key] = _compile(model, stored, floats, None)
    return _nested_cache[key]


def _size_of_name(name: str) -> int:
    return len(name.encode("utf-8"))


def compile_encoder(model: type[ModelBase], spec: ModelSpec) -> Encoder | None:
    """The model's compiled encoder, or None when it must keep the general path."""
    return _compile(model, spec.stored_names, spec.float_fields, spec)


def _compile(
    model: type[BaseModel],
    stored_names: Mapping[str, str],
    float_fields: frozenset[str],
    spec: ModelSpec | None,
) -> Encoder | None:
    decorators = model.__pydantic_decorators__
    if decorators.model_serializers or decorators.field_serializers:
        return None
    if model.__pydantic_computed_fields__ or model.model_config.get("extra") == "allow":
        return None
    namespace: dict[str, Any] = {
        "OMIT": OMIT,
        "EMPTY_SET": EMPTY_SET,
        "encode": encode,
        "value_size": value_size,
        "number_size": number_size,
        "format_datetime": format_datetime,
        "number_text": number_text,
        "Decimal": Decimal,
        "datetime": dt.datetime,
        "LIMIT": _INT_LIMIT,
        "strings_size": strings_size,
        "plain_list": plain_list,
    }
    lines = ["def encode_fields(d):", "    item = {}", "    size = 0"]
    for index, (name, info) in enumerate(model.model_fields.items()):
        if info.exclude:
            continue
        stored = stored_names[name]
        allow_float = stored in float_fields
        path = f"{model.__name__}.{stored}"
        namespace[f"P{index}"] = path
        name_size = _size_of_name(stored)
        key = repr(stored)
        annotation, optional = _strip_optional(info.annotation)
        if _has_serializer(info.metadata, info.annotation) or _mentions_model(annotation):
            if spec is None:
                return None  # nested models with serializers keep the general path
            adapter = spec.adapter(model, name)
            namespace[f"D{index}"] = adapter.dump_python
        else:
            namespace[f"D{index}"] = None
        lines.append(f"    v = d[{name!r}]")
        lines.append("    t = type(v)")
        branch = "if"
        kind = None if namespace[f"D{index}"] is not None else _PLAIN.get(annotation)
        if kind == "str":
            lines += [
                f"    {branch} t is str:",
                f"        item[{key}] = {{'S': v}}",
                f"        size += {name_size} + (len(v) if v.isascii() else len(v.encode()))",
            ]
            branch = "elif"
        elif kind == "int":
            lines += [
                f"    {branch} t is int and -LIMIT < v < LIMIT:",
                "        s = str(v)",
                f"        item[{key}] = {{'N': s}}",
                f"        size += {name_size} + len(s) // 2 + 2",
            ]
            branch = "elif"
        elif kind == "bool":
            lines += [
                f"    {branch} t is bool:",
                f"        item[{key}] = {{'BOOL': v}}",
                f"        size += {name_size + 1}",
            ]
            branch = "elif"
        elif kind == "decimal":
            lines += [
                f"    {branch} t is Decimal:",
                f"        s = number_text(v, P{index})",
                f"        item[{key}] = {{'N': s}}",
                f"        size += {name_size} + len(s) // 2 + 2",
            ]
            branch = "elif"
        elif kind == "datetime":
            lines += [
                f"    {branch} t is datetime:",
                f"        s = format_datetime(v, P{index})",
                f"        item[{key}] = {{'S': s}}",
                f"        size += {name_size} + len(s)",
            ]
            branch = "elif"
        elif isinstance(annotation, type) and issubclass(annotation, BaseModel):
            # exactly the declared class: its model_dump is what the field's dump gives
            namespace[f"M{index}"] = annotation
            nested = _nested_encoder(annotation, allow_float)
            if nested is not None:
                namespace[f"N{index}"] = nested
                lines += [
                    f"    {branch} t is M{index}:",
                    f"        e, n = N{index}(v.__dict__)",
                    f"        item[{key}] = {{'M': e}}",
                    f"        size += {name_size} + 3 + len(e) + n",
                ]
            else:
                lines += [
                    f"    {branch} t is M{index}:",
                    f"        e = encode(v, P{index}, {allow_float})",
                    f"        item[{key}] = e",
                    f"        size += {name_size} + value_size(e)",
                ]
            branch = "elif"
        elif typing.get_origin(annotation) is list and typing.get_args(annotation) in (
            (int,),
            (str,),
        ):
            lines += [
                f"    {branch} t is list and (r := plain_list(v)) is not None:",
                f"        item[{key}] = r[0]",
                f"        size += {name_size} + r[1]",
            ]
            branch = "elif"
        elif _is_string_set(annotation):
            lines += [
                f"    {branch} (t is set or t is frozenset) and v and (n := strings_size(v)) >= 0:",
                f"        item[{key}] = {{'SS': list(v)}}",
                f"        size += {name_size} + n",
            ]
            branch = "elif"
        if optional or kind is None:
            lines += [
                f"    {branch} v is None:",
                f"        item[{key}] = {{'NULL': True}}",
                f"        size += {name_size + 1}",
            ]
            branch = "elif"
        general = [
            f"    e = encode(v if D{index} is None else D{index}(v, by_alias=True), "
            f"P{index}, {allow_float})",
        ]
        if spec is None:  # inside a map an empty set is stored as an empty list
            general.append("    e = EMPTY_SET if e is OMIT else e")
        general += [
            "    if e is not OMIT:",
            f"        item[{key}] = e",
            f"        size += {name_size} + value_size(e)",
        ]
        if branch == "if":
            lines += general
        else:
            lines.append("    else:")
            lines += ["    " + line for line in general]
    lines.append("    return item, size")
    source = "\n".join(lines)
    exec(compile(source, f"<dynamodel encoder {model.__qualname__}>", "exec"), namespace)
    encoder: Encoder = namespace["encode_fields"]
    return encoder


KeyEncoder = Callable[[Mapping[str, Any]], tuple[Item, int] | None]


def compile_keys(model: type[ModelBase], spec: ModelSpec) -> KeyEncoder | None:
    """A compiled renderer of the item's key attributes, index keys and entity type.

    Compiled only when every field the key templates use is declared ``str`` (no format
    specs) and nothing is sharded; the general `dynamodel.modelling.item_keys.key_attributes`
    handles the rest. The function returns ``(attributes, their size)``, or None when a value
    is not a ``str`` or a key renders empty or too long: the caller then takes the general
    path, which raises the error naming the attribute.
    """
    from dynamodel.modelling.item_keys import MAX_PK_BYTES, MAX_SK_BYTES

    if spec.sharded:
        return None
    table = spec.table
    # (attribute, template, limit, sparse): sparse index keys are skipped when a field is None
    keys: list[tuple[str, Any, int, bool]] = [(table.pk, spec.pk, MAX_PK_BYTES, False)]
    if spec.sk is not None and table.sk:
        keys.append((table.sk, spec.sk, MAX_SK_BYTES, False))
    groups: list[list[tuple[str, Any, int]]] = []
    for index in spec.indexes.values():
        group = []
        if index.pk is not None:
            group.append((index.pk_attr, index.pk, MAX_PK_BYTES))
        if index.sk is not None and index.sk_attr:
            group.append((index.sk_attr, index.sk, MAX_SK_BYTES))
        groups.append(group)
    templates = [k[1] for k in keys] + [t for g in groups for _, t, _ in g]
    for template in templates:
        for _literal, field, format_spec in template.parts:
            if field is None:
                continue
            info = model.model_fields.get(field)
            if format_spec or info is None or _strip_optional(info.annotation)[0] is not str:
                return None

    lines = ["def encode_keys(d):", "    out = {}", "    size = 0"]
    namespace: dict[str, Any] = {}

    def render(template: Any, target: str, indent: str) -> list[str]:
        pieces = []
        for literal, field, _ in template.parts:
            if literal:
                pieces.append(repr(literal))
            if field is not None:
                pieces.append(f"d[{field!r}]")
        return [f"{indent}{target} = {' + '.join(pieces) or repr('')}"]

    def emit(attribute: str, template: Any, limit: int, indent: str) -> list[str]:
        reserved = []
        if not template.sort and template.fields and not template.parts[0][0]:
            reserved = [
                f"{indent}if s.startswith({RESERVED_PREFIX!r}):",
                f"{indent}    return None",
            ]
        return [
            *render(template, "s", indent),
            *reserved,
            f"{indent}n = len(s) if s.isascii() else len(s.encode())",
            f"{indent}if n == 0 or n > {limit}:",
            f"{indent}    return None",
            f"{indent}out[{attribute!r}] = {{'S': s}}",
            f"{indent}size += {_size_of_name(attribute)} + n",
        ]

    # a value with a separator (or, in escape mode, an escape) character takes the general
    # path, which refuses or escapes it; so does a partition key in the reserved key space
    unsafe = "".join(sorted({c for t in templates for c in t.separators}))
    if spec.pk.escape:
        unsafe += ESCAPE
    namespace["unsafe"] = re.compile("[" + re.escape(unsafe) + "]").search

    def str_check(fields: list[str]) -> str:
        typed = " or ".join(f"type(d[{f!r}]) is not str" for f in fields)
        safe = " or ".join(f"(not d[{f!r}].isalnum() and unsafe(d[{f!r}]))" for f in fields)
        return f"{typed} or {safe}"

    primary_fields = [f for _, t, _, _ in keys for f in t.fields]
    if primary_fields:
        lines += [f"    if {str_check(primary_fields)}:", "        return None"]
    for attribute, template, limit, _sparse in keys:
        lines += emit(attribute, template, limit, "    ")
    for group in groups:
        fields = [f for _, t, _ in group for f in t.fields]
        indent = "    "
        if fields:
            lines.append("    if " + " and ".join(f"d[{f!r}] is not None" for f in fields) + ":")
            indent = "        "
            lines += [f"{indent}if {str_check(fields)}:", f"{indent}    return None"]
        for attribute, template, limit in group:
            lines += emit(attribute, template, limit, indent)
    type_attribute = table.type_attribute
    lines += [
        f"    out[{type_attribute!r}] = {{'S': {spec.entity!r}}}",
        f"    return out, size + {_size_of_name(type_attribute) + _size_of_name(spec.entity)}",
    ]
    source = "\n".join(lines)
    exec(compile(source, f"<dynamodel keys {model.__qualname__}>", "exec"), namespace)
    encoder: KeyEncoder = namespace["encode_keys"]
    return encoder
