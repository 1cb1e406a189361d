"""One middleware chain around a client call, written once for sync and async.

DAX routing (`dynamodel.io.dax.DaxRouting`), the local read cache (`dynamodel.io.cache.LocalCache`)
and capacity tracking (`dynamodel.io.capacity.Tracker`) are middleware: objects with an
``around(op, params)`` generator that does no I/O. It yields `Send` steps (a call for the rest
of the chain, or for an off-chain client such as DAX's) and receives each response, or has
the call's exception thrown in; what it returns is the caller's response. A middleware can
answer without sending (a cache hit), change the parameters (ask for consumed capacity),
send elsewhere (DAX), send more than once (read the stored item after a failed write) and
look at the response or the error on the way back.

`call` (sync) and `acall` (async) are the two drivers: they run a chain of middleware around
a client's method and differ only in ``await``. `Client` and `AsyncClient` put a chain in
front of a boto3 or aioboto3 client, with that client's interface: a `dynamodel.Connection`
builds one chain (cache in front, DAX behind it) and shares it between its sync and async
clients, and the executors put a capacity `Tracker` in front of it for a request whose
capacity someone wants. A connection with no middleware calls its client directly.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Generator, Sequence
from typing import Any, Protocol

from dynamodel.core.flows import DATA_OPERATIONS

__all__ = [
    "AsyncClient",
    "Blocking",
    "Client",
    "Middleware",
    "Send",
    "Wrapper",
    "acall",
    "call",
]


class Blocking:
    """A client with a sync interface only (the DAX client's), maybe created on first use.

    Creating it and calling it can block: the async driver does both in a worker thread
    (``asyncio.to_thread``). ``client`` is the client itself or a function creating it (called
    by the first call sent to it, so a client that cannot be created fails only those calls).
    """

    __slots__ = ("_client", "_factory", "_lock")

    def __init__(self, client: Any) -> None:
        factory = callable(client) and not hasattr(client, "get_item")
        self._client: Any = None if factory else client
        self._factory: Callable[[], Any] | None = client if factory else None
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"Blocking({self._client if self._client is not None else self._factory!r})"

    @property
    def current(self) -> Any:
        """The client if it exists yet, else None (never creates it)."""
        return self._client

    def get(self) -> Any:
        """The client, created now if it was given as a function (its errors propagate)."""
        client = self._client
        if client is None:
            with self._lock:
                client = self._client
                if client is None:
                    assert self._factory is not None
                    client = self._client = self._factory()
        return client


class Send:
    """One call a middleware asks for: ``op(**params)`` on the rest of the chain (``to`` None)
    or on an off-chain `Blocking` client."""

    __slots__ = ("op", "params", "to")

    def __init__(self, op: str, params: dict[str, Any], to: Blocking | None = None) -> None:
        self.op = op
        self.params = params
        self.to = to

    def __repr__(self) -> str:
        return f"Send({self.op!r}, {self.params!r}, to={self.to!r})"


#: what a middleware's ``around`` returns: yields `Send`, receives responses, returns one
Around = Generator[Send, Any, Any]


class Middleware(Protocol):
    """A step of the chain: ``around(op, params)`` is a generator yielding `Send` steps. It
    may name its ``role`` ("cache", "dax"), which `Wrapper.find` looks up."""

    def around(self, op: str, params: dict[str, Any]) -> Around: ...


Chain = Sequence[Middleware]


def call(chain: Chain, client: Any, op: str, params: dict[str, Any], index: int = 0) -> Any:
    """Run ``client.<op>(**params)`` through ``chain[index:]`` (the sync driver)."""
    if index == len(chain):
        return getattr(client, op)(**params)
    steps = chain[index].around(op, params)
    try:
        step = next(steps)
        while True:
            try:
                if step.to is None:
                    response = call(chain, client, step.op, step.params, index + 1)
                else:
                    response = getattr(step.to.get(), step.op)(**step.params)
            except BaseException as exc:
                step = steps.throw(exc)
            else:
                step = steps.send(response)
    except StopIteration as stop:
        return stop.value


async def acall(chain: Chain, client: Any, op: str, params: dict[str, Any], index: int = 0) -> Any:
    """Async `call`: the client's methods are awaited, `Blocking` clients run in threads."""
    if index == len(chain):
        return await getattr(client, op)(**params)
    steps = chain[index].around(op, params)
    try:
        step = next(steps)
        while True:
            try:
                if step.to is None:
                    response = await acall(chain, client, step.op, step.params, index + 1)
                else:
                    import asyncio  # here: a sync cold start does not pay for its import

                    response = await asyncio.to_thread(_blocking_call, step)
            except BaseException as exc:
                step = steps.throw(exc)
            else:
                step = steps.send(response)
    except StopIteration as stop:
        return stop.value


def _blocking_call(step: Send) -> Any:
    assert step.to is not None
    return getattr(step.to.get(), step.op)(**step.params)


class Wrapper:
    """A client's interface with a chain in front of its data-plane operations; every other
    attribute (table operations, ``meta``, ``close``) is the wrapped client's."""

    def __init__(self, client: Any, middleware: Chain) -> None:
        self.client = client
        self.middleware = tuple(middleware)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.client!r}, {list(self.middleware)!r})"

    def __getattr__(self, name: str) -> Any:
        if name in ("client", "middleware") or name.startswith("__"):
            raise AttributeError(name)
        return getattr(self.client, name)

    def find(self, role: str) -> Any:
        """The chain's first middleware whose ``role`` is ``role`` ("cache", "dax"), or None."""
        return next((m for m in self.middleware if getattr(m, "role", None) == role), None)

    @property
    def cache(self) -> Any:
        """The chain's `dynamodel.io.cache.LocalCache`, or None."""
        return self.find("cache")

    @property
    def stats(self) -> Any:
        """The chain's DAX `dynamodel.io.dax.RouteStats` (without DAX routing: the wrapped
        client's ``stats``, as any other attribute)."""
        routing = self.find("dax")
        return self.client.stats if routing is None else routing.stats


class Client(Wrapper):
    """A sync client (boto3's interface) whose data-plane calls run through ``middleware``."""


class AsyncClient(Wrapper):
    """An async client (aioboto3's interface) whose data-plane calls run through ``middleware``."""


def _sync_method(op: str) -> Callable[..., Any]:
    def method(self: Client, **params: Any) -> Any:
        return call(self.middleware, self.client, op, params)

    method.__name__ = op
    return method


def _async_method(op: str) -> Callable[..., Any]:
    async def method(self: AsyncClient, **params: Any) -> Any:
        return await acall(self.middleware, self.client, op, params)

    method.__name__ = op
    return method


for _op in sorted(DATA_OPERATIONS):
    setattr(Client, _op, _sync_method(_op))
    setattr(AsyncClient, _op, _async_method(_op))
del _op


def prepend(step: Middleware, client: Any) -> tuple[Chain, Any]:
    """The chain ``step`` followed by the client's own chain, and the client it ends at."""
    if isinstance(client, Wrapper):
        return (step, *client.middleware), client.client
    return (step,), client
