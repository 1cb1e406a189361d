"""A sans-I/O HTTP/1.1 client exchange: request bytes out, an incremental response parser in.

The sync (sockets) and async (asyncio protocol) connection pools both use it, so framing rules
live once: ``Content-Length`` bodies, chunked bodies (trailers skipped), bodies delimited by
connection close, interim ``1xx`` responses skipped, and keep-alive as HTTP/1.1 defines it.
"""

from __future__ import annotations

from dataclasses import dataclass

MAX_HEAD = 64 * 1024  # bytes of status line and headers accepted before giving up


class ProtocolError(Exception):
    """The peer sent something that is not a valid HTTP/1.1 response."""


class IncompleteResponse(ProtocolError):
    """The connection closed before the response was complete."""


@dataclass(slots=True)
class Response:
    """A complete response. Header names are lower-case; repeated headers joined by ``, ``."""

    status: int
    reason: str
    headers: dict[str, str]
    body: bytes
    keep_alive: bool


def request_head(target: str, headers: list[tuple[str, str]], body_length: int) -> bytes:
    """The request line and headers of a POST (the body follows them on the wire)."""
    lines = [f"POST {target} HTTP/1.1"]
    lines += [f"{name}: {value}" for name, value in headers]
    lines.append(f"Content-Length: {body_length}\r\n\r\n")
    return "\r\n".join(lines).encode("latin-1")


def connect_head(authority: str, proxy_authorization: str | None) -> bytes:
    """A ``CONNECT`` request asking a proxy for a tunnel to ``authority`` (``host:port``)."""
    lines = [f"CONNECT {authority} HTTP/1.1", f"Host: {authority}"]
    if proxy_authorization:
        lines.append(f"Proxy-Authorization: {proxy_authorization}")
    lines.append("\r\n")
    return "\r\n".join(lines).encode("latin-1")


_HEAD, _LENGTH, _CHUNK_SIZE, _CHUNK_DATA, _CHUNK_END, _TRAILER, _UNTIL_CLOSE, _DONE = range(8)


