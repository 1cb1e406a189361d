"""A rate shared by every worker of a distributed backfill, kept in one item of the table.

The item (``RATE#<job>`` in the migration partition) holds the schedule's *theoretical
arrival time* (GCRA): the wall-clock time at which the schedule has room again. A worker about
to scan a page reserves the page's items: its slot starts at ``max(now, tat)`` and the schedule
moves to ``start + items / rate``, written with a condition on the value it read (another
worker's reservation in between makes it try again with the new value). The worker waits until
its slot starts. However many workers there are, the items scanned over any period stay within
``rate`` per second, plus one page.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from dynamodel.core.errors import ConditionFailed
from dynamodel.core.flows import Flow, Request, call
from dynamodel.migrations.errors import MigrationError
from dynamodel.migrations.store import ENTITY, Store

#: reservations tried before giving up (each failed one means another worker reserved first)
MAX_ATTEMPTS = 100


class GlobalRate:
    """Reserve items against one job's shared rate, kept in the runner item ``name`` of
    ``store`` (see the module docstring)."""

    def __init__(
        self,
        store: Store,
        name: str,
        per_second: float,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if not per_second > 0:
            raise ValueError(f"rate must be > 0 items per second, got {per_second}")
        self.store = store
        self.name = name  # the runner item holding the schedule
        self.per_second = float(per_second)
        self.clock = clock
        self._known: float | None = None  # the schedule as this worker last saw it

    def reserve_flow(self, items: float) -> Flow[float]:
        """Reserve ``items``; returns the seconds to wait before using them."""
        for _ in range(MAX_ATTEMPTS):
            now = self.clock()
            old = self._known
            start = now if old is None else max(now, old)
            new = start + items / self.per_second
            values = {":new": {"N": repr(round(new, 6))}, ":entity": {"S": ENTITY}}
            if old is None:
                condition = "attribute_not_exists(#tat)"
            else:
                condition = "#tat = :old"
                values[":old"] = {"N": repr(round(old, 6))}
            request = Request(
                "update_item",
                {
                    "TableName": self.store.name,
                    "Key": self.store.key(self.name),
                    "UpdateExpression": "SET #tat = :new, #type = :entity",
                    "ConditionExpression": condition,
                    "ExpressionAttributeNames": {
                        "#tat": "tat",
                        "#type": self.store.table.type_attribute,
                    },
                    "ExpressionAttributeValues": values,
                    "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
                },
            )
            try:
                yield from call(request)
            except ConditionFailed as error:
                stored = (error.item or {}).get("tat", {}).get("N")
                self._known = float(stored) if stored is not None else None
                continue
            self._known = round(new, 6)
            return max(0.0, start - now)
        raise MigrationError(
            f"table {self.store.name!r}: could not reserve the shared backfill rate after "
            f"{MAX_ATTEMPTS} attempts (too many workers for one rate item?)"
        )
