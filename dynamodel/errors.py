"""The dynamodel exception hierarchy and the mapping from botocore errors.

Errors dynamodel detects or DynamoDB returns derive from `DynamodelError`. Bad input caught
before a request is sent is a `ValidationError`; an error the service returned keeps the
botocore exception as ``__cause__`` and its code in `DynamodelError.code`. Two kinds pass
through unchanged: pydantic's ``ValidationError`` when a stored item does not fit its model,
and botocore's transport errors (connection, credentials) that carry no DynamoDB error code.
"""

from __future__ import annotations

from typing import Any


class DynamodelError(Exception):
    """Base class of every error raised by dynamodel."""

    code: str | None = None
    #: retries botocore already made inside the failed call (from ResponseMetadata)
    retry_attempts: int = 0
    #: the HTTP status of the failed call, when there was one
    status: int | None = None

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        if code is not None:
            self.code = code


class ValidationError(DynamodelError, ValueError):
    """Bad input, detected before any request is sent (or rejected by DynamoDB as invalid)."""

    code = "ValidationException"


class ItemTooLarge(ValidationError):
    """The serialised item exceeds DynamoDB's 400 KB item size limit."""

    def __init__(self, message: str, *, size: int, limit: int) -> None:
        super().__init__(message)
        self.size = size
        self.limit = limit


class ItemNotFound(DynamodelError, LookupError):
    """A get by key found no item."""

    def __init__(self, message: str, *, key: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.key = key


class ConditionFailed(DynamodelError):
    """A condition expression evaluated to false.

    ``item`` holds the current stored item (raw AttributeValue map) when DynamoDB returned it
    (dynamodel always asks for it with ``ReturnValuesOnConditionCheckFailure=ALL_OLD``), and
    ``current`` holds it parsed into the model when the model is known.
    """

    code = "ConditionalCheckFailedException"

    def __init__(
        self,
        message: str,
        *,
        item: dict[str, Any] | None = None,
        current: Any = None,
    ) -> None:
        super().__init__(message)
        self.item = item
        self.current = current


class ThrottledError(DynamodelError):
    """DynamoDB throttled the request and the retry policy gave up."""


class TransactionCanceled(DynamodelError):
    """A transaction was cancelled; ``reasons`` is aligned with the request's actions."""

    code = "TransactionCanceledException"

    def __init__(self, message: str, *, reasons: list[dict[str, Any]]) -> None:
        super().__init__(message)
        self.reasons = reasons


class TableNotFound(DynamodelError):
    """The table (or index) does not exist."""

    code = "ResourceNotFoundException"


class ServiceError(DynamodelError):
    """Any other error returned by DynamoDB."""


RETRYABLE_CODES = frozenset(
    {
        "ProvisionedThroughputExceededException",
        "ThrottlingException",
        "RequestLimitExceeded",
        "InternalServerError",
        "InternalFailure",
        "ServiceUnavailable",
        "LimitExceededException",
        "TransactionInProgressException",
        "TransactionConflictException",
    }
)
THROTTLING_CODES = frozenset(
    {"ProvisionedThroughputExceededException", "ThrottlingException", "RequestLimitExceeded"}
)


def error_code(exc: BaseException) -> str | None:
    """The DynamoDB error code of a botocore ``ClientError`` (or DAX error), else None."""
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        code = response.get("Error", {}).get("Code")
        if isinstance(code, str):
            return code.rsplit("#", 1)[-1]
    return None


def map_client_error(exc: BaseException, operation: str) -> DynamodelError | None:
    """Translate a botocore ``ClientError`` into the dynamodel hierarchy (None if not one)."""
    code = error_code(exc)
    if code is None:
        return None
    response: dict[str, Any] = getattr(exc, "response", {})
    message = str(response.get("Error", {}).get("Message") or exc)
    text = f"{operation}: {code}: {message}"
    error: DynamodelError
    if code == "ConditionalCheckFailedException":
        error = ConditionFailed(text, item=response.get("Item"))
    elif code == "TransactionCanceledException":
        reasons = response.get("CancellationReasons")
        if reasons is None:
            reasons = getattr(exc, "cancellation_reasons", None) or []
        error = TransactionCanceled(text, reasons=list(reasons))
    elif code == "ValidationException":
        error = ValidationError(text)
    elif code == "ResourceNotFoundException":
        error = TableNotFound(text)
    elif code in THROTTLING_CODES:
        error = ThrottledError(text, code=code)
    else:
        error = ServiceError(text, code=code)
    metadata = response.get("ResponseMetadata", {})
    if isinstance(metadata.get("RetryAttempts"), int):
        error.retry_attempts = metadata["RetryAttempts"]
    if isinstance(metadata.get("HTTPStatusCode"), int):
        error.status = metadata["HTTPStatusCode"]
    return error
