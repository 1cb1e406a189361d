"""Consumed capacity: ask DynamoDB for it, add it up per call, and estimate it offline.

Three ways to see what operations cost:

* ``with capacity() as used: ...``: every data-plane request made inside the block (in this
  thread or task, and in the threads and tasks dynamodel starts for it: shard queries, batch
  chunks, parallel scans) asks for ``ReturnConsumedCapacity`` and adds what DynamoDB reports
  to ``used`` (retries and every page or chunk included).
* ``Connection(return_consumed_capacity="TOTAL", on_capacity=hook)``: every data-plane request
  of that connection asks for it; ``hook`` is called with one `CapacityRecord` per table.
* `estimate_capacity`: the item size and the WCU/RCU one item costs, without any request.

Requests that already ask for capacity (``Query.return_consumed_capacity``, batch writes and
reads) keep asking; a stronger mode (``INDEXES`` over ``TOTAL``) wins.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from dynamodel.core.errors import ValidationError
from dynamodel.core.flows import DATA_OPERATIONS, READ_OPERATIONS, Request
from dynamodel.io.middleware import Around, Send

if TYPE_CHECKING:
    from dynamodel.io.clients import Connection

CapacityMode = Literal["TOTAL", "INDEXES"]
_STRENGTH = {None: 0, "NONE": 0, "TOTAL": 1, "INDEXES": 2}
MODES = ("TOTAL", "INDEXES")

__all__ = [
    "CapacityRecord",
    "CapacityUsage",
    "capacity",
    "records_from",
]


def check_mode(mode: Any, what: str = "return_consumed_capacity") -> CapacityMode | None:
    """``mode`` if it is None, ``TOTAL`` or ``INDEXES``; else a `ValidationError`."""
    if mode is None or mode in MODES:
        return mode  # type: ignore[no-any-return]
    raise ValidationError(f"{what} must be 'TOTAL', 'INDEXES' or None, got {mode!r}")


@dataclass(frozen=True, slots=True)
class CapacityRecord:
    """The capacity one response reported for one table.

    ``read_units``/``write_units`` split DynamoDB's ``CapacityUnits`` by operation (reads:
    get, query, scan, batch get, transactional get) unless DynamoDB reported the split itself.
    ``indexes`` holds each index's share when the mode was ``INDEXES``.
    """

    operation: str
    table: str
    read_units: float
    write_units: float
    indexes: Mapping[str, float] = field(default_factory=dict)

    @property
    def units(self) -> float:
        """Read plus write units."""
        return self.read_units + self.write_units


def _units(entry: Mapping[str, Any], key: str) -> float | None:
    value = entry.get(key)
    return float(value) if isinstance(value, int | float) else None


def records_from(operation: str, consumed: Any) -> list[CapacityRecord]:
    """A response's ``ConsumedCapacity`` (one dict, or a list for batches and transactions)
    as `CapacityRecord` objects."""
    if not consumed:
        return []
    entries = consumed if isinstance(consumed, list) else [consumed]
    reading = operation in READ_OPERATIONS
    out = []
    for entry in entries:
        if not isinstance(entry, Mapping):
            continue
        total = _units(entry, "CapacityUnits") or 0.0
        read = _units(entry, "ReadCapacityUnits")
        write = _units(entry, "WriteCapacityUnits")
        if read is None and write is None:
            read, write = (total, 0.0) if reading else (0.0, total)
        indexes: dict[str, float] = {}
        for group in ("GlobalSecondaryIndexes", "LocalSecondaryIndexes"):
            for name, share in (entry.get(group) or {}).items():
                indexes[name] = _units(share, "CapacityUnits") or 0.0
        out.append(
            CapacityRecord(
                operation, str(entry.get("TableName", "")), read or 0.0, write or 0.0, indexes
            )
        )
    return out


class CapacityUsage:
    """Capacity added up over every response seen while collecting (thread-safe).

    Attributes:
        mode: what the requests asked for (``TOTAL`` or ``INDEXES``).
        read_units: read capacity units consumed.
        write_units: write capacity units consumed.
        responses: responses that reported capacity (cache hits report zero units).
        by_table: units per table name.
        by_index: units per ``(table, index)`` (``INDEXES`` mode only).
        records: every `CapacityRecord`, in arrival order.
    """

    def __init__(self, mode: CapacityMode = "TOTAL") -> None:
        self.mode: CapacityMode = check_mode(mode, "capacity mode") or "TOTAL"
        self.read_units = 0.0
        self.write_units = 0.0
        self.responses = 0
        self.by_table: dict[str, float] = {}
        self.by_index: dict[tuple[str, str], float] = {}
        self.records: list[CapacityRecord] = []
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return (
            f"CapacityUsage(read_units={self.read_units}, write_units={self.write_units}, "
            f"responses={self.responses})"
        )

    @property
    def units(self) -> float:
        """Read plus write units."""
        return self.read_units + self.write_units

    def add(self, records: list[CapacityRecord]) -> None:
        """Add one response's records."""
        with self._lock:
            self.responses += 1
            for record in records:
                self.read_units += record.read_units
                self.write_units += record.write_units
                self.by_table[record.table] = self.by_table.get(record.table, 0.0) + record.units
                for name, units in record.indexes.items():
                    key = (record.table, name)
                    self.by_index[key] = self.by_index.get(key, 0.0) + units
                self.records.append(record)


