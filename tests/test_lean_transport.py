"""The lean clients' HTTP behaviour against a scripted local server: keep-alive reuse, stale
connections, chunked bodies, resends after connection failures (and none after error
responses), timeouts, damaged bodies, TLS and proxies, each through the sync and async client."""

from __future__ import annotations

import asyncio
import contextlib
import json
import shutil
import socket
import ssl
import subprocess
import threading
import time
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from botocore.config import Config
from botocore.exceptions import (
    ChecksumError,
    ClientError,
    ConnectionClosedError,
    EndpointConnectionError,
    ProxyConnectionError,
    ReadTimeoutError,
    SSLError,
)

from dynamodel.io.lean import AsyncLeanClient, LeanClient, create_async_client, create_client

KEY = {"TableName": "t", "Key": {"pk": {"S": "a"}}}
ITEM = {"Item": {"pk": {"S": "a"}, "b": {"B": "AAE="}}}


@dataclass
class Request:
    connection: int
    line: str
    headers: dict[str, str]
    body: bytes


# a handler returns the response bytes, None (close without answering) or a callable
# (given the socket: do anything)
Handler = Callable[[Request, int], "bytes | Callable[[socket.socket], None] | None"]


def reply(
    status: int = 200,
    body: bytes | dict[str, Any] = b"{}",
    *,
    headers: dict[str, str] | None = None,
    crc: bool = True,
) -> bytes:
    raw = json.dumps(body).encode() if isinstance(body, dict) else body
    lines = [f"HTTP/1.1 {status} Whatever", f"Content-Length: {len(raw)}"]
    if crc:
        lines.append(f"x-amz-crc32: {zlib.crc32(raw)}")
    lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + raw


@dataclass
class Server:
    """A threaded HTTP/1.1 server answering each request with ``handler(request, index)``."""

    handler: Handler
    tls: ssl.SSLContext | None = None
    tunnel_tls: ssl.SSLContext | None = None  # answer CONNECT, then speak TLS
    requests: list[Request] = field(default_factory=list)
    connections: int = 0

    def __post_init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self._stop = False
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.port}"

    def _accept(self) -> None:
        while not self._stop:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            if self._stop:  # the wake-up connection of `close`
                conn.close()
                return
            self.connections += 1
            number = self.connections
            threading.Thread(target=self._serve, args=(conn, number), daemon=True).start()

    def _serve(self, conn: socket.socket, number: int) -> None:
        try:
            if self.tls is not None:
                conn = self.tls.wrap_socket(conn, server_side=True)
            buffer = b""
            while True:
                while b"\r\n\r\n" not in buffer:
                    data = conn.recv(65536)
                    if not data:
                        return
                    buffer += data
                head, _, buffer = buffer.partition(b"\r\n\r\n")
                lines = head.decode().split("\r\n")
                headers = {k.lower(): v for k, v in (x.split(": ", 1) for x in lines[1:])}
                length = int(headers.get("content-length", "0"))
                while len(buffer) < length:
                    buffer += conn.recv(65536)
                body, buffer = buffer[:length], buffer[length:]
                if lines[0].startswith("CONNECT ") and self.tunnel_tls is not None:
                    self.requests.append(Request(number, lines[0], headers, body))
                    conn.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
                    conn = self.tunnel_tls.wrap_socket(conn, server_side=True)
                    continue
                request = Request(number, lines[0], headers, body)
                self.requests.append(request)
                answer = self.handler(request, len(self.requests) - 1)
                if answer is None:
                    return
                if callable(answer):
                    answer(conn)
                    return
                conn.sendall(answer)
        except OSError:
            return
        finally:
            conn.close()

    def close(self) -> None:
        # Stop the accept thread before closing its socket: a thread still in accept() when
        # the descriptor is closed (and reused by the next test's server) can accept that
        # server's connections and answer them with this server's handler.
        self._stop = True
        with contextlib.suppress(OSError):
            socket.create_connection(("127.0.0.1", self.port), timeout=5).close()
        self._thread.join(timeout=30)
        assert not self._thread.is_alive(), "the server's accept thread did not stop"
        self.sock.close()


@pytest.fixture
def serve() -> Iterator[Callable[..., Server]]:
    servers: list[Server] = []

    def start(handler: Handler, **kwargs: Any) -> Server:
        server = Server(handler, **kwargs)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.close()


CREDENTIALS = {"aws_access_key_id": "k", "aws_secret_access_key": "s", "region": "us-east-1"}


class Sync:
    """Calls through a LeanClient."""

    name = "sync"

    def make(self, url: str, **kwargs: Any) -> LeanClient:
        return create_client(url, **{**CREDENTIALS, **kwargs})

    async def call(self, client: Any, method: str = "get_item", **params: Any) -> Any:
        return getattr(client, method)(**(params or KEY))

    async def close(self, client: Any) -> None:
        client.close()


