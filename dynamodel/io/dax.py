"""DAX: route data-plane calls through a DAX cluster, keep everything else on DynamoDB.

A `Connection` configured with ``dax_endpoints=[...]`` (or ``dax_client=...``) puts a
`DaxRouting` step in its middleware chain (`dynamodel.io.middleware`), one object shared by its
sync and async clients. For every call it decides, from the operation and its parameters,
where the call goes (`uses_dax`):

* to DAX: GetItem, PutItem, UpdateItem, DeleteItem, BatchGetItem, BatchWriteItem, Query,
  Scan, TransactGetItems and TransactWriteItems;
* to DynamoDB: strongly consistent reads (``ConsistentRead=True``: DAX would only pass them
  through, and dynamodel keeps them off the cache path entirely), and every other operation
  (CreateTable, DescribeTable, UpdateTimeToLive, backups...: DAX has no table operations).

Details the router takes care of:

* **Retries.** The DAX client retries inside each call (2 retries by default, its
  ``Config(retries={"max_attempts": n})``), and does not report how many it made. For an
  error DAX considers retryable, the router records the full internal budget in
  ``ResponseMetadata.RetryAttempts``, so dynamodel's `RetryPolicy` counts those sends against
  ``max_attempts`` instead of multiplying them.
* **ALL_OLD on condition failures.** The DAX client does not send
  ``ReturnValuesOnConditionCheckFailure`` for single-item writes. When such a write fails its
  condition, the router reads the stored item from DynamoDB (strongly consistent) and puts it
  where DynamoDB would have (``e.response["Item"]``), so `ConditionFailed.item`,
  `VersionConflict` and "not found" on updates work as without DAX. The read happens after
  the failure, not atomically with it.
* **Errors.** DAX errors are botocore ``ClientError`` subclasses with DynamoDB's codes;
  `dynamodel.core.errors.map_client_error` maps them like DynamoDB's, and takes transaction
  cancellation reasons from ``e.cancellation_reasons``.
* **Async.** The DAX client is synchronous: the async driver creates it and runs each DAX
  call in a worker thread (``asyncio.to_thread``); DynamoDB calls use the aioboto3 client.

`DaxRouter` (sync) and `AsyncDaxRouter` (async) put the routing step in front of a DynamoDB
client by hand.

`LocalDax` is a stand-in for a DAX cluster with the DAX client's interface and DAX's cache
semantics (a `dynamodel.io.cache.LocalCache` in front of a DynamoDB client), to exercise a DAX
configuration without a cluster.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from dynamodel.core.errors import error_code, is_dax_error
from dynamodel.core.flows import DATA_OPERATIONS
from dynamodel.io.cache import LocalCache
from dynamodel.io.middleware import Around, AsyncClient, Blocking, Client, Send, Wrapper

__all__ = [
    "DAX_OPERATIONS",
    "TABLE_OPERATIONS",
    "AsyncDaxRouter",
    "DaxRouter",
    "DaxRouting",
    "LocalDax",
    "RouteStats",
    "create_dax_client",
    "uses_dax",
]

#: the operations a DAX cluster serves
DAX_OPERATIONS = DATA_OPERATIONS
#: what the DAX client does when its config does not say (amazondax's RetryHandler)
DAX_DEFAULT_RETRIES = 2
#: the DynamoDB table operations the DAX client refuses with NotImplementedError
TABLE_OPERATIONS = frozenset(
    {
        "create_backup",
        "create_global_table",
        "create_table",
        "delete_backup",
        "delete_table",
        "describe_backup",
        "describe_continuous_backups",
        "describe_global_table",
        "describe_limits",
        "describe_table",
        "describe_time_to_live",
        "list_backups",
        "list_global_tables",
        "list_tables",
        "list_tags_of_resource",
        "restore_table_from_backup",
        "tag_resource",
        "untag_resource",
        "update_global_table",
        "update_table",
        "update_time_to_live",
        "update_continuous_backups",
    }
)
_SINGLE_WRITES = frozenset({"put_item", "update_item", "delete_item"})


def uses_dax(op: str, params: Mapping[str, Any]) -> bool:
    """Whether a call goes to DAX (True) or to DynamoDB (False).

    Strongly consistent reads and TransactGetItems go to DynamoDB: DAX would only pass them
    through, uncached, and sent directly they keep working when the cluster cannot be reached.
    """
    if op not in DAX_OPERATIONS or op == "transact_get_items":
        return False
    if params.get("ConsistentRead"):
        return False
    if op == "batch_get_item":
        return not any(r.get("ConsistentRead") for r in params.get("RequestItems", {}).values())
    return True


@dataclass
class RouteStats:
    """Calls a router sent to each side, by operation (thread-safe counters)."""

    dax: Counter[str] = field(default_factory=Counter)
    dynamodb: Counter[str] = field(default_factory=Counter)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def count(self, side: str, op: str) -> None:
        """Count one call."""
        with self._lock:
            (self.dax if side == "dax" else self.dynamodb)[op] += 1


def internal_retries(dax: Any) -> int:
    """How many times the DAX client retries a failed call itself."""
    declared = getattr(type(dax), "internal_retries", None)
    if isinstance(declared, int):
        return declared
    config = getattr(dax, "_client_config", None)
    retries = getattr(config, "retries", None) or {}
    value = retries.get("max_attempts", DAX_DEFAULT_RETRIES)
    return value if isinstance(value, int) else DAX_DEFAULT_RETRIES


def _dax_retries_error(exc: BaseException) -> bool:
    """Whether DAX's own retry handler retries this error."""
    if not is_dax_error(exc):
        return False
    try:
        from amazondax.DaxError import is_retryable
    except ImportError:  # pragma: no cover - a DAX error without amazondax installed
        return False
    return bool(is_retryable(exc))


