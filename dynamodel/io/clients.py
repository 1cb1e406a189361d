"""Client factories and the `Connection` that tables use at run time.

A connection holds (or lazily creates) a client with boto3's low-level interface for sync calls
and an async one for async calls: by default the lean transport's (`dynamodel.io.lean`), with
``transport="boto3"`` boto3's and aioboto3's. Endpoint, region and credentials follow boto3's
own conventions
(``AWS_ENDPOINT_URL_DYNAMODB``, ``AWS_ENDPOINT_URL``, ``AWS_DEFAULT_REGION``, profiles,
instance roles), so the same code runs on AWS, dynoxide or ``dynamodel local``.

Routing lives here too: ``client(control=...)`` / ``aclient(control=...)`` return the client
for one request. Table management (``control=True``) always gets the DynamoDB client; data
calls get it behind the connection's middleware chain (`dynamodel.io.middleware`) when one is
configured: a local read cache (`dynamodel.io.cache`) in front, DAX routing (`dynamodel.io.dax`)
behind it, DynamoDB last. The sync and async clients share the one chain.

The transports, boto3, aioboto3 and amazondax are imported only when a client is first needed.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from dynamodel.core.errors import ValidationError
from dynamodel.core.retry import RetryPolicy, default_policy

if TYPE_CHECKING:
    import asyncio

    from dynamodel.io.cache import LocalCache
    from dynamodel.io.capacity import CapacityMode, CapacityRecord

#: botocore retry settings for clients dynamodel creates. botocore's standard mode retries
#: connection errors and throttling with jitter; dynamodel's policy counts those attempts.
TOTAL_MAX_ATTEMPTS = 3
BOTOCORE_RETRIES = {"mode": "standard", "total_max_attempts": TOTAL_MAX_ATTEMPTS}


def _botocore_config(extra: Any = None) -> Any:
    from botocore.config import Config

    config = Config(retries=BOTOCORE_RETRIES, tcp_keepalive=True)
    return config.merge(extra) if extra is not None else config


def _lean_config(extra: Any = None) -> Any:
    """`_botocore_config` for a lean client: built on first use when there is no ``extra``,
    so the lean client's configuration can skip botocore (see docs/transport.md)."""
    if extra is not None:
        return _botocore_config(extra)
    from dynamodel.io.lean.config import DeferredConfig

    return DeferredConfig(_botocore_config, TOTAL_MAX_ATTEMPTS)


