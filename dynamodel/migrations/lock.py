"""The migration lock: a conditional put of one item, with a lease renewed by a heartbeat.

Acquiring puts the ``LOCK`` item only if there is none, its lease has expired, or it is already
ours. While the run works, a background thread extends the lease every third of its length; a
crashed holder stops renewing, so its lock expires after one lease and another run can take
over. State and checkpoint writes are conditional on the revision this run last saw (see
`dynamodel.migrations.store`), and the runner stops as soon as the heartbeat finds the lock
taken over: a run that lost its lock cannot record anything over its successor's records.

Leases are compared with each machine's wall clock: keep clocks in sync (NTP) and the lease
much longer than any plausible skew. A run waiting for the lock measures its wait with the same
clock.
"""

from __future__ import annotations

import datetime as dt
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self

from dynamodel.core.codec import Item
from dynamodel.core.errors import ConditionFailed
from dynamodel.core.flows import Flow, Request, call
from dynamodel.io.scope import resolve_connection
from dynamodel.migrations.errors import LockHeld, LockLost
from dynamodel.migrations.store import LOCK, Store

if TYPE_CHECKING:
    from dynamodel.io.clients import Connection

DEFAULT_LEASE = 60.0


@dataclass(frozen=True)
class LockInfo:
    """Who holds the migration lock.

    Attributes:
        owner: the holder's run id. host/pid/command: where it runs and what it runs.
        acquired_at: when it took the lock (ISO 8601, UTC).
        expires_at: when its lease ends (epoch seconds) unless renewed.
    """

    owner: str
    host: str
    pid: int
    command: str
    acquired_at: str
    expires_at: float

    @classmethod
    def from_item(cls, item: Item) -> LockInfo:
        """Parse the lock item."""

        def text(name: str) -> str:
            return str(item.get(name, {}).get("S", ""))

        def number(name: str) -> float:
            return float(item.get(name, {}).get("N", "0"))

        return cls(
            owner=text("owner"),
            host=text("host"),
            pid=int(number("pid")),
            command=text("command"),
            acquired_at=text("acquired_at"),
            expires_at=number("expires_at"),
        )

    def expired(self, now: float | None = None) -> bool:
        """Whether the lease has run out (the holder stopped renewing it)."""
        return (time.time() if now is None else now) >= self.expires_at

    def describe(self, now: float | None = None) -> str:
        """One line: who holds it, since when, and when the lease ends."""
        now = time.time() if now is None else now
        left = self.expires_at - now
        lease = f"lease expires in {left:.0f}s" if left > 0 else f"lease expired {-left:.0f}s ago"
        command = f" running `{self.command}`" if self.command else ""
        return (
            f"held by {self.host} pid {self.pid}{command} since {self.acquired_at} "
            f"(run {self.owner}); {lease}"
        )


