"""Keep-alive HTTP/1.1 connections as asyncio protocols, for one event loop.

The same exchange as `dynamodel.io.lean.sync_pool`, driven by asyncio callbacks: bytes are fed to
`dynamodel.io.lean.http11.ResponseParser` as they arrive and the waiting task resumes when the
response is complete. A connection the server closes while idle is noticed by its protocol and
not reused. Cancelling a request closes its connection (its response would arrive later).
"""

from __future__ import annotations

import asyncio
import socket
import ssl
from typing import cast

from dynamodel.io.lean.http11 import (
    IncompleteResponse,
    ProtocolError,
    Response,
    ResponseParser,
    connect_head,
)
from dynamodel.io.lean.net import (
    ConnectFailed,
    ConnectionLost,
    ConnectTimeout,
    ProxyFailed,
    ReadTimeout,
    Target,
    TLSFailed,
)


class _Channel(asyncio.Protocol):
    """One connection: feeds incoming bytes to the parser of the request in flight."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.parser: ResponseParser | None = None
        self.waiter: asyncio.Future[None] | None = None
        self.reused = False
        self.closed = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        parser, waiter = self.parser, self.waiter
        if parser is None or waiter is None or waiter.done():
            self.close()  # bytes nobody asked for: the connection cannot be trusted
            return
        try:
            if parser.feed(data):
                waiter.set_result(None)
        except ProtocolError as exc:
            waiter.set_exception(exc)

    def eof_received(self) -> bool:
        self._ended(None)
        return False  # close the transport

    def connection_lost(self, exc: Exception | None) -> None:
        self._ended(exc)

    def _ended(self, exc: Exception | None) -> None:
        self.closed = True
        parser, waiter = self.parser, self.waiter
        if parser is None or waiter is None or waiter.done():
            return
        try:
            parser.feed_eof()
        except IncompleteResponse as error:
            text = f"{error}: {exc}" if exc is not None else str(error)
            waiter.set_exception(ConnectionLost(text, stale=self.reused and not parser.received))
        else:
            waiter.set_result(None)

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()

    def abort(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.abort()


def _expire(waiter: asyncio.Future[None], seconds: float, authority: str) -> None:
    if not waiter.done():
        waiter.set_exception(ReadTimeout(f"no response within {seconds:g}s from {authority}"))


class AsyncPool:
    """The connections of one endpoint in one event loop."""

    def __init__(self, target: Target, loop: asyncio.AbstractEventLoop) -> None:
        self.target = target
        self.loop = loop
        self._idle: list[_Channel] = []
        self._closed = False

    async def exchange(self, data: bytes) -> Response:
        """Send one request (head and body) and return its complete response."""
        channel, reused = await self._checkout()
        try:
            return await self._exchange(channel, data, reused)
        except ConnectionLost as exc:
            if not exc.stale:
                raise
        return await self._exchange(await self._connect(), data, False)

    async def aclose(self) -> None:
        """Close the idle connections; connections in use close when they come back."""
        self._closed = True
        idle, self._idle = self._idle, []
        for channel in idle:
            channel.close()
        if idle:
            await asyncio.sleep(0)  # let the transports finish closing

    @property
    def idle(self) -> int:
        """How many connections wait in the pool."""
        return len(self._idle)

    # -- internals ----------------------------------------------------------------------------

    async def _checkout(self) -> tuple[_Channel, bool]:
        idle = self._idle
        while idle:
            channel = idle.pop()
            if not channel.closed:
                return channel, True
        return await self._connect(), False

    async def _exchange(self, channel: _Channel, data: bytes, reused: bool) -> Response:
        transport = channel.transport
        assert transport is not None
        parser = ResponseParser()
        waiter: asyncio.Future[None] = self.loop.create_future()
        channel.parser, channel.waiter, channel.reused = parser, waiter, reused
        target = self.target
        timer = self.loop.call_later(
            target.read_timeout, _expire, waiter, target.read_timeout, target.authority
        )
        try:
            transport.write(data)
            await waiter
        except BaseException:
            channel.abort()
            raise
        finally:
            timer.cancel()
            channel.parser = channel.waiter = None
        response = parser.response
        assert response is not None
        if (
            response.keep_alive
            and not parser.extra
            and not channel.closed
            and not self._closed
            and len(self._idle) < target.max_idle
        ):
            self._idle.append(channel)
        else:
            channel.close()
        return response

    async def _connect(self) -> _Channel:
        target = self.target
        proxy = target.proxy
        host, port = (proxy.host, proxy.port) if proxy is not None else (target.host, target.port)
        direct_tls = target.ssl_context if proxy is None else None
        channel: _Channel | None = None
        try:
            async with asyncio.timeout(target.connect_timeout):
                try:
                    _, channel = await self.loop.create_connection(
                        _Channel,
                        host,
                        port,
                        ssl=direct_tls,
                        server_hostname=target.host if direct_tls is not None else None,
                    )
                except (ssl.SSLError, TimeoutError):
                    raise
                except OSError as exc:
                    if proxy is not None:
                        raise ProxyFailed(f"cannot connect to proxy {proxy.url}: {exc}") from exc
                    raise ConnectFailed(f"cannot connect to {target.authority}: {exc}") from exc
                sock = channel.transport.get_extra_info("socket") if channel.transport else None
                if sock is not None:
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
                if target.tunnel:
                    await self._tunnel(channel)
        except TimeoutError:
            if channel is not None:
                channel.abort()
            raise ConnectTimeout(
                f"connecting to {host}:{port} took over {target.connect_timeout:g}s"
            ) from None
        except ssl.SSLError as exc:
            if channel is not None:
                channel.abort()
            raise TLSFailed(f"TLS with {target.authority} failed: {exc}") from exc
        except (ProxyFailed, ConnectFailed):
            if channel is not None:
                channel.abort()
            raise
        except (OSError, ProtocolError, ConnectionLost) as exc:
            if channel is not None:
                channel.abort()
            raise ConnectFailed(f"cannot connect to {target.authority}: {exc}") from exc
        return channel

    async def _tunnel(self, channel: _Channel) -> None:
        target = self.target
        assert target.proxy is not None and target.ssl_context is not None
        assert channel.transport is not None
        parser = ResponseParser(head_only=True)
        waiter: asyncio.Future[None] = self.loop.create_future()
        channel.parser, channel.waiter = parser, waiter
        channel.transport.write(connect_head(target.authority, target.proxy.authorization))
        try:
            await waiter
        except ConnectionLost:
            raise ProxyFailed(
                f"proxy {target.proxy.url} closed the connection on CONNECT"
            ) from None
        finally:
            channel.parser = channel.waiter = None
        response = parser.response
        assert response is not None
        if not 200 <= response.status < 300 or parser.extra:
            raise ProxyFailed(
                f"proxy {target.proxy.url} refused CONNECT {target.authority}: "
                f"{response.status} {response.reason}"
            )
        transport = await self.loop.start_tls(
            channel.transport, channel, target.ssl_context, server_hostname=target.host
        )
        if transport is None:
            raise ProxyFailed(f"TLS through proxy {target.proxy.url} could not start")
        channel.transport = transport