class Connection:
    """Where requests go: sync and async DynamoDB clients plus the retry policy.

    Args:
        client: a boto3 low-level DynamoDB client (or anything with its methods, such as a
            lean client) for sync calls.
        aclient: an entered aioboto3 DynamoDB client (or anything with its coroutine methods)
            for async calls.
        endpoint_url: endpoint for clients created lazily (default: boto3's resolution).
        region: region for clients created lazily (default: boto3's resolution).
        retry: the retry policy for this connection's requests.
        botocore_config: a ``botocore.config.Config`` merged into lazily created clients.
        dax_endpoints: DAX cluster endpoint(s) (``dax://...``/``daxs://...``): data-plane calls
            go through an ``amazondax.AmazonDaxClient`` created on first use (extra ``dax``).
        dax_client: a DAX client to use instead (``AmazonDaxClient``, `dynamodel.io.dax.LocalDax`
            or anything with their interface).
        cache: a `dynamodel.io.cache.LocalCache` that data-plane calls read through.
        return_consumed_capacity: ask for ``TOTAL`` or ``INDEXES`` consumed capacity on every
            data-plane request (see `dynamodel.io.capacity`).
        on_capacity: called with each `dynamodel.io.capacity.CapacityRecord` a response reports
            (implies ``TOTAL`` when no mode is given). It runs in the calling thread; an
            exception it raises propagates to the caller.
        transport: for clients created lazily: ``"lean"`` (`dynamodel.io.lean`: boto3's
            interface with far less CPU per call and a faster cold start) or ``"boto3"``
            (boto3/aioboto3 clients). Default: the ``DYNAMODEL_TRANSPORT`` environment
            variable, else ``"lean"``.
        clock: wall-clock epoch seconds for what this connection runs (TTL-aware reads and
            ``batch_get``, the "an expired item counts as absent" condition of ``create``,
            ``Meta.timestamps``, table waits; transaction actions and batch puts read it when
            they are added); default ``time.time``. A fake one makes them deterministic.
        random: the ``random.Random`` new items' random shards are drawn from (also by
            transaction and batch puts, and by a ``to_item()`` outside an operation; default:
            a private generator). Retry jitter comes from the retry policy's own ``random``.
        cursor_key: the secret (bytes or str, at least 16 bytes; 32 random bytes recommended)
            the cursors of reads run on this connection are signed with (HMAC-SHA256), or a
            sequence of them for rotation: the first signs, every one verifies. A read that
            resumes from a cursor (``start_from``) then refuses, before sending anything, a
            cursor that is unsigned, signed with another key, altered, or made by another
            read (`dynamodel.InvalidCursor`). Default: unsigned cursors.
        cursor_max_age: seconds a signed cursor stays valid after it was made (by ``clock``);
            default: no limit. Needs ``cursor_key``.
    """

    def __init__(
        self,
        *,
        client: Any = None,
        aclient: Any = None,
        endpoint_url: str | None = None,
        region: str | None = None,
        retry: RetryPolicy | None = None,
        botocore_config: Any = None,
        dax_endpoints: str | Sequence[str] | None = None,
        dax_client: Any = None,
        cache: LocalCache | None = None,
        return_consumed_capacity: CapacityMode | None = None,
        on_capacity: Callable[[CapacityRecord], Any] | None = None,
        transport: str | None = None,
        clock: Callable[[], float] | None = None,
        random: Any = None,
        cursor_key: bytes | str | Sequence[bytes | str] | None = None,
        cursor_max_age: float | None = None,
    ) -> None:
        # what flows run here may ask for (flows.Inputs)
        self.inputs = _inputs(clock, random, cursor_key, cursor_max_age)
        if transport is not None:
            from dynamodel.io.lean import transport_from_env

            try:
                transport_from_env(transport)
            except ValueError as exc:
                raise ValidationError(f"Connection {exc}") from None
        self._transport = transport
        self._lean_async: Any = None
        self._client = client
        self._client_owned = False
        self._aclient = aclient
        self._aclient_owned: tuple[asyncio.AbstractEventLoop, Any] | None = None
        self.endpoint_url = endpoint_url
        self.region = region
        self.retry = retry or default_policy()
        self.botocore_config = botocore_config
        self.dax_endpoints = _endpoints(dax_endpoints)
        if self.dax_endpoints and dax_client is not None:
            raise ValidationError("Connection: give dax_endpoints or dax_client, not both")
        self._dax = dax_client
        self._dax_owned = False
        if cache is not None:
            from dynamodel.io.cache import LocalCache

            if not isinstance(cache, LocalCache):
                raise ValidationError(
                    f"Connection cache must be a dynamodel.io.cache.LocalCache, got {cache!r}"
                )
        self.cache = cache
        if return_consumed_capacity is not None:
            from dynamodel.io.capacity import check_mode  # loaded only when capacity is asked for

            return_consumed_capacity = check_mode(return_consumed_capacity)
        self.return_consumed_capacity = return_consumed_capacity
        if on_capacity is not None and not callable(on_capacity):
            raise ValidationError(f"Connection on_capacity must be callable, got {on_capacity!r}")
        self.on_capacity = on_capacity
        self._routed = bool(self.dax_endpoints) or dax_client is not None or cache is not None
        self._chain: tuple[Any, ...] | None = None  # built on first use: see `middleware`
        self._data: tuple[Any, Any] | None = None  # (DynamoDB client, its data client)
        self._adata: tuple[Any, Any] | None = None  # the same for the async client
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        extra = ""
        if self.dax_endpoints or self._dax is not None:
            extra += f", dax={self.dax_endpoints or self._dax!r}"
        if self.cache is not None:
            extra += f", cache={self.cache!r}"
        return f"Connection(endpoint_url={self.endpoint_url!r}, region={self.region!r}{extra})"

    @property
    def uses_dax(self) -> bool:
        """Whether data-plane calls go through DAX."""
        return bool(self.dax_endpoints) or self._dax is not None

    def dax_client(self) -> Any:
        """The DAX client (created on first use from ``dax_endpoints``), or None."""
        if self._dax is None and self.dax_endpoints:
            with self._lock:
                if self._dax is None:
                    from dynamodel.io.dax import create_dax_client

                    self._dax = create_dax_client(
                        self.dax_endpoints, self.region, self.botocore_config
                    )
                    self._dax_owned = True
        return self._dax

    def middleware(self) -> tuple[Any, ...]:
        """This connection's middleware chain (`dynamodel.io.middleware`): the local cache in
        front, DAX routing behind it; empty when neither is configured. One chain (one set of
        statistics) serves the sync and the async clients."""
        chain = self._chain
        if chain is None:
            steps: list[Any] = []
            if self.cache is not None:
                steps.append(self.cache)
            if self.uses_dax:
                from dynamodel.io.dax import DaxRouting

                # the DAX client is created by the first call DAX serves: an unreachable
                # cluster never fails the calls DynamoDB serves (consistent reads, tables...)
                steps.append(DaxRouting(self._dax or self.dax_client))
            with self._lock:
                if self._chain is None:
                    self._chain = tuple(steps)
                chain = self._chain
        return chain

    def client(self, control: bool = False) -> Any:
        """The sync client for one request: DynamoDB's for ``control`` (table management)
        calls, else the data client (DynamoDB's, or it behind the `middleware` chain)."""
        base = self._dynamodb_client()
        if control or not self._routed:
            return base
        data = self._data
        if data is None or data[0] is not base:
            from dynamodel.io.middleware import Client

            data = self._data = (base, Client(base, self.middleware()))
        return data[1]

    @property
    def transport(self) -> str:
        """``"boto3"`` or ``"lean"``: how lazily created clients talk to DynamoDB."""
        from dynamodel.io.lean import transport_from_env

        return transport_from_env(self._transport)

    def _dynamodb_client(self) -> Any:
        if self._client is None:
            with self._lock:
                if self._client is None and self.transport == "lean":
                    from dynamodel.io.lean import create_client

                    self._client_owned = True
                    self._client = create_client(
                        self.endpoint_url, self.region, config=_lean_config(self.botocore_config)
                    )
                if self._client is None:
                    import boto3

                    self._client_owned = True
                    self._client = boto3.session.Session().client(
                        "dynamodb",
                        endpoint_url=self.endpoint_url,
                        region_name=self.region,
                        config=_botocore_config(self.botocore_config),
                    )
        return self._client

    async def aclient(self, control: bool = False) -> Any:
        """The async client for one request (see `client`); the async client is created
        (and owned) on first use in the running event loop.

        A client created in an event loop that has since closed is dropped (it cannot be
        closed from another loop); call `aclose` before the loop ends to release it cleanly.
        """
        base = await self._async_dynamodb_client()
        if control or not self._routed:
            return base
        data = self._adata
        if data is None or data[0] is not base:
            from dynamodel.io.middleware import AsyncClient

            data = self._adata = (base, AsyncClient(base, self.middleware()))
        return data[1]

    async def _async_dynamodb_client(self) -> Any:
        if self._aclient is not None:
            return self._aclient
        import asyncio

        loop = asyncio.get_running_loop()
        owned = self._aclient_owned
        if owned is not None and owned[0] is loop:
            return owned[1][1]
        if self.transport == "lean":
            if self._lean_async is None:
                from dynamodel.io.lean import create_async_client

                self._lean_async = create_async_client(
                    self.endpoint_url, self.region, config=_lean_config(self.botocore_config)
                )
            return self._lean_async
        try:
            import aioboto3
        except ImportError as exc:  # pragma: no cover - depends on the environment
            raise ImportError(
                "async operations need aioboto3: pip install 'dynamodel[async]'"
            ) from exc
        manager = aioboto3.Session().client(
            "dynamodb",
            endpoint_url=self.endpoint_url,
            region_name=self.region,
            config=_botocore_config(self.botocore_config),
        )
        client = await manager.__aenter__()
        self._aclient_owned = (loop, (manager, client))
        return client

    async def aclose(self) -> None:
        """Close the async client this connection created (a passed-in one is left open)."""
        owned, self._aclient_owned = self._aclient_owned, None
        lean, self._lean_async = self._lean_async, None
        self._adata = None
        if owned is not None:
            await owned[1][0].__aexit__(None, None, None)
        if lean is not None:
            await lean.aclose()

    def close(self) -> None:
        """Close the sync client's HTTP connections and the DAX client, if this connection
        created them."""
        if self._client_owned and self._client is not None:
            self._client.close()
            self._client = None
            self._client_owned = False
        if self._dax_owned and self._dax is not None:
            self._dax.close()
            self._dax = None
            self._dax_owned = False
        self._data = None
        self._adata = None
        self._chain = None  # a new DAX client, if one is needed again


