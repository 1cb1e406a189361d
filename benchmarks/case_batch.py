"""(c) Batch write and batch get throughput of ``batch_items`` items, every peer on one server.

Each peer writes its own ``batch_items`` models (built before timing) and reads them back by
key into models; the figure is items per second of wall time (median over interleaved
rounds). Peers: the raw client's ``batch_write_item``/``batch_get_item`` in 25/100 chunks
(the floor), boto3's ``Table.batch_writer()`` and resource ``batch_get_item``, PynamoDB's
``batch_write``/``batch_get``, pydynox's ``SyncBatchWriter``/``sync_batch_get``, the raw
aioboto3 client with 8 chunks in flight (what an async batch can reach on this server), and
dynamodel's `dynamodel.ops.batch`: ``with batch_write()``/``batch_get`` (sync) and
``async with batch_write()``/``abatch_get`` (async), with their default concurrency. Before
timing, each peer writes and reads back its first ``WARM_UP`` items once (clients, connections
and thread pools are created then, not in the first timed round).

The local server applies one request at a time, so chunks in flight overlap only the client's
work with the server's: no peer can go much beyond the server's own rate here.
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
from .server import REGION, ServerProcess

WRITE = "batch write"
GET = "batch get"
BATCH_WRITER = "boto3 Table.batch_writer() + pydantic"
PYNAMODB = "PynamoDB"
PYDYNOX = "pydynox"
AIOBOTO3 = "raw aioboto3, 8 chunks in flight"
DYNAMODEL_SYNC = "dynamodel sync batch"
DYNAMODEL_ASYNC = "dynamodel async batch"
DYNAMODEL_ASYNC_LEAN = "dynamodel async batch (lean transport)"
CONCURRENCY = 8
STUB_SUFFIX = " (batch stub)"  # ops measured against benchmarks.batch_stub


WARM_UP = 50  # items each peer writes and reads once before timing (the first ones timed)


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


def _dynamodel(count: int, runner: asyncio.Runner, lean: Any) -> list[Peer]:
    """dynamodel's sync and async batch write and batch get (default settings), and the
    async ones again through the lean transport (``lean``: its `Connection`)."""
    from dynamodel.ops.batch import Key, abatch_get, batch_get, batch_write

    def peer_of(name: str, tag: str, is_async: bool, connection: Any = None) -> Peer:
        models = [peers.dynamodel_make(i, tag) for i in range(count)]
        keys = [Key(peers.DUser, user_id=m.user_id) for m in models]

        def write(n: int) -> None:
            with batch_write(connection=connection) as writer:
                writer.put(*models[:n])

        async def awrite(n: int) -> None:
            async with batch_write(connection=connection) as writer:
                writer.put(*models[:n])

        if is_async:
            return Peer(
                name,
                lambda n: runner.run(awrite(n)),
                lambda n: len(runner.run(abatch_get(keys[:n], connection=connection))),
            )
        return Peer(name, write, lambda n: len(batch_get(keys[:n], connection=connection)))

    return [
        peer_of(DYNAMODEL_SYNC, "bs", False),
        peer_of(DYNAMODEL_ASYNC, "bd", True),
        peer_of(DYNAMODEL_ASYNC_LEAN, "bl", True, lean),
    ]


def run(
    settings: Settings, endpoint: str, log: Callable[[str], None]
) -> tuple[list[Row], list[Target]]:
    from .batch_stub import SERVICE_MS

    rows, missing = _measure(settings, endpoint, "", settings.batch_rounds, log)
    with ServerProcess("benchmarks.batch_stub", str(SERVICE_MS)) as stub:
        log(f"  (c) again against the batch stub ({SERVICE_MS:g} ms per request)")
        stub_rows, _ = _measure(
            settings, stub.endpoint_url, STUB_SUFFIX, settings.batch_stub_rounds, log
        )
    rows += stub_rows
    for op in (WRITE, GET, WRITE + STUB_SUFFIX, GET + STUB_SUFFIX):
        for name, why in missing.items():
            rows.append(Row("c", op, name, None, "items/s", note=why))
    with_ratios(rows, lambda r: find(rows, r.op, FLOOR))
    _note_dynamodel(rows)
    return rows, targets(rows)


def _measure(
    settings: Settings, endpoint: str, suffix: str, rounds: int, log: Callable[[str], None]
) -> tuple[list[Row], dict[str, str]]:
    """Every peer's batch write and get rates against ``endpoint`` (ops named + ``suffix``)."""
    import boto3

    from dynamodel import Connection

    count = settings.batch_items
    client = boto3.session.Session().client(
        "dynamodb", endpoint_url=endpoint, region_name=REGION, config=botocore_config()
    )
    connection = Connection(endpoint_url=endpoint, region=REGION, transport="boto3")
    lean = Connection(endpoint_url=endpoint, region=REGION, transport="lean")
    peers.BENCH.bind(connection=connection)
    missing: dict[str, str] = {}
    try:
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
            peer_list += _dynamodel(count, runner, lean)

            for peer in peer_list:  # untimed: clients, connections, thread pools
                warm = min(WARM_UP, count)
                peer.write(warm)
                if peer.get(warm) != warm:
                    raise RuntimeError(f"{peer.name} read back fewer than {warm} items")
            rates: dict[tuple[str, str], list[float]] = {}
            with settled_heap():
                _rounds(settings.batch_items, rounds, peer_list, rates, log)
            runner.run(manager.__aexit__(None, None, None))
            runner.run(connection.aclose())
            runner.run(lean.aclose())
    finally:
        connection.close()
        lean.close()
        peers.BENCH.unbind()
        client.close()

    rows: list[Row] = []
    for op in (WRITE, GET):
        for peer in peer_list:
            rows.append(Row("c", op + suffix, peer.name, median(rates[(op, peer.name)]), "items/s"))
    return rows, missing


