"""Helpers for testing code that uses dynamodel: a server-free DynamoDB and fault injection.

`InProcessDynamoDB` (from `dynamodel.inprocess`) runs moto's DynamoDB inside the test process,
with no port, subprocess or network::

    with InProcessDynamoDB() as db:   # the default connection inside the block
        db.create_tables(app_table)
        ...

`FaultInjector` wraps a DynamoDB client (a boto3 client, an entered aioboto3 client, or any
object with the same methods) and, with seeded probabilities, throttles calls, fails them with
HTTP 500, or returns part of each batch as unprocessed::

    faulty = FaultInjector(boto3_client, seed=7, unprocessed=0.3, throttle=0.1)
    table.bind(connection=Connection(client=faulty))

`trust_shard_layouts` skips the shard-layout check for models under test with a stub client
(a `botocore.stub.Stubber`, a hand-written fake) that should see only the model's own requests.

For a local endpoint to test against, see `dynamodel.local.LocalDynamoDB`.
"""

from __future__ import annotations

import inspect
import random
import threading
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any

from dynamodel.core.flows import DATA_OPERATIONS
from dynamodel.inprocess import InProcessDynamoDB

__all__ = [
    "DATA_OPERATIONS",
    "FaultInjector",
    "FaultStats",
    "InProcessDynamoDB",
    "trust_shard_layouts",
]


def trust_shard_layouts(*models: type[Any]) -> None:
    """Treat these models' shard layouts as checked in this process: their first read or write
    then sends no shard-record GetItem/PutItem (see the sharding docs). For tests whose stub
    client answers only the model's own requests; never needed against moto, dynoxide or
    `InProcessDynamoDB`, and not for production code (a changed layout would then go unseen).
    `dynamodel.ops.shard_guard.forget_shard_checks` undoes it."""
    from dynamodel.ops.shard_guard import trust_layout

    for model in models:
        spec = model._spec()
        trust_layout(spec.table.physical_name, spec.entity, spec.guard_slots())


# DATA_OPERATIONS (from flows): the operations a FaultInjector disturbs by default
_BATCH_OPERATIONS = frozenset({"batch_get_item", "batch_write_item"})


@dataclass
class FaultStats:
    """What a `FaultInjector` did so far.

    Attributes:
        calls: calls of disturbed operations.
        throttled: calls failed with a throttling error (the real client was not called).
        server_errors: calls failed with HTTP 500.
        server_errors_after_apply: of those, the ones raised after the real call went through.
        unprocessed: batch items or keys returned as unprocessed (not sent to the real client).
        forwarded: calls that reached the real client.
    """

    calls: int = 0
    throttled: int = 0
    server_errors: int = 0
    server_errors_after_apply: int = 0
    unprocessed: int = 0
    forwarded: int = 0


def _pascal(operation: str) -> str:
    return "".join(part.title() for part in operation.split("_"))


def _client_error(operation: str, code: str, message: str, status: int) -> Exception:
    from botocore.exceptions import ClientError

    response: Any = {
        "Error": {"Code": code, "Message": message},
        "ResponseMetadata": {"HTTPStatusCode": status, "RetryAttempts": 0},
    }
    error: Exception = ClientError(response, _pascal(operation))
    return error


def _is_async_client(client: Any) -> bool:
    """An aioboto3/aiobotocore client, or any client whose operations are coroutines."""
    if hasattr(client, "__aenter__") or inspect.iscoroutinefunction(
        getattr(client, "_make_api_call", None)
    ):
        return True
    if isinstance(client, FaultInjector):
        return client.is_async
    return any(inspect.iscoroutinefunction(getattr(client, name, None)) for name in DATA_OPERATIONS)


