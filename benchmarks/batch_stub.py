"""A batch-only DynamoDB stub with DynamoDB-like service time, for case (c), in its own process.

On a small machine a local emulator is the bottleneck of a batch benchmark: DynamoDB Local
(Java) saturates the cores it shares with the client at about 5,000 written items/s, and moto
applies one request at a time, so no client can show what concurrency buys. DynamoDB itself
serves requests concurrently, each in roughly constant time. This stub does the same: it
answers ``BatchWriteItem`` and ``BatchGetItem`` (and ``DescribeTable``, which PynamoDB asks
for) after a fixed service time, on one thread per connection, so requests in flight overlap
as they do on DynamoDB. It keeps written items in memory: a batch get returns what was
written, so every peer reads back and parses real items.

``python -m benchmarks.batch_stub [SERVICE_MS]`` prints its endpoint URL and serves until its
standard input closes. Every peer reaches it over HTTP through its own client.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

#: the service time per request, in milliseconds, unless given on the command line
SERVICE_MS = 5.0
TABLE_DESCRIPTION = {
    "Table": {
        "TableName": "bench",
        "TableStatus": "ACTIVE",
        "KeySchema": [
            {"AttributeName": "pk", "KeyType": "HASH"},
            {"AttributeName": "sk", "KeyType": "RANGE"},
        ],
        "AttributeDefinitions": [
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "sk", "AttributeType": "S"},
        ],
        "BillingModeSummary": {"BillingMode": "PAY_PER_REQUEST"},
        "ItemCount": 0,
        "TableSizeBytes": 0,
    }
}


class Store:
    """Items by (table, pk, sk), shared by the connection threads."""

    def __init__(self) -> None:
        self.items: dict[tuple[str, str, str], dict[str, Any]] = {}
        self.lock = threading.Lock()

    def write(self, request_items: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
        with self.lock:
            for table, requests in request_items.items():
                for request in requests:
                    if "PutRequest" in request:
                        item = request["PutRequest"]["Item"]
                        self.items[(table, item["pk"]["S"], item["sk"]["S"])] = item
                    else:
                        key = request["DeleteRequest"]["Key"]
                        self.items.pop((table, key["pk"]["S"], key["sk"]["S"]), None)
        return {"UnprocessedItems": {}}

    def get(self, request_items: dict[str, dict[str, Any]]) -> dict[str, Any]:
        responses: dict[str, list[dict[str, Any]]] = {}
        with self.lock:
            for table, spec in request_items.items():
                found = responses.setdefault(table, [])
                for key in spec["Keys"]:
                    item = self.items.get((table, key["pk"]["S"], key["sk"]["S"]))
                    if item is not None:
                        found.append(item)
        return {"Responses": responses, "UnprocessedKeys": {}}


def serve(service_seconds: float) -> None:
    store = Store()

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
            if operation == "BatchWriteItem":
                status, body = 200, store.write(request["RequestItems"])
            elif operation == "BatchGetItem":
                status, body = 200, store.get(request["RequestItems"])
            elif operation == "DescribeTable":
                status, body = 200, TABLE_DESCRIPTION
            else:
                status = 400
                body = {
                    "__type": "com.amazon.coral.validate#ValidationException",
                    "message": f"the batch stub does not serve {operation}",
                }
            encoded = json.dumps(body).encode()
            remaining = service_seconds - (time.perf_counter() - started)
            if remaining > 0:
                time.sleep(remaining)  # the service time, overlapping with other requests
            self.send_response(status)
            self.send_header("Content-Type", "application/x-amz-json-1.0")
            self.send_header("Content-Length", str(len(encoded)))
            self.send_header("x-amzn-RequestId", "stub")
            self.end_headers()
            self.wfile.write(encoded)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    print(f"http://127.0.0.1:{server.server_address[1]}", flush=True)
    sys.stdin.read()
    server.shutdown()


if __name__ == "__main__":
    serve((float(sys.argv[1]) if len(sys.argv) > 1 else SERVICE_MS) / 1000)
