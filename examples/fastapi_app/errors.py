"""dynamodel and pydantic errors as HTTP responses.

| Error                                        | Status | Why                                      |
| -------------------------------------------- | ------ | ---------------------------------------- |
| `ItemNotFound`                               | 404    | no item with that key                    |
| `VersionConflict`                            | 409    | the client's copy is stale (has current) |
| `ConditionFailed`, `TransactionCanceled`     | 409    | the stored state forbids the change      |
| dynamodel `ValidationError`, pydantic errors | 422    | bad input (e.g. a malformed cursor)      |
| `ThrottledError`                             | 503    | DynamoDB throttled even after retries    |

Starlette picks the handler of the most specific class, so `VersionConflict` (a subclass of
`ConditionFailed`) gets its own.
"""

from __future__ import annotations

from typing import Any

import pydantic
from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse

from dynamodel import (
    ConditionFailed,
    ItemNotFound,
    ThrottledError,
    TransactionCanceled,
    ValidationError,
    VersionConflict,
)


def _json(status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(jsonable_encoder(body), status_code=status, headers=headers)


def _current(error: ConditionFailed) -> Any:
    current = error.current
    return current.model_dump(mode="json") if isinstance(current, pydantic.BaseModel) else None


async def not_found(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, ItemNotFound)
    return _json(404, {"detail": str(error)})


async def version_conflict(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, VersionConflict)
    return _json(
        409,
        {
            "detail": "the item changed since it was read (version conflict)",
            "expected_version": error.expected,
            "actual_version": error.actual,
            "current": _current(error),
        },
    )


async def condition_failed(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, ConditionFailed)
    return _json(409, {"detail": str(error), "current": _current(error)})


async def transaction_canceled(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, TransactionCanceled)
    failed = [
        {"action": r.action, "key": r.key, "code": r.code, "version_conflict": r.version_conflict}
        for r in error.failed
    ]
    return _json(409, {"detail": "the transaction was cancelled", "failed": failed})


async def invalid(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, ValidationError)
    return _json(422, {"detail": str(error)})


async def invalid_model(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, pydantic.ValidationError)
    return _json(422, {"detail": error.errors(include_url=False, include_context=False)})


async def throttled(request: Request, error: Exception) -> JSONResponse:
    detail = {"detail": "DynamoDB is throttling requests; retry later"}
    return _json(503, detail, headers={"Retry-After": "1"})


def install(app: FastAPI) -> None:
    """Register every handler on ``app``."""
    app.add_exception_handler(ItemNotFound, not_found)
    app.add_exception_handler(VersionConflict, version_conflict)
    app.add_exception_handler(ConditionFailed, condition_failed)
    app.add_exception_handler(TransactionCanceled, transaction_canceled)
    app.add_exception_handler(ValidationError, invalid)
    app.add_exception_handler(pydantic.ValidationError, invalid_model)
    app.add_exception_handler(ThrottledError, throttled)
