"""(b) Client CPU and latency per GetItem, PutItem and Query call, every peer on one server.

Each peer gets, puts and queries items in its own format (a get reads one of 10 items the peer
wrote; a put writes one of 50 models built before timing; a query reads a 10-item partition
into models). The floor, the Table resource and dynamodel send the same query: the key
condition with the entity's sort-key prefix and a filter on the type attribute, which
dynamodel adds so that a single-table query returns only its model's items (PynamoDB and
pydynox query the partition in their own way). Per round and peer, ``call_count`` calls of
each operation (half as many queries) run back to back; client CPU is
``time.process_time()`` of this process (the server runs in another one, so this is the
client's CPU only: building, signing, HTTP, parsing, models) divided by the calls; latency is
each call's wall time. Rounds interleave the peers (rotated order); the figures are the median
round's CPU per call and the median call latency over all rounds.

The 1.1x targets compare dynamodel sync with the floor more tightly than the rounds can: on a
2-core machine whose other core runs the server, one batch's CPU per call drifts by +-20%
over seconds, so a round-level ratio of two peers measured a minute apart is mostly that drift.
After the rounds, ``paired_pairs`` pairs of ``paired_calls``-call batches alternate the two
peers (which goes first alternates too); each pair gives a ratio and the target reads their
median (the rows' notes show it). The floor calls the same boto3 client object as dynamodel
sync (`Connection.client()`), so the ratio is dynamodel's own work, not the difference between
two client instances (up to ~3% on this machine).

dynamodel's sync and async APIs each run twice: through boto3/aioboto3 (the default
transport) and through its lean transport (``Connection(transport="lean")``, `dynamodel.io.lean`);
the bench table is bound to the peer's connection before each batch of calls (outside the
timing).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from . import peers
from .harness import (
    FLOOR,
    Row,
    Settings,
    Target,
    find,
    median,
    rotate,
    settled_heap,
    timed_calls,
    with_ratios,
)
from .server import REGION

OPS = ("get", "put", "query")
ASYNC_FLOOR = "floor async (raw aioboto3 + hand-written)"
TABLE_RESOURCE = "boto3 Table resource + pydantic"
PYNAMODB = "PynamoDB"
PYDYNOX = "pydynox"
DYNAMODEL = "dynamodel sync"
DYNAMODEL_ASYNC = "dynamodel async"
DYNAMODEL_LEAN = "dynamodel sync (lean transport)"
DYNAMODEL_LEAN_ASYNC = "dynamodel async (lean transport)"
PREPARED = 10  # items each peer reads (get) and partition size (query)
POOL = 50  # distinct models each peer puts, built before timing (cycled)


@dataclass
class Peer:
    name: str
    ops: dict[str, Callable[[int], Any]]  # op -> fn(call index)
    is_async: bool = False
    connection: Any = None  # dynamodel peers: the connection the bench table is bound to


def botocore_config() -> Any:
    """The botocore config dynamodel gives its clients (so the floor client matches)."""
    from botocore.config import Config

    from dynamodel.io.clients import BOTOCORE_RETRIES

    return Config(retries=BOTOCORE_RETRIES, tcp_keepalive=True)


def _floor(client: Any, tag: str) -> Peer:
    keys = [peers.floor_key(f"{tag}{i:07d}") for i in range(PREPARED)]
    for i in range(PREPARED):
        client.put_item(**peers.floor_put_params(peers.plain_make(i, tag)))
        client.put_item(**peers.floor_put_params(peers.plain_make(i, tag, stream=tag)))
    query = peers.floor_query_params(tag)
    pool = [peers.plain_make(PREPARED + i, tag) for i in range(POOL)]
    return Peer(
        FLOOR,
        {
            "get": lambda i: peers.floor_parse(
                client.get_item(TableName=peers.TABLE, Key=keys[i % PREPARED])["Item"]
            ),
            "put": lambda i: client.put_item(**peers.floor_put_params(pool[i % POOL])),
            "query": lambda i: [peers.floor_parse(x) for x in client.query(**query)["Items"]],
        },
    )


def _table_resource(endpoint: str, tag: str) -> Peer:
    import boto3
    from boto3.dynamodb.conditions import Attr, Key

    table = (
        boto3.session.Session()
        .resource("dynamodb", endpoint_url=endpoint, region_name=REGION, config=botocore_config())
        .Table(peers.TABLE)
    )
    for i in range(PREPARED):
        table.put_item(Item=peers.plain_item(peers.plain_make(i, tag)))
        table.put_item(Item=peers.plain_item(peers.plain_make(i, tag, stream=tag)))
    keys = [
        {"pk": f"USER#{tag}{i:07d}", "sk": "PROFILE"} for i in range(PREPARED)
    ]  # resource keys are plain values
    # the request the floor and dynamodel send (see peers.floor_query_params)
    condition = Key("pk").eq(f"STREAM#{tag}") & Key("sk").begins_with("ITEM#")
    type_filter = Attr(peers.TYPE).eq("StreamUser")
    parse = peers.UserFields.model_validate
    pool = [peers.plain_make(PREPARED + i, tag) for i in range(POOL)]
    return Peer(
        TABLE_RESOURCE,
        {
            "get": lambda i: parse(table.get_item(Key=keys[i % PREPARED])["Item"]),
            "put": lambda i: table.put_item(Item=peers.plain_item(pool[i % POOL])),
            "query": lambda i: [
                parse(x)
                for x in table.query(
                    KeyConditionExpression=condition, FilterExpression=type_filter
                )["Items"]
            ],
        },
    )


def _pynamodb(endpoint: str, tag: str) -> Peer | None:
    found = peers.pynamodb_models(endpoint)
    if found is None:
        return None
    model, make = found
    for i in range(PREPARED):
        make(i, tag).save()
        make(i, tag, stream=tag).save()
    pool = [make(PREPARED + i, tag) for i in range(POOL)]
    return Peer(
        PYNAMODB,
        {
            "get": lambda i: model.get(f"USER#{tag}{i % PREPARED:07d}", "PROFILE"),
            "put": lambda i: pool[i % POOL].save(),
            "query": lambda i: list(model.query(f"STREAM#{tag}")),
        },
    )


def _pydynox(endpoint: str, tag: str) -> Peer | None:
    try:
        from pydynox import DynamoDBClient
    except ImportError:
        return None
    client = DynamoDBClient(
        endpoint_url=endpoint,
        region=REGION,
        access_key="testing",
        secret_key="testing",
    )
    found = peers.pydynox_models(client)
    assert found is not None
    model, make = found
    for i in range(PREPARED):
        make(i, tag).sync_save(full_replace=True)
        make(i, tag, stream=tag).sync_save(full_replace=True)
    pool = [make(PREPARED + i, tag) for i in range(POOL)]
    return Peer(
        PYDYNOX,
        {
            "get": lambda i: model.sync_get(pk=f"USER#{tag}{i % PREPARED:07d}", sk="PROFILE"),
            # full_replace: a PutItem every time (a new model would do one too)
            "put": lambda i: pool[i % POOL].sync_save(full_replace=True),
            "query": lambda i: list(model.sync_query(partition_key=f"STREAM#{tag}")),
        },
    )


def _dynamodel(tag: str, connection: Any, name: str = DYNAMODEL) -> Peer:
    peers.BENCH.bind(connection=connection)
    for i in range(PREPARED):
        peers.dynamodel_make(i, tag).save()
        peers.dynamodel_make(i, tag, stream=tag).save()
    pool = [peers.dynamodel_make(PREPARED + i, tag) for i in range(POOL)]
    return Peer(
        name,
        {
            "get": lambda i: peers.DUser.get(user_id=f"{tag}{i % PREPARED:07d}"),
            "put": lambda i: pool[i % POOL].save(),
            "query": lambda i: peers.DStreamUser.query(stream_id=tag).all(),
        },
        connection=connection,
    )


def _dynamodel_async(
    tag: str, runner: asyncio.Runner, connection: Any, name: str = DYNAMODEL_ASYNC
) -> Peer:
    peers.BENCH.bind(connection=connection)

    async def prepare() -> None:
        for i in range(PREPARED):
            await peers.dynamodel_make(i, tag).asave()
            await peers.dynamodel_make(i, tag, stream=tag).asave()

    runner.run(prepare())
    pool = [peers.dynamodel_make(PREPARED + i, tag) for i in range(POOL)]
    return Peer(
        name,
        {
            "get": lambda i: peers.DUser.aget(user_id=f"{tag}{i % PREPARED:07d}"),
            "put": lambda i: pool[i % POOL].asave(),
            "query": lambda i: peers.DStreamUser.query(stream_id=tag).aall(),
        },
        is_async=True,
        connection=connection,
    )


def _async_floor(endpoint: str, tag: str, runner: asyncio.Runner) -> tuple[Peer, Any]:
    import aioboto3

    manager = aioboto3.Session().client(
        "dynamodb", endpoint_url=endpoint, region_name=REGION, config=botocore_config()
    )
    client = runner.run(manager.__aenter__())
    keys = [peers.floor_key(f"{tag}{i:07d}") for i in range(PREPARED)]
    query = peers.floor_query_params(tag)

    async def prepare() -> None:
        for i in range(PREPARED):
            await client.put_item(**peers.floor_put_params(peers.plain_make(i, tag)))
            await client.put_item(**peers.floor_put_params(peers.plain_make(i, tag, stream=tag)))

    runner.run(prepare())
    pool = [peers.plain_make(PREPARED + i, tag) for i in range(POOL)]

    async def get(i: int) -> Any:
        response = await client.get_item(TableName=peers.TABLE, Key=keys[i % PREPARED])
        return peers.floor_parse(response["Item"])

    async def put(i: int) -> Any:
        return await client.put_item(**peers.floor_put_params(pool[i % POOL]))

    async def run_query(i: int) -> Any:
        return [peers.floor_parse(x) for x in (await client.query(**query))["Items"]]

    peer = Peer(ASYNC_FLOOR, {"get": get, "put": put, "query": run_query}, is_async=True)
    return peer, manager


def _run_op(peer: Peer, op: str, count: int, runner: asyncio.Runner) -> tuple[float, list[float]]:
    if peer.connection is not None:
        peers.BENCH.bind(connection=peer.connection)
    return timed_calls(peer.ops[op], count, peer.is_async, runner)


def run(
    settings: Settings, endpoint: str, log: Callable[[str], None]
) -> tuple[list[Row], list[Target]]:
    from dynamodel import Connection

    with asyncio.Runner() as runner:
        connection = Connection(endpoint_url=endpoint, region=REGION, transport="boto3")
        lean = Connection(endpoint_url=endpoint, region=REGION, transport="lean")
        # the floor calls the very boto3 client dynamodel sync uses: two identical clients'
        # CPU per call differs by up to ~3% here (their own state), which the paired ratio
        # would otherwise count as dynamodel's
        peer_list: list[Peer] = [
            _floor(connection.client(), "fl"),
            _table_resource(endpoint, "tr"),
        ]
        missing: dict[str, str] = {}
        for name, factory in ((PYNAMODB, _pynamodb), (PYDYNOX, _pydynox)):
            peer = factory(endpoint, name[:3].lower())
            if peer is None:
                missing[name] = "not installed"
            else:
                peer_list.append(peer)
        peer_list.append(_dynamodel("dm", connection))
        peer_list.append(_dynamodel("dl", lean, DYNAMODEL_LEAN))
        async_floor, manager = _async_floor(endpoint, "af", runner)
        peer_list += [
            async_floor,
            _dynamodel_async("da", runner, connection),
            _dynamodel_async("dx", runner, lean, DYNAMODEL_LEAN_ASYNC),
        ]

        cpu: dict[tuple[str, str], list[float]] = {}
        latency: dict[tuple[str, str], list[float]] = {}
        count = settings.call_count
        # one untimed warm-up round (connections, caches)
        for peer in peer_list:
            for op in OPS:
                _run_op(peer, op, 3, runner)
        with settled_heap():
            for round_number in range(settings.call_rounds):
                for peer in rotate(peer_list, round_number):
                    for op in OPS:
                        # moto answers a query ~10x slower than a get: fewer of them
                        calls = count if op != "query" else max(1, count // 2)
                        per_call, latencies = _run_op(peer, op, calls, runner)
                        cpu.setdefault((op, peer.name), []).append(per_call)
                        latency.setdefault((op, peer.name), []).extend(latencies)
                log(f"  (b) round {round_number + 1}/{settings.call_rounds}")
        paired = _paired_ratios(peer_list, settings, runner)
        log(f"  (b) paired A/B: {settings.paired_pairs} pairs per op")
        runner.run(manager.__aexit__(None, None, None))
        for used in (connection, lean):
            runner.run(used.aclose())
            used.close()
        peers.BENCH.unbind()

    rows: list[Row] = []
    for op in OPS:
        for peer in peer_list:
            key = (op, peer.name)
            rows.append(
                Row(
                    "b",
                    op,
                    peer.name,
                    median(cpu[key]) * 1e6,
                    "µs CPU/call",
                    extra={"latency_ms": median(latency[key]) * 1e3},
                )
            )
        for name, why in missing.items():
            rows.append(Row("b", op, name, None, "µs CPU/call", note=why))
    with_ratios(rows, lambda r: find(rows, r.op, FLOOR))
    for op, ratio in paired.items():
        ours = find(rows, op, DYNAMODEL)
        if ours is not None:
            ours.note = (
                f"paired with the floor: {ratio:.2f}x ({settings.paired_pairs} pairs of "
                f"{settings.paired_calls} calls)"
            )
    for row in rows:
        if row.peer in (DYNAMODEL_ASYNC, DYNAMODEL_LEAN_ASYNC):
            base = find(rows, row.op, ASYNC_FLOOR)
            if base is not None and base.value and row.value is not None:
                row.note = f"{row.value / base.value:.2f}x the async floor"
    return rows, targets(rows, paired)


def _paired_ratios(
    peer_list: list[Peer], settings: Settings, runner: asyncio.Runner
) -> dict[str, float]:
    """Per op, the median over alternating (dynamodel sync, floor) batch pairs of the CPU
    ratio; the target this feeds needs a tighter figure than rounds a minute apart give."""
    by_name = {p.name: p for p in peer_list}
    pair = (by_name[DYNAMODEL], by_name[FLOOR])
    out: dict[str, float] = {}
    with settled_heap():
        for op in OPS:
            ratios = []
            for number in range(settings.paired_pairs):
                cpu = {}
                for peer in pair if number % 2 == 0 else pair[::-1]:
                    cpu[peer.name] = _run_op(peer, op, settings.paired_calls, runner)[0]
                ratios.append(cpu[DYNAMODEL] / cpu[FLOOR])
            out[op] = median(ratios)
    return out


def targets(rows: list[Row], paired: dict[str, float]) -> list[Target]:
    out = []
    for op in OPS:
        ours = find(rows, op, DYNAMODEL)
        round_ratio = f"{ours.ratio:.2f}x" if ours is not None and ours.ratio else "-"
        out.append(
            Target(
                "b",
                f"{op}: dynamodel sync client CPU / floor",
                paired.get(op),
                1.1,
                "max",
                f"median of paired batches; the rounds' medians give {round_ratio}",
            )
        )
    return out
