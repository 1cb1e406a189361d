"""DynamoDB JSON bodies: request parameters -> bytes, response bytes -> boto3's dicts.

Parameters are already in DynamoDB's JSON shape (AttributeValue maps), so a request body is one
``json.dumps``. The only values botocore transforms are blobs: ``B`` and ``BS`` values are
sent base64-encoded (``bytes``, ``bytearray`` or ``str``, as botocore accepts) and come back
decoded to ``bytes``. Both directions take a fast path when the body holds no blob: the encoder
falls back to a walk only when ``json.dumps`` meets a non-JSON value (bytes) or the text has a
``B`` / ``BS`` key whose value is not a map, and the decoder walks only when ``"B"`` or ``"BS"``
appears.
"""

from __future__ import annotations

import base64
import json
import re
from typing import Any

_dumps = json.JSONEncoder(separators=(",", ":")).encode
_BLOB_TYPES = (bytes, bytearray, memoryview)
_BLOB_KEY = re.compile(r'"BS?":[^{]').search  # a B/BS key whose value is not a map


class ParameterError(TypeError):
    """A parameter value that cannot be sent (the message names its path)."""


def encode_body(params: dict[str, Any]) -> bytes:
    """The JSON body for ``params`` (blobs base64-encoded, as botocore sends them)."""
    try:
        text = _dumps(params)
    except (TypeError, ValueError):
        return _dumps(_encode_blobs(params, "")).encode()
    if _BLOB_KEY(text):  # str blobs (botocore base64-encodes them too) or invalid ones
        return _dumps(_encode_blobs(params, "")).encode()
    return text.encode()


def _b64(value: Any, path: str) -> str:
    if isinstance(value, str):
        value = value.encode("utf-8")
    elif not isinstance(value, _BLOB_TYPES):
        raise ParameterError(
            f"Invalid type for parameter {path}, value: {value!r}, type: {type(value)}, "
            "valid types: <class 'bytes'>, <class 'bytearray'>, <class 'str'>"
        )
    return base64.b64encode(value).decode("ascii")


def _encode_blobs(value: Any, path: str) -> Any:
    """A copy of ``value`` with blobs base64-encoded; other values are checked for JSON."""
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for key, item in value.items():
            where = f"{path}.{key}" if path else str(key)
            if key == "B" and not isinstance(item, dict):
                out[key] = _b64(item, where)
            elif key == "BS" and not isinstance(item, dict):
                if not isinstance(item, list | tuple):
                    raise ParameterError(
                        f"Invalid type for parameter {where}, value: {item!r}, "
                        f"type: {type(item)}, valid types: <class 'list'>, <class 'tuple'>"
                    )
                out[key] = [_b64(x, f"{where}[{i}]") for i, x in enumerate(item)]
            else:
                out[key] = _encode_blobs(item, where)
        return out
    if isinstance(value, list | tuple):
        return [_encode_blobs(item, f"{path}[{i}]") for i, item in enumerate(value)]
    if value is None or isinstance(value, str | bool | int | float):
        return value
    raise ParameterError(
        f"Invalid type for parameter {path}, value: {value!r}, type: {type(value)}"
        + (" (a blob is only valid as the value of B or BS)" if isinstance(value, bytes) else "")
    )


def decode_body(data: bytes) -> dict[str, Any]:
    """A response body as boto3 returns it: blobs decoded, null members dropped."""
    if not data:
        return {}
    parsed = json.loads(data)
    if not isinstance(parsed, dict):
        raise ValueError(f"expected a JSON object, got {type(parsed).__name__}")
    if b'"B"' in data or b'"BS"' in data:
        _decode_blobs(parsed)
    if b"null" in data:
        parsed = {key: value for key, value in parsed.items() if value is not None}
    return parsed


def _decode_blobs(value: Any) -> None:
    """Decode ``B``/``BS`` strings in place, in every nested dict and list."""
    if isinstance(value, dict):
        for key, item in value.items():
            if key == "B" and isinstance(item, str):
                value[key] = _unb64(item)
            elif key == "BS" and isinstance(item, list):
                value[key] = [_unb64(x) if isinstance(x, str) else x for x in item]
            elif isinstance(item, dict | list):
                _decode_blobs(item)
    elif isinstance(value, list):
        for item in value:
            if isinstance(item, dict | list):
                _decode_blobs(item)


def _unb64(text: str) -> bytes:
    return base64.b64decode(text)  # as lenient as botocore's blob parser