def _note_retries(exc: BaseException, retries: int) -> None:
    """Record DAX's internal retries where dynamodel's retry policy counts sends."""
    response = getattr(exc, "response", None)
    if not isinstance(response, dict) or not _dax_retries_error(exc):
        return
    metadata = response.setdefault("ResponseMetadata", {})
    if not isinstance(metadata.get("RetryAttempts"), int):
        metadata["RetryAttempts"] = retries


def _wants_stored_item(op: str, params: Mapping[str, Any], exc: BaseException) -> bool:
    response = getattr(exc, "response", None)
    return (
        op in _SINGLE_WRITES
        and params.get("ReturnValuesOnConditionCheckFailure") == "ALL_OLD"
        and error_code(exc) == "ConditionalCheckFailedException"
        and isinstance(response, dict)
        and "Item" not in response
    )


def _key_names(description: Mapping[str, Any]) -> tuple[str, ...]:
    return tuple(k["AttributeName"] for k in description["Table"]["KeySchema"])


class DaxRouting:
    """DAX routing as a `dynamodel.io.middleware` step (one object for sync and async calls).

    Each data-plane call goes to DAX or to the rest of the chain (DynamoDB), as `uses_dax`
    says. The DAX client is a `dynamodel.io.middleware.Blocking` client: created by the first
    call routed to DAX and, in async code, created and called in a worker thread.

    Args:
        dax: a DAX client, or a function that creates one.
        retries: DAX's internal retries per call (default: read from the DAX client).
    """

    #: what `dynamodel.io.middleware.Wrapper.find` looks for
    role = "dax"

    def __init__(self, dax: Any, *, retries: int | None = None) -> None:
        self.target = Blocking(dax)
        self._retries = retries
        self.stats = RouteStats()
        self._key_schema: dict[str, tuple[str, ...]] = {}

    def __repr__(self) -> str:
        return f"DaxRouting({self.target!r})"

    @property
    def retries(self) -> int:
        """DAX's internal retries per call (creates the DAX client if it does not exist)."""
        if self._retries is None:
            self._retries = internal_retries(self.target.get())
        return self._retries

    def around(self, op: str, params: dict[str, Any]) -> Around:
        """Send the call to DAX or down the chain; after a DAX failure, note DAX's retries and
        read the stored item a failed conditional write would have returned."""
        if not uses_dax(op, params):
            self.stats.count("dynamodb", op)
            return (yield Send(op, params))
        self.stats.count("dax", op)
        try:
            return (yield Send(op, params, to=self.target))
        except Exception as exc:
            if self.target.current is None:
                raise  # the DAX client could not be created: nothing was sent
            _note_retries(exc, self.retries)
            if _wants_stored_item(op, params, exc):
                yield from self._attach_stored_item(op, params, exc)
            raise

    def _attach_stored_item(self, op: str, params: Mapping[str, Any], exc: Exception) -> Around:
        try:
            table = params["TableName"]
            if op == "put_item" and table not in self._key_schema:
                description = yield Send("describe_table", {"TableName": table})
                self._key_schema[table] = _key_names(description)
            key = self._key_of(op, params)
            if key is None:
                return
            read = {"TableName": table, "Key": key, "ConsistentRead": True}
            stored = yield Send("get_item", read)
        except Exception as read_error:
            exc.add_note(f"dynamodel: could not read the stored item from DynamoDB: {read_error}")
            return
        if "Item" in stored:
            exc.response["Item"] = stored["Item"]  # type: ignore[attr-defined]

    def _key_of(self, op: str, params: Mapping[str, Any]) -> dict[str, Any] | None:
        if op != "put_item":
            return dict(params["Key"])
        names = self._key_schema.get(params["TableName"])
        if names is None:
            return None
        item = params["Item"]
        return {n: item[n] for n in names if n in item}


