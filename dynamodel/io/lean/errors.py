"""The lean clients' ``exceptions``: one ``ClientError`` subclass per DynamoDB error shape.

Built like botocore builds ``client.exceptions`` (``type(name, (ClientError,), {})`` per modeled
error, looked up by code with ``from_code``), from `spec.ERRORS`, once per process. Only
``botocore.exceptions`` is imported for it (not ``botocore.errorfactory``, which pulls in
``botocore.utils`` and urllib3): a conditional write that fails on a cold start stays cheap.
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
                from botocore.exceptions import ClientError

                classes: dict[str, Any] = {}
                by_code: dict[str, Any] = {}
                for name, (code, _members) in ERRORS.items():
                    cls = type(name, (ClientError,), {})
                    classes[name] = cls
                    by_code[code] = cls
                holder = type("DynamoDBExceptions", (_ClientExceptions,), classes)
                _exceptions = holder(by_code, ClientError)
    return _exceptions


class _ClientExceptions:
    """botocore's ``BaseClientExceptions``: the modeled classes as attributes, ``from_code``."""

    def __init__(self, by_code: dict[str, Any], client_error: type[Exception]) -> None:
        self._code_to_exception = by_code
        self.ClientError = client_error

    def from_code(self, error_code: str) -> Any:
        """The class of ``error_code``'s errors (``ClientError`` for an unmodeled code)."""
        return self._code_to_exception.get(error_code, self.ClientError)

    def __getattr__(self, name: str) -> Any:
        names = ", ".join(cls.__name__ for cls in self._code_to_exception.values())
        raise AttributeError(
            f"{self} object has no attribute {name}. Valid exceptions are: {names}"
        )


def modeled_members(code: str) -> tuple[str, ...]:
    """Body members botocore copies into ``ClientError.response`` for errors with ``code``."""
    return _MEMBERS_BY_CODE.get(code, ())


_MEMBERS_BY_CODE = {code: members for code, members in ERRORS.values()}