class Async(Sync):
    """Calls through an AsyncLeanClient."""

    name = "async"

    def make(self, url: str, **kwargs: Any) -> AsyncLeanClient:  # type: ignore[override]
        return create_async_client(url, **{**CREDENTIALS, **kwargs})

    async def call(self, client: Any, method: str = "get_item", **params: Any) -> Any:
        return await getattr(client, method)(**(params or KEY))

    async def close(self, client: Any) -> None:
        await client.aclose()


@pytest.fixture(params=[Sync(), Async()], ids=["sync", "async"])
def api(request: pytest.FixtureRequest) -> Sync:
    return request.param  # type: ignore[no-any-return]


def fast(attempts: int = 3, read_timeout: float = 5) -> Config:
    return Config(
        retries={"mode": "standard", "total_max_attempts": attempts},
        connect_timeout=2,
        read_timeout=read_timeout,
    )


async def test_keep_alive_connections_are_reused(api: Sync, serve: Callable[..., Server]) -> None:
    server = serve(lambda r, i: reply(body=ITEM))
    client = api.make(server.url)
    for _ in range(5):
        response = await api.call(client)
        assert response["Item"] == {"pk": {"S": "a"}, "b": {"B": b"\x00\x01"}}
        assert response["ResponseMetadata"]["RetryAttempts"] == 0
    assert server.connections == 1 and len(server.requests) == 5
    request = server.requests[0]
    assert request.line == "POST / HTTP/1.1"
    assert request.headers["x-amz-target"] == "DynamoDB_20120810.GetItem"
    assert request.headers["authorization"].startswith("AWS4-HMAC-SHA256 Credential=k/")
    assert request.headers["host"] == f"127.0.0.1:{server.port}"
    assert json.loads(request.body) == KEY
    await api.close(client)


async def test_connection_close_opens_a_new_connection(
    api: Sync, serve: Callable[..., Server]
) -> None:
    server = serve(lambda r, i: reply(headers={"Connection": "close"}))
    client = api.make(server.url)
    for _ in range(3):
        await api.call(client)
    assert server.connections == 3
    await api.close(client)


@pytest.mark.parametrize("pause", [0.0, 0.7], ids=["at-once", "after-idle-check"])
async def test_a_connection_closed_by_the_server_while_idle_is_replaced(
    api: Sync, serve: Callable[..., Server], pause: float
) -> None:
    def answer_then_close(request: Request, index: int) -> Callable[[socket.socket], None]:
        return lambda conn: conn.sendall(reply(body={"Count": index}))

    server = serve(answer_then_close)
    client = api.make(server.url, config=fast(attempts=1))
    for index in range(3):
        response = await api.call(client, "query", TableName="t")
        assert response["Count"] == index
        assert response["ResponseMetadata"]["RetryAttempts"] == 0  # not a resend: nothing sent
        time.sleep(pause) if api.name == "sync" else await asyncio.sleep(pause)
    assert len(server.requests) == 3 and server.connections == 3
    await api.close(client)


async def test_chunked_responses(api: Sync, serve: Callable[..., Server]) -> None:
    body = json.dumps({"Items": [{"n": {"N": str(i)}} for i in range(50)], "Count": 50}).encode()
    chunks = b"".join(
        b"%x\r\n%s\r\n" % (len(body[i : i + 7]), body[i : i + 7]) for i in range(0, len(body), 7)
    )
    raw = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + chunks + b"0\r\n\r\n"
    server = serve(lambda r, i: raw)
    client = api.make(server.url)
    for _ in range(2):
        response = await api.call(client, "scan", TableName="t")
        assert response["Count"] == 50 and response["Items"][49] == {"n": {"N": "49"}}
    assert server.connections == 1
    await api.close(client)


async def test_error_responses_are_raised_and_not_resent(
    api: Sync, serve: Callable[..., Server]
) -> None:
    throttled = {"__type": "x#ProvisionedThroughputExceededException", "message": "slow down"}
    server = serve(
        lambda r, i: reply(400, throttled) if i == 0 else reply(503, b"<html>busy</html>")
    )
    client = api.make(server.url)
    with pytest.raises(client.exceptions.ProvisionedThroughputExceededException) as info:
        await api.call(client)
    assert info.value.response["ResponseMetadata"]["RetryAttempts"] == 0
    with pytest.raises(ClientError) as info:
        await api.call(client)
    assert info.value.response["Error"] == {"Code": "503", "Message": "Service Unavailable"}
    assert len(server.requests) == 2  # dynamodel's retry policy decides, not the client
    await api.close(client)


