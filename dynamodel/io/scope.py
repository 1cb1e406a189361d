"""Which connection an operation uses: explicit, scoped, bound or default.

Every operation resolves its connection with `resolve_connection`, in this order:

1. the ``connection=`` argument of the call (or of the batch, transaction, query...);
2. the connection of the innermost ``with use_connection(...)`` block around the call;
3. the connection the table is bound to (``table.bind(connection=...)``);
4. the process-wide default (``dynamodel.configure(...)``).

A scope lives in a `contextvars.ContextVar`: it is seen by the code in the block and what it
calls (also ``await``-ed coroutines), not by other threads nor by asyncio tasks created
outside the block (a task created inside the block starts with a copy of the scope).
dynamodel's own worker threads (parallel scans, sharded queries, batches) run with the
context of the call that started them, or with a connection resolved before they start.

Light on purpose: no boto3 (`dynamodel.io.clients` creates clients on first use).
"""

from __future__ import annotations

from contextvars import ContextVar, Token
from types import TracebackType
from typing import Any

from dynamodel.io import clients
from dynamodel.io.clients import Connection

__all__ = ["resolve_connection", "scoped_connection", "use_connection"]

_SCOPED: ContextVar[Connection | None] = ContextVar("dynamodel_connection", default=None)


def scoped_connection() -> Connection | None:
    """The connection of the innermost `use_connection` block around the caller, or None."""
    return _SCOPED.get()


def resolve_connection(table: Any, explicit: Connection | None = None) -> Connection:
    """The connection an operation on ``table`` uses: ``explicit`` if given, else the scoped
    one (`use_connection`), else the table's bound connection, else the default one.
    ``table`` may be None (no table involved: the scoped connection, else the default)."""
    if explicit is not None:
        if not isinstance(explicit, Connection):
            raise TypeError(f"connection= needs a dynamodel Connection, got {explicit!r}")
        return explicit
    scoped = _SCOPED.get()
    if scoped is not None:
        return scoped
    if table is not None:
        connection: Connection = table.connection
        return connection
    return clients.default_connection()


class use_connection:
    """Send every operation started in the block through ``connection`` (unless the operation
    is given its own ``connection=``)::

        with dynamodel.use_connection(tenant_connection):
            order = Order.get(order_id="o1")  # goes to tenant_connection

    Works with ``with`` and ``async with``. Blocks nest: leaving one (also by an exception)
    restores the connection in use before it. The scope belongs to the current thread or
    asyncio task: other threads and sibling tasks do not see it. Entering the block returns
    the connection. Enter each ``use_connection(...)`` object in one thread or task only.
    """

    __slots__ = ("_tokens", "connection")

    def __init__(self, connection: Connection) -> None:
        if not isinstance(connection, Connection):
            raise TypeError(f"use_connection() needs a Connection, got {connection!r}")
        self.connection = connection
        self._tokens: list[Token[Connection | None]] = []

    def __enter__(self) -> Connection:
        self._tokens.append(_SCOPED.set(self.connection))
        return self.connection

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        _SCOPED.reset(self._tokens.pop())

    async def __aenter__(self) -> Connection:
        return self.__enter__()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.__exit__(exc_type, exc, traceback)

    def __repr__(self) -> str:
        return f"use_connection({self.connection!r})"
