"""The worker Lambda of the Step Functions backfill example (Handler: ``app.handler``).

Replace ``myapp.models`` with the module that defines your table; ship your ``migrations/``
folder beside this file. The same handler answers the state machine's three actions:
``{"action": "start"}``, ``{"action": "work", "job": ..., "segment": k}`` and
``{"action": "verify"}``.
"""

from __future__ import annotations

from myapp.models import table  # type: ignore[import-not-found]  # your table, placeholder

from dynamodel.migrations import lambda_handler  # type: ignore[attr-defined]

handler = lambda_handler(table, "migrations")
