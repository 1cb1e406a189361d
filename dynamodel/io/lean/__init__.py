"""The lean transport: DynamoDB clients with boto3's interface and a fraction of its CPU cost.

dynamodel already produces DynamoDB's JSON (AttributeValue maps), so most of botocore's
per-call work (shape-model serialisation, validation, event hooks, parsing) is redundant for
it. `LeanClient` and `AsyncLeanClient` send the ten data-plane operations themselves: one
``json.dumps``, a SigV4 signature (hashlib/hmac, with botocore's credentials), a keep-alive
HTTP/1.1 exchange, one ``json.loads``. Table management goes through a botocore client.

It is the default transport of the clients a `Connection` creates; ``transport="boto3"`` or
``DYNAMODEL_TRANSPORT=boto3`` switches to boto3/aioboto3 clients. The clients can also be
created and passed in::

    from dynamodel import Connection
    from dynamodel.io.lean import create_async_client, create_client

    table.bind(connection=Connection(client=create_client(), aclient=create_async_client()))

`transport_from_env` reads the ``DYNAMODEL_TRANSPORT`` switch (``lean`` or ``boto3``).
Importing this package imports neither botocore nor anything else heavy; the clients do.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any, Literal

from dynamodel.io.lean.spec import DATA_OPERATIONS

if TYPE_CHECKING:
    from dynamodel.io.lean.aio import AsyncLeanClient
    from dynamodel.io.lean.client import LeanClient

__all__ = [
    "DATA_OPERATIONS",
    "DEFAULT_TRANSPORT",
    "TRANSPORTS",
    "TRANSPORT_ENV",
    "AsyncLeanClient",
    "LeanClient",
    "create_async_client",
    "create_client",
    "transport_from_env",
]

#: the environment variable that selects the transport of connections that do not say
TRANSPORT_ENV = "DYNAMODEL_TRANSPORT"
#: the transports a connection can use
TRANSPORTS = ("boto3", "lean")

Transport = Literal["boto3", "lean"]
#: the transport of connections that neither say nor find ``DYNAMODEL_TRANSPORT`` set
DEFAULT_TRANSPORT: Transport = "lean"


def transport_from_env(value: str | None = None) -> Transport:
    """The transport named by ``value`` or ``$DYNAMODEL_TRANSPORT`` (default ``lean``).

    Raises ValueError naming the accepted values for anything else.
    """
    raw = value if value is not None else os.environ.get(TRANSPORT_ENV, "")
    name = raw.strip().lower() or DEFAULT_TRANSPORT
    if name == "boto3":
        return "boto3"
    if name == "lean":
        return "lean"
    source = "transport" if value is not None else TRANSPORT_ENV
    raise ValueError(f"{source}={raw!r}: choose one of {', '.join(TRANSPORTS)}")


def create_client(
    endpoint_url: str | None = None, region: str | None = None, **kwargs: Any
) -> LeanClient:
    """A `LeanClient` (endpoint and region default to boto3's resolution).

    ``kwargs`` go to `LeanClient` (credentials, ``config``, ``verify``...).
    """
    from dynamodel.io.lean.client import LeanClient

    return LeanClient(endpoint_url=endpoint_url, region_name=region, **kwargs)


def create_async_client(
    endpoint_url: str | None = None, region: str | None = None, **kwargs: Any
) -> AsyncLeanClient:
    """An `AsyncLeanClient` (ready to use; close it with ``await client.aclose()``)."""
    from dynamodel.io.lean.aio import AsyncLeanClient

    return AsyncLeanClient(endpoint_url=endpoint_url, region_name=region, **kwargs)


def __getattr__(name: str) -> Any:
    if name == "LeanClient":
        from dynamodel.io.lean.client import LeanClient

        return LeanClient
    if name == "AsyncLeanClient":
        from dynamodel.io.lean.aio import AsyncLeanClient

        return AsyncLeanClient
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
