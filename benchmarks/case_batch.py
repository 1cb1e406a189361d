"""(c) Batch write and batch get throughput of ``batch_items`` items, every peer on one server.

Each peer writes its own ``batch_items`` models (built before timing) and reads them back by
key into models; the figure is items per second of wall time (median over interleaved
rounds). Peers: the raw client's ``batch_write_item``/``batch_get_item`` in 25/100 chunks
(the floor), boto3's ``Table.batch_writer()`` and resource ``batch_get_item``, PynamoDB's
``batch_write``/``batch_get``, pydynox's ``SyncBatchWriter``/``sync_batch_get``, and the raw
aioboto3 client with 8 chunks in flight (what an async batch can reach on this server).

dynamodel's batch module is being written: see `dynamodel_batch_peer` (the hook) and
``--with-dynamodel-batch``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from . import peers
from .case_calls import botocore_config
from .harness import FLOOR, Row, Settings, Target, find, median, rotate, settled_heap, with_ratios
from .server import REGION

WRITE = "batch write"
GET = "batch get"
BATCH_WRITER = "boto3 Table.batch_writer() + pydantic"
PYNAMODB = "PynamoDB"
PYDYNOX = "pydynox"
AIOBOTO3 = "raw aioboto3, 8 chunks in flight"
DYNAMODEL_ASYNC = "dynamodel async batch"
CONCURRENCY = 8


WARM_UP = 100  # items each peer writes and reads once before timing


@dataclass
class Peer:
    name: str
    write: Callable[[int], Any]  # write the first n models
    get: Callable[[int], int]  # read the first n models back; returns how many it read


def _chunks(seq: list[Any], size: int) -> list[list[Any]]:
    return [seq[i : i + size] for i in range(0, len(seq), size)]


def _floor(client: Any, count: int) -> Peer:
    models = [peers.plain_make(i, "bf") for i in range(count)]
    keys = [peers.floor_key(m.user_id) for m in models]

    def write(n: int) -> None:
        for chunk in _chunks(models[:n], 25):
            request = {peers.TABLE: [{"PutRequest": {"Item": peers.floor_item(m)}} for m in chunk]}
            while request:
                request = client.batch_write_item(RequestItems=request).get("UnprocessedItems")

    def get(n: int) -> int:
        found = 0
        for chunk in _chunks(keys[:n], 100):
            request: Any = {peers.TABLE: {"Keys": chunk}}
            while request:
                response = client.batch_get_item(RequestItems=request)
                found += len([peers.floor_parse(x) for x in response["Responses"][peers.TABLE]])
                request = response.get("UnprocessedKeys")
        return found

    return Peer(FLOOR, write, get)


def _batch_writer(endpoint: str, count: int) -> Peer:
    import boto3

    resource = boto3.session.Session().resource(
        "dynamodb", endpoint_url=endpoint, region_name=REGION, config=botocore_config()
    )
    table = resource.Table(peers.TABLE)
    models = [peers.plain_make(i, "bw") for i in range(count)]
    keys = [{"pk": f"USER#{m.user_id}", "sk": "PROFILE"} for m in models]

    def write(n: int) -> None:
        with table.batch_writer() as writer:
            for m in models[:n]:
                writer.put_item(Item=peers.plain_item(m))

    def get(n: int) -> int:
        found = 0
        for chunk in _chunks(keys[:n], 100):
            request: Any = {peers.TABLE: {"Keys": chunk}}
            while request:
                response = resource.batch_get_item(RequestItems=request)
                items = response["Responses"][peers.TABLE]
                found += len([peers.UserFields.model_validate(x) for x in items])
                request = response.get("UnprocessedKeys")
        return found

    return Peer(BATCH_WRITER, write, get)


def _pynamodb(endpoint: str, count: int) -> Peer | None:
    found = peers.pynamodb_models(endpoint)
    if found is None:
        return None
    model, make = found
    models = [make(i, "bp") for i in range(count)]
    keys = [(m.pk, m.sk) for m in models]

    def write(n: int) -> None:
        with model.batch_write() as batch:
            for m in models[:n]:
                batch.save(m)

    return Peer(PYNAMODB, write, lambda n: len(list(model.batch_get(keys[:n]))))


def _pydynox(endpoint: str, count: int) -> Peer | None:
    try:
        from pydynox import DynamoDBClient, SyncBatchWriter
    except ImportError:
        return None
    client = DynamoDBClient(
        endpoint_url=endpoint, region=REGION, access_key="testing", secret_key="testing"
    )
    found = peers.pydynox_models(client)
    assert found is not None
    model, make = found
    models = [make(i, "bx") for i in range(count)]
    keys = [{"pk": m.pk, "sk": m.sk} for m in models]

    def write(n: int) -> None:
        with SyncBatchWriter(client, peers.TABLE) as batch:
            for m in models[:n]:
                batch.put(m.to_dict())

    return Peer(PYDYNOX, write, lambda n: len(model.sync_batch_get(keys[:n])))


def _aioboto3(endpoint: str, count: int, runner: asyncio.Runner) -> tuple[Peer, Any]:
    import aioboto3

    manager = aioboto3.Session().client(
        "dynamodb", endpoint_url=endpoint, region_name=REGION, config=botocore_config()
    )
    client = runner.run(manager.__aenter__())
    models = [peers.plain_make(i, "ba") for i in range(count)]
    keys = [peers.floor_key(m.user_id) for m in models]

    async def write_all(n: int) -> None:
        gate = asyncio.Semaphore(CONCURRENCY)

        async def one(chunk: list[Any]) -> None:
            async with gate:
                request: Any = {
                    peers.TABLE: [{"PutRequest": {"Item": peers.floor_item(m)}} for m in chunk]
                }
                while request:
                    response = await client.batch_write_item(RequestItems=request)
                    request = response.get("UnprocessedItems")

        await asyncio.gather(*(one(c) for c in _chunks(models[:n], 25)))

    async def get_all(n: int) -> int:
        gate = asyncio.Semaphore(CONCURRENCY)

        async def one(chunk: list[Any]) -> int:
            found = 0
            async with gate:
                request: Any = {peers.TABLE: {"Keys": chunk}}
                while request:
                    response = await client.batch_get_item(RequestItems=request)
                    items = response["Responses"][peers.TABLE]
                    found += len([peers.floor_parse(x) for x in items])
                    request = response.get("UnprocessedKeys")
            return found

        return sum(await asyncio.gather(*(one(c) for c in _chunks(keys[:n], 100))))

    peer = Peer(AIOBOTO3, lambda n: runner.run(write_all(n)), lambda n: runner.run(get_all(n)))
    return peer, manager


# ---------------------------------------------------------------------------------------------
# HOOK: dynamodel's own batch (dynamodel/batch.py, being written by another team).
# Once it has landed, run with --with-dynamodel-batch (or make that the default) so the table
# gets the "dynamodel async batch" rows and target (c) is checked. The code below follows the
# API drafted in dynamodel/batch.py (`batch_write()` usable with `async with`, `abatch_get`
# with `Key`); adjust it there if the final API differs.
# ---------------------------------------------------------------------------------------------
def dynamodel_batch_peer(count: int, runner: asyncio.Runner) -> Peer:
    """dynamodel's async batch write and batch get (the hook; see the comment above)."""
    from dynamodel import batch  # type: ignore[attr-defined]

    models = [peers.dynamodel_make(i, "bd") for i in range(count)]
    keys = [batch.Key(peers.DUser, user_id=m.user_id) for m in models]

    async def write_all(n: int) -> None:
        async with batch.batch_write() as writer:
            writer.put(*models[:n])

    async def get_all(n: int) -> int:
        return len(await batch.abatch_get(keys[:n]))

    return Peer(
        DYNAMODEL_ASYNC, lambda n: runner.run(write_all(n)), lambda n: runner.run(get_all(n))
    )


