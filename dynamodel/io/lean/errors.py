"""The lean clients' ``exceptions``: one ``ClientError`` subclass per DynamoDB error shape.

Built like botocore builds ``client.exceptions`` (``type(name, (ClientError,), {})`` per modeled
error, looked up by code with ``from_code``), from `spec.ERRORS`, once per process.
"""

from __future__ import annotations

import threading
from typing import Any

from dynamodel.io.lean.spec import ERRORS

_lock = threading.Lock()
_exceptions: Any = None


def lean_exceptions() -> Any:
    """The shared ``DynamoDBExceptions`` object (``.ConditionalCheckFailedException``, ...)."""
    global _exceptions
    if _exceptions is None:
        with _lock:
            if _exceptions is None:
                from botocore.errorfactory import BaseClientExceptions
                from botocore.exceptions import ClientError

                classes: dict[str, Any] = {}
                by_code: dict[str, Any] = {}
                for name, (code, _members) in ERRORS.items():
                    cls = type(name, (ClientError,), {})
                    classes[name] = cls
                    by_code[code] = cls
                holder = type("DynamoDBExceptions", (BaseClientExceptions,), classes)
                _exceptions = holder(by_code)
    return _exceptions


def modeled_members(code: str) -> tuple[str, ...]:
    """Body members botocore copies into ``ClientError.response`` for errors with ``code``."""
    return _MEMBERS_BY_CODE.get(code, ())


_MEMBERS_BY_CODE = {code: members for code, members in ERRORS.values()}
