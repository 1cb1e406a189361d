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
from dynamodel.migrations.errors import (
    BackfillFailed,
    LockHeld,
    LockLost,
    MigrationError,
    MigrationFailed,
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
from dynamodel.ops.batch_flows import delete_write_request, put_write_request

__all__ = [
    "ENTITY",
    "RESERVED_PARTITION",
    "BackfillFailed",
    "BackfillProgress",
    "BackfillResult",
    "BackfillSettings",
    "FailedItem",
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
    "delete_write_request",
    "parse_target",
    "put_write_request",
]
