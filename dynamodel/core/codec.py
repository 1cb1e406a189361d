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
from collections.abc import Container, Mapping
from decimal import Decimal
from typing import Any

from pydantic import BaseModel

from dynamodel.core.errors import NaiveDatetimeWarning, ValidationError

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
_ZERO = _dt.timedelta(0)
_DATETIME_FORMAT = "%04d-%02d-%02dT%02d:%02d:%02d.%06d%s"
#: integers strictly inside +-10**38 always fit DynamoDB's numbers (<= 38 digits, exponent <= 37)
_INT_LIMIT = 10**MAX_NUMBER_DIGITS


def format_datetime(value: _dt.datetime, where: str | None = None) -> str:
    """Fixed-width ISO-8601 text for a datetime: sortable as a string.

    Aware datetimes are converted to UTC and end in ``Z``. Naive ones are written as they are,
    without a zone, and warned about (`NaiveDatetimeWarning`, naming ``where``, the model field,
    when known): their instant depends on the writer's clock zone. Key templates refuse them
    (`dynamodel.core.keys.render_part`).
    """
    if type(value) is _dt.datetime:  # fast path: naive, or already at UTC's wall time
        tz = value.tzinfo
        if tz is None:
            warn_naive(value, where)
        if tz is None or tz is _dt.UTC or value.utcoffset() == _ZERO:
            return _DATETIME_FORMAT % (
                value.year,
                value.month,
                value.day,
                value.hour,
                value.minute,
                value.second,
                value.microsecond,
                "" if tz is None else "Z",
            )
    suffix = ""
    if value.utcoffset() is None and type(value) is not _dt.datetime:
        warn_naive(value, where)  # (a subclass; plain naive datetimes were warned about above)
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


def warn_naive(value: _dt.datetime, where: str | None = None) -> None:
    """Warn (`NaiveDatetimeWarning`) that a naive datetime is being stored without a zone."""
    import warnings

    field = f"{where} = " if where else ""
    warnings.warn(
        f"{field}naive datetime {value.isoformat()} has no time zone: it is stored without "
        "one, so the instant it means depends on the clock zone of whoever reads it. Store "
        "aware datetimes (datetime.now(UTC)), or annotate the field pydantic.AwareDatetime "
        "to refuse naive values",
        NaiveDatetimeWarning,
        stacklevel=3,
    )


def _number_text(value: int | Decimal, path: str) -> str:
    # fast paths: values that certainly fit (the checks below give the same answer)
    if type(value) is int:
        if -_INT_LIMIT < value < _INT_LIMIT:
            return str(value)
    elif type(value) is Decimal and value.is_finite():
        text = str(value)
        # at most 38 characters -> at most 38 digits; adjusted() is the exponent of the
        # leading digit (zero, whose exponent is not checked, takes the slow path if odd)
        if len(text) <= MAX_NUMBER_DIGITS and MIN_EXPONENT <= value.adjusted() <= MAX_EXPONENT:
            return text
    return _checked_number_text(value, path)


def _checked_number_text(value: int | Decimal, path: str) -> str:
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


class _Slow(Exception):
    """Raised by the fast encoder for anything it leaves to the checked one.

    The fast encoder handles the common exact types without building error paths; errors,
    subclasses and unusual values are re-encoded by the checked encoder, which gives the
    documented results and error messages.
    """


def _fast_number(value: Any) -> str:
    """Number text of an exact int or a Decimal that certainly fits, else `_Slow`."""
    if type(value) is int:
        if -_INT_LIMIT < value < _INT_LIMIT:
            return str(value)
    elif type(value) is Decimal and value.is_finite():
        text = str(value)
        if len(text) <= MAX_NUMBER_DIGITS and MIN_EXPONENT <= value.adjusted() <= MAX_EXPONENT:
            return text
    raise _Slow


def _fast_encode(value: Any, allow_float: bool, depth: int) -> Any:
    if depth > MAX_DEPTH:
        raise _Slow
    kind = type(value)
    if kind is str:
        return {"S": value}
    if kind is int:
        if -_INT_LIMIT < value < _INT_LIMIT:
            return {"N": str(value)}
        raise _Slow
    if kind is bool:
        return {"BOOL": value}
    if value is None:
        return {"NULL": True}
    if kind is dict:
        return {"M": _fast_map(value, allow_float, depth + 1)}
    if kind is list or kind is tuple:
        return {"L": _fast_list(value, allow_float, depth + 1)}
    if kind is Decimal:
        return {"N": _fast_number(value)}
    if kind is _dt.datetime:
        return {"S": format_datetime(value)}
    if kind is set or kind is frozenset:
        if not value:
            return OMIT
        strings = True
        for v in value:
            if type(v) is not str:
                strings = False
                break
        if strings:
            return {"SS": list(value)}
        if all(type(v) is int or type(v) is Decimal for v in value):
            return {"NS": [_fast_number(v) for v in value]}
        raise _Slow
    if kind is float:
        if not allow_float:
            raise _Slow
        try:
            return {"N": _float_text(value, "")}
        except ValidationError:
            raise _Slow from None
    if kind is bytes:
        return {"B": value}
    if kind is _dt.date or kind is _dt.time:
        return {"S": value.isoformat()}
    if kind is uuid.UUID:
        return {"S": str(value)}
    if isinstance(value, enum.Enum):
        return _fast_encode(value.value, allow_float, depth)
    if isinstance(value, BaseModel):
        return {"M": _fast_map(value.model_dump(by_alias=True), allow_float, depth + 1)}
    raise _Slow


