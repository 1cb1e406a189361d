"""The dynamodel exception hierarchy and the mapping from botocore errors.

Errors dynamodel detects or DynamoDB returns derive from `DynamodelError`. Bad input caught
before a request is sent is a `ValidationError`; an error the service returned keeps the
botocore exception as ``__cause__`` and its code in `DynamodelError.code`. Two kinds pass
through unchanged: pydantic's ``ValidationError`` when a stored item does not fit its model,
and botocore's transport errors (connection, credentials) that carry no DynamoDB error code.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from dynamodel.core.frozen import Frozen


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


class UnsupportedOperationWarning(UserWarning):
    """The endpoint (a local emulator) does not implement a table-management call."""


class NaiveDatetimeWarning(UserWarning):
    """A naive ``datetime`` (no time zone) was stored in a non-key attribute.

    It is stored as it is, without a zone (the behaviour of earlier versions, kept so stored
    data still round-trips), but the instant it means depends on the clock zone of whoever
    reads it. Turn it into an error with ``warnings.simplefilter("error",
    NaiveDatetimeWarning)`` (or pytest's ``-W error::dynamodel.NaiveDatetimeWarning``). Key
    template fields refuse naive datetimes outright (`ValidationError`).
    """


class ValidationError(DynamodelError, ValueError):
    """Bad input, detected before any request is sent (or rejected by DynamoDB as invalid)."""

    code = "ValidationException"


class UnknownPath(ValidationError):
    """An expression names an attribute path its model does not declare; nothing was sent.

    Attributes:
        model: the model's name (several, comma-separated, for a collection query).
        path: the path as written (``"address.ctiy"``).
        segment: the first segment that is not declared (``"ctiy"``, or an index).
        closest: declared names close to ``segment`` (possibly empty).
    """

    def __init__(
        self, message: str, *, model: str, path: str, segment: str | int, closest: list[str]
    ) -> None:
        super().__init__(message)
        self.model = model
        self.path = path
        self.segment = segment
        self.closest = closest


class ItemTooLarge(ValidationError):
    """The serialised item exceeds DynamoDB's 400 KB item size limit."""

    def __init__(self, message: str, *, size: int, limit: int) -> None:
        super().__init__(message)
        self.size = size
        self.limit = limit


class InvalidCursor(ValidationError):
    """A cursor that is malformed, unsigned where signing is required, signed with another
    key, altered, or made by another query; nothing was sent."""


class PolicyRefused(ValidationError):
    """An IAM policy was asked for models whose keys IAM cannot confine to one identity.

    ``reasons`` maps each refused model's name to why.
    """

    def __init__(self, message: str, *, reasons: Mapping[str, str]) -> None:
        super().__init__(message)
        self.reasons = dict(reasons)


class TenantViolation(DynamodelError, PermissionError):
    """An operation inside a tenant scope would touch keys outside it; nothing was sent.

    Attributes:
        model: the model's name (or None for a raw table operation).
        field: the scope's tenant field.
        reason: what was refused, in a sentence that names no stored key.
    """

    def __init__(self, message: str, *, model: str | None, field: str, reason: str) -> None:
        super().__init__(message)
        self.model = model
        self.field = field
        self.reason = reason


class ItemNotFound(DynamodelError, LookupError):
    """A get by key found no item."""

    def __init__(self, message: str, *, key: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.key = key


class EntityMismatch(DynamodelError):
    """An item read as one entity is stored as another (its type attribute says so).

    Raised instead of parsing it: a key that renders the same text for two entities, or a
    hand-written key, must not hand one entity's data to another's code. ``expected`` and
    ``stored`` are the entity types, ``key`` the item's key attributes (raw).
    """

    def __init__(
        self, message: str, *, expected: str, stored: str, key: dict[str, Any] | None = None
    ) -> None:
        super().__init__(message)
        self.expected = expected
        self.stored = stored
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


class VersionConflict(ConditionFailed):
    """An optimistic-locking check failed: the stored version is not the one the write expected.

    ``expected`` is the version the write required (None: no stored version, a new item);
    ``actual`` is the stored version DynamoDB returned (None when the item, or its version
    attribute, is absent). ``item`` and ``current`` hold the stored item, as in
    `ConditionFailed`, so the winner of the race can be inspected or reapplied to.
    """

    def __init__(
        self,
        message: str,
        *,
        item: dict[str, Any] | None = None,
        current: Any = None,
        expected: int | None = None,
        actual: int | None = None,
    ) -> None:
        super().__init__(message, item=item, current=current)
        self.expected = expected
        self.actual = actual


class UniqueConstraintViolation(ConditionFailed):
    """A value of a unique field (``Meta.unique``) is already taken by another item.

    ``model`` is the model class name, ``field`` the field (Python name) and ``value`` the
    value that was refused; ``owner`` is the key of the item holding it (its rendered key
    attributes, from the guard record), when DynamoDB returned it.
    """

    def __init__(
        self,
        message: str,
        *,
        model: str,
        field: str,
        value: Any,
        owner: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.model = model
        self.field = field
        self.value = value
        self.owner = owner


class ThrottledError(DynamodelError):
    """DynamoDB throttled the request and the retry policy gave up."""


class CancellationReason(Frozen):
    """Why one action of a cancelled transaction failed (or ``code`` None if it did not).

    Reasons are aligned with the transaction's actions: ``index`` is the action's position,
    ``action`` its kind (``put``, ``create``, ``update``, ``delete``, ``condition_check``,
    ``get``), ``model`` the model class and ``key`` the key fields it targets. ``code`` is
    DynamoDB's reason code (``ConditionalCheckFailed``, ``TransactionConflict``,
    ``ValidationError``, ...), ``item`` the stored item when DynamoDB returned it
    (``ReturnValuesOnConditionCheckFailure=ALL_OLD``) and ``current`` that item parsed into
    ``model``. ``version_conflict`` is True when the failed condition is the optimistic-locking
    check (the stored version differs from the expected one).
    """

    _fields = (
        "index",
        "code",
        "message",
        "item",
        "action",
        "model",
        "key",
        "current",
        "version_conflict",
    )
    __slots__ = _fields
    index: int
    code: str | None
    message: str | None
    item: dict[str, Any] | None
    action: str | None
    model: type | None
    key: dict[str, Any] | None
    current: Any
    version_conflict: bool

    def __init__(
        self,
        index: int,
        code: str | None,
        message: str | None = None,
        item: dict[str, Any] | None = None,
        action: str | None = None,
        model: type | None = None,
        key: dict[str, Any] | None = None,
        current: Any = None,
        version_conflict: bool = False,
    ) -> None:
        self._set(
            index=index,
            code=code,
            message=message,
            item=item,
            action=action,
            model=model,
            key=key,
            current=current,
            version_conflict=version_conflict,
        )

    @property
    def failed(self) -> bool:
        """Whether this action is one that made the transaction fail."""
        return self.code is not None

    def describe(self) -> str:
        """One line naming the action and why it failed."""
        what = f"action {self.index}"
        if self.action is not None:
            name = self.model.__name__ if self.model is not None else "?"
            what += f" ({self.action} {name} {self.key})"
        if self.code is None:
            return f"{what}: ok"
        text = f"{what}: {self.code}"
        if self.version_conflict:
            text += " (version conflict)"
        elif self.code == "ConditionalCheckFailed" and self.item is None:
            text += " (no stored item)"
        if self.message:
            text += f": {self.message}"
        return text


def _reason_code(raw: Any) -> str | None:
    code = raw.get("Code") if isinstance(raw, dict) else None
    return None if code in (None, "None", "") else str(code)


#: the reason codes DynamoDB puts in ``CancellationReasons`` ("None": the action was fine)
REASON_CODES = frozenset(
    {
        "None",
        "ConditionalCheckFailed",
        "ItemCollectionSizeLimitExceeded",
        "TransactionConflict",
        "ProvisionedThroughputExceeded",
        "ThrottlingError",
        "ValidationError",
    }
)


def normalize_reason(entry: Any) -> dict[str, Any]:
    """One cancellation reason as DynamoDB's ``{"Code", "Message", "Item"}`` dict.

    DynamoDB (and botocore) give dicts; the DAX client puts its reasons on the exception's
    ``cancellation_reasons`` in its own decoded form: dicts with any key case, objects with
    ``code``/``message``/``item`` attributes, or ``[item, code, message]``-like sequences
    (the code is the element that is a known reason code, the item the mapping).
    """
    if isinstance(entry, Mapping):
        lowered = {str(k).lower(): v for k, v in entry.items()}
        return {k: lowered.get(k.lower()) for k in ("Code", "Message", "Item")}
    if isinstance(entry, list | tuple):
        code = next((x for x in entry if isinstance(x, str) and x in REASON_CODES), None)
        item = next((x for x in entry if isinstance(x, Mapping)), None)
        message = next((x for x in entry if isinstance(x, str) and x is not code), None)
        return {"Code": code, "Message": message, "Item": dict(item) if item else None}
    return {
        "Code": getattr(entry, "code", None),
        "Message": getattr(entry, "message", None),
        "Item": getattr(entry, "item", None),
    }


def parse_reasons(raw: list[Any]) -> list[CancellationReason]:
    """``CancellationReasons`` as returned by DynamoDB -> `CancellationReason` (no model info)."""
    out: list[CancellationReason] = []
    for index, entry in enumerate(raw):
        entry = normalize_reason(entry) if entry is not None else {}
        message = entry.get("Message")
        out.append(
            CancellationReason(
                index=index,
                code=_reason_code(entry),
                message=str(message) if message else None,
                item=entry.get("Item") or None,
            )
        )
    return out


class TransactionCanceled(DynamodelError):
    """A transaction was cancelled.

    ``reasons`` is aligned with the transaction's actions (one `CancellationReason` each);
    ``failed`` lists only the actions that caused the cancellation. Raised by
    `dynamodel.TransactWrite` and `dynamodel.TransactGet` with every
    reason naming the model, action and key the caller added.
    """

    code = "TransactionCanceledException"

    def __init__(self, message: str, *, reasons: list[CancellationReason]) -> None:
        super().__init__(message)
        self.reasons = reasons

    @property
    def failed(self) -> list[CancellationReason]:
        """The reasons of the actions that failed."""
        return [reason for reason in self.reasons if reason.failed]


class TableNotFound(DynamodelError):
    """The table (or index) does not exist where the client looked.

    Attributes:
        table: the physical table name the request named (several, comma-separated, for a
            batch or transaction over tables), or None when unknown.
        region: the region of the client that sent the request, when known.
        endpoint: the endpoint URL of that client, when known.
    """

    code = "ResourceNotFoundException"

    def __init__(
        self,
        message: str,
        *,
        table: str | None = None,
        region: str | None = None,
        endpoint: str | None = None,
    ) -> None:
        super().__init__(message)
        self.table = table
        self.region = region
        self.endpoint = endpoint


class ConfigurationError(DynamodelError):
    """DynamoDB could not be reached: no region, no credentials, or no server at the endpoint.

    Raised in place of botocore's ``NoRegionError``, ``NoCredentialsError`` and
    ``EndpointConnectionError`` with a message saying how to fix it. The exception raised is
    also an instance of the botocore class it replaces (``except NoRegionError`` still works),
    and keeps that exception as ``__cause__``. ``original`` is that botocore class's name.
    """

    original: str | None = None
    #: the region and endpoint URL of the client that failed, when known
    region: str | None = None
    endpoint: str | None = None

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""

    def __reduce__(self) -> Any:  # the class is made at run time: pickle as the base class
        return (ConfigurationError, (str(self),))


class ServiceError(DynamodelError):
    """Any other error returned by DynamoDB."""


#: error codes an endpoint (a local emulator) answers with for an operation it does not
#: implement
UNSUPPORTED_CODES = frozenset(
    {"UnknownOperationException", "InvalidAction", "NotImplemented", "NotImplementedException"}
)


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
        # multi-Region strong consistency: the item is being written in another region
        "ReplicatedWriteConflictException",
        # the DAX client's spellings
        "InternalServerErrorException",
        "RequestLimitExceededException",
    }
)
THROTTLING_CODES = frozenset(
    {
        "ProvisionedThroughputExceededException",
        "ThrottlingException",
        "RequestLimitExceeded",
        "RequestLimitExceededException",  # DAX
    }
)


def error_code(exc: BaseException) -> str | None:
    """The DynamoDB error code of a botocore ``ClientError`` (or DAX error), else None."""
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        code = response.get("Error", {}).get("Code")
        if isinstance(code, str):
            return code.rsplit("#", 1)[-1]
        if isinstance(code, tuple | list) and code and isinstance(code[0], str):
            # DAX: (ValidationException, NotImplementedException) for calls it cannot serve
            return code[0]
    return None


def is_dax_error(exc: BaseException) -> bool:
    """Whether ``exc`` is one of the DAX client's errors (``amazondax.DaxError``)."""
    return type(exc).__module__.startswith("amazondax") and hasattr(exc, "response")


def map_client_error(
    exc: BaseException,
    operation: str,
    *,
    params: Mapping[str, Any] | None = None,
    client: Any = None,
) -> DynamodelError | None:
    """Translate a botocore ``ClientError`` (or DAX error) into the dynamodel hierarchy.

    ``params`` (the request's parameters) and ``client`` (the client that sent it) let a
    `TableNotFound` name the table, the region and the endpoint. Returns None for anything else
    (transport errors are translated by `map_setup_error`). DAX errors
    carry the same codes as DynamoDB's (a few spelled differently, see `RETRYABLE_CODES`);
    a DAX error whose codes DAX itself could not translate becomes a `ServiceError` with
    ``code`` None and DAX's numeric codes in the message.
    """
    code = error_code(exc)
    if code is None:
        if is_dax_error(exc):
            return _unknown_dax_error(exc, operation)
        return None
    response: dict[str, Any] = getattr(exc, "response", {})
    message = str(response.get("Error", {}).get("Message") or exc)
    detail = response.get("Error", {}).get("Code")
    if isinstance(detail, tuple | list) and len(detail) > 1:
        message = f"{message} ({', '.join(str(d) for d in detail[1:])})"
    text = f"{operation}: {code}: {message}"
    error: DynamodelError
    if code == "ConditionalCheckFailedException":
        error = ConditionFailed(text, item=response.get("Item"))
    elif code == "TransactionCanceledException":
        reasons = response.get("CancellationReasons")
        if reasons is None:  # DAX puts them on the exception
            reasons = getattr(exc, "cancellation_reasons", None) or []
        error = TransactionCanceled(text, reasons=parse_reasons(list(reasons)))
    elif code == "ValidationException":
        error = ValidationError(text)
    elif code == "ResourceNotFoundException":
        error = _table_not_found(text, params, client)
    elif code in THROTTLING_CODES:
        error = ThrottledError(text, code=code)
    else:
        error = ServiceError(text, code=code)
    _copy_metadata(error, response)
    return error


def _table_not_found(text: str, params: Mapping[str, Any] | None, client: Any) -> TableNotFound:
    """A `TableNotFound` naming the table, the client's region and endpoint, and the fix."""
    names = table_names(params or {})
    table = ", ".join(names) if names else None
    region, endpoint = client_location(client)
    what = f"table {table!r}" if len(names) == 1 else f"tables {table}" if names else "table"
    where = f"region {region or '(none)'}, endpoint {endpoint or '(default)'}"
    hint = (
        f"{text}. No {what} at {where}: create it (`table.create()` or "
        "`dynamodel table create`), or check the region/endpoint."
    )
    return TableNotFound(hint, table=table, region=region, endpoint=endpoint)


def table_names(params: Mapping[str, Any]) -> list[str]:
    """The physical table names a request's parameters name, in order, without repeats."""
    names: list[str] = []
    if isinstance(params.get("TableName"), str):
        names.append(params["TableName"])
    for name in params.get("RequestItems") or {}:  # BatchGetItem / BatchWriteItem
        names.append(str(name))
    for action in params.get("TransactItems") or []:  # TransactWriteItems / TransactGetItems
        for body in action.values() if isinstance(action, Mapping) else ():
            if isinstance(body, Mapping) and isinstance(body.get("TableName"), str):
                names.append(body["TableName"])
    return list(dict.fromkeys(names))


def client_location(client: Any) -> tuple[str | None, str | None]:
    """``(region, endpoint URL)`` of a boto3 or lean client (None for what it does not say)."""
    meta = getattr(client, "meta", None)
    region = getattr(meta, "region_name", None)
    endpoint = getattr(meta, "endpoint_url", None)
    return (
        region if isinstance(region, str) else None,
        endpoint if isinstance(endpoint, str) else None,
    )


#: how to fix each botocore setup error, by class name
_SETUP_HINTS = {
    "NoRegionError": (
        "no AWS region is configured. Set AWS_DEFAULT_REGION (or a profile's region), or pass "
        "region= (Connection(region=...), dynamodel.configure(region=...), --region)."
    ),
    "NoCredentialsError": (
        "no AWS credentials were found. Set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or "
        "AWS_PROFILE (a profile in ~/.aws/credentials or ~/.aws/config)."
    ),
    "EndpointConnectionError": (
        "nothing answered at the DynamoDB endpoint. Check the endpoint URL and the region "
        "(AWS_ENDPOINT_URL_DYNAMODB, endpoint_url=, --endpoint-url), and that the server runs."
    ),
}
_LOCAL_HINT = (
    " For local development, run `dynamodel local` and paste the `export` lines it prints "
    "(AWS_ENDPOINT_URL_DYNAMODB, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_DEFAULT_REGION)."
)
_setup_classes: dict[type, type[ConfigurationError]] = {}


def map_setup_error(exc: BaseException, client: Any = None) -> ConfigurationError | None:
    """Translate botocore's ``NoRegionError``, ``NoCredentialsError`` or
    ``EndpointConnectionError`` into a `ConfigurationError` that says how to fix it.

    The result is an instance of both `ConfigurationError` and the botocore class, carries the
    botocore exception's attributes (``endpoint_url``...) and the client's ``region`` and
    ``endpoint`` when known. Returns None for any other exception. botocore is never imported
    here: the exception comes from it, so its class is at hand.
    """
    cls = type(exc)
    original = next(
        (
            base
            for base in cls.__mro__
            if base.__name__ in _SETUP_HINTS and base.__module__.startswith("botocore")
        ),
        None,
    )
    if original is None or isinstance(exc, DynamodelError):
        return None
    hybrid = _setup_classes.get(cls)
    if hybrid is None:
        hybrid = type(
            cls.__name__,
            (ConfigurationError, cls),
            {"__module__": __name__, "__qualname__": cls.__name__, "original": original.__name__},
        )
        _setup_classes[cls] = hybrid
    region, endpoint = client_location(client)
    where = []
    if region:
        where.append(f"region {region}")
    if endpoint:
        where.append(f"endpoint {endpoint}")
    said = str(exc).rstrip(".")
    message = f"{said} ({', '.join(where)})" if where else said
    message = f"{message}: {_SETUP_HINTS[original.__name__]}{_LOCAL_HINT}"
    error = hybrid.__new__(hybrid)  # botocore's __init__ would format its own message
    Exception.__init__(error, message)
    error.__dict__.update(getattr(exc, "__dict__", {}))
    error.region = region
    error.endpoint = endpoint
    return error


def _copy_metadata(error: DynamodelError, response: Mapping[str, Any]) -> None:
    metadata = response.get("ResponseMetadata", {})
    if isinstance(metadata.get("RetryAttempts"), int):
        error.retry_attempts = metadata["RetryAttempts"]
    if isinstance(metadata.get("HTTPStatusCode"), int):
        error.status = metadata["HTTPStatusCode"]


def _unknown_dax_error(exc: BaseException, operation: str) -> DynamodelError:
    response: dict[str, Any] = getattr(exc, "response", None) or {}
    message = str(response.get("Error", {}).get("Message") or exc)
    codes = getattr(exc, "codes", None)
    error = ServiceError(f"{operation}: DAX error {codes}: {message}")
    _copy_metadata(error, response)
    status = getattr(exc, "http_status", None)
    if error.status is None and isinstance(status, int):
        error.status = status
    return error
