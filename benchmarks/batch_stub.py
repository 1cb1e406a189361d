"""A batch-only DynamoDB stub with DynamoDB-like service time, for case (c), in its own process.

On a small machine a local emulator is the bottleneck of a batch benchmark: moto applies one
request at a time, and so does dynoxide (it accepts requests concurrently, but its SQLite
database is behind one lock), both on the cores they share with the client, so no client can
show what concurrency buys. DynamoDB itself
serves requests concurrently, each in roughly constant time. This stub does the same: it
answers ``BatchWriteItem`` and ``BatchGetItem`` (``DescribeTable``, which PynamoDB asks
for, and ``PutItem``/``GetItem``, with which dynamodel records and reads its shard-layout
record once per entity) after a fixed service time, on one thread per connection, so requests
in flight overlap as they do on DynamoDB. It keeps written items in memory: a batch get
returns what was written, so every peer reads back and parses real items.

``python -m benchmarks.batch_stub [SERVICE_MS]`` prints its endpoint URL and serves until its
standard input closes. Every peer reaches it over HTTP through its own client.
"""

from __future__ import annotations

import json
import sys
import threading
from typing import Any

from .stub_server import refuse, run_stub

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

    def put(self, request: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        """A PutItem; a ``ConditionExpression`` is taken as "the key is absent"."""
        item = request["Item"]
        ident = (request["TableName"], item["pk"]["S"], item["sk"]["S"])
        with self.lock:
            old = self.items.get(ident)
            if old is not None and "ConditionExpression" in request:
                return 400, {
                    "__type": "com.amazonaws.dynamodb.v20120810#ConditionalCheckFailedException",
                    "message": "The conditional request failed",
                    "Item": old,
                }
            self.items[ident] = item
        return 200, {}

    def get_one(self, request: dict[str, Any]) -> dict[str, Any]:
        key = request["Key"]
        with self.lock:
            item = self.items.get((request["TableName"], key["pk"]["S"], key["sk"]["S"]))
        return {} if item is None else {"Item": item}

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

    def answer(operation: str, request: dict[str, Any]) -> tuple[int, bytes]:
        if operation == "BatchWriteItem":
            body = store.write(request["RequestItems"])
        elif operation == "BatchGetItem":
            body = store.get(request["RequestItems"])
        elif operation == "DescribeTable":
            body = TABLE_DESCRIPTION
        elif operation == "PutItem":
            status, body = store.put(request)
            return status, json.dumps(body).encode()
        elif operation == "GetItem":
            body = store.get_one(request)
        else:
            return refuse(operation)
        return 200, json.dumps(body).encode()

    run_stub(answer, service_seconds)


if __name__ == "__main__":
    serve((float(sys.argv[1]) if len(sys.argv) > 1 else SERVICE_MS) / 1000)
