"""Client factories and the `Connection` that tables use at run time.

A connection holds (or lazily creates) a boto3 low-level client for sync calls and an aioboto3
client for async calls. Endpoint, region and credentials follow boto3's own conventions
(``AWS_ENDPOINT_URL_DYNAMODB``, ``AWS_ENDPOINT_URL``, ``AWS_DEFAULT_REGION``, profiles,
instance roles), so the same code runs on AWS, DynamoDB Local or ``dynamodel local``.

boto3 and aioboto3 are imported only when a client is first needed.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

from .retry import RetryPolicy, default_policy

if TYPE_CHECKING:
    import asyncio

#: botocore retry settings for clients dynamodel creates. botocore's standard mode retries
#: connection errors and throttling with jitter; dynamodel's policy counts those attempts.
BOTOCORE_RETRIES = {"mode": "standard", "total_max_attempts": 3}


def _botocore_config(extra: Any = None) -> Any:
    from botocore.config import Config

    config = Config(retries=BOTOCORE_RETRIES, tcp_keepalive=True)
    return config.merge(extra) if extra is not None else config


class Connection:
    """Where requests go: sync and async DynamoDB clients plus the retry policy.

    Args:
        client: a boto3 low-level DynamoDB client (or anything with its methods) for sync calls.
        aclient: an entered aioboto3 DynamoDB client for async calls.
        endpoint_url: endpoint for clients created lazily (default: boto3's resolution).
        region: region for clients created lazily (default: boto3's resolution).
        retry: the retry policy for this connection's requests.
        botocore_config: a ``botocore.config.Config`` merged into lazily created clients.
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
    ) -> None:
        self._client = client
        self._client_owned = False
        self._aclient = aclient
        self._aclient_owned: tuple[asyncio.AbstractEventLoop, Any] | None = None
        self.endpoint_url = endpoint_url
        self.region = region
        self.retry = retry or default_policy()
        self.botocore_config = botocore_config
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"Connection(endpoint_url={self.endpoint_url!r}, region={self.region!r})"

    def client(self, control: bool = False) -> Any:
        """The sync client, created on first use."""
        if self._client is None:
            with self._lock:
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
        """The async client; created (and owned) on first use in the running event loop.

        A client created in an event loop that has since closed is dropped (it cannot be
        closed from another loop); call `aclose` before the loop ends to release it cleanly.
        """
        if self._aclient is not None:
            return self._aclient
        import asyncio

        loop = asyncio.get_running_loop()
        owned = self._aclient_owned
        if owned is not None and owned[0] is loop:
            return owned[1][1]
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
        if owned is not None:
            await owned[1][0].__aexit__(None, None, None)

    def close(self) -> None:
        """Close the sync client's HTTP connections if this connection created it."""
        if self._client_owned and self._client is not None:
            self._client.close()
            self._client = None
            self._client_owned = False


_default_connection = Connection()


def default_connection() -> Connection:
    """The connection used by tables that were not bound to one."""
    return _default_connection


def configure(
    *,
    client: Any = None,
    aclient: Any = None,
    endpoint_url: str | None = None,
    region: str | None = None,
    retry: RetryPolicy | None = None,
    botocore_config: Any = None,
) -> Connection:
    """Replace the default connection (used by every table not bound to its own)."""
    global _default_connection
    _default_connection = Connection(
        client=client,
        aclient=aclient,
        endpoint_url=endpoint_url,
        region=region,
        retry=retry,
        botocore_config=botocore_config,
    )
    return _default_connection
