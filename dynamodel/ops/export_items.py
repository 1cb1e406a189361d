"""One line of an export (DynamoDB JSON or Ion) to an item and back (see
`dynamodel.ops.exports`)."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from dynamodel.core.codec import Item
from dynamodel.core.errors import ValidationError
from dynamodel.ops.export_errors import (
    ExportError,
)

if TYPE_CHECKING:
    pass


# -- one line -> one item ---------------------------------------------------------------------


def _binary(value: Any) -> bytes:
    if isinstance(value, str):
        try:
            return base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise ValidationError(f"binary value is not base64: {value[:40]!r}") from exc
    if isinstance(value, bytes | bytearray):
        return bytes(value)
    raise ValidationError(f"binary value must be base64 text, got {type(value).__name__}")


def _attribute(value: Any, depth: int = 0) -> dict[str, Any]:
    """A JSON AttributeValue with binary values as bytes, its shape checked."""
    if not isinstance(value, dict) or len(value) != 1:
        raise ValidationError(f"not an AttributeValue (one type tag and its value): {value!r:.80}")
    if depth > 40:
        raise ValidationError("AttributeValue nested too deeply")
    ((tag, inner),) = value.items()
    if tag in ("S", "N"):
        if not isinstance(inner, str):
            raise ValidationError(f"{tag} value must be a string, got {inner!r:.40}")
        return {tag: inner}
    if tag == "B":
        return {"B": _binary(inner)}
    if tag in ("SS", "NS", "BS"):
        if not isinstance(inner, list):
            raise ValidationError(f"{tag} value must be a list")
        if tag == "BS":
            return {"BS": [_binary(v) for v in inner]}
        if not all(isinstance(v, str) for v in inner):
            raise ValidationError(f"{tag} values must be strings")
        return {tag: list(inner)}
    if tag == "M":
        if not isinstance(inner, dict):
            raise ValidationError("M value must be an object")
        return {"M": {str(k): _attribute(v, depth + 1) for k, v in inner.items()}}
    if tag == "L":
        if not isinstance(inner, list):
            raise ValidationError("L value must be a list")
        return {"L": [_attribute(v, depth + 1) for v in inner]}
    if tag in ("BOOL", "NULL"):
        if not isinstance(inner, bool):
            raise ValidationError(f"{tag} value must be true or false")
        return {tag: inner}
    raise ValidationError(f"unknown AttributeValue type {tag!r}")


def attributes_from_json(plain: Mapping[str, Any]) -> Item:
    """DynamoDB JSON attributes (name -> AttributeValue, binary values as base64 text) ->
    AttributeValues with binary values as bytes, each value's shape checked."""
    return {str(name): _attribute(value) for name, value in plain.items()}


def attributes_to_json(item: Mapping[str, Any]) -> dict[str, Any]:
    """AttributeValues -> DynamoDB JSON attributes (binary values as base64 text): the
    inverse of `attributes_from_json`."""
    plain: dict[str, Any] = json.loads(json.dumps(item, default=_json_default))
    return plain


def item_from_json(text: str | bytes) -> Item:
    """One DynamoDB JSON line (``{"Item": {...}}``) -> an item (binary values as bytes)."""
    try:
        document = json.loads(text)
    except ValueError as exc:
        raise ValidationError(f"not JSON: {exc}") from exc
    if not isinstance(document, dict) or not isinstance(document.get("Item"), dict):
        if isinstance(document, dict) and ("NewImage" in document or "Keys" in document):
            raise ValidationError("an incremental export record (NewImage/Keys), not an Item")
        raise ValidationError('not an item line: expected {"Item": {...}}')
    return attributes_from_json(document["Item"])


def _json_default(value: Any) -> Any:
    if isinstance(value, bytes | bytearray | memoryview):
        return base64.b64encode(bytes(value)).decode("ascii")
    raise TypeError(f"cannot write {type(value).__name__} as DynamoDB JSON")


def item_to_json(item: Mapping[str, Any]) -> str:
    """An item -> its DynamoDB JSON line (``{"Item": {...}}``, binary values as base64),
    without the newline."""
    return json.dumps(
        {"Item": item}, ensure_ascii=False, separators=(",", ":"), default=_json_default
    )


def _number_text(value: Any) -> str:
    number = Decimal(value) if not isinstance(value, Decimal) else value
    if not number.is_finite():
        raise ValidationError(f"not a DynamoDB number: {value!r}")
    if number == number.to_integral_value() and number.as_tuple().exponent >= 0:  # type: ignore[operator]
        return str(int(number))  # 6d2 -> "600"
    return str(number)


def _ion_attribute(value: Any, depth: int = 0) -> dict[str, Any]:
    """An Ion value (from ``amazon.ion.simpleion``) -> an AttributeValue, per the documented
    mapping: string, bool, decimal, blob, list, struct, and lists annotated
    ``$dynamodb_SS``/``$dynamodb_NS``/``$dynamodb_BS`` for sets."""
    from amazon.ion.core import IonType

    if depth > 40:
        raise ValidationError("Ion value nested too deeply")
    kind = getattr(value, "ion_type", None)
    annotations = [getattr(a, "text", a) for a in getattr(value, "ion_annotations", ()) or ()]
    if value is None or kind is IonType.NULL or getattr(value, "is_null", False) is True:
        return {"NULL": True}
    if kind is IonType.BOOL or isinstance(value, bool):
        return {"BOOL": bool(value)}
    if kind in (IonType.STRING, IonType.SYMBOL) or isinstance(value, str):
        return {"S": str(value)}
    if kind in (IonType.DECIMAL, IonType.INT) or isinstance(value, int | Decimal):
        return {"N": _number_text(value)}
    if kind is IonType.FLOAT or isinstance(value, float):
        return {"N": _number_text(Decimal(repr(float(value))))}
    if kind in (IonType.BLOB, IonType.CLOB) or isinstance(value, bytes):
        return {"B": bytes(value)}
    if kind is IonType.STRUCT or isinstance(value, Mapping):
        return {"M": {str(k): _ion_attribute(v, depth + 1) for k, v in value.items()}}
    if kind in (IonType.LIST, IonType.SEXP) or isinstance(value, list):
        if "$dynamodb_SS" in annotations:
            return {"SS": [str(v) for v in value]}
        if "$dynamodb_NS" in annotations:
            return {"NS": [_number_text(v) for v in value]}
        if "$dynamodb_BS" in annotations:
            return {"BS": [bytes(v) for v in value]}
        return {"L": [_ion_attribute(v, depth + 1) for v in value]}
    raise ValidationError(f"Ion value of type {kind} has no DynamoDB equivalent")


def _ion_module() -> Any:
    try:
        from amazon.ion import simpleion
    except ModuleNotFoundError as exc:
        raise ExportError(
            "this export is in Amazon Ion format, read with the amazon.ion package: "
            "pip install 'dynamodel[ion]' (or export as DYNAMODB_JSON, the default of "
            "export_table and `dynamodel export start`)"
        ) from exc
    return simpleion


def item_from_ion(text: str, simpleion: Any) -> Item:
    """One Ion export line (``$ion_1_0 {Item:{...}}``) -> an item."""
    try:
        values = simpleion.loads(text, single_value=False)
    except Exception as exc:
        raise ValidationError(f"not Ion: {exc}") from exc
    documents = [v for v in values if isinstance(v, Mapping)]
    if len(documents) != 1 or not isinstance(documents[0].get("Item"), Mapping):
        raise ValidationError("not an item line: expected {Item:{...}}")
    return {str(k): _ion_attribute(v) for k, v in documents[0]["Item"].items()}