def _fast_list(value: list[Any] | tuple[Any, ...], allow_float: bool, depth: int) -> list[Any]:
    if depth > MAX_DEPTH and value:
        raise _Slow
    out: list[Any] = []
    append = out.append
    for element in value:
        kind = type(element)
        if kind is str:
            append({"S": element})
        elif kind is int and -_INT_LIMIT < element < _INT_LIMIT:
            append({"N": str(element)})
        else:
            encoded = _fast_encode(element, allow_float, depth)
            append(EMPTY_SET if encoded is OMIT else encoded)
    return out


def _fast_map(value: Mapping[Any, Any], allow_float: bool, depth: int) -> dict[str, Any]:
    if depth > MAX_DEPTH and value:
        raise _Slow
    out: dict[str, Any] = {}
    for key, element in value.items():
        if type(key) is not str:
            raise _Slow
        kind = type(element)
        if kind is str:
            out[key] = {"S": element}
        elif kind is int and -_INT_LIMIT < element < _INT_LIMIT:
            out[key] = {"N": str(element)}
        else:
            encoded = _fast_encode(element, allow_float, depth)
            out[key] = EMPTY_SET if encoded is OMIT else encoded
    return out


def encode(value: Any, path: str = "value", allow_float: bool = True, depth: int = 0) -> Any:
    """Encode one Python value as an AttributeValue (or `OMIT` for an empty set)."""
    if type(value) is str and depth <= MAX_DEPTH:  # the commonest value, without a call
        return {"S": value}
    try:
        return _fast_encode(value, allow_float, depth)
    except _Slow:
        return _checked_encode(value, path, allow_float, depth)


def _checked_encode(value: Any, path: str, allow_float: bool, depth: int) -> Any:
    """`encode` with every check and the path of the offending value in error messages."""
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
            encoded = _checked_encode(element, f"{path}[{index}]", allow_float, depth + 1)
            items.append(EMPTY_SET if encoded is OMIT else encoded)
        return {"L": items}
    if isinstance(value, Mapping):
        return {"M": _checked_encode_map(value, path, allow_float, depth + 1)}
    if isinstance(value, set | frozenset):
        return _encode_set(value, path, allow_float)
    if isinstance(value, enum.Enum):
        return _checked_encode(value.value, path, allow_float, depth)
    if isinstance(value, _dt.datetime):
        return {"S": format_datetime(value, path)}
    if isinstance(value, _dt.date | _dt.time):
        return {"S": value.isoformat()}
    if isinstance(value, uuid.UUID):
        return {"S": str(value)}
    if isinstance(value, BaseModel):
        return {
            "M": _checked_encode_map(value.model_dump(by_alias=True), path, allow_float, depth + 1)
        }
    if isinstance(value, str):  # str subclasses
        return {"S": str(value)}
    if isinstance(value, int):  # int subclasses (IntEnum handled above)
        return {"N": _number_text(int(value), path)}
    raise ValidationError(f"{path}: cannot store a value of type {kind.__name__} in DynamoDB")


def encode_map(
    value: Mapping[Any, Any], path: str = "value", allow_float: bool = True, depth: int = 0
) -> dict[str, AttributeValue]:
    """Encode a mapping as the content of an M attribute (empty sets become empty lists)."""
    try:
        return _fast_map(value, allow_float, depth)
    except _Slow:
        return _checked_encode_map(value, path, allow_float, depth)


def _checked_encode_map(
    value: Mapping[Any, Any], path: str, allow_float: bool, depth: int
) -> dict[str, AttributeValue]:
    out: dict[str, AttributeValue] = {}
    for key, element in value.items():
        if isinstance(key, enum.Enum):
            key = key.value
        if not isinstance(key, str):
            raise ValidationError(f"{path}: map keys must be strings, got {key!r}")
        encoded = _checked_encode(element, f"{path}.{key}", allow_float, depth)
        out[key] = EMPTY_SET if encoded is OMIT else encoded
    return out


def decode_number(text: str) -> int | Decimal:
    """DynamoDB number text -> int when integral in form, else Decimal (never float)."""
    if "." in text or "e" in text or "E" in text:
        return Decimal(text)
    return int(text)


