"""Sans-I/O flows: generators that yield steps and receive results.

A flow yields `Request` (the executor calls ``client.<op>(**params)`` and sends back the
response dict, or throws the mapped `dynamodel.core.errors.DynamodelError` into the flow),
`Sleep` (the executor sleeps, sends back None) or `Emit` (the executor hands the
value to the consumer of an iterating flow, sends back None). The flow's return value is the
operation's result. The same flow runs under the sync and the async executor.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable, Generator
from typing import TYPE_CHECKING, Any, Generic, TypeVar

if TYPE_CHECKING:
    from dynamodel.core.cursors import CursorKeys

from dynamodel.core.errors import DynamodelError
from dynamodel.core.retry import RetryPolicy

T = TypeVar("T")

#: the data-plane operations (the ones DAX serves and ``ReturnConsumedCapacity`` applies to)
DATA_OPERATIONS = frozenset(
    {
        "get_item",
        "put_item",
        "update_item",
        "delete_item",
        "query",
        "scan",
        "batch_get_item",
        "batch_write_item",
        "transact_get_items",
        "transact_write_items",
    }
)
#: the data-plane operations that read (their capacity is read capacity)
READ_OPERATIONS = frozenset({"get_item", "query", "scan", "batch_get_item", "transact_get_items"})


# Plain classes rather than dataclasses: these load with `import dynamodel`, and a dataclass
# costs about 0.3 ms to create (generated code is exec'd), which adds up on a cold start.


class Request:
    """One DynamoDB call: the boto3 low-level method name and its keyword arguments.

    ``control`` marks table-management calls (create/describe/update table, TTL, backups) that
    must go to DynamoDB itself even when data calls go through a cache such as DAX.
    """

    __slots__ = ("control", "op", "params")

    def __init__(
        self, op: str, params: dict[str, Any] | None = None, control: bool = False
    ) -> None:
        self.op = op
        self.params: dict[str, Any] = {} if params is None else params
        self.control = control

    def __repr__(self) -> str:
        return f"Request(op={self.op!r}, params={self.params!r}, control={self.control!r})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Request):
            return NotImplemented
        return (self.op, self.params, self.control) == (other.op, other.params, other.control)

    __hash__ = None  # type: ignore[assignment]  # mutable, like the dataclass it replaces


class Sleep:
    """Wait this many seconds before the flow continues."""

    __slots__ = ("seconds",)

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds

    def __repr__(self) -> str:
        return f"Sleep(seconds={self.seconds!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Sleep) and other.seconds == self.seconds

    def __hash__(self) -> int:
        return hash(self.seconds)


class Emit(Generic[T]):
    """A value produced by an iterating flow (a page, an item)."""

    __slots__ = ("value",)

    def __init__(self, value: T) -> None:
        self.value = value

    def __repr__(self) -> str:
        return f"Emit(value={self.value!r})"


class Gather:
    """Send several requests concurrently (each retried per ``retry``); the flow receives a
    list, aligned with ``requests``, of response dicts or the exceptions that ended them."""

    __slots__ = ("max_concurrency", "requests", "retry")

    def __init__(
        self,
        requests: list[Request],
        retry: RetryPolicy | None = None,
        max_concurrency: int = 16,
    ) -> None:
        self.requests = requests
        self.retry = retry
        self.max_concurrency = max_concurrency

    def __repr__(self) -> str:
        return (
            f"Gather(requests={self.requests!r}, retry={self.retry!r}, "
            f"max_concurrency={self.max_concurrency!r})"
        )


class UsePolicy:
    """Ask the executor for the retry policy of the connection running the flow (it sends it
    back). Flows never read a connection: the one that sends their requests decides."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "CONNECTION_POLICY"


#: The step that asks for the running connection's retry policy.
CONNECTION_POLICY = UsePolicy()


class Inputs:
    """What a flow may take from the connection running it besides the retry policy: the
    clock (``clock()``: wall-clock epoch seconds; TTL reads, the create-on-TTL condition,
    ``Meta.timestamps``, table waits), the random source (``random``: shard choice), the keys
    cursors are signed and verified with (``cursor_keys``, a
    `dynamodel.core.cursors.CursorKeys`; None or empty: unsigned cursors) and the connection's own
    memos (`memo`: e.g. the shard checks made through it). A flow asks with
    ``inputs = yield from connection_inputs()``, only when it needs one of them, so flows
    read no clock, random generator or process-wide cache of their own."""

    __slots__ = ("_lock", "_memos", "clock", "cursor_keys", "random")

    def __init__(
        self, clock: Callable[[], float], random: Any, cursor_keys: CursorKeys | None = None
    ) -> None:
        self.clock = clock
        self.random = random
        self.cursor_keys = cursor_keys  # None: unsigned cursors (loaded only when configured)
        self._memos: dict[str, Any] = {}
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"Inputs(clock={self.clock!r}, random={self.random!r})"

    def now(self) -> dt.datetime:
        """The clock's time, timezone-aware, in UTC."""
        return dt.datetime.fromtimestamp(self.clock(), dt.UTC)

    def memo(self, name: str, factory: Callable[[], T]) -> T:
        """This connection's instance of the memo ``name``, made by ``factory`` on first use
        (the layer that keeps a memo defines it; the connection only holds it)."""
        found = self._memos.get(name)
        if found is None:
            with self._lock:
                found = self._memos.get(name)
                if found is None:
                    found = self._memos[name] = factory()
        return found


class UseInputs:
    """Ask the executor for the `Inputs` of the connection running the flow."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "CONNECTION_INPUTS"


#: The step that asks for the running connection's `Inputs`.
CONNECTION_INPUTS = UseInputs()

Step = Request | Sleep | Emit[Any] | Gather | UsePolicy | UseInputs
Flow = Generator[Step, Any, T]


def connection_policy(policy: RetryPolicy | None = None) -> Flow[RetryPolicy]:
    """``policy``, or the retry policy of the connection running the flow:
    ``policy = yield from connection_policy(policy)``."""
    if policy is not None:
        return policy
    answer: RetryPolicy = yield CONNECTION_POLICY
    return answer


def connection_inputs() -> Flow[Inputs]:
    """The `Inputs` (clock, random source, shard checks) of the connection running the flow:
    ``inputs = yield from connection_inputs()``."""
    answer: Inputs = yield CONNECTION_INPUTS
    return answer


def call(
    request: Request,
    policy: RetryPolicy | None = None,
    classify: Callable[[DynamodelError, RetryPolicy], BaseException] | None = None,
) -> Flow[dict[str, Any]]:
    """Send one request, retrying retryable errors per the policy with backoff sleeps.

    Use as ``response = yield from call(request)``. Without ``policy``, the retry policy of the
    connection running the flow decides (asked only when a request fails: a success costs no
    extra step). ``classify`` may map an error to the one the policy should judge (a
    transaction cancelled only by conflicts counts as a conflict); the original error is what
    is raised when the policy gives up.
    """
    retries = 0
    sends = 0
    started: float | None = None
    while True:
        try:
            response: dict[str, Any] = yield request
            return response
        except DynamodelError as error:
            retries += 1
            sends += 1 + error.retry_attempts
            if policy is None:
                policy = yield from connection_policy()
            if started is None:
                started = policy.clock()
            judged = classify(error, policy) if classify is not None else error
            delay = policy.next_delay(judged, retries, sends, policy.clock() - started)
            if delay is None:
                raise
            yield Sleep(delay)
