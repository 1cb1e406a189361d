"""The load generator of case (k), run in its own process (its CPU is not the app's).

    python -m benchmarks.fastapi_load PORT CONCURRENCY REQUESTS WARMUP TAG CUSTOMERS ORDERS

``CONCURRENCY`` keep-alive HTTP/1.1 connections (raw asyncio streams: far less CPU per request
than an HTTP client library) each send one request at a time, taking the next of a fixed mix
until ``WARMUP`` untimed and then ``REQUESTS`` timed requests are done. The mix, by request
number: 9 of every 10 alternate between an order's detail and a customer's newest 5 orders
(customers and orders of the seeded data, in turn), the 10th signs up a new customer
(``TAG`` keeps their ids unique). Prints one JSON line: requests/s, latency percentiles (ms),
the statuses seen and this process's CPU seconds during the timed requests.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from collections import Counter
from typing import Any

EXPECTED = {"detail": 200, "list": 200, "signup": 201}


def request(number: int, tag: str, customers: int, orders: int) -> tuple[str, bytes]:
    """Request ``number`` of the mix: its kind and its bytes."""
    customer = f"c{number % customers}"
    if number % 10 == 9:
        new = f"{tag}-{number}"
        body = json.dumps({"customer_id": new, "name": "New", "email": f"{new}@x.example"})
        head = (
            f"POST /customers HTTP/1.1\r\nHost: bench\r\nX-Customer-Id: {new}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
        )
        return "signup", (head + body).encode()
    if number % 2 == 0:
        order = f"o{(number // customers) % orders}"
        path = f"/customers/{customer}/orders/{order}"
        kind = "detail"
    else:
        path = f"/customers/{customer}/orders?limit=5"
        kind = "list"
    return kind, f"GET {path} HTTP/1.1\r\nHost: bench\r\nX-Customer-Id: {customer}\r\n\r\n".encode()


async def exchange(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, data: bytes) -> int:
    """Send one request, read its whole response; its status."""
    writer.write(data)
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    length = None
    for line in lines[1:]:
        name, _, value = line.partition(":")
        if name.strip().lower() == "content-length":
            length = int(value)
    if length is None:
        raise RuntimeError(f"a response without Content-Length: {head!r}")
    await reader.readexactly(length)
    return status


async def load(
    port: int, concurrency: int, count: int, start: int, tag: str, customers: int, orders: int
) -> tuple[list[float], Counter[str]]:
    """``count`` requests from number ``start`` on, ``concurrency`` at a time."""
    work = [request(n, tag, customers, orders) for n in range(start, start + count)]
    latencies: list[float] = []
    statuses: Counter[str] = Counter()
    following = iter(work)

    async def worker() -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            for kind, data in following:
                began = time.perf_counter()
                status = await exchange(reader, writer, data)
                latencies.append(time.perf_counter() - began)
                statuses[f"{kind} {status}"] += 1
        finally:
            writer.close()

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return latencies, statuses


def percentile(ordered: list[float], share: float) -> float:
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def main(argv: list[str]) -> dict[str, Any]:
    port, concurrency, count, warmup = (int(x) for x in argv[:4])
    tag, customers, orders = argv[4], int(argv[5]), int(argv[6])
    asyncio.run(load(port, concurrency, warmup, 0, tag, customers, orders))
    cpu, began = time.process_time(), time.perf_counter()
    latencies, statuses = asyncio.run(
        load(port, concurrency, count, warmup, tag, customers, orders)
    )
    wall = time.perf_counter() - began
    cpu = time.process_time() - cpu
    ordered = sorted(latencies)
    return {
        "requests_per_s": count / wall,
        "p50_ms": percentile(ordered, 0.50) * 1000,
        "p99_ms": percentile(ordered, 0.99) * 1000,
        "wall_s": wall,
        "cpu_s": cpu,
        "statuses": dict(statuses),
        "unexpected": sum(
            n for k, n in statuses.items() if int(k.split()[1]) != EXPECTED[k.split()[0]]
        ),
    }


if __name__ == "__main__":
    print(json.dumps(main(sys.argv[1:])), flush=True)