_ACTIVE: ContextVar[tuple[CapacityUsage, ...]] = ContextVar("dynamodel_capacity", default=())


@contextmanager
def capacity(mode: CapacityMode = "TOTAL") -> Iterator[CapacityUsage]:
    """Collect the capacity of every data-plane request made inside the block.

    Nested blocks each see the requests made inside them. Sync and async code alike: the
    collector follows the context into the worker threads and tasks dynamodel starts.
    """
    usage = CapacityUsage(mode)
    token = _ACTIVE.set((*_ACTIVE.get(), usage))
    try:
        yield usage
    finally:
        _ACTIVE.reset(token)


class Tracker:
    """Adds ``ReturnConsumedCapacity`` to one request and reports its response: a
    `dynamodel.io.middleware` step the executors put in front of the connection's chain."""

    __slots__ = ("hook", "mode", "operation", "sinks")

    def __init__(
        self,
        operation: str,
        sinks: tuple[CapacityUsage, ...],
        hook: Callable[[CapacityRecord], Any] | None,
        mode: str,
    ) -> None:
        self.operation = operation
        self.sinks = sinks
        self.hook = hook
        self.mode = mode

    def params(self, params: dict[str, Any]) -> dict[str, Any]:
        """The request's parameters asking for at least this tracker's mode."""
        asked = params.get("ReturnConsumedCapacity")
        if _STRENGTH.get(asked, 0) >= _STRENGTH[self.mode]:
            return params
        return {**params, "ReturnConsumedCapacity": self.mode}

    def around(self, op: str, params: dict[str, Any]) -> Around:
        """Send the request asking for capacity, then record what its response reports."""
        response = yield Send(op, self.params(params))
        self.record(response)
        return response

    def record(self, response: Mapping[str, Any]) -> None:
        """Hand the response's consumed capacity to the collectors and the hook."""
        consumed = response.get("ConsumedCapacity")
        if consumed is None:
            return
        records = records_from(self.operation, consumed)
        for sink in self.sinks:
            sink.add(records)
        if self.hook is not None:
            for record in records:
                self.hook(record)


def tracker(connection: Connection, request: Request) -> Tracker | None:
    """The tracker for a request, or None when nobody wants its capacity (the fast path)."""
    sinks = _ACTIVE.get()
    hook = connection.on_capacity
    configured = connection.return_consumed_capacity
    if not sinks and hook is None and configured is None:
        return None
    if request.control or request.op not in DATA_OPERATIONS:
        return None
    mode = configured or "TOTAL"
    for sink in sinks:
        if _STRENGTH[sink.mode] > _STRENGTH[mode]:
            mode = sink.mode
    return Tracker(request.op, sinks, hook, mode)


# -- estimates --------------------------------------------------------------------------------
