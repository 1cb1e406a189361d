"""(e) Peak memory of streaming a ``stream_items``-item query, against one page's worth.

One partition of ``stream_items`` items (about 250 bytes each, so DynamoDB's 1 MB pages hold
about 4,000), in a form every peer reads, served by `benchmarks.stub_server` (moto takes
seconds per page of so large a partition; client memory does not depend on the server). For
each peer, with ``tracemalloc``:

* one page: the peak while reading as many items as DynamoDB's first page holds (so one
  page's request, response and models) and holding them as models;
* streaming: the peak while iterating every item of the partition, one item kept at a time
  (``for item in Model.query(...)`` for dynamodel).

Both are peaks above the memory in use before the step, each peer in a fresh child process
(two at a time). The ratio is streaming / one page
(the target: under 2). tracemalloc sees Python's allocator only: memory pydynox's Rust core
holds is not counted. Memory is deterministic enough for one round per peer.
"""

from __future__ import annotations

import asyncio
import gc
import os
import time
import tracemalloc
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from itertools import islice
from typing import Any

from . import peers
from .case_calls import botocore_config
from .harness import Row, Settings, Target, find
from .server import CREDENTIALS, REGION, ServerProcess

STREAM = "big"
STREAMING = "stream query"
PAGE = "one page"
FLOOR_NAME = "floor (raw boto3 paginated + hand-written)"
TABLE_RESOURCE = "boto3 Table resource + pydantic"
PYNAMODB = "PynamoDB"
PYDYNOX = "pydynox (Python heap only)"
DYNAMODEL = "dynamodel sync"
DYNAMODEL_ASYNC = "dynamodel async"


@dataclass
class Peer:
    name: str
    first: Callable[[int], list[Any]]  # the first n items as models (n: one page's items)
    stream: Callable[[], int]  # iterate everything, return how many items


def _floor(client: Any) -> Peer:
    params = peers.floor_query_params(STREAM)

    def pages() -> Iterator[list[dict[str, Any]]]:
        start = None
        while True:
            extra = {"ExclusiveStartKey": start} if start else {}
            response = client.query(**params, **extra)
            yield response["Items"]
            start = response.get("LastEvaluatedKey")
            if not start:
                return

    def items() -> Iterator[Any]:
        for page in pages():
            for raw in page:
                yield peers.floor_parse(raw)

    return Peer(FLOOR_NAME, lambda n: list(islice(items(), n)), lambda: sum(1 for _ in items()))


def _table_resource(endpoint: str) -> Peer:
    import boto3
    from boto3.dynamodb.conditions import Key

    table = (
        boto3.session.Session()
        .resource("dynamodb", endpoint_url=endpoint, region_name=REGION, config=botocore_config())
        .Table(peers.TABLE)
    )
    condition = Key("pk").eq(f"STREAM#{STREAM}")
    parse = peers.UserFields.model_validate

    def items() -> Iterator[Any]:
        start = None
        while True:
            extra = {"ExclusiveStartKey": start} if start else {}
            response = table.query(KeyConditionExpression=condition, **extra)
            for raw in response["Items"]:
                yield parse(raw)
            start = response.get("LastEvaluatedKey")
            if not start:
                return

    return Peer(TABLE_RESOURCE, lambda n: list(islice(items(), n)), lambda: sum(1 for _ in items()))


def _pynamodb(endpoint: str) -> Peer | None:
    found = peers.pynamodb_models(endpoint)
    if found is None:
        return None
    model = found[0]
    pk = f"STREAM#{STREAM}"

    return Peer(
        PYNAMODB,
        lambda n: list(islice(model.query(pk), n)),
        lambda: sum(1 for _ in model.query(pk)),
    )


def _pydynox(endpoint: str) -> Peer | None:
    try:
        from pydynox import DynamoDBClient
    except ImportError:
        return None
    client = DynamoDBClient(
        endpoint_url=endpoint, region=REGION, access_key="testing", secret_key="testing"
    )
    found = peers.pydynox_models(client)
    assert found is not None
    model = found[0]
    pk = f"STREAM#{STREAM}"

    return Peer(
        PYDYNOX,
        lambda n: list(islice(model.sync_query(partition_key=pk), n)),
        lambda: sum(1 for _ in model.sync_query(partition_key=pk)),
    )


def _dynamodel() -> Peer:
    return Peer(
        DYNAMODEL,
        lambda n: list(islice(peers.DStreamUser.query(stream_id=STREAM), n)),
        lambda: sum(1 for _ in peers.DStreamUser.query(stream_id=STREAM)),
    )


def _dynamodel_async(runner: asyncio.Runner) -> Peer:
    async def first(n: int) -> list[Any]:
        out: list[Any] = []
        async for item in peers.DStreamUser.query(stream_id=STREAM):
            out.append(item)
            if len(out) == n:
                break
        return out

    async def stream() -> int:
        n = 0
        async for _ in peers.DStreamUser.query(stream_id=STREAM):
            n += 1
        return n

    return Peer(DYNAMODEL_ASYNC, lambda n: runner.run(first(n)), lambda: runner.run(stream()))


