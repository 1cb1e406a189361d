"""Sans-I/O flows: generators that yield steps and receive results.

A flow yields `Request` (the executor calls ``client.<op>(**params)`` and sends back the
response dict, or throws the mapped `dynamodel.errors.DynamodelError` into the flow),
`Sleep` (the executor sleeps, sends back None) or `Emit` (the executor hands the
value to the consumer of an iterating flow, sends back None). The flow's return value is the
operation's result. The same flow runs under the sync and the async executor.
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from .errors import DynamodelError
from .retry import RetryPolicy, default_policy

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


@dataclass(slots=True)
class Request:
    """One DynamoDB call: the boto3 low-level method name and its keyword arguments.

    ``control`` marks table-management calls (create/describe/update table, TTL, backups) that
    must go to DynamoDB itself even when data calls go through a cache such as DAX.
    """

    op: str
    params: dict[str, Any] = field(default_factory=dict)
    control: bool = False


@dataclass(slots=True, frozen=True)
class Sleep:
    """Wait this many seconds before the flow continues."""

    seconds: float


@dataclass(slots=True)
class Emit(Generic[T]):
    """A value produced by an iterating flow (a page, an item)."""

    value: T


@dataclass(slots=True)
class Gather:
    """Send several requests concurrently (each retried per ``retry``); the flow receives a
    list, aligned with ``requests``, of response dicts or the exceptions that ended them."""

    requests: list[Request]
    retry: RetryPolicy | None = None
    max_concurrency: int = 16


Step = Request | Sleep | Emit[Any] | Gather
Flow = Generator[Step, Any, T]


def call(
    request: Request,
    policy: RetryPolicy | None = None,
    classify: Callable[[DynamodelError], BaseException] | None = None,
) -> Flow[dict[str, Any]]:
    """Send one request, retrying retryable errors per the policy with backoff sleeps.

    Use as ``response = yield from call(request)``. ``classify`` may map an error to the one the
    policy should judge (a transaction cancelled only by conflicts counts as a conflict); the
    original error is what is raised when the policy gives up.
    """
    policy = policy or default_policy()
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
            if started is None:
                started = policy.clock()
            judged = classify(error) if classify is not None else error
            delay = policy.next_delay(judged, retries, sends, policy.clock() - started)
            if delay is None:
                raise
            yield Sleep(delay)
