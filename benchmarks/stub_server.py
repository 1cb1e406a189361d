"""A Query-only DynamoDB stub for case (e), in a separate process.

moto answers a 1 MB page of a 100,000-item partition in seconds (it re-reads the partition for
every page), which would make streaming 100,000 items take most of an hour. Client memory does
not depend on the server, so case (e) talks to this stub instead: it pre-renders the partition's
pages once (DynamoDB's JSON protocol, pages cut at 1 MB of item size as DynamoDB does) and
answers every ``Query`` with the page after its ``ExclusiveStartKey`` (and every ``GetItem``
with no item). Every peer reaches it over HTTP through its own client, as it would reach
DynamoDB.

``python -m benchmarks.stub_server COUNT`` prints its endpoint URL once the pages are ready and
serves until its standard input closes.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

PAGE_BYTES = 1_000_000


def render_pages(count: int, stream: str) -> tuple[list[bytes], dict[str, int]]:
    """JSON bodies of the partition's pages, and sort key -> index of the page after it."""
    from dynamodel.core.codec import item_size

    from . import peers

    pages: list[bytes] = []
    after: dict[str, int] = {}
    items: list[dict[str, Any]] = []
    size = 0

    def flush(last: bool) -> None:
        body: dict[str, Any] = {"Items": items, "Count": len(items), "ScannedCount": len(items)}
        if not last:
            body["LastEvaluatedKey"] = {"pk": items[-1]["pk"], "sk": items[-1]["sk"]}
            after[items[-1]["sk"]["S"]] = len(pages) + 1
        pages.append(json.dumps(body).encode())

    for i in range(count):
        item = peers.shared_item(i, stream)
        item_bytes = item_size(item)
        if items and size + item_bytes > PAGE_BYTES:
            flush(last=False)
            items, size = [], 0
        items.append(item)
        size += item_bytes
    flush(last=True)
    return pages, after


Answer = Callable[[str, dict[str, Any]], tuple[int, bytes]]


def run_stub(answer: Answer, service_seconds: float = 0.0) -> None:
    """Serve DynamoDB's JSON protocol on 127.0.0.1 (one thread per connection): each request
    gets ``answer(operation, request)`` (status, JSON body), sent no sooner than
    ``service_seconds`` after it arrived. Prints the endpoint URL, serves until standard
    input closes."""

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        # headers and body go out in two writes: with Nagle's algorithm the second waits for
        # the client's delayed ACK (40 ms), which DynamoDB does not make clients wait
        disable_nagle_algorithm = True

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def do_POST(self) -> None:
            started = time.perf_counter()
            length = int(self.headers.get("Content-Length", "0"))
            request = json.loads(self.rfile.read(length) or b"{}")
            operation = self.headers.get("X-Amz-Target", "").rsplit(".", 1)[-1]
            status, body = answer(operation, request)
            remaining = service_seconds - (time.perf_counter() - started)
            if remaining > 0:
                time.sleep(remaining)  # overlaps with other connections' requests
            self.send_response(status)
            self.send_header("Content-Type", "application/x-amz-json-1.0")
            self.send_header("Content-Length", str(len(body)))
            self.send_header("x-amzn-RequestId", "stub")
            self.end_headers()
            self.wfile.write(body)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    print(f"http://127.0.0.1:{server.server_address[1]}", flush=True)
    sys.stdin.read()
    server.shutdown()


def refuse(operation: str) -> tuple[int, bytes]:
    """The stub's answer to an operation it does not serve."""
    body = {
        "__type": "com.amazon.coral.validate#ValidationException",
        "message": f"the stub does not serve {operation}",
    }
    return 400, json.dumps(body).encode()


def serve(count: int, stream: str) -> None:
    pages, after = render_pages(count, stream)

    def answer(operation: str, request: dict[str, Any]) -> tuple[int, bytes]:
        if operation == "GetItem":  # a client's look-up of a record the table does not hold
            return 200, b"{}"  # (dynamodel reads its shard-layout record before a query)
        if operation != "Query":
            return refuse(operation)
        start = request.get("ExclusiveStartKey")
        return 200, pages[after[start["sk"]["S"]] if start else 0]

    run_stub(answer)


if __name__ == "__main__":
    serve(int(sys.argv[1]), sys.argv[2] if len(sys.argv) > 2 else "big")
