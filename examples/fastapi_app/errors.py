"""dynamodel and pydantic errors as HTTP responses, with bodies that say what went wrong in the
client's terms and never reveal the table: no table name, key attribute, key template, stored
key or library internals (a malformed cursor is "invalid cursor", not a decoder's message).

| Error                                        | Status | Body                                     |
| -------------------------------------------- | ------ | ---------------------------------------- |
| `ItemNotFound`                               | 404    | ``not found``                            |
| `TenantViolation`                            | 403    | ``forbidden`` (another customer's data)  |
| `VersionConflict`                            | 409    | the versions and the current item        |
| `ConditionFailed`                            | 409    | the current item                         |
| `TransactionCanceled`                        | 409    | each failed action and its model         |
| `InvalidCursor`                              | 422    | ``invalid cursor``                       |
| dynamodel `ValidationError`                  | 422    | ``invalid request``                      |
| pydantic errors                              | 422    | field locations and messages, no input   |
| `ThrottledError`                             | 503    | retry later (``Retry-After``)            |
| any other dynamodel error                    | 500    | ``storage error``                        |

A refused tenant key is a 403 whether or not the item exists: the refusal happens before any
request, so it tells the caller nothing about other customers. Starlette picks the handler of
the most specific class, so subclasses (`VersionConflict` of `ConditionFailed`, `InvalidCursor`
of `ValidationError`) get their own. The full errors go to the log, not to the client.
"""

from __future__ import annotations

import logging
from typing import Any

import pydantic
from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse

from dynamodel import (
    ConditionFailed,
    DynamodelError,
    InvalidCursor,
    ItemNotFound,
    TenantViolation,
    ThrottledError,
    TransactionCanceled,
    ValidationError,
    VersionConflict,
)

log = logging.getLogger("shop")


def _json(status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(jsonable_encoder(body), status_code=status, headers=headers)


def _current(error: ConditionFailed) -> Any:
    """The stored item the condition saw, as the API shows it (the caller's own item: a key of
    another tenant is refused before any request)."""
    current = error.current
    return current.model_dump(mode="json") if isinstance(current, pydantic.BaseModel) else None


async def not_found(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, ItemNotFound)
    log.info("404 %s: %s", request.url.path, error)
    return _json(404, {"detail": "not found"})


async def forbidden(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, TenantViolation)
    log.warning("403 %s: %s", request.url.path, error)
    return _json(403, {"detail": "forbidden"})


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
    log.info("409 %s: %s", request.url.path, error)
    detail = "the stored item does not allow this change"
    return _json(409, {"detail": detail, "current": _current(error)})


async def transaction_canceled(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, TransactionCanceled)
    log.info("409 %s: %s", request.url.path, error)
    failed = [
        {
            "action": r.action,
            "entity": r.model.__name__ if r.model else None,
            "code": r.code,
            "version_conflict": r.version_conflict,
        }
        for r in error.failed
    ]
    return _json(409, {"detail": "the transaction was cancelled", "failed": failed})


async def invalid_cursor(request: Request, error: Exception) -> JSONResponse:
    log.info("422 %s: %s", request.url.path, error)
    return _json(422, {"detail": "invalid cursor"})


async def invalid(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, ValidationError)
    log.info("422 %s: %s", request.url.path, error)
    return _json(422, {"detail": "invalid request"})


async def invalid_model(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, pydantic.ValidationError)
    problems = error.errors(include_url=False, include_context=False, include_input=False)
    return _json(422, {"detail": problems})


async def throttled(request: Request, error: Exception) -> JSONResponse:
    detail = {"detail": "DynamoDB is throttling requests; retry later"}
    return _json(503, detail, headers={"Retry-After": "1"})


async def storage_error(request: Request, error: Exception) -> JSONResponse:
    log.error("500 %s: %s", request.url.path, error)
    return _json(500, {"detail": "storage error"})


def install(app: FastAPI) -> None:
    """Register every handler on ``app``."""
    app.add_exception_handler(ItemNotFound, not_found)
    app.add_exception_handler(TenantViolation, forbidden)
    app.add_exception_handler(VersionConflict, version_conflict)
    app.add_exception_handler(ConditionFailed, condition_failed)
    app.add_exception_handler(TransactionCanceled, transaction_canceled)
    app.add_exception_handler(InvalidCursor, invalid_cursor)
    app.add_exception_handler(ValidationError, invalid)
    app.add_exception_handler(pydantic.ValidationError, invalid_model)
    app.add_exception_handler(ThrottledError, throttled)
    app.add_exception_handler(DynamodelError, storage_error)
