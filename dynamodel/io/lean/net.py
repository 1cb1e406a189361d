"""Where the connection pools connect, and the transport errors they raise.

The pools raise these errors; the clients turn them into botocore's exceptions
(``EndpointConnectionError``, ``ConnectTimeoutError``, ``ReadTimeoutError``,
``ConnectionClosedError``, ``SSLError``, ``ProxyConnectionError``) so callers see what boto3 raises.
"""

from __future__ import annotations

import base64
import ssl
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit


class TransportError(Exception):
    """A request could not be exchanged with the endpoint."""


class ConnectFailed(TransportError):
    """No connection could be made (DNS, refused, unreachable)."""


class ConnectTimeout(TransportError):
    """Connecting (TCP or TLS handshake) took longer than the connect timeout."""


class ReadTimeout(TransportError):
    """The response did not arrive within the read timeout."""


class ConnectionLost(TransportError):
    """The connection broke during the exchange.

    ``stale`` is True when a reused idle connection failed before any byte of a response
    arrived: the server had closed it, so the request can be resent on a new connection.
    """

    def __init__(self, message: str, *, stale: bool = False) -> None:
        super().__init__(message)
        self.stale = stale


class TLSFailed(TransportError):
    """The TLS handshake failed (certificate, protocol)."""


class ProxyFailed(TransportError):
    """The proxy refused or failed to open a tunnel."""


@dataclass(frozen=True, slots=True)
class Proxy:
    """An HTTP proxy (``http://[user:password@]host:port``)."""

    url: str
    host: str
    port: int
    authorization: str | None

    @classmethod
    def parse(cls, url: str) -> Proxy:
        parts = urlsplit(url if "://" in url else f"http://{url}")
        if parts.scheme != "http":
            raise ValueError(
                f"proxy {url!r}: the lean transport supports http:// proxies only "
                "(use the boto3 transport for others)"
            )
        if not parts.hostname:
            raise ValueError(f"proxy {url!r} has no host")
        authorization = None
        if parts.username is not None:
            user = f"{unquote(parts.username)}:{unquote(parts.password or '')}"
            authorization = "Basic " + base64.b64encode(user.encode()).decode("ascii")
        return cls(url, parts.hostname, parts.port or 80, authorization)


@dataclass(frozen=True, slots=True)
class Target:
    """The endpoint's host and port, TLS context, proxy and timeouts."""

    host: str
    port: int
    ssl_context: ssl.SSLContext | None
    proxy: Proxy | None
    connect_timeout: float
    read_timeout: float
    max_idle: int  # idle connections kept per pool

    @property
    def authority(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"

    @property
    def tunnel(self) -> bool:
        """Whether connections go through a proxy ``CONNECT`` tunnel (TLS via a proxy)."""
        return self.proxy is not None and self.ssl_context is not None