def _inputs(
    clock: Callable[[], float] | None,
    rng: Any,
    cursor_key: bytes | str | Sequence[bytes | str] | None,
    cursor_max_age: float | None,
) -> Any:
    import random
    import time

    from dynamodel.core.flows import Inputs

    if clock is not None and not callable(clock):
        raise ValidationError(f"Connection clock must be callable, got {clock!r}")
    if rng is not None and not isinstance(rng, random.Random):
        raise ValidationError(f"Connection random must be a random.Random, got {rng!r}")
    # memos (e.g. shard checks) are the connection's own: another endpoint's same-named
    # table is not this one
    keys = None
    if cursor_key is not None or cursor_max_age is not None:  # loaded only when configured
        from dynamodel.core.cursors import CursorKeys

        keys = CursorKeys(cursor_key, cursor_max_age)
    return Inputs(clock or time.time, rng or random.Random(), keys)


def _endpoints(value: str | Sequence[str] | None) -> list[str]:
    if value is None:
        return []
    endpoints = [value] if isinstance(value, str) else list(value)
    for endpoint in endpoints:
        if not isinstance(endpoint, str) or not endpoint:
            raise ValidationError(f"Connection dax_endpoints: invalid endpoint {endpoint!r}")
    return endpoints


_default_connection = Connection()


