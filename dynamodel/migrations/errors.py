"""Errors of the migration runner (all `dynamodel.core.errors.DynamodelError`)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from dynamodel.core.errors import DynamodelError

if TYPE_CHECKING:
    from dynamodel.migrations.backfill import BackfillResult
    from dynamodel.migrations.lock import LockInfo
    from dynamodel.migrations.transform import FailedItem


class MigrationError(DynamodelError):
    """Base class of migration errors; also bad migration files or targets."""


class LockHeld(MigrationError):
    """Another run holds the migration lock (``holder`` says who, and until when)."""

    def __init__(self, message: str, *, holder: LockInfo | None) -> None:
        super().__init__(message)
        self.holder = holder


class LockLost(MigrationError):
    """This run's lock was taken over (its lease expired) or removed: it stopped writing."""


class MigrationFailed(MigrationError):
    """A migration's ``up`` or ``down`` raised; the failure is recorded in the table.

    Attributes:
        version: the migration's version. direction: ``up`` or ``down``.
        cause: the exception it raised (also ``__cause__``).
    """

    def __init__(self, message: str, *, version: str, direction: str, cause: BaseException):
        super().__init__(message)
        self.version = version
        self.direction = direction
        self.cause = cause


class BackfillFailed(MigrationError):
    """A backfill finished (or stopped) with items it could not migrate.

    ``result.failed`` lists them (key and error); they are kept with the checkpoints, and the
    next run retries them before anything else.
    """

    def __init__(self, message: str, *, result: BackfillResult) -> None:
        super().__init__(message)
        self.result = result

    @property
    def failed(self) -> list[FailedItem]:
        """The items not migrated."""
        return self.result.failed


class SegmentLeased(MigrationError):
    """Another worker holds a live lease on the segment asked for (``owner``, ``until``: the
    lease's end, epoch seconds). Step Functions sees it as the error ``SegmentLeased``."""

    def __init__(self, message: str, *, owner: str | None, until: float) -> None:
        super().__init__(message)
        self.owner = owner
        self.until = until


class LeaseLost(MigrationError):
    """A worker's segment lease expired and another worker claimed the segment: the first
    worker's writes are refused (they would repeat or undo the new holder's)."""


class BackfillPending(MigrationError):
    """A distributed backfill is waiting for workers: the migration stopped there.

    Attributes:
        job: the job id workers are given. segments: its segment numbers.
        migration: the migration's title. backfill: the backfill's name.
    """

    def __init__(
        self, message: str, *, job: str, segments: int, migration: str, backfill: str
    ) -> None:
        super().__init__(message)
        self.job = job
        self.segments = segments
        self.migration = migration
        self.backfill = backfill
