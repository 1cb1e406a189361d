"""Python values <-> DynamoDB AttributeValue maps, and item size accounting.

Encoding rules (documented in docs/models.md):

* ``str`` -> S, ``bool`` -> BOOL, ``int``/``Decimal`` -> N (exact, at most 38 significant
  digits), ``float`` -> N only where the model declares ``float`` (shortest ``repr``),
  ``bytes`` -> B, ``None`` -> NULL, list/tuple -> L, dict -> M, nested pydantic models -> M.
* ``set[str]`` -> SS, ``set[int|Decimal]`` -> NS, ``set[bytes]`` -> BS. DynamoDB cannot store
  an empty set: as a top-level attribute it is omitted (and read back as an empty set, so
  ``ADD`` still creates the set later); nested inside a map or list it is stored as an empty
  list ``{"L": []}``, which pydantic turns back into an empty set for a set-typed field.
* ``datetime`` -> S in a fixed-width ISO-8601 form (aware values in UTC with ``Z``), ``date`` ->
  S ``YYYY-MM-DD``, ``UUID`` -> S, ``Enum`` -> its value.

Decoding is the reverse: N becomes ``int`` when it has no fraction or exponent, else ``Decimal``;
pydantic then converts to the declared field type.
"""

from __future__ import annotations

import datetime as _dt
import enum
import math
import uuid
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from pydantic import BaseModel

from .errors import ValidationError

AttributeValue = dict[str, Any]
Item = dict[str, AttributeValue]

MAX_ITEM_BYTES = 409_600
MAX_NUMBER_DIGITS = 38
MIN_EXPONENT = -130
MAX_EXPONENT = 125
MAX_DEPTH = 32