def _peak(fn: Callable[[], Any]) -> tuple[int, Any]:
    """Peak bytes above the starting point while ``fn`` runs (and its result is held)."""
    gc.collect()
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        tracemalloc.reset_peak()
        result = fn()
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    return peak - base, result


def run(settings: Settings, log: Callable[[str], None]) -> tuple[list[Row], list[Target]]:
    """Serve the partition from the stub; measure each peer in its own child process.

    A fresh process per peer keeps one peer's leftovers (caches, clients) out of the next
    one's figures, and lets two peers run at once (memory does not depend on speed).
    """
    from concurrent.futures import ThreadPoolExecutor

    count = settings.stream_items
    started = time.perf_counter()
    with ServerProcess("benchmarks.stub_server", str(count), STREAM) as stub:
        log(f"  (e) stub ready with {count:,} items in {time.perf_counter() - started:.1f}s")
        import boto3

        client = boto3.session.Session().client(
            "dynamodb",
            endpoint_url=stub.endpoint_url,
            region_name=REGION,
            aws_access_key_id=CREDENTIALS["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
        )
        page_items = len(client.query(**peers.floor_query_params(STREAM))["Items"])

        def one(name: str) -> Row:
            row = _in_child(name, stub.endpoint_url, count, page_items)
            page = _num_mb(row.extra.get("page_mb"))
            log(f"  (e) {name}: {_num_mb(row.value)} vs one page {page}")
            return row

        with ThreadPoolExecutor(max_workers=2) as pool:
            rows = list(pool.map(one, PEERS))
    return rows, targets(rows)


def _num_mb(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f} MB"


PEERS = (FLOOR_NAME, TABLE_RESOURCE, PYNAMODB, PYDYNOX, DYNAMODEL, DYNAMODEL_ASYNC)


def _in_child(name: str, endpoint: str, count: int, page_items: int) -> Row:
    import json
    import subprocess
    import sys

    from .server import ROOT

    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "benchmarks.case_stream",
            name,
            endpoint,
            str(count),
            str(page_items),
        ],
        cwd=ROOT,
        env={**os.environ, **CREDENTIALS},
        capture_output=True,
        text=True,
        timeout=1800,
    )
    if done.returncode != 0:
        raise RuntimeError(f"(e) {name} failed:\n{done.stderr[-3000:]}")
    data = json.loads(done.stdout.strip().splitlines()[-1])
    if data.get("missing"):
        return Row("e", STREAMING, name, None, "MB peak", note=data["missing"])
    return Row(
        "e",
        STREAMING,
        name,
        data["stream_peak"] / 1e6,
        "MB peak",
        ratio=data["stream_peak"] / data["page_peak"],
        extra={
            "page_mb": data["page_peak"] / 1e6,
            "page_items": data["page_items"],
            "items_per_s_traced": data["items_per_s"],
        },
    )


def measure(name: str, endpoint: str, count: int, page_items: int) -> dict[str, Any]:
    """One peer's figures (run in a child process by `run`)."""
    import boto3

    from dynamodel import Connection

    client = boto3.session.Session().client(
        "dynamodb", endpoint_url=endpoint, region_name=REGION, config=botocore_config()
    )
    connection = Connection(endpoint_url=endpoint, region=REGION)
    peers.BENCH.bind(connection=connection)
    with asyncio.Runner() as runner:
        factories: dict[str, Callable[[], Peer | None]] = {
            FLOOR_NAME: lambda: _floor(client),
            TABLE_RESOURCE: lambda: _table_resource(endpoint),
            PYNAMODB: lambda: _pynamodb(endpoint),
            PYDYNOX: lambda: _pydynox(endpoint),
            DYNAMODEL: _dynamodel,
            DYNAMODEL_ASYNC: lambda: _dynamodel_async(runner),
        }
        peer = factories[name]()
        if peer is None:
            return {"missing": "not installed"}
        peer.first(page_items)  # warm up (clients, connections, lazy imports)
        page_peak, page = _peak(lambda: peer.first(page_items))
        page_len = len(page)
        del page
        started = time.perf_counter()
        stream_peak, streamed = _peak(peer.stream)
        seconds = time.perf_counter() - started
        runner.run(connection.aclose())
    connection.close()
    if streamed != count:
        raise RuntimeError(f"{name} streamed {streamed} of {count} items")
    return {
        "page_peak": page_peak,
        "stream_peak": stream_peak,
        "page_items": page_len,
        "items_per_s": count / seconds,
    }


def targets(rows: list[Row]) -> list[Target]:
    out = []
    for name in (DYNAMODEL, DYNAMODEL_ASYNC):
        row = find(rows, STREAMING, name)
        out.append(
            Target(
                "e",
                f"{name}: streaming peak / one page's peak",
                row.ratio if row is not None else None,
                2.0,
                "max",
            )
        )
    return out


if __name__ == "__main__":
    import json
    import logging
    import sys

    logging.getLogger("pydynox").setLevel(logging.ERROR)
    peer_name, url, total, per_page = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    print(json.dumps(measure(peer_name, url, total, per_page)))
