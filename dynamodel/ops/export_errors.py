"""Errors and constants of S3 exports (see `dynamodel.ops.exports`)."""

from __future__ import annotations

from typing import Literal, TypeVar

from dynamodel.core.errors import UNSUPPORTED_CODES, DynamodelError, ServiceError
from dynamodel.core.flows import Flow

SUMMARY = "manifest-summary.json"
FILES = "manifest-files.json"
EXPORTS_FOLDER = "AWSDynamoDB"
ExportFormat = Literal["DYNAMODB_JSON", "ION"]
UnroutedKind = Literal[
    "unknown_entity", "invalid_item", "no_entity_type", "invalid_line", "internal"
]
T = TypeVar("T")


# -- errors -----------------------------------------------------------------------------------


class ExportError(DynamodelError):
    """An export (or import-ready folder) cannot be read: no manifest, a bad manifest, an
    unsupported format."""


class ExportVerificationError(ExportError):
    """A data file does not match its manifest (item count, checksum) or is missing.

    Raised at the end of the file it concerns (its items were already yielded) when the reader
    is ``strict``; ``problems`` lists what did not match.
    """

    def __init__(self, message: str, *, problems: list[str]) -> None:
        super().__init__(message)
        self.problems = problems


class UnsupportedOperation(ServiceError):
    """The endpoint (a local emulator) does not implement this API call."""


def explained(flow: Flow[T], operation: str, endpoint: str | None) -> Flow[T]:
    """Run ``flow``; an error it raises comes out as `explain_error` makes it (the original
    as its cause)."""
    try:
        return (yield from flow)
    except DynamodelError as error:
        clearer = explain_error(error, operation, endpoint)
        if clearer is error:
            raise
        raise clearer from error


def explain_error(error: DynamodelError, operation: str, endpoint: str | None) -> DynamodelError:
    """A clearer error for the API calls of exports and imports (the original as cause)."""
    code = error.code or ""
    where = f"the endpoint {endpoint}" if endpoint else "this endpoint"
    if code in UNSUPPORTED_CODES or (
        code == "" and "not" in str(error).lower() and "implement" in str(error).lower()
    ):
        return UnsupportedOperation(
            f"{where} does not support {operation} ({error}); exports and imports run on "
            "DynamoDB itself (or an emulator that implements them, such as moto)",
            code=code or None,
        )
    hints = {
        "PointInTimeRecoveryUnavailableException": (
            "point-in-time recovery is off: declare Table(..., point_in_time_recovery=True) "
            "and apply it with `dynamodel table sync` (or table.create() for a new table)"
        ),
        "InvalidExportTimeException": (
            "the export time must be within the point-in-time recovery window (the last 35 "
            "days, and not before PITR was enabled) and not in the future"
        ),
        "ExportConflictException": "an export with the same client token is under way",
        "ImportConflictException": "an import with the same client token is under way",
        "ResourceInUseException": (
            "the table to import into already exists: ImportTable creates a new table; "
            "choose another name (table_name= or --table-name)"
        ),
        "LimitExceededException": "too many exports or imports are running at once",
    }
    hint = hints.get(code)
    if hint is None:
        return error
    return ServiceError(f"{error}: {hint}", code=error.code)