def _note_dynamodel(rows: list[Row]) -> None:
    """dynamodel's rows say their concurrency and (writes) their ratio to batch_writer()."""
    from dynamodel.ops.batch import DEFAULT_CONCURRENCY

    for row in rows:
        if row.peer not in (DYNAMODEL_SYNC, DYNAMODEL_ASYNC, DYNAMODEL_ASYNC_LEAN):
            continue
        if row.value is None:
            continue
        notes = [f"{DEFAULT_CONCURRENCY} chunks in flight (the default)"]
        base = find(rows, row.op, BATCH_WRITER)
        if row.op.startswith(WRITE) and base is not None and base.value:
            notes.append(f"{row.value / base.value:.2f}x batch_writer()")
        row.note = "; ".join(notes)


def _rounds(
    count: int,
    rounds: int,
    peer_list: list[Peer],
    rates: dict[tuple[str, str], list[float]],
    log: Callable[[str], None],
) -> None:
    for round_number in range(rounds):
        for peer in rotate(peer_list, round_number):
            start = time.perf_counter()
            peer.write(count)
            rates.setdefault((WRITE, peer.name), []).append(count / (time.perf_counter() - start))
            start = time.perf_counter()
            found = peer.get(count)
            rates.setdefault((GET, peer.name), []).append(count / (time.perf_counter() - start))
            if found != count:
                raise RuntimeError(f"{peer.name} read {found} of {count} items back")
        log(f"  (c) round {round_number + 1}/{rounds}")


def targets(rows: list[Row]) -> list[Target]:
    """The 3x target, read on the stub: DynamoDB serves requests concurrently, the emulator on
    this machine's shared cores does not (its ratio is in the note)."""

    def best_ratio(op: str) -> tuple[float | None, str]:
        base = find(rows, op, BATCH_WRITER)
        candidates = [find(rows, op, name) for name in (DYNAMODEL_ASYNC, DYNAMODEL_ASYNC_LEAN)]
        measured = [r for r in candidates if r is not None and r.value is not None]
        if not measured or base is None or not base.value:
            return None, "-"
        best = max(measured, key=lambda r: r.value or 0.0)
        return (best.value or 0.0) / base.value, best.peer

    value, peer = best_ratio(WRITE + STUB_SUFFIX)
    server_value, server_peer = best_ratio(WRITE)
    server_text = f"{server_value:.2f}x ({server_peer})" if server_value is not None else "-"
    note = (
        f"best dynamodel async row: {peer}, against the batch stub (concurrent, fixed service "
        f"time, like DynamoDB); against the local server, which applies one request at a "
        f"time on cores shared with the client: {server_text}"
    )
    return [
        Target(
            "c", "batch write: dynamodel async items/s / batch_writer()", value, 3.0, "min", note
        )
    ]