class _Omit:
    """Marker for values that are not stored (empty sets)."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "OMIT"


OMIT: Any = _Omit()
#: how an empty set nested in a map or list is stored
EMPTY_SET: AttributeValue = {"L": []}


def format_datetime(value: _dt.datetime) -> str:
    """Fixed-width ISO-8601 text for a datetime: sortable as a string.

    Aware datetimes are converted to UTC and end in ``Z``; naive ones are written as they are
    (do not mix the two in one attribute).
    """
    suffix = ""
    if value.tzinfo is not None:
        try:
            value = value.astimezone(_dt.UTC)
        except OverflowError as exc:
            raise ValidationError(f"datetime {value.isoformat()} is out of range in UTC") from exc
        suffix = "Z"
    # built by hand: strftime's %Y does not zero-pad years below 1000 on every platform
    return (
        f"{value.year:04d}-{value.month:02d}-{value.day:02d}T{value.hour:02d}:"
        f"{value.minute:02d}:{value.second:02d}.{value.microsecond:06d}{suffix}"
    )


def _number_text(value: int | Decimal, path: str) -> str:
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise ValidationError(f"{path}: DynamoDB numbers must be finite, got {value}")
        digits = value.as_tuple().digits
        text = str(value)
    else:
        text = str(value)
        digits = tuple(int(c) for c in text.lstrip("-"))
    stripped = _strip_zeros(digits)
    significant = len(stripped)
    if stripped:
        exponent = value.adjusted() if isinstance(value, Decimal) else len(text.lstrip("-")) - 1
        if not MIN_EXPONENT <= exponent <= MAX_EXPONENT:
            raise ValidationError(
                f"{path}: {text} is out of DynamoDB's number range "
                f"(magnitude 1E{MIN_EXPONENT} to 9.99...E+{MAX_EXPONENT})"
            )
    if significant > MAX_NUMBER_DIGITS:
        raise ValidationError(
            f"{path}: number has {significant} significant digits; DynamoDB allows at most "
            f"{MAX_NUMBER_DIGITS}"
        )
    return text


def _strip_zeros(digits: tuple[int, ...]) -> tuple[int, ...]:
    start = 0
    end = len(digits)
    while start < end and digits[start] == 0:
        start += 1
    while end > start and digits[end - 1] == 0:
        end -= 1
    return digits[start:end]


def _encode_set(value: set[Any] | frozenset[Any], path: str, allow_float: bool) -> Any:
    if not value:
        return OMIT
    if all(isinstance(v, str) for v in value):
        return {"SS": list(value)}
    if all(isinstance(v, bytes | bytearray) for v in value):
        return {"BS": [bytes(v) for v in value]}
    if all(isinstance(v, int | Decimal) and not isinstance(v, bool) for v in value):
        return {"NS": [_number_text(v, path) for v in value]}
    if allow_float and all(
        isinstance(v, int | Decimal | float) and not isinstance(v, bool) for v in value
    ):
        return {
            "NS": [
                _float_text(v, path) if isinstance(v, float) else _number_text(v, path)
                for v in value
            ]
        }
    kinds = sorted({type(v).__name__ for v in value})
    raise ValidationError(
        f"{path}: a set must hold only strings, only numbers or only bytes; got {kinds}"
    )


def _float_text(value: float, path: str) -> str:
    if not math.isfinite(value):
        raise ValidationError(f"{path}: DynamoDB numbers must be finite, got {value}")
    text = repr(value)  # the shortest text that reads back as exactly this float
    _number_text(Decimal(text), path)  # range and digit checks
    return text


def encode(value: Any, path: str = "value", allow_float: bool = True, depth: int = 0) -> Any:
    """Encode one Python value as an AttributeValue (or `OMIT` for an empty set)."""
    if depth > MAX_DEPTH:
        raise ValidationError(f"{path}: nesting deeper than {MAX_DEPTH} levels")
    kind = type(value)
    if kind is str:
        return {"S": value}
    if kind is bool:
        return {"BOOL": value}
    if kind is int:
        return {"N": _number_text(value, path)}
    if kind is Decimal:
        return {"N": _number_text(value, path)}
    if value is None:
        return {"NULL": True}
    if kind is float:
        if not allow_float:
            raise ValidationError(
                f"{path}: float {value!r} would lose precision; declare the field as float "
                "to store floats, or use Decimal"
            )
        return {"N": _float_text(value, path)}
    if isinstance(value, bytes | bytearray | memoryview):
        return {"B": bytes(value)}
    if isinstance(value, list | tuple):
        items = []
        for index, element in enumerate(value):
            encoded = encode(element, f"{path}[{index}]", allow_float, depth + 1)
            items.append(EMPTY_SET if encoded is OMIT else encoded)
        return {"L": items}
    if isinstance(value, Mapping):
        return {"M": encode_map(value, path, allow_float, depth + 1)}
    if isinstance(value, set | frozenset):
        return _encode_set(value, path, allow_float)
    if isinstance(value, enum.Enum):
        return encode(value.value, path, allow_float, depth)
    if isinstance(value, _dt.datetime):
        return {"S": format_datetime(value)}
    if isinstance(value, _dt.date | _dt.time):
        return {"S": value.isoformat()}
    if isinstance(value, uuid.UUID):
        return {"S": str(value)}
    if isinstance(value, BaseModel):
        return {"M": encode_map(value.model_dump(by_alias=True), path, allow_float, depth + 1)}
    if isinstance(value, str):  # str subclasses
        return {"S": str(value)}
    if isinstance(value, int):  # int subclasses (IntEnum handled above)
        return {"N": _number_text(int(value), path)}
    raise ValidationError(f"{path}: cannot store a value of type {kind.__name__} in DynamoDB")


def encode_map(
    value: Mapping[Any, Any], path: str = "value", allow_float: bool = True, depth: int = 0
) -> dict[str, AttributeValue]:
    """Encode a mapping as the content of an M attribute (empty sets become empty lists)."""
    out: dict[str, AttributeValue] = {}
    for key, element in value.items():
        if isinstance(key, enum.Enum):
            key = key.value
        if not isinstance(key, str):
            raise ValidationError(f"{path}: map keys must be strings, got {key!r}")
        encoded = encode(element, f"{path}.{key}", allow_float, depth)
        out[key] = EMPTY_SET if encoded is OMIT else encoded
    return out


def decode_number(text: str) -> int | Decimal:
    """DynamoDB number text -> int when integral in form, else Decimal (never float)."""
    if "." in text or "e" in text or "E" in text:
        return Decimal(text)
    return int(text)


def decode(value: AttributeValue) -> Any:
    """Decode one AttributeValue into plain Python values."""
    (tag, inner), *_ = value.items()
    if tag == "S":
        return inner
    if tag == "N":
        return decode_number(inner)
    if tag == "M":
        return {k: decode(v) for k, v in inner.items()}
    if tag == "L":
        return [decode(v) for v in inner]
    if tag == "BOOL":
        return bool(inner)
    if tag == "NULL":
        return None
    if tag == "B":
        return bytes(inner)
    if tag == "SS":
        return set(inner)
    if tag == "NS":
        return {decode_number(v) for v in inner}
    if tag == "BS":
        return {bytes(v) for v in inner}
    raise ValidationError(f"unknown AttributeValue type {tag!r}")


def decode_item(item: Mapping[str, AttributeValue]) -> dict[str, Any]:
    """Decode a whole item (attribute name -> AttributeValue) into Python values."""
    return {name: decode(value) for name, value in item.items()}


def _number_size(text: str) -> int:
    digits = text.lstrip("-").split("e")[0].split("E")[0].replace(".", "").strip("0")
    return (len(digits) + 1) // 2 + 1


def value_size(value: AttributeValue) -> int:
    """Bytes DynamoDB counts for one AttributeValue (see the developer guide's item sizes)."""
    (tag, inner), *_ = value.items()
    if tag == "S":
        return len(inner.encode("utf-8"))
    if tag == "N":
        return _number_size(inner)
    if tag == "B":
        return len(inner)
    if tag in ("BOOL", "NULL"):
        return 1
    if tag == "SS":
        return sum(len(s.encode("utf-8")) for s in inner)
    if tag == "NS":
        return sum(_number_size(n) for n in inner)
    if tag == "BS":
        return sum(len(b) for b in inner)
    if tag == "L":
        return 3 + sum(1 + value_size(v) for v in inner)
    if tag == "M":
        return 3 + sum(1 + len(k.encode("utf-8")) + value_size(v) for k, v in inner.items())
    raise ValidationError(f"unknown AttributeValue type {tag!r}")


def item_size(item: Mapping[str, AttributeValue]) -> int:
    """Bytes DynamoDB counts for an item: attribute names plus values."""
    return sum(len(name.encode("utf-8")) + value_size(v) for name, v in item.items())


def check_item_size(item: Mapping[str, AttributeValue], what: str) -> int:
    """Raise `ItemTooLarge` when an item exceeds 400 KB; return its size."""
    from .errors import ItemTooLarge

    size = item_size(item)
    if size > MAX_ITEM_BYTES:
        raise ItemTooLarge(
            f"{what}: item is {size:,} bytes; DynamoDB's limit is {MAX_ITEM_BYTES:,} bytes "
            "(attribute names and values)",
            size=size,
            limit=MAX_ITEM_BYTES,
        )
    return size
