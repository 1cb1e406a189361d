"""`LeanClient`: a sync DynamoDB client with boto3's low-level interface and a lean transport."""

from __future__ import annotations

import time
from typing import Any

from dynamodel.io.lean.base import RESENDABLE, LeanBase, resend_delay
from dynamodel.io.lean.spec import OPERATIONS
from dynamodel.io.lean.sync_pool import SyncPool

_PAGINATION = frozenset({"get_paginator", "can_paginate", "get_waiter"})


class LeanClient(LeanBase):
    """A drop-in for ``boto3.client("dynamodb")`` whose data-plane calls skip botocore.

    ``get_item``, ``put_item``, ``update_item``, ``delete_item``, ``query``, ``scan``,
    ``batch_get_item``, ``batch_write_item``, ``transact_get_items`` and
    ``transact_write_items`` take boto3's keyword arguments and return boto3's response dicts
    (``ResponseMetadata`` included); errors are the ``ClientError`` subclasses in
    ``client.exceptions``, with botocore's ``response`` shape. Requests are sent over pooled
    keep-alive connections (thread-safe). Every other operation, and ``get_paginator`` /
    ``get_waiter``, goes through a botocore client created on first use.

    The client does not retry throttling or server errors (dynamodel's retry policy does); it
    resends after connection failures (refused, reset, timed out, damaged body) up to the
    config's ``retries.total_max_attempts`` (default 3 sends), and reports resends in
    ``ResponseMetadata.RetryAttempts``. Arguments: see `dynamodel.io.lean.base.LeanBase`.
    """

    def _setup(self) -> None:
        self._pool = SyncPool(self._resolved.target)

    def _call(self, method: str, params: dict[str, Any]) -> dict[str, Any]:
        protocol = self._protocol
        request = protocol.request(method, params)
        operation = OPERATIONS[method]
        resends = 0
        while True:
            try:
                return protocol.response(operation, self._pool.exchange(request), resends)
            except RESENDABLE as exc:
                if resends >= self._resends:
                    raise self._transport_error(exc) from exc
            resends += 1
            time.sleep(resend_delay(resends))

    # -- data plane (the lean transport) ----------------------------------------------------

    def get_item(self, **params: Any) -> dict[str, Any]:
        """GetItem, as boto3's ``client.get_item``."""
        return self._call("get_item", params)

    def put_item(self, **params: Any) -> dict[str, Any]:
        """PutItem, as boto3's ``client.put_item``."""
        return self._call("put_item", params)

    def update_item(self, **params: Any) -> dict[str, Any]:
        """UpdateItem, as boto3's ``client.update_item``."""
        return self._call("update_item", params)

    def delete_item(self, **params: Any) -> dict[str, Any]:
        """DeleteItem, as boto3's ``client.delete_item``."""
        return self._call("delete_item", params)

    def query(self, **params: Any) -> dict[str, Any]:
        """Query, as boto3's ``client.query``."""
        return self._call("query", params)

    def scan(self, **params: Any) -> dict[str, Any]:
        """Scan, as boto3's ``client.scan``."""
        return self._call("scan", params)

    def batch_get_item(self, **params: Any) -> dict[str, Any]:
        """BatchGetItem, as boto3's ``client.batch_get_item``."""
        return self._call("batch_get_item", params)

    def batch_write_item(self, **params: Any) -> dict[str, Any]:
        """BatchWriteItem, as boto3's ``client.batch_write_item``."""
        return self._call("batch_write_item", params)

    def transact_get_items(self, **params: Any) -> dict[str, Any]:
        """TransactGetItems, as boto3's ``client.transact_get_items``."""
        return self._call("transact_get_items", params)

    def transact_write_items(self, **params: Any) -> dict[str, Any]:
        """TransactWriteItems, as boto3's ``client.transact_write_items``."""
        return self._call("transact_write_items", params)

    # -- control plane (a botocore client) --------------------------------------------------

    def create_table(self, **params: Any) -> dict[str, Any]:
        """CreateTable (through botocore)."""
        return self._call_control("create_table", params)

    def describe_table(self, **params: Any) -> dict[str, Any]:
        """DescribeTable (through botocore)."""
        return self._call_control("describe_table", params)

    def delete_table(self, **params: Any) -> dict[str, Any]:
        """DeleteTable (through botocore)."""
        return self._call_control("delete_table", params)

    def update_time_to_live(self, **params: Any) -> dict[str, Any]:
        """UpdateTimeToLive (through botocore)."""
        return self._call_control("update_time_to_live", params)

    def update_continuous_backups(self, **params: Any) -> dict[str, Any]:
        """UpdateContinuousBackups (through botocore)."""
        return self._call_control("update_continuous_backups", params)

    def __getattr__(self, name: str) -> Any:
        """Any other DynamoDB operation, and paginators and waiters, through botocore."""
        if name in OPERATIONS:

            def operation(**params: Any) -> dict[str, Any]:
                return self._call_control(name, params)

            operation.__name__ = name
            return operation
        if name in _PAGINATION:
            return getattr(self.control_client(), name)
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def close(self) -> None:
        """Close pooled connections and the control-plane client."""
        self._pool.close()
        self._close_control()

    def __enter__(self) -> LeanClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