def new_owner() -> str:
    """A unique run id: host, pid and a random suffix."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def _number(value: float) -> dict[str, str]:
    return {"N": str(Decimal(value).quantize(Decimal("0.001")))}


def read_lock_flow(store: Store) -> Flow[LockInfo | None]:
    """The current lock holder, or None."""
    item = yield from store.get_flow(LOCK)
    return LockInfo.from_item(item) if item is not None else None


def force_unlock_flow(store: Store) -> Flow[LockInfo | None]:
    """Delete the lock whoever holds it; returns who held it (None: nobody)."""
    request = Request(
        "delete_item", {"TableName": store.name, "Key": store.key(LOCK), "ReturnValues": "ALL_OLD"}
    )
    response = yield from call(request)
    old = response.get("Attributes")
    return LockInfo.from_item(old) if old else None


class MigrationLock:
    """The lock of one run. Use as a context manager, or `acquire` / `release`.

    Args:
        store: the table's runner store.
        lease: seconds the lock stays valid without a heartbeat.
        command: what this run does (shown to runs that find the lock held).
        owner: this run's id (default: host, pid and a random suffix).
        clock: wall clock in epoch seconds, for leases and `acquire`'s wait (tests replace it).
        sleep: how `acquire` waits between attempts (a test with a fake ``clock`` passes one
            that advances it).
    """

    def __init__(
        self,
        store: Store,
        *,
        lease: float = DEFAULT_LEASE,
        command: str = "",
        owner: str | None = None,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if lease <= 0:
            raise ValueError(f"lock lease must be > 0 seconds, got {lease}")
        self.store = store
        self.lease = lease
        self.command = command
        self.owner = owner or new_owner()
        self.clock = clock
        self.sleep = sleep
        self.lost: str | None = None
        self.heartbeat_error: BaseException | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        #: the connection `acquire` resolved: the heartbeat thread and `release` use it too
        self._connection: Connection | None = None

    # -- flows ----------------------------------------------------------------------------------

    def _item(self) -> Item:
        now = self.clock()
        return self.store.item(
            LOCK,
            {
                "owner": {"S": self.owner},
                "host": {"S": socket.gethostname()},
                "pid": {"N": str(os.getpid())},
                "command": {"S": self.command},
                "acquired_at": {"S": dt.datetime.fromtimestamp(now, dt.UTC).isoformat()},
                "expires_at": _number(now + self.lease),
            },
        )

    def acquire_flow(self) -> Flow[None]:
        """One attempt: take the lock if free, expired or ours; else raise `LockHeld`."""
        pk = self.store.table.pk
        request = Request(
            "put_item",
            {
                "TableName": self.store.name,
                "Item": self._item(),
                "ConditionExpression": "attribute_not_exists(#pk) OR #exp < :now OR #owner = :me",
                "ExpressionAttributeNames": {"#pk": pk, "#exp": "expires_at", "#owner": "owner"},
                "ExpressionAttributeValues": {
                    ":now": _number(self.clock()),
                    ":me": {"S": self.owner},
                },
                "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
            },
        )
        try:
            yield from call(request)
        except ConditionFailed as error:
            holder = LockInfo.from_item(error.item) if error.item else None
            where = holder.describe(self.clock()) if holder else "held by another run"
            raise LockHeld(
                f"table {self.store.name!r}: migrations are locked: {where}", holder=holder
            ) from None
        self.lost = None

    def heartbeat_flow(self) -> Flow[None]:
        """Extend the lease; raises `LockLost` if the lock is no longer ours."""
        request = Request(
            "update_item",
            {
                "TableName": self.store.name,
                "Key": self.store.key(LOCK),
                "UpdateExpression": "SET #exp = :exp",
                "ConditionExpression": "#owner = :me",
                "ExpressionAttributeNames": {"#exp": "expires_at", "#owner": "owner"},
                "ExpressionAttributeValues": {
                    ":exp": _number(self.clock() + self.lease),
                    ":me": {"S": self.owner},
                },
            },
        )
        try:
            yield from call(request)
        except ConditionFailed:
            raise LockLost(
                f"table {self.store.name!r}: the migration lock of run {self.owner} was taken "
                "over or removed"
            ) from None

    def release_flow(self) -> Flow[bool]:
        """Delete the lock if it is still ours; returns whether it was."""
        request = Request(
            "delete_item",
            {
                "TableName": self.store.name,
                "Key": self.store.key(LOCK),
                "ConditionExpression": "#owner = :me",
                "ExpressionAttributeNames": {"#owner": "owner"},
                "ExpressionAttributeValues": {":me": {"S": self.owner}},
            },
        )
        try:
            yield from call(request)
        except ConditionFailed:
            return False
        return True

    # -- sync use -------------------------------------------------------------------------------

    def _run(self, flow: Flow[Any]) -> Any:
        from dynamodel.io.executors import run

        return run(flow, resolve_connection(self.store.table, self._connection))

    def acquire(self, wait: float = 0.0, poll: float = 1.0) -> None:
        """Take the lock, waiting up to ``wait`` seconds for a holder to finish; then keep it
        alive with a heartbeat thread until `release`. Raises `LockHeld` after the wait
        (measured with ``clock``, the clock leases expire by)."""
        deadline = self.clock() + max(0.0, wait)
        # resolved here: the heartbeat thread does not see a `use_connection` scope
        self._connection = resolve_connection(self.store.table)
        while True:
            try:
                self._run(self.acquire_flow())
                break
            except LockHeld:
                left = deadline - self.clock()
                if left <= 0:
                    raise
                self.sleep(min(poll, left))
        self._stop.clear()
        self._thread = threading.Thread(
            target=self._beat, name="dynamodel-migration-lock", daemon=True
        )
        self._thread.start()

    def _beat(self) -> None:
        interval = self.lease / 3
        while not self._stop.wait(interval):
            try:
                self._run(self.heartbeat_flow())
            except LockLost as error:
                self.lost = str(error)
                return
            except Exception as error:  # network trouble: try again at the next beat
                self.heartbeat_error = error

    def check(self) -> None:
        """Raise `LockLost` if the heartbeat found the lock taken over."""
        if self.lost is not None:
            raise LockLost(self.lost)

    def release(self) -> bool:
        """Stop the heartbeat and delete the lock if still ours; returns whether it was."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        if self.lost is not None:
            return False
        released: bool = self._run(self.release_flow())
        return released

    def __enter__(self) -> Self:
        self.acquire()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()