class _Router(Wrapper):
    """What `DaxRouter` and `AsyncDaxRouter` add to their client: a `DaxRouting` chain."""

    def __init__(self, dax: Any, dynamodb: Any, *, retries: int | None = None) -> None:
        super().__init__(dynamodb, (DaxRouting(dax, retries=retries),))

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.routing.target!r}, {self.client!r})"

    @property
    def routing(self) -> DaxRouting:
        """The `DaxRouting` step."""
        routing = self.middleware[0]
        assert isinstance(routing, DaxRouting)
        return routing

    @property
    def dax(self) -> Any:
        """The DAX client (created now if it was given as a function; its errors propagate)."""
        return self.routing.target.get()

    @property
    def dynamodb(self) -> Any:
        """The DynamoDB client."""
        return self.client

    @property
    def retries(self) -> int:
        """DAX's internal retries per call."""
        return self.routing.retries


class DaxRouter(_Router, Client):
    """A sync client (boto3's interface) sending each call to DAX or DynamoDB (`uses_dax`).

    Args:
        dax: an ``amazondax.AmazonDaxClient`` (or a client with its interface), or a function
            that creates one: it is called by the first call routed to DAX, so a cluster that
            cannot be reached fails only those calls.
        dynamodb: the boto3 DynamoDB client for everything DAX does not serve.
        retries: DAX's internal retries per call (default: read from the DAX client).

    ``stats`` (`RouteStats`) counts the calls sent each way.
    """


class AsyncDaxRouter(_Router, AsyncClient):
    """`DaxRouter` for an aioboto3 client: the same `DaxRouting` step, driven asynchronously
    (DAX calls run in a worker thread, DynamoDB calls are awaited on the aioboto3 client)."""


def create_dax_client(endpoints: list[str], region: str | None = None, config: Any = None) -> Any:
    """An ``amazondax.AmazonDaxClient`` for the cluster endpoints (imported only here)."""
    try:
        from amazondax import AmazonDaxClient
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError("DAX needs amazon-dax-client: pip install 'dynamodel[dax]'") from exc
    return AmazonDaxClient(endpoints=list(endpoints), region_name=region, config=config)


class _DaxClientQuirks:
    """What the DAX client does that DynamoDB's does not: no
    ``ReturnValuesOnConditionCheckFailure`` on single-item writes (and a call counter)."""

    def __init__(self) -> None:
        self.calls: Counter[str] = Counter()
        self._lock = threading.Lock()

    def around(self, op: str, params: dict[str, Any]) -> Around:
        with self._lock:
            self.calls[op] += 1
        if op in _SINGLE_WRITES:
            params = {k: v for k, v in params.items() if k != "ReturnValuesOnConditionCheckFailure"}
        return (yield Send(op, params))


class LocalDax(Client):
    """A stand-in for a DAX cluster: the DAX client's interface with DAX's cache semantics.

    The ten data-plane operations read through a `LocalCache` (item cache, query cache,
    TTLs, negative caching) in front of ``dynamodb`` (a boto3 client); table operations raise
    ``NotImplementedError`` as the DAX client does. Like the DAX client, it does not send
    ``ReturnValuesOnConditionCheckFailure`` on single-item writes. Errors are those of the
    wrapped client. ``stats`` (the cache's) shows what was served from the cache.

    Sync only, as the DAX client is: an async `Connection` runs it in worker threads.
    """

    internal_retries = 0  # it does not retry: the wrapped client's botocore does

    def __init__(self, dynamodb: Any, cache: LocalCache | None = None) -> None:
        self._quirks = _DaxClientQuirks()
        super().__init__(dynamodb, (self._quirks, cache if cache is not None else LocalCache()))

    def __repr__(self) -> str:
        return f"LocalDax({self.cache!r})"

    @property
    def calls(self) -> Counter[str]:
        """Calls received, by operation."""
        return self._quirks.calls

    @property
    def stats(self) -> Any:
        """The cache's `dynamodel.io.cache.CacheStats`."""
        return self.cache.stats

    def __getattr__(self, name: str) -> Any:
        if name in TABLE_OPERATIONS:
            raise NotImplementedError(
                f"{name}: table operations are not supported on DAX; use the DynamoDB client"
            )
        raise AttributeError(name)

    def close(self) -> None:
        """Nothing to release (the wrapped client belongs to the caller)."""