async def test_a_refused_connection_is_retried_then_raised(
    api: Sync, monkeypatch: pytest.MonkeyPatch
) -> None:
    from dynamodel.io.lean.async_pool import AsyncPool
    from dynamodel.io.lean.sync_pool import SyncPool

    attempts = []
    pool_class: Any = SyncPool if api.name == "sync" else AsyncPool
    connect = pool_class._connect

    def counted(self: Any) -> Any:
        attempts.append(1)
        return connect(self)

    monkeypatch.setattr(pool_class, "_connect", counted)
    with socket.create_server(("127.0.0.1", 0)) as sock:
        port = sock.getsockname()[1]
    client = api.make(f"http://127.0.0.1:{port}", config=fast(attempts=3))
    started = time.monotonic()
    with pytest.raises(EndpointConnectionError) as info:
        await api.call(client)
    assert f"127.0.0.1:{port}" in str(info.value)
    assert len(attempts) == 3 and time.monotonic() - started < 3
    await api.close(client)


async def test_a_broken_response_is_resent(api: Sync, serve: Callable[..., Server]) -> None:
    def first_breaks(request: Request, index: int) -> Any:
        if index == 0:
            return lambda conn: conn.sendall(reply(body=ITEM)[:30])  # then close
        return reply(body=ITEM)

    server = serve(first_breaks)
    client = api.make(server.url, config=fast(attempts=2))
    response = await api.call(client)
    assert response["ResponseMetadata"]["RetryAttempts"] == 1
    assert len(server.requests) == 2
    server2 = serve(lambda r, i: lambda conn: conn.sendall(b"HTTP/1.1 200 OK\r\n"))
    client2 = api.make(server2.url, config=fast(attempts=2))
    with pytest.raises(ConnectionClosedError):
        await api.call(client2)
    assert len(server2.requests) == 2
    await api.close(client)
    await api.close(client2)


async def test_a_damaged_body_is_resent_then_raised(
    api: Sync, serve: Callable[..., Server]
) -> None:
    bad = reply(body=ITEM, headers={"x-amz-crc32": "12345"}, crc=False)
    server = serve(lambda r, i: bad if i == 0 else reply(body=ITEM))
    client = api.make(server.url)
    response = await api.call(client)
    assert response["ResponseMetadata"]["RetryAttempts"] == 1
    always_bad = serve(lambda r, i: bad)
    client2 = api.make(always_bad.url, config=fast(attempts=3))
    with pytest.raises(ChecksumError):
        await api.call(client2)
    assert len(always_bad.requests) == 3
    await api.close(client)
    await api.close(client2)


async def test_read_timeout(api: Sync, serve: Callable[..., Server]) -> None:
    release = threading.Event()
    server = serve(lambda r, i: lambda conn: release.wait(5))
    client = api.make(server.url, config=fast(attempts=1, read_timeout=0.3))
    started = time.monotonic()
    with pytest.raises(ReadTimeoutError):
        await api.call(client)
    assert 0.25 < time.monotonic() - started < 3
    release.set()
    await api.close(client)


async def test_a_cancelled_request_does_not_poison_the_pool(serve: Callable[..., Server]) -> None:
    loop = asyncio.get_running_loop()
    arrived = asyncio.Event()  # the first request reached the server, which holds its answer
    release = threading.Event()  # ... until the test lets it go (after the cancel)

    def hold_first(request: Request, index: int) -> Any:
        if index == 0:
            loop.call_soon_threadsafe(arrived.set)
            return lambda conn: (release.wait(60), conn.sendall(reply(body={"Count": 99})))
        return reply(body={"Count": index})

    server = serve(hold_first)
    client = create_async_client(server.url, **CREDENTIALS)
    try:
        task = asyncio.create_task(client.query(TableName="t"))
        await asyncio.wait_for(arrived.wait(), 30)
        assert not task.done()  # sent, waiting for the answer the server holds
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    finally:
        release.set()  # the late answer goes to the connection the cancel closed
    response = await client.query(TableName="t")
    assert response["Count"] == 1  # not the late answer to the cancelled request
    assert len(server.requests) == 2 and server.connections == 2
    await client.aclose()


async def test_concurrent_tasks_share_the_pool_up_to_its_size(
    serve: Callable[..., Server],
) -> None:
    server = serve(lambda r, i: reply(body={"Count": i}))
    client = create_async_client(server.url, config=Config(max_pool_connections=3), **CREDENTIALS)
    responses = await asyncio.gather(*(client.query(TableName="t") for _ in range(40)))
    assert sorted(r["Count"] for r in responses) == list(range(40))
    pool = client._pool()
    assert 1 <= pool.idle <= 3 and server.connections >= pool.idle
    await client.aclose()
    assert pool.idle == 0


