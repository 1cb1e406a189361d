"""Resumable migrations: files of ``up``/``down`` functions, state and lock in the table.

```python
from dynamodel.migrations import Migrator

migrator = Migrator(table, "migrations")
migrator.up()            # apply pending migrations (locked, recorded, resumable)
migrator.status()        # what is applied, pending, failed or interrupted
```

A migration file ``migrations/0001_add_status_index.py``::

    def up(ctx):
        ctx.backfill(Order, lambda order: order)   # re-put: renders the new index keys

See docs/migrations.md.
"""

from __future__ import annotations

from dynamodel.migrations.backfill import (
    BackfillProgress,
    BackfillResult,
    BackfillSettings,
)
from dynamodel.migrations.entry import VerificationFailed, lambda_handler
from dynamodel.migrations.errors import (
    BackfillFailed,
    BackfillPending,
    LeaseLost,
    LockHeld,
    LockLost,
    MigrationError,
    MigrationFailed,
    SegmentLeased,
)
from dynamodel.migrations.files import Migration
from dynamodel.migrations.lock import LockInfo, MigrationLock
from dynamodel.migrations.runner import (
    MigrationContext,
    MigrationStatus,
    Migrator,
    Record,
    Reporter,
    RunResult,
    parse_target,
)
from dynamodel.migrations.store import ENTITY, RESERVED_PARTITION
from dynamodel.migrations.transform import FailedItem
from dynamodel.migrations.worker import Worker, WorkReport
from dynamodel.ops.batch_flows import delete_write_request, put_write_request

__all__ = [
    "ENTITY",
    "RESERVED_PARTITION",
    "BackfillFailed",
    "BackfillPending",
    "BackfillProgress",
    "BackfillResult",
    "BackfillSettings",
    "FailedItem",
    "LeaseLost",
    "LockHeld",
    "LockInfo",
    "LockLost",
    "Migration",
    "MigrationContext",
    "MigrationError",
    "MigrationFailed",
    "MigrationLock",
    "MigrationStatus",
    "Migrator",
    "Record",
    "Reporter",
    "RunResult",
    "SegmentLeased",
    "VerificationFailed",
    "WorkReport",
    "Worker",
    "delete_write_request",
    "lambda_handler",
    "parse_target",
    "put_write_request",
]
