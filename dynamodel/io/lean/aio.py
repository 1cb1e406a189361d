"""`AsyncLeanClient`: the async twin of `dynamodel.io.lean.client.LeanClient` (plain asyncio)."""

from __future__ import annotations

import asyncio
import weakref
from typing import Any

from dynamodel.io.lean.async_pool import AsyncPool
from dynamodel.io.lean.base import RESENDABLE, LeanBase, resend_delay
from dynamodel.io.lean.spec import OPERATIONS


class AsyncLeanClient(LeanBase):
    """An async DynamoDB client with aioboto3's interface (``await client.get_item(...)``).

    The data-plane operations run on asyncio connections, one pool per event loop, so one
    client can serve several loops. Other operations run the control-plane botocore client in
    a worker thread. Use ``async with`` or call `aclose` before the event loop ends, to close
    that loop's connections. No aioboto3 or aiohttp is needed. Retries and errors are those of
    `dynamodel.io.lean.client.LeanClient`; arguments: see `dynamodel.io.lean.base.LeanBase`.
    """

    def _setup(self) -> None:
        self._pools: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, AsyncPool] = (
            weakref.WeakKeyDictionary()
        )
        self._last: tuple[asyncio.AbstractEventLoop, AsyncPool] | None = None

    def _pool(self) -> AsyncPool:
        loop = asyncio.get_running_loop()
        last = self._last
        if last is not None and last[0] is loop:
            return last[1]
        pool = self._pools.get(loop)
        if pool is None:
            pool = self._pools[loop] = AsyncPool(self._resolved.target, loop)
        self._last = (loop, pool)
        return pool

    async def _call(self, method: str, params: dict[str, Any]) -> dict[str, Any]:
        protocol = self._protocol
        request = protocol.request(method, params)
        operation = OPERATIONS[method]
        pool = self._pool()
        resends = 0
        while True:
            try:
                return protocol.response(operation, await pool.exchange(request), resends)
            except RESENDABLE as exc:
                if resends >= self._resends:
                    raise self._transport_error(exc) from exc
            resends += 1
            await asyncio.sleep(resend_delay(resends))

    async def _acall_control(self, method: str, params: dict[str, Any]) -> dict[str, Any]:
        return await asyncio.to_thread(self._call_control, method, params)

    # -- data plane (the lean transport) ----------------------------------------------------

    async def get_item(self, **params: Any) -> dict[str, Any]:
        """GetItem, as aioboto3's ``client.get_item``."""
        return await self._call("get_item", params)

    async def put_item(self, **params: Any) -> dict[str, Any]:
        """PutItem, as aioboto3's ``client.put_item``."""
        return await self._call("put_item", params)

    async def update_item(self, **params: Any) -> dict[str, Any]:
        """UpdateItem, as aioboto3's ``client.update_item``."""
        return await self._call("update_item", params)

    async def delete_item(self, **params: Any) -> dict[str, Any]:
        """DeleteItem, as aioboto3's ``client.delete_item``."""
        return await self._call("delete_item", params)

    async def query(self, **params: Any) -> dict[str, Any]:
        """Query, as aioboto3's ``client.query``."""
        return await self._call("query", params)

    async def scan(self, **params: Any) -> dict[str, Any]:
        """Scan, as aioboto3's ``client.scan``."""
        return await self._call("scan", params)

    async def batch_get_item(self, **params: Any) -> dict[str, Any]:
        """BatchGetItem, as aioboto3's ``client.batch_get_item``."""
        return await self._call("batch_get_item", params)

    async def batch_write_item(self, **params: Any) -> dict[str, Any]:
        """BatchWriteItem, as aioboto3's ``client.batch_write_item``."""
        return await self._call("batch_write_item", params)

    async def transact_get_items(self, **params: Any) -> dict[str, Any]:
        """TransactGetItems, as aioboto3's ``client.transact_get_items``."""
        return await self._call("transact_get_items", params)

    async def transact_write_items(self, **params: Any) -> dict[str, Any]:
        """TransactWriteItems, as aioboto3's ``client.transact_write_items``."""
        return await self._call("transact_write_items", params)

    # -- control plane (a botocore client in a worker thread) --------------------------------

    async def create_table(self, **params: Any) -> dict[str, Any]:
        """CreateTable (through botocore, in a thread)."""
        return await self._acall_control("create_table", params)

    async def describe_table(self, **params: Any) -> dict[str, Any]:
        """DescribeTable (through botocore, in a thread)."""
        return await self._acall_control("describe_table", params)

    async def delete_table(self, **params: Any) -> dict[str, Any]:
        """DeleteTable (through botocore, in a thread)."""
        return await self._acall_control("delete_table", params)

    async def update_time_to_live(self, **params: Any) -> dict[str, Any]:
        """UpdateTimeToLive (through botocore, in a thread)."""
        return await self._acall_control("update_time_to_live", params)

    async def update_continuous_backups(self, **params: Any) -> dict[str, Any]:
        """UpdateContinuousBackups (through botocore, in a thread)."""
        return await self._acall_control("update_continuous_backups", params)

    def __getattr__(self, name: str) -> Any:
        """Any other DynamoDB operation, as a coroutine function (botocore, in a thread)."""
        if name in OPERATIONS:

            async def operation(**params: Any) -> dict[str, Any]:
                return await self._acall_control(name, params)

            operation.__name__ = name
            return operation
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    async def aclose(self) -> None:
        """Close this event loop's connections and the control-plane client."""
        loop = asyncio.get_running_loop()
        pool = self._pools.pop(loop, None)
        if self._last is not None and self._last[0] is loop:
            self._last = None
        if pool is not None:
            await pool.aclose()
        self._close_control()

    async def __aenter__(self) -> AsyncLeanClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()
