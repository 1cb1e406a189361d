"""Keep-alive HTTP/1.1 connections over blocking sockets, shared by threads.

Each exchange takes an idle connection (the most recently used) or opens one, sends the
request bytes and reads the response with `dynamodel.io.lean.http11.ResponseParser`. A connection
goes back to the pool when the response allows keep-alive and fewer than ``max_idle`` wait
there; otherwise it is closed. A reused connection that fails before any byte of a response
arrives (the server closed it while idle) is replaced once, transparently.
"""

from __future__ import annotations

import contextlib
import select
import socket
import ssl
import time

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

RECV = 65536
IDLE_CHECK = 0.5  # seconds idle after which a pooled connection is checked before reuse


def _readable(sock: socket.socket) -> bool:
    if hasattr(select, "poll"):
        poller = select.poll()
        poller.register(sock, select.POLLIN)
        return bool(poller.poll(0))
    return bool(select.select([sock], [], [], 0)[0])


def _dropped(sock: socket.socket) -> bool:
    """Whether an idle connection was closed by the peer (or received bytes nobody asked for).

    A TLS connection can also be readable because of protocol records (TLS 1.3 session
    tickets); a non-blocking read tells those (no application data) from a close.
    """
    timeout = sock.gettimeout()
    try:
        if not _readable(sock):
            return False
        if not isinstance(sock, ssl.SSLSocket):
            return True
        sock.setblocking(False)
        try:
            sock.recv(1)
        except (ssl.SSLWantReadError, ssl.SSLWantWriteError, BlockingIOError):
            return False
        return True  # end of stream, or application data nobody asked for
    except (OSError, ValueError):
        return True
    finally:
        with contextlib.suppress(OSError):
            sock.settimeout(timeout)


class SyncPool:
    """The connections of one endpoint (thread-safe)."""

    def __init__(self, target: Target) -> None:
        self.target = target
        self._idle: list[tuple[socket.socket, float]] = []
        self._closed = False

    def exchange(self, data: bytes) -> Response:
        """Send one request (head and body) and return its complete response."""
        sock, reused = self._checkout()
        try:
            return self._exchange(sock, data, reused)
        except ConnectionLost as exc:
            if not exc.stale:
                raise
        return self._exchange(self._connect(), data, False)

    def close(self) -> None:
        """Close the idle connections; connections in use close when they come back."""
        self._closed = True
        while self._idle:
            try:
                sock, _ = self._idle.pop()
            except IndexError:
                break
            sock.close()

    @property
    def idle(self) -> int:
        """How many connections wait in the pool."""
        return len(self._idle)

    # -- internals ----------------------------------------------------------------------------

    def _checkout(self) -> tuple[socket.socket, bool]:
        idle = self._idle
        while idle:
            try:
                sock, since = idle.pop()
            except IndexError:
                break
            if time.monotonic() - since > IDLE_CHECK and _dropped(sock):
                sock.close()
                continue
            return sock, True
        return self._connect(), False

    def _checkin(self, sock: socket.socket) -> None:
        if self._closed or len(self._idle) >= self.target.max_idle:
            sock.close()
        else:
            self._idle.append((sock, time.monotonic()))

    def _exchange(self, sock: socket.socket, data: bytes, reused: bool) -> Response:
        parser = ResponseParser()
        try:
            sock.sendall(data)
            recv = sock.recv
            while True:
                chunk = recv(RECV)
                if not chunk:
                    response = parser.feed_eof()
                    break
                if parser.feed(chunk):
                    assert parser.response is not None
                    response = parser.response
                    break
        except TimeoutError:
            sock.close()
            raise ReadTimeout(
                f"no response within {self.target.read_timeout:g}s from {self.target.authority}"
            ) from None
        except IncompleteResponse as exc:
            sock.close()
            raise ConnectionLost(str(exc), stale=reused and not parser.received) from None
        except ProtocolError:
            sock.close()
            raise
        except OSError as exc:
            sock.close()
            raise ConnectionLost(
                f"connection to {self.target.authority} broke: {exc}",
                stale=reused and not parser.received,
            ) from exc
        if response.keep_alive and not parser.extra:
            self._checkin(sock)
        else:
            sock.close()
        return response

    def _connect(self) -> socket.socket:
        target = self.target
        proxy = target.proxy
        address = (proxy.host, proxy.port) if proxy is not None else (target.host, target.port)
        try:
            sock = socket.create_connection(address, timeout=target.connect_timeout)
        except TimeoutError:
            raise ConnectTimeout(
                f"connecting to {address[0]}:{address[1]} took over {target.connect_timeout:g}s"
            ) from None
        except OSError as exc:
            if proxy is not None:
                raise ProxyFailed(f"cannot connect to proxy {proxy.url}: {exc}") from exc
            raise ConnectFailed(f"cannot connect to {target.authority}: {exc}") from exc
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
            if target.tunnel:
                self._tunnel(sock)
            if target.ssl_context is not None:
                sock = target.ssl_context.wrap_socket(sock, server_hostname=target.host)
            sock.settimeout(target.read_timeout)
        except TimeoutError:
            sock.close()
            raise ConnectTimeout(
                f"connecting to {target.authority} took over {target.connect_timeout:g}s"
            ) from None
        except ssl.SSLError as exc:
            sock.close()
            raise TLSFailed(f"TLS with {target.authority} failed: {exc}") from exc
        except ProxyFailed:
            sock.close()
            raise
        except (OSError, ProtocolError) as exc:
            sock.close()
            raise ConnectFailed(f"cannot connect to {target.authority}: {exc}") from exc
        return sock

    def _tunnel(self, sock: socket.socket) -> None:
        target = self.target
        assert target.proxy is not None
        sock.sendall(connect_head(target.authority, target.proxy.authorization))
        parser = ResponseParser(head_only=True)
        while True:
            chunk = sock.recv(RECV)
            if not chunk:
                raise ProxyFailed(f"proxy {target.proxy.url} closed the connection on CONNECT")
            if parser.feed(chunk):
                break
        response = parser.response
        assert response is not None
        if not 200 <= response.status < 300 or parser.extra:
            raise ProxyFailed(
                f"proxy {target.proxy.url} refused CONNECT {target.authority}: "
                f"{response.status} {response.reason}"
            )