class FaultInjector:
    """A DynamoDB client wrapper that injects faults with seeded randomness.

    For every call of a disturbed operation, in this order:

    1. with probability ``throttle`` it raises a throttling ``ClientError`` (code
       ``throttle_code``, HTTP 400) without calling the real client;
    2. else with probability ``server_error`` it raises ``InternalServerError`` (HTTP 500); a
       fraction ``server_error_after_apply`` of those are raised *after* the real call went
       through (the write happened, the response was lost), the others before it;
    3. else, for ``batch_write_item`` and ``batch_get_item``, each request item or key is held
       back independently with probability ``unprocessed`` and returned in
       ``UnprocessedItems`` / ``UnprocessedKeys`` (merged with any the real call returned);
       the rest is forwarded (nothing is forwarded if everything was held back).

    Errors are botocore ``ClientError`` objects shaped like real ones, with
    ``ResponseMetadata.RetryAttempts == 0`` (they bypass botocore's own retries). Other
    attributes and operations pass through untouched. The random generator is
    ``random.Random(seed)``: a given sequence of calls always meets the same faults (calls made
    concurrently may arrive in a different order from run to run). The settings are plain
    attributes and can be changed at any time (``injector.throttle = 0``). Thread-safe.

    Sync clients get sync methods; async clients (detected: aioboto3/aiobotocore clients, or
    operations that are coroutine functions; or say so with ``is_async``) get coroutine methods.

    Args:
        client: the client to wrap.
        seed: the seed of the random generator.
        unprocessed: probability that each batch item or key is returned unprocessed.
        throttle: probability that a call is throttled.
        server_error: probability that a call fails with HTTP 500.
        server_error_after_apply: fraction of the 500s raised after the real call.
        operations: the operations to disturb (default `DATA_OPERATIONS`).
        throttle_code: the error code of injected throttling errors.
        is_async: whether ``client`` is async (default: detected).
    """

    def __init__(
        self,
        client: Any,
        *,
        seed: int | None = 0,
        unprocessed: float = 0.0,
        throttle: float = 0.0,
        server_error: float = 0.0,
        server_error_after_apply: float = 0.0,
        operations: Collection[str] | None = None,
        throttle_code: str = "ProvisionedThroughputExceededException",
        is_async: bool | None = None,
    ) -> None:
        for name, value in [
            ("unprocessed", unprocessed),
            ("throttle", throttle),
            ("server_error", server_error),
            ("server_error_after_apply", server_error_after_apply),
        ]:
            if not 0.0 <= value <= 1.0:
                from dynamodel.core.errors import ValidationError

                raise ValidationError(f"FaultInjector {name} must be in [0, 1], got {value!r}")
        self.client = client
        self.unprocessed = unprocessed
        self.throttle = throttle
        self.server_error = server_error
        self.server_error_after_apply = server_error_after_apply
        self.operations = frozenset(DATA_OPERATIONS if operations is None else operations)
        self.throttle_code = throttle_code
        self.is_async = _is_async_client(client) if is_async is None else is_async
        self.stats = FaultStats()
        self._random = random.Random(seed)
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return (
            f"FaultInjector({self.client!r}, unprocessed={self.unprocessed}, "
            f"throttle={self.throttle}, server_error={self.server_error})"
        )

    def __getattr__(self, name: str) -> Any:
        if name == "client" or name.startswith("__"):
            raise AttributeError(name)  # not set yet (copy, pickle), or a special method
        attribute = getattr(self.client, name)
        if name not in self.operations or not callable(attribute):
            return attribute
        if self.is_async:

            async def async_call(**params: Any) -> Any:
                plan = self._plan(name, params)
                response = await attribute(**plan.forward) if plan.forward is not None else {}
                return self._finish(name, plan, response)

            return async_call

        def sync_call(**params: Any) -> Any:
            plan = self._plan(name, params)
            response = attribute(**plan.forward) if plan.forward is not None else {}
            return self._finish(name, plan, response)

        return sync_call

    # -- the decisions (pure, under the lock) ------------------------------------------------

    def _plan(self, operation: str, params: dict[str, Any]) -> _Plan:
        with self._lock:
            self.stats.calls += 1
            draw = self._random.random
            if draw() < self.throttle:
                self.stats.throttled += 1
                raise _client_error(operation, self.throttle_code, "Injected throttling", 400)
            if draw() < self.server_error:
                self.stats.server_errors += 1
                if draw() >= self.server_error_after_apply:
                    raise _client_error(operation, "InternalServerError", "Injected 500", 500)
                self.stats.server_errors_after_apply += 1
                self.stats.forwarded += 1
                return _Plan(forward=params, held={}, fail_after=True)
            held: dict[str, Any] = {}
            forward: dict[str, Any] | None = params
            if operation in _BATCH_OPERATIONS and self.unprocessed > 0:
                forward, held = self._hold_back(operation, params)
            if forward is not None:
                self.stats.forwarded += 1
            return _Plan(forward=forward, held=held, fail_after=False)

    def _hold_back(
        self, operation: str, params: dict[str, Any]
    ) -> tuple[dict[str, Any] | None, dict[str, Any]]:
        """Split a batch request into (what to forward or None, what to return unprocessed)."""
        sent: dict[str, Any] = {}
        held: dict[str, Any] = {}
        for table, request in params.get("RequestItems", {}).items():
            if operation == "batch_write_item":
                entries: list[Any] = list(request)
            else:
                entries = list(request.get("Keys", ()))
            keep: list[Any] = []
            back: list[Any] = []
            for entry in entries:
                (back if self._random.random() < self.unprocessed else keep).append(entry)
            self.stats.unprocessed += len(back)
            if operation == "batch_write_item":
                if keep:
                    sent[table] = keep
                if back:
                    held[table] = back
            else:
                if keep:
                    sent[table] = {**request, "Keys": keep}
                if back:
                    held[table] = {**request, "Keys": back}
        if not held:
            return params, {}
        return ({**params, "RequestItems": sent} if sent else None), held

    def _finish(self, operation: str, plan: _Plan, response: Mapping[str, Any]) -> Any:
        if plan.fail_after:
            raise _client_error(operation, "InternalServerError", "Injected 500 after apply", 500)
        if not plan.held:
            return response
        out = dict(response)
        out.setdefault("ResponseMetadata", {"HTTPStatusCode": 200, "RetryAttempts": 0})
        field = "UnprocessedItems" if operation == "batch_write_item" else "UnprocessedKeys"
        merged = {table: value for table, value in (out.get(field) or {}).items()}
        for table, value in plan.held.items():
            if table not in merged:
                merged[table] = value
            elif operation == "batch_write_item":
                merged[table] = [*merged[table], *value]
            else:
                merged[table] = {**value, "Keys": [*merged[table]["Keys"], *value["Keys"]]}
        out[field] = merged
        if operation == "batch_get_item":
            out.setdefault("Responses", {})
        return out


@dataclass
class _Plan:
    forward: dict[str, Any] | None  # the params to send to the real client, None: send nothing
    held: dict[str, Any]  # per table, what to return as unprocessed
    fail_after: bool  # raise a 500 after the real call