def run(
    settings: Settings,
    endpoint: str,
    log: Callable[[str], None],
    with_dynamodel: bool = False,
) -> tuple[list[Row], list[Target]]:
    import boto3

    count = settings.batch_items
    client = boto3.session.Session().client(
        "dynamodb", endpoint_url=endpoint, region_name=REGION, config=botocore_config()
    )
    missing: dict[str, str] = {}
    with asyncio.Runner() as runner:
        peer_list = [_floor(client, count), _batch_writer(endpoint, count)]
        for name, factory in ((PYNAMODB, _pynamodb), (PYDYNOX, _pydynox)):
            peer = factory(endpoint, count)
            if peer is None:
                missing[name] = "not installed"
            else:
                peer_list.append(peer)
        async_peer, manager = _aioboto3(endpoint, count, runner)
        peer_list.append(async_peer)
        if with_dynamodel:
            try:
                peer_list.append(dynamodel_batch_peer(count, runner))
            except Exception as exc:  # the module is not there yet, or its API changed
                missing[DYNAMODEL_ASYNC] = f"could not run: {type(exc).__name__}: {exc}"
        else:
            missing[DYNAMODEL_ASYNC] = "pending: dynamodel's batch module has not landed"

        rates: dict[tuple[str, str], list[float]] = {}
        with settled_heap():
            _rounds(settings, peer_list, rates, log)
        runner.run(manager.__aexit__(None, None, None))

    rows: list[Row] = []
    for op in (WRITE, GET):
        for peer in peer_list:
            rows.append(Row("c", op, peer.name, median(rates[(op, peer.name)]), "items/s"))
        for name, why in missing.items():
            rows.append(Row("c", op, name, None, "items/s", note=why))
    with_ratios(rows, lambda r: find(rows, r.op, FLOOR))
    return rows, targets(rows)


def _rounds(
    settings: Settings,
    peer_list: list[Peer],
    rates: dict[tuple[str, str], list[float]],
    log: Callable[[str], None],
) -> None:
    count = settings.batch_items
    for round_number in range(settings.batch_rounds):
        for peer in rotate(peer_list, round_number):
            start = time.perf_counter()
            peer.write(count)
            rates.setdefault((WRITE, peer.name), []).append(count / (time.perf_counter() - start))
            start = time.perf_counter()
            found = peer.get(count)
            rates.setdefault((GET, peer.name), []).append(count / (time.perf_counter() - start))
            if found != count:
                raise RuntimeError(f"{peer.name} read {found} of {count} items back")
        log(f"  (c) round {round_number + 1}/{settings.batch_rounds}")


def targets(rows: list[Row]) -> list[Target]:
    ours = find(rows, WRITE, DYNAMODEL_ASYNC)
    base = find(rows, WRITE, BATCH_WRITER)
    value = None
    note = ours.note if ours is not None else ""
    if ours is not None and base is not None and ours.value is not None and base.value:
        value = ours.value / base.value
    return [
        Target(
            "c", "batch write: dynamodel async items/s / batch_writer()", value, 3.0, "min", note
        )
    ]