def test_one_async_client_serves_several_event_loops(serve: Callable[..., Server]) -> None:
    server = serve(lambda r, i: reply(body={"Count": i}))
    client = create_async_client(server.url, **CREDENTIALS)

    async def twice() -> list[int]:
        counts = [(await client.query(TableName="t"))["Count"] for _ in range(2)]
        await client.aclose()
        return counts

    assert asyncio.run(twice()) == [0, 1]
    assert asyncio.run(twice()) == [2, 3]
    assert server.connections == 2  # one per loop, each reused within its loop


def test_threads_share_the_pool_up_to_its_size(serve: Callable[..., Server]) -> None:
    server = serve(lambda r, i: reply(body={"Count": i}))
    client = create_client(server.url, config=Config(max_pool_connections=2), **CREDENTIALS)
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(8) as pool:
        counts = list(pool.map(lambda _: client.query(TableName="t")["Count"], range(200)))
    assert sorted(counts) == list(range(200))
    assert client._pool.idle <= 2
    client.close()
    assert client._pool.idle == 0


# -- TLS and proxies ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    if shutil.which("openssl") is None:
        pytest.skip("openssl is needed to make a test certificate")
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
            "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
            "-keyout", str(key), "-out", str(cert),
        ],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return cert, key


def server_context(certificate: tuple[Path, Path]) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(*certificate)
    return context


async def test_tls(api: Sync, serve: Callable[..., Server], certificate: tuple[Path, Path]) -> None:
    server = serve(lambda r, i: reply(body=ITEM), tls=server_context(certificate))
    client = api.make(server.url, verify=str(certificate[0]))
    for pause in (0, 0, 0.7):  # after 0.7 s idle the pooled connection is checked first
        time.sleep(pause) if api.name == "sync" else await asyncio.sleep(pause)
        assert (await api.call(client))["Item"]["b"] == {"B": b"\x00\x01"}
    assert server.connections == 1  # TLS 1.3 session tickets are not mistaken for a close
    assert server.requests[0].headers["host"] == f"127.0.0.1:{server.port}"
    untrusting = api.make(server.url, config=fast(attempts=1))
    with pytest.raises(SSLError):
        await api.call(untrusting)
    unverified = api.make(server.url, verify=False)
    assert (await api.call(unverified))["Item"]["pk"] == {"S": "a"}
    for c in (client, untrusting, unverified):
        await api.close(c)


async def test_plain_http_through_a_proxy(api: Sync, serve: Callable[..., Server]) -> None:
    proxy = serve(lambda r, i: reply(body=ITEM))
    proxy_url = f"http://user:pw@127.0.0.1:{proxy.port}"
    client = api.make("http://db.internal:8000", config=Config(proxies={"http": proxy_url}))
    await api.call(client)
    await api.call(client)
    request = proxy.requests[0]
    assert request.line == "POST http://db.internal:8000/ HTTP/1.1"
    assert request.headers["host"] == "db.internal:8000"
    assert request.headers["proxy-authorization"] == "Basic dXNlcjpwdw=="
    assert proxy.connections == 1
    await api.close(client)


async def test_tls_through_a_proxy_tunnel(
    api: Sync, serve: Callable[..., Server], certificate: tuple[Path, Path]
) -> None:
    proxy = serve(lambda r, i: reply(body=ITEM), tunnel_tls=server_context(certificate))
    proxies = {"https": f"http://u:p@127.0.0.1:{proxy.port}"}
    client = api.make(
        "https://127.0.0.1:9", config=Config(proxies=proxies), verify=str(certificate[0])
    )
    assert (await api.call(client))["Item"]["b"] == {"B": b"\x00\x01"}
    assert (await api.call(client))["Item"]["b"] == {"B": b"\x00\x01"}
    connect, first, _second = proxy.requests
    assert connect.line == "CONNECT 127.0.0.1:9 HTTP/1.1"
    assert connect.headers["proxy-authorization"] == "Basic dTpw"
    assert first.line == "POST / HTTP/1.1" and "proxy-authorization" not in first.headers
    assert proxy.connections == 1
    await api.close(client)


async def test_a_proxy_that_refuses_the_tunnel(api: Sync, serve: Callable[..., Server]) -> None:
    proxy = serve(lambda r, i: reply(407, b"auth needed"))
    proxies = {"https": f"http://127.0.0.1:{proxy.port}"}
    client = api.make(
        "https://127.0.0.1:9", config=Config(proxies=proxies, retries={"total_max_attempts": 1})
    )
    with pytest.raises(ProxyConnectionError):
        await api.call(client)
    await api.close(client)