class ResponseParser:
    """Feed the bytes of one response as they arrive; `feed` returns True once it is complete.

    ``head_only`` parses a response without a body (the answer to ``CONNECT``). Bytes after the
    end of the response are kept in ``extra`` (a server must not send any: the connection is
    then not reused).
    """

    __slots__ = (
        "_buf",
        "_chunks",
        "_head_only",
        "_pending",
        "_pending_keep_alive",
        "_remaining",
        "_state",
        "extra",
        "received",
        "response",
    )

    def __init__(self, *, head_only: bool = False) -> None:
        self._buf = b""
        self._state = _HEAD
        self._head_only = head_only
        self._remaining = 0
        self._chunks: list[bytes] = []
        self._pending: tuple[int, str, dict[str, str]] = (0, "", {})
        self._pending_keep_alive = False
        self.received = False  # whether any byte of a response arrived
        self.extra = b""
        self.response: Response | None = None

    def feed(self, data: bytes) -> bool:
        """Take more bytes; True when the response is complete (see ``response``)."""
        if data:
            self.received = True
        if self._state == _DONE:
            self.extra += data
            return True
        buf = self._buf + data if self._buf else data
        self._buf = b""
        return self._run(buf)

    def feed_eof(self) -> Response:
        """The connection closed: the complete response, or `IncompleteResponse`."""
        if self._state == _UNTIL_CLOSE:
            self._finish(b"".join(self._chunks), keep_alive=False)
        if self._state != _DONE or self.response is None:
            raise IncompleteResponse(
                "the connection closed before the response was complete"
                if self.received
                else "the connection closed without a response"
            )
        return self.response

    # -- state machine ------------------------------------------------------------------------

    def _run(self, buf: bytes) -> bool:
        while True:
            state = self._state
            if state == _HEAD:
                end = buf.find(b"\r\n\r\n")
                if end < 0:
                    if len(buf) > MAX_HEAD:
                        raise ProtocolError(f"response head longer than {MAX_HEAD} bytes")
                    self._buf = buf
                    return False
                buf = self._head(buf[:end], buf[end + 4 :])
            elif state == _LENGTH:
                if len(buf) < self._remaining:
                    self._chunks.append(buf)
                    self._remaining -= len(buf)
                    return False
                self._chunks.append(buf[: self._remaining])
                rest = buf[self._remaining :]
                self._finish(b"".join(self._chunks), self._pending_keep_alive)
                self.extra = rest
                return True
            elif state in (_CHUNK_SIZE, _TRAILER):
                end = buf.find(b"\r\n")
                if end < 0:
                    if len(buf) > MAX_HEAD:
                        raise ProtocolError("chunk size line too long")
                    self._buf = buf
                    return False
                line, buf = buf[:end], buf[end + 2 :]
                if state == _TRAILER:
                    if not line:
                        self._finish(b"".join(self._chunks), self._pending_keep_alive)
                        self.extra = buf
                        return True
                    continue
                try:
                    size = int(line.split(b";", 1)[0].strip(), 16)
                except ValueError:
                    raise ProtocolError(f"bad chunk size line {line[:40]!r}") from None
                if size < 0:
                    raise ProtocolError(f"bad chunk size line {line[:40]!r}")
                self._state = _TRAILER if size == 0 else _CHUNK_DATA
                self._remaining = size
            elif state == _CHUNK_DATA:
                if len(buf) < self._remaining:
                    self._chunks.append(buf)
                    self._remaining -= len(buf)
                    return False
                self._chunks.append(buf[: self._remaining])
                buf = buf[self._remaining :]
                self._state = _CHUNK_END
            elif state == _CHUNK_END:
                if len(buf) < 2:
                    self._buf = buf
                    return False
                if buf[:2] != b"\r\n":
                    raise ProtocolError("chunk data not followed by CRLF")
                buf = buf[2:]
                self._state = _CHUNK_SIZE
            elif state == _UNTIL_CLOSE:
                self._chunks.append(buf)
                return False
            else:  # _DONE
                self.extra += buf
                return True

    def _head(self, head: bytes, rest: bytes) -> bytes:
        """Parse a status line and headers; set the body state; return the bytes after it."""
        lines = head.decode("latin-1").split("\r\n")
        parts = lines[0].split(" ", 2)
        if len(parts) < 2 or not parts[0].startswith("HTTP/1.") or not parts[1].isdigit():
            raise ProtocolError(f"bad status line {lines[0][:80]!r}")
        status = int(parts[1])
        reason = parts[2] if len(parts) > 2 else ""
        headers: dict[str, str] = {}
        for line in lines[1:]:
            name, sep, value = line.partition(":")
            if not sep or not name or name[0] in " \t":
                raise ProtocolError(f"bad header line {line[:80]!r}")
            name = name.lower()
            value = value.strip()
            headers[name] = f"{headers[name]}, {value}" if name in headers else value
        if 100 <= status < 200 and status != 101:  # interim response: the real one follows
            return rest
        if self._head_only:
            self._pending_keep_alive = True
            self.response = Response(status, reason, headers, b"", True)
            self._state = _DONE
            return rest
        connection = headers.get("connection", "").lower()
        if parts[0] == "HTTP/1.0":
            keep_alive = "keep-alive" in connection
        else:
            keep_alive = "close" not in connection
        self._pending_keep_alive = keep_alive
        self._pending = (status, reason, headers)
        encoding = headers.get("transfer-encoding")
        length = headers.get("content-length")
        if status in (204, 304):
            self._state = _LENGTH
            self._remaining = 0
        elif encoding is not None:
            if encoding.lower().rsplit(",", 1)[-1].strip() != "chunked":
                raise ProtocolError(f"unsupported transfer-encoding {encoding!r}")
            self._state = _CHUNK_SIZE
        elif length is not None:
            values = {v.strip() for v in length.split(",")}
            if len(values) != 1 or not next(iter(values)).isdigit():
                raise ProtocolError(f"bad content-length {length!r}")
            self._state = _LENGTH
            self._remaining = int(values.pop())
        else:
            self._state = _UNTIL_CLOSE
            self._pending_keep_alive = False
        return rest

    def _finish(self, body: bytes, keep_alive: bool) -> None:
        status, reason, headers = self._pending
        self.response = Response(status, reason, headers, body, keep_alive)
        self._state = _DONE
        self._chunks = []