def default_connection() -> Connection:
    """The connection used by tables that were not bound to one."""
    return _default_connection


def swap_default_connection(connection: Connection) -> Connection:
    """Make ``connection`` the default connection; returns the one it replaces (to put back)."""
    global _default_connection
    if not isinstance(connection, Connection):
        raise ValidationError(f"the default connection must be a Connection, got {connection!r}")
    previous, _default_connection = _default_connection, connection
    return previous


def configure(
    *,
    client: Any = None,
    aclient: Any = None,
    endpoint_url: str | None = None,
    region: str | None = None,
    retry: RetryPolicy | None = None,
    botocore_config: Any = None,
    dax_endpoints: str | Sequence[str] | None = None,
    dax_client: Any = None,
    cache: LocalCache | None = None,
    return_consumed_capacity: CapacityMode | None = None,
    on_capacity: Callable[[CapacityRecord], Any] | None = None,
    transport: str | None = None,
    clock: Callable[[], float] | None = None,
    random: Any = None,
    cursor_key: bytes | str | Sequence[bytes | str] | None = None,
    cursor_max_age: float | None = None,
) -> Connection:
    """Replace the default connection (used by every table not bound to its own).

    Takes the same arguments as `Connection`.
    """
    global _default_connection
    _default_connection = Connection(
        client=client,
        aclient=aclient,
        endpoint_url=endpoint_url,
        region=region,
        retry=retry,
        botocore_config=botocore_config,
        dax_endpoints=dax_endpoints,
        dax_client=dax_client,
        cache=cache,
        return_consumed_capacity=return_consumed_capacity,
        on_capacity=on_capacity,
        transport=transport,
        clock=clock,
        random=random,
        cursor_key=cursor_key,
        cursor_max_age=cursor_max_age,
    )
    return _default_connection