def decode(value: AttributeValue) -> Any:
    """Decode one AttributeValue into plain Python values."""
    for tag, inner in value.items():
        if tag == "S":
            return inner
        if tag == "N":
            if "." in inner or "e" in inner or "E" in inner:
                return Decimal(inner)
            return int(inner)
        if tag == "M":
            return decode_item(inner)
        if tag == "L":
            return _decode_list(inner)
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
    raise ValidationError("empty AttributeValue (no type tag)")


def _decode_list(values: list[AttributeValue]) -> list[Any]:
    out: list[Any] = []
    append = out.append
    for value in values:
        if "S" in value:
            append(value["S"])
        elif "N" in value:
            text = value["N"]
            if "." in text or "e" in text or "E" in text:
                append(Decimal(text))
            else:
                append(int(text))
        else:
            append(decode(value))
    return out


def decode_item(
    item: Mapping[str, AttributeValue], only: Container[str] | None = None
) -> dict[str, Any]:
    """Decode a whole item (attribute name -> AttributeValue) into Python values.

    ``only``: decode just these attribute names (a model's fields), skip the rest.
    """
    out: dict[str, Any] = {}
    for name, value in item.items():
        if only is not None and name not in only:
            continue
        # the commonest tags inline; the rest through decode
        if "S" in value:
            out[name] = value["S"]
        elif "N" in value:
            text = value["N"]
            if "." in text or "e" in text or "E" in text:
                out[name] = Decimal(text)
            else:
                out[name] = int(text)
        elif "M" in value:
            out[name] = decode_item(value["M"])
        elif "L" in value:
            out[name] = _decode_list(value["L"])
        elif "SS" in value:
            out[name] = set(value["SS"])
        elif "BOOL" in value:
            out[name] = bool(value["BOOL"])
        else:
            out[name] = decode(value)
    return out


def _number_size(text: str) -> int:
    if text.isdigit():  # no sign, point or exponent: the same as below, faster
        return (len(text.strip("0")) + 1) // 2 + 1
    if "E" not in text and "e" not in text:  # sign and point only: the same, faster
        return (len(text.replace(".", "").strip("-0")) + 1) // 2 + 1
    digits = text.lstrip("-").split("e")[0].split("E")[0].replace(".", "").strip("0")
    return (len(digits) + 1) // 2 + 1


def value_size(value: AttributeValue) -> int:
    """Bytes DynamoDB counts for one AttributeValue (see the developer guide's item sizes)."""
    for tag, inner in value.items():
        if tag == "S":
            return len(inner) if inner.isascii() else len(inner.encode("utf-8"))
        if tag == "N":
            return _number_size(inner)
        if tag == "M":
            return 3 + len(inner) + item_size(inner)
        if tag == "L":
            size = 3 + len(inner)
            for element in inner:
                for kind, v in element.items():
                    if kind == "S":
                        size += len(v) if v.isascii() else len(v.encode("utf-8"))
                    elif kind == "N" and v.isdigit():
                        size += (len(v.strip("0")) + 1) // 2 + 1
                    else:
                        size += value_size(element)
                    break
                else:
                    size += value_size(element)
            return size
        if tag == "B":
            return len(inner)
        if tag in ("BOOL", "NULL"):
            return 1
        if tag == "SS":
            size = 0
            for text in inner:
                size += len(text) if text.isascii() else len(text.encode("utf-8"))
            return size
        if tag == "NS":
            return sum(_number_size(n) for n in inner)
        if tag == "BS":
            return sum(len(b) for b in inner)
        raise ValidationError(f"unknown AttributeValue type {tag!r}")
    raise ValidationError("empty AttributeValue (no type tag)")


def item_size(item: Mapping[str, AttributeValue]) -> int:
    """Bytes DynamoDB counts for an item: attribute names plus values."""
    size = 0
    for name, value in item.items():
        size += len(name) if name.isascii() else len(name.encode("utf-8"))
        for kind, v in value.items():
            # the commonest values inline; the rest through value_size
            if kind == "S":
                size += len(v) if v.isascii() else len(v.encode("utf-8"))
            elif kind == "N" and v.isdigit():
                size += (len(v.strip("0")) + 1) // 2 + 1
            else:
                size += value_size(value)
            break
        else:
            size += value_size(value)
    return size


def check_item_size(item: Mapping[str, AttributeValue], what: str) -> int:
    """Raise `ItemTooLarge` when an item exceeds 400 KB; return its size."""
    size = item_size(item)
    if size > MAX_ITEM_BYTES:
        from dynamodel.core.errors import ItemTooLarge

        raise ItemTooLarge(
            f"{what}: item is {size:,} bytes; DynamoDB's limit is {MAX_ITEM_BYTES:,} bytes "
            "(attribute names and values)",
            size=size,
            limit=MAX_ITEM_BYTES,
        )
    return size
