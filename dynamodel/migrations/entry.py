"""The Lambda entry point of distributed backfills (and of the Step Functions state machine).

```python
# app.py, deployed as the worker function (Handler: app.handler)
from dynamodel.migrations import lambda_handler
from myapp.models import table          # the table with every model imported

handler = lambda_handler(table, "migrations")
```

Events (see docs/distributed-backfills.md and examples/stepfunctions/):

* ``{"action": "start"}`` (optional ``"target"``): ``migrate up`` until a distributed backfill
  waits for workers: ``{"state": "waiting", "job", "segments": [0, ..., N-1], "migration",
  "backfill"}``; or everything is applied: ``{"state": "applied", "applied": [...]}``.
* ``{"action": "work", "job", "segment"}``: work on that segment until it is done or the
  invocation's time is nearly up: ``{"job", "segment", "done", "scanned", "written", ...}``
  (``done`` false: call again). Raises `SegmentLeased` while another worker holds it.
  Without ``"segment"``: claim any segments (``done``: the whole job is).
* ``{"action": "verify"}``: every migration file is applied, with no failed items:
  ``{"state": "applied", "migrations": [...], "failed": 0}``; else `VerificationFailed`.
* ``{"action": "status"}``: what ``dynamodel migrate status --json`` prints (migrations).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dynamodel.core.errors import ValidationError
from dynamodel.migrations.backfill import BackfillSettings
from dynamodel.migrations.errors import MigrationError
from dynamodel.migrations.runner import Migrator, parse_target
from dynamodel.migrations.worker import Worker

if TYPE_CHECKING:
    from dynamodel.modelling.table import Table

Handler = Callable[[dict[str, Any], Any], dict[str, Any]]


class VerificationFailed(MigrationError):
    """The final check found migrations not applied (``problems`` lists them)."""

    def __init__(self, message: str, *, problems: list[str]) -> None:
        super().__init__(message)
        self.problems = problems


def verify(migrator: Migrator) -> dict[str, Any]:
    """Check every migration file is applied; returns the summary or raises
    `VerificationFailed` naming the ones that are not."""
    states = migrator.status()
    problems = [
        f"{s.version}_{s.name}: {s.state}"
        + (f" ({s.record.error})" if s.record and s.record.error else "")
        for s in states
        if s.state != "applied"
    ]
    if problems:
        raise VerificationFailed(
            f"table {migrator.table.physical_name!r}: not every migration is applied: "
            + "; ".join(problems),
            problems=problems,
        )
    return {
        "state": "applied",
        "migrations": [f"{s.version}_{s.name}" for s in states],
        "failed": 0,
    }


def start(migrator: Migrator, target: Any = None) -> dict[str, Any]:
    """Run ``migrate up``; say what waits for workers, or what is applied."""
    result = migrator.up(parse_target(target))
    if result.waiting is not None:
        pending = result.waiting
        return {
            "state": "waiting",
            "job": pending.job,
            "segments": list(range(pending.segments)),
            "migration": pending.migration,
            "backfill": pending.backfill,
        }
    return {"state": "applied", "applied": [m.title for m in result.done]}


def lambda_handler(
    table: Table,
    folder: str | Path,
    *,
    settings: BackfillSettings | None = None,
    lease: float = 60.0,
    margin: float = 30.0,
) -> Handler:
    """A Lambda handler for the events above.

    Args:
        table: the table, with every model imported (workers look models up by entity type).
        folder: the migration files, deployed with the function.
        settings: the backfill settings ``start`` runs the migrations with (as ``migrate up``).
        lease: the migration lock's lease, and distributed backfills' default segment lease.
        margin: seconds of the invocation kept free: a worker hands its segment back when
            less than this (or twice its slowest page) remains.
    """

    def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        action = event.get("action")
        migrator = Migrator(
            table, folder, settings=settings, lease=lease, command=f"lambda {action}"
        )
        if action == "start":
            return start(migrator, event.get("target"))
        if action == "verify":
            return verify(migrator)
        if action == "status":
            return {
                "migrations": [
                    {
                        "version": s.version,
                        "name": s.name,
                        "state": s.state,
                        "progress": [p.__dict__ for p in s.progress],
                    }
                    for s in migrator.status()
                ]
            }
        if action == "work":
            seconds = None
            remaining = getattr(context, "get_remaining_time_in_millis", None)
            if remaining is not None:
                seconds = remaining() / 1000 - margin
            segment = event.get("segment")
            report = Worker(table, folder, margin=0.0).work(
                event.get("job"),
                segment=None if segment is None else int(segment),
                seconds=seconds,
            )
            out = report.to_json()
            if segment is None:
                out["done"] = report.complete
            else:
                out["segment"] = int(segment)
                out["done"] = int(segment) in report.finished
            return out
        raise ValidationError(
            f"unknown action {action!r}: expected 'start', 'work', 'verify' or 'status'"
        )

    return handler
